"""Writing points: encode with the codec's rules, write, read back, return both.

:class:`PointWriter` is the seam the guarded actuation tool uses
(``tools/actuation.py``): it knows nothing about limits or approval — those are
checked above it — only how to put one engineering value on the wire and read
what the device now holds.

* :class:`ModbusPointWriter` — over pymodbus, one connection per device (its own,
  separate from the pollers'), opened on first use and reopened after a drop.
* :class:`RecordingWriter` — records writes and applies nothing, for open-loop
  replay of recorded telemetry.

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
from connectors.site import DataType, DeviceKey, ModbusSource, Point, Site, Table


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
    async def write(self, tag: str, value: float) -> WriteResult: ...

    async def read(self, tag: str) -> float: ...


def quantise(value: float, src: ModbusSource) -> float:
    """The value the point's encoding can actually carry (e.g. 12.34 → 12.3 at scale 0.1)."""
    if src.table.is_bit_table or src.data_type is DataType.BIT:
        return 1.0 if value else 0.0
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
        src = point.source
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
        src = self._point(tag).source
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
    """Records writes and applies nothing (open-loop replay of recorded telemetry).

    ``values`` (a mapping or a ``tag -> value`` function, e.g. the replay's current
    row) answers :meth:`read`. With ``echo`` (the default) a write reads back the
    value written, as a device that accepted it would, so the actuation path runs
    end to end; with ``echo=False`` it reads back ``values`` — what the recording
    shows, untouched by the write. Every write is kept in :attr:`writes`.
    """

    def __init__(
        self,
        site: Site | None = None,
        clock: Clock | None = None,
        *,
        values: Mapping[str, float] | Callable[[str], float] | None = None,
        echo: bool = True,
    ) -> None:
        self.site = site
        self.clock = clock or SystemClock()
        self.values = values
        self.echo = echo
        self.writes: list[WriteResult] = []

    async def write(self, tag: str, value: float) -> WriteResult:
        written = float(value)
        if self.site is not None:
            point = self.site.point(tag)
            if not point.writable:
                raise WriteRejected(f"{tag} is not a writable point")
            written = quantise(value, point.source)
        read_back = written if self.echo else await self.read(tag)
        result = WriteResult(tag, float(value), written, read_back, self.clock.now())
        self.writes.append(result)
        return result

    async def read(self, tag: str) -> float:
        if self.values is None:
            for w in reversed(self.writes):
                if w.tag == tag:
                    return w.written
            raise DeviceError(f"{tag}: no recorded value")
        if callable(self.values):
            return float(self.values(tag))
        try:
            return float(self.values[tag])
        except KeyError:
            raise DeviceError(f"{tag}: no recorded value") from None
