"""Ingest throughput: raw pymodbus block reads vs read + decode + store into DuckDB.

A synthetic site (default 10,000 holding-register points on 10 devices, a mix of
16/32-bit types in all byte/word orders) is served by :class:`twin.server.SiteServer`
in ANOTHER process. In one run, alternating phases of ``--seconds`` each:

* raw — one task and connection per device reading the very blocks the
  connector plans, as fast as it can; nothing decoded, nothing stored;
* pipeline — :class:`connectors.ingest.Ingestor` with free-running pollers
  (read, vectorised decode, status stamping, Arrow batches into a real DuckDB
  file); its rate counts rows actually in the file, final flush included.

Phases alternate (default 5 pairs of 2 s) so that both rates see the same
background load; on a shared 2-core box a single long pair is noisy.

What bounds the ratio (measured on the 2-core box): the poller's own request
path is at parity with the raw loop (0.95–1.01 with decode and store stubbed
out); in the raw phase the server process takes ≈0.72 µs of CPU a reading and
the client ≈0.63, i.e. both cores are nearly full. The gap is the extra CPU the
pipeline spends in the client process: stacked decode + Arrow batch
(≈0.07 µs a reading) and the DuckDB append (≈0.085 µs of CPU a row when a flush
is at least one 122,880-row group, ≈0.13 µs for 100,000-row flushes, which go
through the WAL). Pipeline rows are flushed in whole row groups for that
reason. DuckDB's ``threads`` setting, appending on the loop instead of a thread
and gc.freeze()/thresholds (GC is ≈1.5 % of a phase) made no measurable
difference.

Result: ``{"bench": "ingest", "points", "devices", "raw_points_per_s",
"pipeline_points_per_s", "ratio", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from connectors.blocks import Block
from connectors.ingest import DUCKDB_ROW_GROUP, Ingestor
from connectors.modbus import DevicePoller, PollerConfig
from connectors.site import DeviceKey, Site, Table
from connectors.store import Store
from twin.server import synthetic_site

TARGET_RATIO = 0.8
TARGET_RATE = 100_000.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--devices", type=int, default=10)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each phase")
    p.add_argument("--rounds", type=int, default=5, help="raw/pipeline phase pairs (alternated)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: a temp file)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(points: int, devices: int, port: int) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "twin.server", "--synthetic-points", str(points),
        "--devices", str(devices), "--port", str(port), "--stdin-eof-stops",
    ]  # fmt: skip
    # the server stops when our end of its stdin closes, even if this process is killed
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until READY (or the process dies)
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"synthetic server did not start (exit {proc.poll()}): {line!r}")
    return proc


async def _raw_device(key: DeviceKey, blocks: list[Block], until: float) -> int:
    client = AsyncModbusTcpClient(key.host, port=key.port, timeout=2.0, retries=0)
    if not await client.connect():
        raise RuntimeError(f"cannot connect to {key}")
    points = 0
    try:
        while time.monotonic() < until:
            for b in blocks:
                if b.table is Table.HOLDING:
                    rr = await client.read_holding_registers(
                        b.start, count=b.count, device_id=key.device_id
                    )
                else:
                    rr = await client.read_input_registers(
                        b.start, count=b.count, device_id=key.device_id
                    )
                if rr.isError():
                    raise RuntimeError(f"{key}: {rr}")
                points += len(b)
    finally:
        client.close()
    return points


async def _raw_phase(site: Site, seconds: float) -> tuple[int, float]:
    plans = {
        key: DevicePoller(key, pts, site.point_ids, lambda *a: None).blocks
        for key, pts in site.devices().items()
    }
    t0 = time.monotonic()
    counts = await asyncio.gather(*(_raw_device(k, b, t0 + seconds) for k, b in plans.items()))
    return sum(counts), time.monotonic() - t0


async def _pipeline_phase(site: Site, store: Store, seconds: float) -> tuple[int, float]:
    ingestor = Ingestor(
        site,
        store,
        config=PollerConfig(timeout_s=2.0),
        flush_rows=2 * DUCKDB_ROW_GROUP,  # whole row groups: written straight to the file
        flush_interval_s=0.5,
    )
    t0 = time.monotonic()
    await ingestor.run(duration=seconds)
    elapsed = time.monotonic() - t0
    st = ingestor.stats()
    if st.good != st.readings:
        raise RuntimeError(f"pipeline produced {st.readings - st.good} bad readings")
    return ingestor.rows_stored, elapsed


async def _measure(site: Site, store: Store, seconds: float, rounds: int) -> dict[str, float]:
    await _raw_phase(site, 0.5)  # warm up the server and the connections
    raw_n = raw_t = pipe_n = pipe_t = 0.0
    for _ in range(rounds):
        n, t = await _raw_phase(site, seconds)
        raw_n, raw_t = raw_n + n, raw_t + t
        n2, t2 = await _pipeline_phase(site, store, seconds)
        pipe_n, pipe_t = pipe_n + n2, pipe_t + t2
    return {"raw": raw_n / raw_t, "pipeline": pipe_n / pipe_t, "rows": pipe_n}


def run(args: argparse.Namespace) -> dict[str, Any]:
    port = args.port or _free_port()
    # near-zero interval = free-running pollers: the benchmark measures throughput
    site = synthetic_site(args.points, args.devices, port, poll_interval_s=1e-6)
    proc = _start_server(args.points, args.devices, port)
    tmp = None
    try:
        if args.db is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench-ingest-")
            db = Path(tmp.name) / "bench.duckdb"
        else:
            db = args.db
        with Store(db) as store:
            res = asyncio.run(_measure(site, store, args.seconds, args.rounds))
            stored = store.row_count()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if tmp is not None:
            tmp.cleanup()
    ratio = res["pipeline"] / res["raw"] if res["raw"] else 0.0
    return {
        "bench": "ingest",
        "points": args.points,
        "devices": args.devices,
        "raw_points_per_s": round(res["raw"]),
        "pipeline_points_per_s": round(res["pipeline"]),
        "ratio": round(ratio, 3),
        "rows_stored": stored,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "ok": ratio >= TARGET_RATIO and res["pipeline"] >= TARGET_RATE,
    }
