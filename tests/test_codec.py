"""Register codec: every type × the four byte/word orders against reference vectors."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.codec import BlockDecoder, decode, decode_raw, encode, encode_raw
from connectors.errors import DecodeError
from connectors.site import DataType, ModbusSource, Order

B, L = Order.BIG, Order.LITTLE
LAYOUTS = {"ABCD": (B, B), "CDAB": (B, L), "BADC": (L, B), "DCBA": (L, L)}


def _reference(fmt: str, value: float | int, layout: str) -> list[int]:
    """Registers built independently of the codec: pack big-endian, then permute bytes.

    ABCD is the IEEE/two's-complement big-endian byte string split in 16-bit words;
    the other layouts are the documented permutations of its bytes.
    """
    raw = struct.pack(">" + fmt, value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if layout in ("CDAB", "DCBA"):
        words.reverse()
    if layout in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


# (data type, struct format, value) — reference values, some at their type's edges
CASES: list[tuple[DataType, str, float]] = [
    (DataType.INT16, "h", -12345),
    (DataType.INT16, "h", -32768),
    (DataType.UINT16, "H", 65535),
    (DataType.UINT16, "H", 4660),
    (DataType.INT32, "i", -123456789),
    (DataType.INT32, "i", 2147483647),
    (DataType.UINT32, "I", 4294967295),
    (DataType.UINT32, "I", 305419896),
    (DataType.FLOAT32, "f", 123.456),
    (DataType.FLOAT32, "f", -0.15625),
    (DataType.FLOAT64, "d", 123.456),
    (DataType.FLOAT64, "d", -1.0e300),
]


def test_documented_float32_vectors() -> None:
    """123.456 as float32 (IEEE 42 F6 E9 79) in the four layouts devices ship."""
    expected = {
        "ABCD": [17142, 59769],  # [0x42F6, 0xE979]
        "CDAB": [0xE979, 0x42F6],
        "BADC": [0xF642, 0x79E9],
        "DCBA": [0x79E9, 0xF642],
    }
    for layout, regs in expected.items():
        bo, wo = LAYOUTS[layout]
        assert encode_raw(123.456, DataType.FLOAT32, bo, wo) == regs, layout
        assert decode_raw(regs, DataType.FLOAT32, bo, wo) == pytest.approx(123.456, rel=1e-7)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(("dt", "fmt", "value"), CASES)
def test_every_type_and_layout_against_reference(
    dt: DataType, fmt: str, value: float, layout: str
) -> None:
    bo, wo = LAYOUTS[layout]
    regs = _reference(fmt, value, layout)
    if dt.registers == 1:  # word order has no effect on one register
        regs = _reference(fmt, value, {"CDAB": "ABCD", "DCBA": "BADC"}.get(layout, layout))
    got = decode_raw(regs, dt, bo, wo)
    want = struct.unpack(">" + fmt, struct.pack(">" + fmt, value))[0]  # float32 rounding
    assert got == want
    assert encode_raw(value, dt, bo, wo) == regs


def test_int16_raw_words() -> None:
    assert decode_raw([0xFFFF], DataType.INT16) == -1.0
    assert decode_raw([0xFFFF], DataType.UINT16) == 65535.0
    assert decode_raw([0x3412], DataType.UINT16, byte_order=L) == 0x1234


def test_bits_and_bools() -> None:
    assert decode_raw([0b1010_0000_0000_0100], DataType.BIT, bit=2) == 1.0
    assert decode_raw([0b1010_0000_0000_0100], DataType.BIT, bit=3) == 0.0
    assert decode_raw([0b1010_0000_0000_0100], DataType.BIT, bit=15) == 1.0
    # little byte order swaps the bytes first: bit 2 of the value is in the high byte on the wire
    assert decode_raw([0x0400], DataType.BIT, byte_order=L, bit=2) == 1.0
    assert decode_raw([1], DataType.BOOL) == 1.0
    assert decode_raw([0], DataType.BOOL) == 0.0


def _src(**kw: Any) -> ModbusSource:
    return ModbusSource(**{"table": "holding", "address": 0, **kw})


def test_scale_and_offset() -> None:
    s = _src(data_type="int16", scale=0.1, offset=-40.0)
    assert decode([650], s) == pytest.approx(25.0)
    assert encode(25.0, s) == [650]
    assert decode([65535], s) == pytest.approx(-40.1)  # -1 raw
    f = _src(data_type="float32", scale=1000.0)  # MW on the wire, kW in the model
    assert decode(encode(1.5e3, f), f) == pytest.approx(1.5e3)
    assert encode(1.5e3, f) == encode_raw(1.5, DataType.FLOAT32)


def test_integer_overflow_and_bad_lengths_raise() -> None:
    with pytest.raises(DecodeError):
        encode_raw(70000, DataType.INT16)
    with pytest.raises(DecodeError):
        encode_raw(-1, DataType.UINT32)
    with pytest.raises(DecodeError):
        decode_raw([1], DataType.FLOAT32)
    with pytest.raises(DecodeError):
        decode_raw([70000], DataType.UINT16)


def test_block_decoder_matches_scalar_decode() -> None:
    sources = [
        _src(address=0, data_type="float32", layout="CDAB"),
        _src(address=2, data_type="int16", scale=0.5, byte_order="little"),
        _src(address=3, data_type="bit", bit=4),
        _src(address=3, data_type="bit", bit=0),
        _src(address=4, data_type="float64", layout="DCBA"),
        _src(address=8, data_type="uint32", layout="BADC", offset=10),
        _src(address=10, data_type="int32"),
    ]
    values = [123.456, -7.5, 1, 0, -2.5e-5, 4000000000.0, -5]
    regs = [0] * 12
    for s, v in zip(sources, values, strict=True):
        words = encode(v, s)
        if s.data_type is DataType.BIT:
            regs[s.address] |= (1 << (s.bit or 0)) if v else 0
        else:
            regs[s.address : s.address + len(words)] = words
    block = BlockDecoder(0, sources).decode(np.array(regs, dtype=np.uint16))
    scalar = [decode(regs[s.address : s.address + s.register_count], s) for s in sources]
    assert block.tolist() == pytest.approx(scalar)
    assert block[0] == pytest.approx(123.456, rel=1e-7)


# ---- properties -----------------------------------------------------------------------------

LIMITS = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[DataType, Order, Order, float]:
    dt = draw(st.sampled_from([*LIMITS, DataType.FLOAT32, DataType.FLOAT64]))
    bo, wo = draw(st.sampled_from(list(LAYOUTS.values())))
    if dt in LIMITS:
        lo, hi = LIMITS[dt]
        v = float(draw(st.integers(lo, hi)))
    elif dt is DataType.FLOAT32:
        v = draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    else:
        v = draw(st.floats(allow_nan=False, allow_infinity=False))
    return dt, bo, wo, v


@given(typed_values())
def test_encode_then_decode_round_trips(case: tuple[DataType, Order, Order, float]) -> None:
    dt, bo, wo, v = case
    regs = encode_raw(v, dt, bo, wo)
    assert len(regs) == dt.registers and all(0 <= r <= 0xFFFF for r in regs)
    assert decode_raw(regs, dt, bo, wo) == v
    # the vectorised decoder agrees with the scalar one
    s = ModbusSource(table="holding", address=0, data_type=dt, byte_order=bo, word_order=wo)
    assert BlockDecoder(0, [s]).decode(regs)[0] == v


@given(st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4), st.sampled_from(list(LAYOUTS)))
def test_decode_then_encode_round_trips_registers(regs: list[int], layout: str) -> None:
    bo, wo = LAYOUTS[layout]
    for dt in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32, DataType.FLOAT64):
        words = regs[: dt.registers]
        assert encode_raw(decode_raw(words, dt, bo, wo), dt, bo, wo) == words
    f32 = regs[:2]
    v = decode_raw(f32, DataType.FLOAT32, bo, wo)
    if not math.isnan(v):  # NaN payloads are not preserved through a Python float
        assert encode_raw(v, DataType.FLOAT32, bo, wo) == f32


@given(st.integers(-30000, 30000), st.sampled_from([0.1, 0.01, 2.0]), st.floats(-100, 100))
def test_scaled_round_trip(raw: int, scale: float, offset: float) -> None:
    s = _src(data_type="int16", scale=scale, offset=offset)
    v = decode([raw & 0xFFFF], s)
    assert encode(v, s) == [raw & 0xFFFF]
