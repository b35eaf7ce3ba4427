"""Registers ⇄ engineering values: pure functions, no sockets.

``decode(registers, source)`` turns the 16-bit words a device returned into the
point's value (type, byte order, word order, then ``value * scale + offset``);
``encode(value, source)`` is the inverse, used for writes.

Byte order orders the two bytes inside each register; word order orders the
registers of a 32/64-bit value. The four layouts devices ship, for the float32
123.456 (IEEE bytes 42 F6 E9 79):

    ABCD  big/big        [0x42F6, 0xE979] = [17142, 59769]
    CDAB  big/little     [0xE979, 0x42F6]
    BADC  little/big     [0xF642, 0x79E9]
    DCBA  little/little  [0x79E9, 0xF642]

:class:`BlockDecoder` decodes many points of one block read at once with numpy,
which is what keeps the ingest pipeline close to the raw read rate.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from connectors.errors import DecodeError
from connectors.site import DataType, ModbusSource, Order

_FMT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
_NP: dict[DataType, np.dtype[np.generic]] = {
    DataType.INT16: np.dtype(">i2"),
    DataType.UINT16: np.dtype(">u2"),
    DataType.INT32: np.dtype(">i4"),
    DataType.UINT32: np.dtype(">u4"),
    DataType.FLOAT32: np.dtype(">f4"),
    DataType.FLOAT64: np.dtype(">f8"),
}


def _to_big_endian_bytes(registers: Sequence[int], byte_order: Order, word_order: Order) -> bytes:
    words = list(registers)
    if word_order is Order.LITTLE:
        words.reverse()
    raw = bytearray()
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise DecodeError(f"register value {w} is not a 16-bit word")
        hi, lo = w >> 8, w & 0xFF
        raw += bytes((lo, hi)) if byte_order is Order.LITTLE else bytes((hi, lo))
    return bytes(raw)


def _from_big_endian_bytes(raw: bytes, byte_order: Order, word_order: Order) -> list[int]:
    words = []
    for i in range(0, len(raw), 2):
        hi, lo = raw[i], raw[i + 1]
        words.append((lo << 8 | hi) if byte_order is Order.LITTLE else (hi << 8 | lo))
    if word_order is Order.LITTLE:
        words.reverse()
    return words


def decode_raw(
    registers: Sequence[int],
    data_type: DataType,
    byte_order: Order = Order.BIG,
    word_order: Order = Order.BIG,
    bit: int | None = None,
) -> float:
    """Decode registers to the raw (unscaled) value of ``data_type``.

    >>> decode_raw([17142, 59769], DataType.FLOAT32)  # doctest: +ELLIPSIS
    123.456...
    """
    n = data_type.registers
    if len(registers) != n:
        raise DecodeError(f"{data_type.value} needs {n} register(s), got {len(registers)}")
    if data_type is DataType.BOOL:
        return 1.0 if registers[0] else 0.0
    if data_type is DataType.BIT:
        if bit is None:
            raise DecodeError("bit data type needs a bit index")
        hi, lo = _to_big_endian_bytes(registers, byte_order, Order.BIG)
        return float(((hi << 8 | lo) >> bit) & 1)
    raw = _to_big_endian_bytes(registers, byte_order, word_order)
    return float(struct.unpack(">" + _FMT[data_type], raw)[0])


def decode(registers: Sequence[int], source: ModbusSource) -> float:
    """Registers (or one bit for coil/discrete tables) → engineering value."""
    raw = decode_raw(registers, source.data_type, source.byte_order, source.word_order, source.bit)
    if source.data_type in (DataType.BOOL, DataType.BIT):
        return raw
    return raw * source.scale + source.offset


def wire_bit(source: ModbusSource) -> int:
    """Bit position on the wire of a ``bit`` point (its bit index after the byte order).

    A register's bits are numbered 0 (LSB) … 15 of its value; with little byte
    order the two bytes arrive swapped, so value bit ``b`` is wire bit ``(b + 8) % 16``.
    Writers set or clear this bit in a read-modify-write of the register.
    """
    b = source.bit or 0
    return b if source.byte_order is Order.BIG else (b + 8) % 16


def encode_raw(
    value: float,
    data_type: DataType,
    byte_order: Order = Order.BIG,
    word_order: Order = Order.BIG,
) -> list[int]:
    """Raw value → registers. Integers are rounded and range-checked."""
    if data_type in (DataType.BOOL, DataType.BIT):
        return [1 if value else 0]
    fmt = _FMT[data_type]
    if data_type in (DataType.FLOAT32, DataType.FLOAT64):
        if (
            data_type is DataType.FLOAT32
            and math.isfinite(value)
            and abs(value) > 3.4028234663852886e38
        ):
            raise DecodeError(f"{value} does not fit float32")
        raw = struct.pack(">" + fmt, value)
    else:
        iv = round(value)
        try:
            raw = struct.pack(">" + fmt, iv)
        except struct.error as err:
            raise DecodeError(f"{value} does not fit {data_type.value}") from err
    return _from_big_endian_bytes(raw, byte_order, word_order)


def encode(value: float, source: ModbusSource) -> list[int]:
    """Engineering value → registers (inverse of :func:`decode`)."""
    if source.data_type in (DataType.BOOL, DataType.BIT):
        return encode_raw(value, source.data_type)
    raw = (value - source.offset) / source.scale
    return encode_raw(raw, source.data_type, source.byte_order, source.word_order)


# --------------------------------------------------------------------------- vectorised


class BlockDecoder:
    """Decodes every point of one block read with a few numpy operations.

    Built once per block (start address, points): each point's bytes are located
    in the block's big-endian byte string, with its byte and word order folded
    into a precomputed gather index, so :meth:`decode` does one fancy-index and
    one view per numpy dtype in the block, then one affine step for all points.
    It accepts one block (``count`` registers → ``n`` values) or ``K`` reads of
    the same block stacked as ``(K, count)`` (→ ``(K, n)``), which amortises the
    numpy call overhead when many polls are decoded at once.

    Values that decode to NaN or infinity are returned as they are: judging
    them is the caller's job (the poller flags them ``decode_error``).
    """

    def __init__(self, start: int, sources: Sequence[ModbusSource]) -> None:
        self.start = start
        self.n = len(sources)
        by_dtype: dict[DataType, list[int]] = {}
        bits: list[int] = []
        for i, s in enumerate(sources):
            if s.data_type in (DataType.BIT, DataType.BOOL):
                bits.append(i)
            else:
                by_dtype.setdefault(s.data_type, []).append(i)
        self._groups: list[tuple[npt.NDArray[np.intp], np.dtype[np.generic]]] = []
        order: list[int] = []
        for dt, idx in by_dtype.items():
            self._groups.append(
                (
                    np.array([b for i in idx for b in _byte_index(sources[i], start)], np.intp),
                    _NP[dt],
                )
            )
            order += idx
        self._bit_regs = np.array([sources[i].address - start for i in bits], dtype=np.intp)
        self._bit_shift = np.array([wire_bit(sources[i]) for i in bits], dtype=np.uint16)
        order += bits
        perm = np.array(order, dtype=np.intp)
        self._perm: npt.NDArray[np.intp] | None = None
        if not np.array_equal(perm, np.arange(self.n)):
            self._perm = np.empty(self.n, dtype=np.intp)
            self._perm[perm] = np.arange(self.n)  # concatenated position of each point
        scale = np.array([1.0 if i in bits else sources[i].scale for i in range(self.n)])
        offset = np.array([0.0 if i in bits else sources[i].offset for i in range(self.n)])
        self._scale = scale if not np.all(scale == 1.0) else None
        self._offset = offset if np.any(offset != 0.0) else None
        self.has_float = DataType.FLOAT32 in by_dtype or DataType.FLOAT64 in by_dtype

    def decode(
        self, registers: Sequence[int] | npt.NDArray[np.uint16] | npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        regs = np.asarray(registers, dtype=">u2")
        stacked = regs.ndim == 2
        if not stacked:
            regs = regs[None, :]
        raw = np.ascontiguousarray(regs).view(np.uint8)  # (K, 2 * count) big-endian bytes
        parts = [
            np.ascontiguousarray(raw[:, idx]).view(dt).astype(np.float64)
            for idx, dt in self._groups
        ]
        if len(self._bit_regs):
            parts.append(((regs[:, self._bit_regs] >> self._bit_shift) & 1).astype(np.float64))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if self._perm is not None:
            out = out[:, self._perm]
        if self._scale is not None:
            out = out * self._scale
        if self._offset is not None:
            out = out + self._offset
        return out if stacked else out[0]


def _byte_index(s: ModbusSource, start: int) -> list[int]:
    """Positions of the point's value bytes, most significant first, in the block's bytes."""
    words = s.data_type.registers
    out: list[int] = []
    for j in range(words):
        r = s.address - start + (j if s.word_order is Order.BIG else words - 1 - j)
        out += [2 * r, 2 * r + 1] if s.byte_order is Order.BIG else [2 * r + 1, 2 * r]
    return out


def decode_bits(bits: Sequence[bool]) -> npt.NDArray[np.float64]:
    """Coil / discrete-input block → 0.0 / 1.0 per bit."""
    return np.asarray(bits, dtype=np.float64)
