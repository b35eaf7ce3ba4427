"""Serve a :class:`~connectors.site.Site`'s register images over Modbus TCP.

:class:`SiteServer` runs one pymodbus TCP server per ``(host, port)`` of the
site, with every Modbus device id of that port inside it. It keeps its own
register image per (device, table) — the values the twin sets with
:meth:`SiteServer.set` are encoded with :mod:`connectors.codec`, exactly the
rules the connector decodes with — and copies the requested slice into the
pymodbus datastore on each request. Client writes land in the image and are
reported, decoded, to :meth:`SiteServer.on_write` callbacks.

Built on the current pymodbus server API (``SimDevice``/``SimData`` with an
``action`` hook; the classic ``ModbusServerContext`` datastore is deprecated in
pymodbus 3.16). Each table serves the contiguous address span from its lowest
to its highest configured point; reading outside it gives Modbus exception 2
(illegal data address), as a real device does. :meth:`SiteServer.set_device_offline`
makes one device answer every request with exception 11 (gateway target failed
to respond), the way a dead serial device behind a TCP gateway looks;
:meth:`SiteServer.stop_port` drops a whole port (connections refused).

``set``/``get`` are plain in-memory operations meant to be called from the
event loop that runs the server (or while it is stopped).

Usage::

    server = SiteServer(site)
    await server.start()
    server.set("chiller_1.chw_supply_temp", 6.7)
    server.on_write(lambda tag, value: print(tag, value))
    ...
    await server.stop()

Run it in another process (the ingest benchmark does)::

    python -m twin.server --synthetic-points 10000 --devices 10 --port 5020
    python -m twin.server --site twin/site.yaml [--port P]   # values start at 0

It prints ``READY …`` on stdout once listening and stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from connectors.codec import decode, encode, wire_bit
from connectors.config import yaml_load
from connectors.errors import FacilityError
from connectors.site import DataType, ModbusSource, Point, Site, Table, load_site, parse_site
from twin import default_site_path

log = logging.getLogger(__name__)

WriteCallback = Callable[[str, float], None]

# function code → table it addresses
_FC_TABLE = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
_TABLES = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)  # SimDevice tuple order
_PLACEHOLDER_BIT = 65520  # where an empty bit table's (unused) placeholder lives


@dataclass
class _Image:
    """One table of one device: its registers as the device would hold them.

    Register tables: ``regs[i]`` is register ``base + i``. Bit tables use the
    pymodbus packing: bit ``a`` lives in ``regs[a // 16 - base]`` at bit ``a % 16``.
    """

    table: Table
    base: int
    regs: list[int]
    points: list[tuple[str, ModbusSource]] = field(default_factory=list)

    def locate(self, src: ModbusSource) -> int:
        if self.table.is_bit_table:
            return src.address // 16 - self.base
        return src.address - self.base

    def read(self, src: ModbusSource) -> float:
        i = self.locate(src)
        if self.table.is_bit_table:
            return float((self.regs[i] >> (src.address % 16)) & 1)
        return decode(self.regs[i : i + src.register_count], src)

    def write(self, src: ModbusSource, value: float) -> None:
        i = self.locate(src)
        if self.table.is_bit_table or src.data_type is DataType.BIT:
            mask = 1 << (src.address % 16 if self.table.is_bit_table else wire_bit(src))
            self.regs[i] = (self.regs[i] | mask) if value else (self.regs[i] & ~mask)
            return
        words = encode(value, src)
        self.regs[i : i + len(words)] = words


def _build_image(table: Table, points: list[tuple[str, ModbusSource]]) -> tuple[_Image, SimData]:
    """The image of one table and the SimData that makes pymodbus serve its span."""
    if not points:
        if table.is_bit_table:
            sim = SimData(_PLACEHOLDER_BIT, values=[False] * 16, datatype=SimType.BITS)
            return _Image(table, _PLACEHOLDER_BIT // 16, [0]), sim
        return _Image(table, 0, [0]), SimData(0, count=1, datatype=SimType.INVALID)
    lo = min(s.address for _, s in points)
    hi = max(s.address + s.register_count for _, s in points)  # exclusive
    if table.is_bit_table:
        lo16 = lo - lo % 16
        nbits = math.ceil((hi - lo16) / 16) * 16
        sim = SimData(lo16, values=[False] * nbits, datatype=SimType.BITS)
        return _Image(table, lo16 // 16, [0] * (nbits // 16), list(points)), sim
    sim = SimData(lo, count=hi - lo, values=0, datatype=SimType.REGISTERS)
    return _Image(table, lo, [0] * (hi - lo), list(points)), sim


class _Device:
    """One Modbus device id: four table images and the pymodbus action hook."""

    def __init__(
        self, device_id: int, points: Sequence[tuple[str, Point]], owner: SiteServer
    ) -> None:
        self.device_id = device_id
        self.owner = owner
        self.offline = False
        self.delay_s = 0.0
        by_table: dict[Table, list[tuple[str, ModbusSource]]] = {t: [] for t in _TABLES}
        for tag, p in points:
            by_table[p.modbus.table].append((tag, p.modbus))
        self.images: dict[Table, _Image] = {}
        sims: list[list[SimData]] = []
        for t in _TABLES:
            image, sim = _build_image(t, by_table[t])
            self.images[t] = image
            sims.append([sim])
        self._sims = sims

    def sim_device(self) -> SimDevice:
        return SimDevice(
            self.device_id,
            simdata=(self._sims[0], self._sims[1], self._sims[2], self._sims[3]),
            action=self.action,
        )

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus hook, called with the datastore's registers before every access."""
        if self.delay_s > 0:  # a slow device: answers, but late
            await asyncio.sleep(self.delay_s)
        if self.offline:
            return ExcCodes.GATEWAY_NO_RESPONSE
        table = _FC_TABLE.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        image = self.images[table]
        off = address // 16 - start_address if table.is_bit_table else address - start_address
        if set_values:
            self._apply_write(image, address, set_values)
        # serve from our image (the datastore copy is refreshed on every access)
        current_registers[off : off + count] = image.regs[off : off + count]
        return None

    def _apply_write(self, image: _Image, address: int, values: list[int] | list[bool]) -> None:
        n = len(values)
        touched = [
            (tag, src)
            for tag, src in image.points
            if src.address < address + n and address < src.address + src.register_count
        ]
        # a register write covers every bit point of that register: report only changed bits
        before = {tag: image.read(src) for tag, src in touched if src.data_type is DataType.BIT}
        if image.table.is_bit_table:
            for k, v in enumerate(values):
                a = address + k
                i, mask = a // 16 - image.base, 1 << (a % 16)
                image.regs[i] = (image.regs[i] | mask) if v else (image.regs[i] & ~mask)
        else:
            i = address - image.base
            image.regs[i : i + n] = [int(v) for v in values]
        for tag, src in touched:
            value = image.read(src)
            if before.get(tag, math.nan) != value:
                self.owner._written(tag, value)


class SiteServer:
    """Serves a site's points over Modbus TCP: one pymodbus server per (host, port).

    Values are engineering values (the point's scale/offset and layout are
    applied on :meth:`set`, undone on :meth:`get`). :meth:`set` works before
    :meth:`start`, and the image survives :meth:`stop_port`/:meth:`start_port`,
    so a restarted "device" comes back with the values it had.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._callbacks: list[WriteCallback] = []
        self._devices: dict[tuple[str, int, int], _Device] = {}
        self._tags: dict[str, tuple[_Image, ModbusSource]] = {}
        ports: dict[tuple[str, int], list[int]] = {}
        for key, points in site.devices().items():
            dev = _Device(key.device_id, points, self)
            self._devices[(key.host, key.port, key.device_id)] = dev
            ports.setdefault((key.host, key.port), []).append(key.device_id)
            for tag, p in points:
                self._tags[tag] = (dev.images[p.modbus.table], p.modbus)
        self._ports = ports
        self._servers: dict[int, ModbusTcpServer] = {}

    # ---- lifecycle -----------------------------------------------------------
    @property
    def ports(self) -> list[int]:
        return sorted({port for _, port in self._ports})

    async def start(self) -> None:
        """Start listening on every (host, port) of the site."""
        for port in self.ports:
            await self.start_port(port)

    async def stop(self) -> None:
        for port in list(self._servers):
            await self.stop_port(port)

    async def start_port(self, port: int) -> None:
        """Start (or revive) the server on ``port``; a no-op when it is running."""
        if port in self._servers:
            return
        hosts = [h for h, p in self._ports if p == port]
        if not hosts:
            raise KeyError(f"the site has no device on port {port}")
        host = hosts[0]
        devices = [self._devices[(host, port, d)].sim_device() for d in self._ports[(host, port)]]
        server = ModbusTcpServer(devices, address=(host, port))
        await server.serve_forever(background=True)
        self._servers[port] = server
        log.debug("serving %d device(s) on %s:%d", len(devices), host, port)

    async def stop_port(self, port: int) -> None:
        """Stop the server on ``port``, dropping its client connections (a dead device)."""
        server = self._servers.pop(port, None)
        if server is not None:
            await server.shutdown()

    async def __aenter__(self) -> SiteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- values --------------------------------------------------------------
    def _entry(self, tag: str) -> tuple[_Image, ModbusSource]:
        try:
            return self._tags[tag]
        except KeyError:
            raise KeyError(f"unknown point {tag!r}") from None

    def set(self, tag: str, value: float) -> None:
        """Put an engineering value into the register image (encoded with connectors.codec)."""
        image, src = self._entry(tag)
        image.write(src, value)

    def set_many(self, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.set(tag, value)

    def get(self, tag: str) -> float:
        """Decode the current image of ``tag`` (sees client writes)."""
        image, src = self._entry(tag)
        return image.read(src)

    def registers(self, tag: str) -> list[int]:
        """The raw registers (or the bit, as 0/1) currently served for ``tag``."""
        image, src = self._entry(tag)
        i = image.locate(src)
        if image.table.is_bit_table:
            return [(image.regs[i] >> (src.address % 16)) & 1]
        return image.regs[i : i + src.register_count]

    def on_write(self, cb: WriteCallback) -> None:
        """Call ``cb(tag, value)`` whenever a Modbus client writes a point."""
        self._callbacks.append(cb)

    def set_device_offline(
        self, device_id: int, offline: bool = True, port: int | None = None
    ) -> None:
        """Make one device stop answering, as a serial device behind a gateway does:
        every request to it gets Modbus exception 11 (gateway target failed to respond)
        until it is set back online. ``port`` narrows it when ids repeat across ports."""
        for dev in self._select(device_id, port):
            dev.offline = offline

    def set_device_delay(self, device_id: int, delay_s: float, port: int | None = None) -> None:
        """Make one device answer every request ``delay_s`` seconds late (0 = prompt)."""
        for dev in self._select(device_id, port):
            dev.delay_s = max(0.0, delay_s)

    def _select(self, device_id: int, port: int | None) -> list[_Device]:
        found = [
            dev
            for (_, p, d), dev in self._devices.items()
            if d == device_id and (port is None or p == port)
        ]
        if not found:
            raise KeyError(f"no device {device_id} on {'any port' if port is None else port}")
        return found

    def _written(self, tag: str, value: float) -> None:
        for cb in self._callbacks:
            try:
                cb(tag, value)
            except Exception:  # a callback's bug must not kill the Modbus server
                log.exception("on_write callback failed for %s", tag)


# --------------------------------------------------------------------------- synthetic sites

_SYNTH_TYPES = (
    ("uint16", "big", "big"),
    ("int16", "little", "big"),
    ("float32", "big", "big"),
    ("float32", "big", "little"),
    ("int32", "little", "little"),
    ("uint16", "big", "big"),
    ("int16", "big", "big"),
    ("uint32", "little", "big"),
)


def synthetic_site(
    points: int = 10_000,
    devices: int = 10,
    port: int = 5020,
    host: str = "127.0.0.1",
    poll_interval_s: float = 1.0,
) -> Site:
    """A deterministic site of ``points`` holding-register points spread over ``devices``.

    Each device has one equipment entry, device id 1…N on one port, and a mix of
    16- and 32-bit types in all byte/word orders laid out back to back from
    address 0 (so block reads coalesce). Same arguments → same site, which is
    how the benchmark's client and its server process agree on the map.
    """
    per = [points // devices + (1 if i < points % devices else 0) for i in range(devices)]
    equipment: list[dict[str, Any]] = []
    for d, n in enumerate(per):
        addr = 0
        pts: list[dict[str, Any]] = []
        for i in range(n):
            dt, bo, wo = _SYNTH_TYPES[i % len(_SYNTH_TYPES)]
            src = {
                "host": host, "port": port, "device_id": d + 1, "table": "holding",
                "address": addr, "data_type": dt, "byte_order": bo, "word_order": wo,
            }  # fmt: skip
            if dt in ("int16", "uint16"):
                src["scale"] = 0.1
            pts.append(
                {
                    "name": f"p{i:05d}",
                    "unit": "1",
                    "poll_interval_s": poll_interval_s,
                    "source": src,
                }
            )
            addr += 2 if dt.endswith("32") else 1
        equipment.append({"id": f"dev{d + 1:02d}", "kind": "other", "points": pts})
    return parse_site({"name": "synthetic", "equipment": equipment}, origin="<synthetic>")


def synthetic_value(point: Point, i: int) -> float:
    """A deterministic value the point's type holds exactly (after its scale)."""
    v = float((i * 37) % 1000)
    dt = point.source.data_type.value
    if dt.startswith("float"):
        return v / 4.0  # exact in float32
    return v * point.source.scale + point.source.offset  # what the device's raw integer v means


def fill_synthetic(server: SiteServer) -> dict[str, float]:
    """Set every point of a synthetic site to its :func:`synthetic_value`; returns them."""
    values = {
        tag: synthetic_value(server.site.points_by_tag[tag][1], i)
        for i, tag in enumerate(server.site.point_ids)
    }
    server.set_many(values)
    return values


# --------------------------------------------------------------------------- another process


async def _serve(site: Site, synthetic: bool, stdin_eof_stops: bool = False) -> None:
    server = SiteServer(site)
    if synthetic:
        fill_synthetic(server)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if stdin_eof_stops:  # the parent holds our stdin: when it dies, we stop too

        def _on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                stop.set()

        loop.add_reader(sys.stdin.fileno(), _on_stdin)
    n = len(site.point_ids)
    print(f"READY {n} points on ports {','.join(map(str, server.ports))}", flush=True)
    await stop.wait()
    await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m twin.server", description=__doc__.splitlines()[0])
    p.add_argument("--site", type=Path, help="serve this site file (all values start at 0)")
    p.add_argument("--synthetic-points", type=int, default=0, help="serve a synthetic site")
    p.add_argument("--devices", type=int, default=10, help="devices of the synthetic site")
    p.add_argument(
        "--port", type=int, default=None,
        help="port (synthetic site: default 5020; a site file: moves every point to it)",
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--stdin-eof-stops", action="store_true",
        help="stop when stdin closes (a parent process holds it; used by the benchmark)",
    )  # fmt: skip
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        site = _site_from_args(args)
    except (FacilityError, OSError, yaml.YAMLError) as err:
        print(f"twin.server: error: {err}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(site, bool(args.synthetic_points), args.stdin_eof_stops))
    return 0


def _site_from_args(args: argparse.Namespace) -> Site:
    if args.synthetic_points:
        return synthetic_site(args.synthetic_points, args.devices, args.port or 5020, args.host)
    path: Path = args.site or default_site_path()
    if args.port is None:
        return load_site(path)
    data = yaml_load(path.read_text())
    for eq in data.get("equipment", []):
        for pt in eq.get("points", []):
            pt.setdefault("source", {})["port"] = args.port
    return parse_site(data, origin=path.name)


if __name__ == "__main__":
    sys.exit(main())
