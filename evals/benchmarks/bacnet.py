"""BACnet throughput: raw bacpypes3 ReadPropertyMultiple vs the connector into DuckDB.

A synthetic BACnet plant (default 400 analog inputs on 4 devices, one UDP port each;
:func:`twin.bacnet_map.synthetic_bacnet_site`) is served by ``python -m twin.bacnet_server``
in ANOTHER process. In one run, alternating phases of ``--seconds`` each:

* raw — one local bacpypes3 application, one task per device issuing the very
  ReadPropertyMultiple batches the connector plans (``max_properties`` present-values
  each), as fast as answers come; nothing converted, nothing stored;
* pipeline — :class:`connectors.ingest.Ingestor` with free-running BACnet pollers
  (read, convert, status stamping, Arrow batches into a real DuckDB file); its rate
  counts rows actually in the file.

Result: ``{"bench": "bacnet", "points", "devices", "raw_points_per_s",
"pipeline_points_per_s", "ratio", "target_ratio": 0.8, "ok"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from connectors.bacnet.client import (
    address,
    close,
    make_application,
    object_id,
    property_id,
    ready,
    request,
)
from connectors.ingest import Ingestor
from connectors.modbus import PollerConfig
from connectors.site import BacnetSource, Site, parse_site
from connectors.store import Store
from twin.bacnet_map import synthetic_bacnet_site

TARGET_RATIO = 0.8
MAX_PROPERTIES = 40  # the poller's default batch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", type=int, default=400, help="points served (default 400)")
    p.add_argument(
        "--devices", type=int, default=4, help="BACnet devices they are spread over (default 4)"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of one phase")
    p.add_argument("--rounds", type=int, default=2, help="raw/pipeline pairs")


def _free_udp_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _start_server(points: int, ports: list[int]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.bacnet_server", "--points", str(points),
         "--ports", ",".join(map(str, ports))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"BACnet server did not start: {line!r}")
    return proc


async def _raw_phase(site: Site, seconds: float) -> tuple[int, float]:
    app = make_application("127.0.0.1/8:0")
    await ready(app)
    until = time.perf_counter() + seconds

    async def device(pts: list[BacnetSource]) -> int:
        addr = address(pts[0].host, pts[0].port)
        batches = []
        for i in range(0, len(pts), MAX_PROPERTIES):
            params: list[Any] = []
            for s in pts[i : i + MAX_PROPERTIES]:
                params += [object_id(s.object), [property_id(s.property)]]
            batches.append((params, len(params) // 2))
        n = 0
        while time.perf_counter() < until:
            for params, k in batches:
                await request(app.read_property_multiple(addr, list(params)), 5.0, "raw")
                n += k
        return n

    groups = [
        [p.source for _, p in pts if isinstance(p.source, BacnetSource)]
        for pts in site.bacnet_devices().values()
    ]
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(device(g) for g in groups))
    dt = time.perf_counter() - t0
    await close(app)
    return sum(counts), dt


async def _pipeline_phase(site: Site, store: Store, seconds: float) -> tuple[int, float]:
    before = int(store.query("SELECT count(*) AS n FROM readings")["n"].iloc[0])
    ingest = Ingestor(site, store, config=PollerConfig(timeout_s=5.0), flush_interval_s=0.5)
    t0 = time.perf_counter()
    await ingest.run(duration=seconds)
    dt = time.perf_counter() - t0
    after = int(store.query("SELECT count(*) AS n FROM readings")["n"].iloc[0])
    return after - before, dt


def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = _free_udp_ports(args.devices)
    site = synthetic_bacnet_site(args.points, args.devices, ports=ports)
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["poll_interval_s"] = 1e-4  # free-running: the next poll as soon as one ends
    fast = parse_site(data, origin="<bench-bacnet>")
    server = _start_server(args.points, ports)
    raw_n = raw_t = pipe_n = pipe_t = 0.0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.duckdb")
            store.register_site(fast)

            async def measure() -> None:
                nonlocal raw_n, raw_t, pipe_n, pipe_t
                await _raw_phase(site, 0.5)  # warm-up: ARP-free loopback, but caches
                for _ in range(args.rounds):
                    n, t = await _raw_phase(site, args.seconds)
                    raw_n, raw_t = raw_n + n, raw_t + t
                    n, t = await _pipeline_phase(fast, store, args.seconds)
                    pipe_n, pipe_t = pipe_n + n, pipe_t + t

            asyncio.run(measure())
            store.close()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    raw = raw_n / raw_t if raw_t else 0.0
    pipe = pipe_n / pipe_t if pipe_t else 0.0
    ratio = pipe / raw if raw else 0.0
    return {
        "bench": "bacnet",
        "points": args.points,
        "devices": args.devices,
        "raw_points_per_s": round(raw, 1),
        "pipeline_points_per_s": round(pipe, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "ok": ratio >= TARGET_RATIO,
    }
