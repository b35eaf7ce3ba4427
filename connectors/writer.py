"""Writing points: encode with the codec's rules, write, read back, return both.

:class:`PointWriter` is the seam the guarded actuation tool uses
(``tools/actuation.py``): it knows nothing about limits or approval — those are
checked above it — only how to put one engineering value on the wire and read
what the device now holds.

* :class:`ModbusPointWriter` — over pymodbus, one connection per device (its own,
  separate from the pollers'), opened on first use and reopened after a drop.
* :class:`connectors.site_writer.SiteWriter` — routes each point to the writer of its
  protocol: Modbus here, BACnet in :class:`connectors.bacnet.writer.BacnetPointWriter`
  (priority array, relinquish, operator-override detection).
* :class:`RecordingWriter` — behaves like the plant's registers (rounds to the
  register's resolution, refuses read-only points) and records every write; applies
  nothing by itself (open-loop replay, tests) or hands each write to a plant
  (``apply=twin.write``: the eval's closed loop).

Failures raise the :class:`~connectors.errors.DeviceError` family
(``DeviceTimeout``, ``DeviceUnreachable``, ``ModbusExceptionResponse``,
``DecodeError``); a point that may not be written raises ``WriteRejected``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from connectors.clock import Clock, SystemClock
from connectors.codec import decode, encode, wire_bit
from connectors.errors import (
    DecodeError,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    ModbusExceptionResponse,
    WriteRejected,
)
from connectors.site import BacnetSource, DataType, DeviceKey, ModbusSource, Point, Site, Table


@dataclass(frozen=True)
class WriteResult:
    """One write: what was asked, what went on the wire, and what the device holds after."""

    tag: str
    requested: float
    written: float  # the requested value as the point's encoding represents it
    read_back: float  # a fresh read after the write
    ts: datetime

    @property
    def verified(self) -> bool:
        """The device holds what was written (NaN never verifies)."""
        return math.isclose(self.read_back, self.written, rel_tol=1e-9, abs_tol=1e-9)


class PointWriter(Protocol):
    """What the guarded actuator (``tools/actuation.py``) writes through.

    ``write`` puts one engineering value on a point and returns what was asked, what the
    point's encoding carries and what a fresh read shows; ``read`` is one fresh read;
    ``close`` releases connections. Failures raise the DeviceError family, a point that
    may not be written ``WriteRejected``.
    """

    async def write(self, tag: str, value: float) -> WriteResult: ...

    async def read(self, tag: str) -> float: ...

    async def close(self) -> None: ...


def quantise(value: float, src: ModbusSource | BacnetSource) -> float:
    """The value the point's encoding can actually carry (e.g. 12.34 → 12.3 at scale 0.1;
    a BACnet REAL rounds to float32)."""
    if src.table.is_bit_table or src.data_type is DataType.BIT:
        return 1.0 if value else 0.0
    if isinstance(src, BacnetSource):
        if src.data_type is DataType.FLOAT32:
            return float(np.float32(value))
        return float(round(value))
    try:
        return decode(encode(value, src), src)
    except (ValueError, OverflowError) as err:
        raise DecodeError(f"{value} cannot be encoded as {src.data_type.value}: {err}") from err


class ModbusPointWriter:
    """Writes points of a site over Modbus TCP and reads them back."""

    def __init__(self, site: Site, *, timeout_s: float = 2.0, clock: Clock | None = None) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.clock = clock or SystemClock()
        self._clients: dict[DeviceKey, AsyncModbusTcpClient] = {}
        self._locks: dict[DeviceKey, asyncio.Lock] = {}

    async def write(self, tag: str, value: float) -> WriteResult:
        """Encode ``value`` for ``tag``, write it, read it back. Raises on any failure."""
        point = self._point(tag)
        if not point.writable or not point.source.table.writable:
            raise WriteRejected(f"{tag} is not a writable point")
        if not math.isfinite(value):
            raise WriteRejected(f"{tag}: refusing to write non-finite value {value}")
        src = point.modbus
        try:
            written = quantise(value, src)
        except DecodeError as err:  # e.g. 5000.0 into an int16 at scale 0.1
            raise WriteRejected(f"{tag}: {err}") from err
        key = src.device_key
        async with self._lock(key):
            client = await self._client(key)
            if src.table is Table.COIL:
                rr = await self._call(
                    key, client.write_coil(src.address, bool(value), device_id=key.device_id)
                )
            elif src.data_type is DataType.BIT:  # read-modify-write of one register bit
                cur = await self._call(
                    key,
                    client.read_holding_registers(src.address, count=1, device_id=key.device_id),
                )
                word = int(cur.registers[0])
                bit = 1 << wire_bit(src)
                word = (word | bit) if value else (word & ~bit)
                rr = await self._call(
                    key, client.write_register(src.address, word, device_id=key.device_id)
                )
            else:
                regs = encode(value, src)
                if len(regs) == 1:
                    rr = await self._call(
                        key, client.write_register(src.address, regs[0], device_id=key.device_id)
                    )
                else:
                    rr = await self._call(
                        key, client.write_registers(src.address, regs, device_id=key.device_id)
                    )
            del rr
            read_back = await self._read_locked(key, src)
        return WriteResult(tag, float(value), written, read_back, self.clock.now())

    async def read(self, tag: str) -> float:
        """One fresh read of one point."""
        src = self._point(tag).modbus
        key = src.device_key
        async with self._lock(key):
            return await self._read_locked(key, src)

    async def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    # ---- internals -----------------------------------------------------------
    def _point(self, tag: str) -> Point:
        try:
            return self.site.point(tag)
        except KeyError as err:
            raise WriteRejected(str(err)) from None

    def _lock(self, key: DeviceKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _client(self, key: DeviceKey) -> AsyncModbusTcpClient:
        client = self._clients.get(key)
        if client is not None and client.connected:
            return client
        if client is not None:
            client.close()
        client = AsyncModbusTcpClient(
            key.host, port=key.port, timeout=self.timeout_s, retries=0,
            reconnect_delay=0, reconnect_delay_max=0,
        )  # fmt: skip
        if not await client.connect():
            client.close()
            raise DeviceUnreachable(f"{key}: cannot connect")
        self._clients[key] = client
        return client

    async def _call(self, key: DeviceKey, request: object) -> ModbusPDU:
        try:
            rr: ModbusPDU = await request  # type: ignore[misc]
        except ConnectionException as err:
            self._drop(key)
            raise DeviceUnreachable(f"{key}: {err}") from err
        except (TimeoutError, ModbusException, OSError) as err:
            lost = not (self._clients.get(key) and self._clients[key].connected)
            self._drop(key)
            cls = DeviceUnreachable if lost else DeviceTimeout
            raise cls(f"{key}: {err}") from err
        if rr.isError():
            code = int(getattr(rr, "exception_code", 4) or 4)
            raise ModbusExceptionResponse(code, f"{key}: Modbus exception code {code}")
        return rr

    def _drop(self, key: DeviceKey) -> None:
        client = self._clients.pop(key, None)
        if client is not None:
            client.close()

    async def _read_locked(self, key: DeviceKey, src: ModbusSource) -> float:
        client = await self._client(key)
        dev = key.device_id
        n = src.register_count
        if src.table is Table.COIL:
            rr = await self._call(key, client.read_coils(src.address, count=1, device_id=dev))
            return 1.0 if rr.bits[0] else 0.0
        if src.table is Table.DISCRETE:
            rr = await self._call(
                key, client.read_discrete_inputs(src.address, count=1, device_id=dev)
            )
            return 1.0 if rr.bits[0] else 0.0
        if src.table is Table.HOLDING:
            rr = await self._call(
                key, client.read_holding_registers(src.address, count=n, device_id=dev)
            )
        else:
            rr = await self._call(
                key, client.read_input_registers(src.address, count=n, device_id=dev)
            )
        if len(rr.registers) != n:
            raise DecodeError(
                f"{key}: expected {n} registers at {src.address}, got {len(rr.registers)}"
            )
        return decode(rr.registers, src)


class RecordingWriter:
    """Behaves like the plant's registers, applies nothing by itself, records every write.

    Like :class:`ModbusPointWriter`, a write is refused (``WriteRejected``) for an
    unknown or read-only point or a non-finite value, and rounded to what the point's
    register can hold (:func:`quantise`). The rounded value goes to ``apply`` when one
    is given — composing the recorder with a plant, e.g. ``apply=twin.write`` — and
    every write is kept in :attr:`writes` (:meth:`frame` as a table).

    Reads: ``values`` (a mapping or a ``tag -> value`` function, e.g. the replay's
    current row or the twin's served values) answers :meth:`read`. With ``echo`` (the
    default) the recorder stands in for the device: a written point reads back what
    was written, as a holding register keeps it; with ``echo=False`` every read comes
    from ``values`` — the plant after ``apply``, or a recording untouched by the write.
    """

    def __init__(
        self,
        site: Site,
        clock: Clock | None = None,
        *,
        values: Mapping[str, float] | Callable[[str], float] | None = None,
        echo: bool = True,
        apply: Callable[[str, float], None] | None = None,
    ) -> None:
        self.site = site
        self.clock = clock or SystemClock()
        self.values = values
        self.echo = echo
        self.apply = apply
        self.writes: list[WriteResult] = []
        self._held: dict[str, float] = {}

    async def write(self, tag: str, value: float) -> WriteResult:
        try:
            point = self.site.point(tag)
        except KeyError as err:
            raise WriteRejected(str(err)) from None
        if not point.writable or not point.source.table.writable:
            raise WriteRejected(f"{tag} is not a writable point")
        if not math.isfinite(value):
            raise WriteRejected(f"{tag}: refusing to write non-finite value {value}")
        try:
            written = quantise(value, point.source)
        except DecodeError as err:
            raise WriteRejected(f"{tag}: {err}") from err
        if self.apply is not None:
            self.apply(tag, written)
        self._held[tag] = written
        read_back = await self.read(tag)
        result = WriteResult(tag, float(value), written, read_back, self.clock.now())
        self.writes.append(result)
        return result

    async def read(self, tag: str) -> float:
        if self.echo and tag in self._held:
            return self._held[tag]
        if self.values is None:
            raise DeviceError(f"{tag}: no recorded value")
        if callable(self.values):
            return float(self.values(tag))
        try:
            return float(self.values[tag])
        except KeyError:
            raise DeviceError(f"{tag}: no recorded value") from None

    async def close(self) -> None:
        """Nothing to release (the protocol's close)."""

    def frame(self) -> pd.DataFrame:
        """Every write: ``ts, tag, requested, written, read_back``."""
        return pd.DataFrame(
            [(w.ts, w.tag, w.requested, w.written, w.read_back) for w in self.writes],
            columns=["ts", "tag", "requested", "written", "read_back"],
        )
