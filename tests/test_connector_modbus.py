"""The Modbus connector against a real SiteServer on loopback, into a real DuckDB store."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from conftest import free_port, wait_until

from connectors.blocks import MAX_BITS, MAX_REGISTERS, plan_blocks, split
from connectors.clock import ManualClock
from connectors.errors import (
    DeviceUnreachable,
    ModbusExceptionResponse,
    StoreError,
    WriteRejected,
)
from connectors.ingest import Ingestor
from connectors.modbus import DevicePoller, PollerConfig
from connectors.site import ModbusSource, Site, parse_site
from connectors.status import Status
from connectors.store import Store
from connectors.writer import ModbusPointWriter, RecordingWriter
from twin.server import SiteServer

T = TypeVar("T")
FAST = PollerConfig(timeout_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2)
LAYOUTS = ["ABCD", "CDAB", "BADC", "DCBA"]
TYPES = ["int16", "uint16", "int32", "uint32", "float32", "float64"]


class LoopThread:
    """An asyncio loop in a background thread: servers and pollers run there while the
    test thread waits on observable state with wait_until."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    t = LoopThread()
    yield t
    t.close()


def _src(
    port: int, dev: int, table: str, address: int, data_type: str, **kw: Any
) -> dict[str, Any]:
    return {"port": port, "device_id": dev, "table": table, "address": address,
            "data_type": data_type, **kw}  # fmt: skip


def latest_into(got: dict[int, tuple[float, int]]) -> Any:
    """A reading sink that keeps the newest (value, status) of each point id in ``got``."""

    def sink(ts: Any, ids: Any, values: Any, status: Any) -> None:
        for i, v, s in zip(ids.tolist(), values.tolist(), status.tolist(), strict=True):
            got[i] = (v, s)

    return sink


def every_type_site(port: int, interval: float = 0.05) -> Site:
    """Every data type × layout on holding and input registers, plus bits, bools and scaling."""
    pts: list[dict[str, Any]] = []
    for table in ("holding", "input"):
        addr = 0
        for dt in TYPES:
            for layout in LAYOUTS:
                pts.append({"name": f"{table}_{dt}_{layout}", "unit": "1",
                            "source": _src(port, 1, table, addr, dt, layout=layout)})  # fmt: skip
                addr += {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}.get(dt, 4)
    pts += [
        {"name": "scaled", "unit": "degC",
         "source": _src(port, 1, "holding", 100, "int16", scale=0.1, offset=-40)},
        {"name": "bit0", "unit": "bool", "source": _src(port, 1, "holding", 101, "bit", bit=0)},
        {"name": "bit9", "unit": "bool", "source": _src(port, 1, "holding", 101, "bit", bit=9)},
        {"name": "coil3", "unit": "bool", "source": _src(port, 2, "coil", 3, "bool")},
        {"name": "coil40", "unit": "bool", "source": _src(port, 2, "coil", 40, "bool")},
        {"name": "di7", "unit": "bool", "source": _src(port, 2, "discrete", 7, "bool")},
    ]  # fmt: skip
    for p in pts:
        p["poll_interval_s"] = interval
    return parse_site({"name": "t", "equipment": [{"id": "eq", "kind": "other", "points": pts}]})


def served_values(site: Site) -> dict[str, float]:
    vals: dict[str, float] = {}
    for i, tag in enumerate(site.point_ids):
        src = site.point(tag).source
        dt = src.data_type.value
        if dt in ("bool", "bit"):
            vals[tag] = float(i % 2 == 0)
        elif dt == "uint16":
            vals[tag] = 40000.0 + i
        elif dt == "int16":
            vals[tag] = -1234.0 - i if src.scale == 1 else 21.5
        elif dt == "uint32":
            vals[tag] = 3_000_000_000.0 + i
        elif dt == "int32":
            vals[tag] = -2_000_000_000.0 + i
        elif dt == "float32":
            vals[tag] = 123.456 + i
        else:
            vals[tag] = -98765.4321e10 - i
    return vals


# ---- block planning (pure) --------------------------------------------------------------------


def _pts(
    addresses: list[int], table: str = "holding", data_type: str = "uint16"
) -> list[tuple[str, ModbusSource]]:
    return [(f"p{a}", ModbusSource(table=table, address=a, data_type=data_type)) for a in addresses]


def test_blocks_merge_small_gaps_and_respect_limits() -> None:
    blocks = plan_blocks(_pts([0, 1, 2, 10, 30, 31]), max_gap=8)
    assert [(b.start, b.count) for b in blocks] == [(0, 11), (30, 2)]
    assert blocks[0].tags == ("p0", "p1", "p2", "p10")
    assert [(b.start, b.count) for b in plan_blocks(_pts([0, 1, 2, 10]), max_gap=0)] == [
        (0, 3),
        (10, 1),
    ]
    many = plan_blocks(_pts(list(range(0, 600, 2)), data_type="float32"))
    assert all(b.count <= MAX_REGISTERS for b in many)
    assert sum(len(b) for b in many) == 300 and len(many) == 5
    bits = plan_blocks(_pts(list(range(0, 5000, 3)), table="coil", data_type="bool"))
    assert all(b.count <= MAX_BITS for b in bits) and sum(len(b) for b in bits) == 1667
    assert [len(b) for b in split(blocks[0])] == [1, 1, 1, 1]


def test_blocks_keep_tables_apart_and_refuse_mixed_devices() -> None:
    mixed = _pts([0, 1]) + _pts([2, 3], table="input")
    assert {(b.table.value, b.start) for b in plan_blocks(mixed)} == {("holding", 0), ("input", 2)}
    other = [("x", ModbusSource(table="holding", address=5, device_id=9))]
    with pytest.raises(ValueError, match="several devices"):
        plan_blocks(_pts([0]) + other)


# ---- polling against a real server ------------------------------------------------------------


def test_poll_values_equal_served_for_every_type_and_order(lt: LoopThread, tmp_path: Path) -> None:
    port = free_port()
    site = every_type_site(port)
    server = SiteServer(site)
    server.set_many(served_values(site))
    lt.run(server.start())
    store = Store(tmp_path / "f.duckdb")
    ingestor = Ingestor(site, store, config=FAST, flush_interval_s=0.05)
    assert len(site.devices()) == 2 and len(site.point_ids) == 54
    stop = asyncio.Event()
    run = lt.submit(ingestor.run(None, stop))
    try:
        n = len(site.point_ids)
        wait_until(lambda: len(store.latest_values()) == n, 15, what="every point stored")
    finally:
        lt.loop.call_soon_threadsafe(stop.set)
        run.result(10)
        lt.run(server.stop())
    stored = store.latest_values()
    for tag in site.point_ids:
        assert stored[tag] == server.get(tag), tag  # bit-exact: same codec, same registers
    want = served_values(site)
    for tag, v in want.items():
        if site.point(tag).source.data_type.value == "float32":
            assert stored[tag] == pytest.approx(v, rel=1e-6), tag
        else:
            assert stored[tag] == pytest.approx(v, rel=1e-12), tag
    assert stored["eq.holding_uint32_DCBA"] == want["eq.holding_uint32_DCBA"] > 2**31
    assert {stored["eq.bit0"], stored["eq.bit9"]} == {0.0, 1.0}
    bad = store.query("SELECT count(*) AS n FROM readings WHERE status <> 0")["n"][0]
    assert bad == 0
    store.close()


def test_dead_device_is_a_status_others_keep_rate_and_it_recovers(
    lt: LoopThread, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    interval = 0.05
    ports = [free_port() for _ in range(3)]
    pts = [
        {"name": f"v{i}", "unit": "kW", "poll_interval_s": interval,
         "source": _src(ports[i], 1, "holding", 0, "float32")}
        for i in range(3)
    ]  # fmt: skip
    site = parse_site({"name": "t", "equipment": [{"id": "eq", "kind": "other", "points": pts}]})
    server = SiteServer(site)
    server.set_many({"eq.v0": 1.0, "eq.v1": 2.0, "eq.v2": 3.0})
    lt.run(server.start())
    store = Store(tmp_path / "f.duckdb")
    ingestor = Ingestor(site, store, config=FAST, flush_interval_s=0.05)
    by_port = {p.key.port: p for p in ingestor.pollers}
    dead, live = by_port[ports[0]], [by_port[ports[1]], by_port[ports[2]]]
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="connectors.modbus")
    run = lt.submit(ingestor.run(None, stop))
    try:
        wait_until(lambda: all(p.stats.up and p.stats.good > 3 for p in ingestor.pollers), 10,
                   what="all devices up")  # fmt: skip
        caplog.clear()

        lt.run(server.stop_port(ports[0]))
        wait_until(lambda: not dead.stats.up, 10, what="the dead device noticed")
        attempts0, cpu0, wall0 = dead.stats.connect_attempts, time.process_time(), time.monotonic()
        live0 = [p.stats.good for p in live]
        dead_rows0 = dead.stats.readings
        # stay down for a while: the others must keep their rate
        wait_until(lambda: time.monotonic() - wall0 >= 1.5, 10, what="1.5 s of downtime")
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        attempts = dead.stats.connect_attempts - attempts0
        live_reads = [p.stats.good - g for p, g in zip(live, live0, strict=True)]

        expected = wall / interval
        assert all(n >= 0.5 * expected for n in live_reads), (live_reads, expected)
        # back-off, not a busy loop: a bounded number of connects, little CPU
        assert 2 <= attempts <= 3 + wall / (FAST.backoff_max_s * (1 - FAST.jitter)), attempts
        assert cpu / wall < 0.6, f"CPU {cpu / wall:.0%} while one device is down"
        assert dead.stats.readings - dead_rows0 <= 2 * expected + 5  # one row per poll, no spin
        good_before = dead.stats.good

        # the dead one's rows carry a failure status and no value
        pid = store.point_id("eq.v0")
        wait_until(
            lambda: ingestor.rows_stored > 0 and _statuses(store, pid, 0) > 0, 5, what="rows"
        )
        rows = store.query(
            "SELECT value, status FROM readings WHERE point_id = ? ORDER BY ts DESC LIMIT 5", [pid]
        )
        assert (rows["status"] != 0).all() and rows["value"].isna().all()
        assert set(rows["status"]) <= {Status.NOT_CONNECTED, Status.CONNECTION_LOST, Status.TIMEOUT}
        assert dead.stats.good == good_before
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and str(dead.key) in warnings[0].getMessage()

        # it comes back
        server.set("eq.v0", 42.0)
        lt.run(server.start_port(ports[0]))
        wait_until(lambda: dead.stats.up and dead.stats.good > good_before, 10, what="recovery")
        wait_until(lambda: store.latest_values(["eq.v0"]).get("eq.v0") == 42.0, 5, what="new value")
        infos = [
            r for r in caplog.records if r.levelno == logging.INFO and "is back" in r.getMessage()
        ]
        assert len(infos) == 1
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    finally:
        lt.loop.call_soon_threadsafe(stop.set)
        run.result(10)
        lt.run(server.stop())
        store.close()


def _statuses(store: Store, pid: int, status: int) -> int:
    q = "SELECT count(*) AS n FROM readings WHERE point_id = ? AND status <> ?"
    return int(store.query(q, [pid, status])["n"][0])


def test_modbus_exception_status_and_block_split(lt: LoopThread) -> None:
    port = free_port()
    served = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "a", "unit": "1", "source": _src(port, 1, "holding", 0, "float32")},
        {"name": "b", "unit": "1", "source": _src(port, 1, "holding", 2, "float32")},
    ]}]})  # fmt: skip
    # the connector's map has two points the device does not serve: one next to the
    # served ones (so it is coalesced into their block) and one far away
    polled = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "a", "unit": "1", "source": _src(port, 1, "holding", 0, "float32")},
        {"name": "b", "unit": "1", "source": _src(port, 1, "holding", 2, "float32")},
        {"name": "near", "unit": "1", "source": _src(port, 1, "holding", 4, "uint16")},
        {"name": "far", "unit": "1", "source": _src(port, 1, "holding", 500, "uint16")},
    ]}]})  # fmt: skip
    server = SiteServer(served)
    server.set_many({"eq.a": 1.5, "eq.b": -2.5})
    got: dict[int, tuple[float, int]] = {}
    sink = latest_into(got)
    key, points = next(iter(polled.devices().items()))
    poller = DevicePoller(key, points, polled.point_ids, sink, config=FAST)
    assert [(b.start, b.count) for b in poller.blocks] == [(0, 5), (500, 1)]

    phases: list[dict[int, tuple[float, int]]] = []

    async def main() -> None:
        async with server:
            await poller.poll_once()
            phases.append(dict(got))
            server.set_device_offline(1)
            await poller.poll_once()
            phases.append(dict(got))
            poller.close()

    lt.run(main())
    first, offline = phases
    ids = polled.point_ids
    illegal_address = Status.modbus_exception(2)
    assert first[ids["eq.a"]] == (1.5, Status.OK) and first[ids["eq.b"]] == (-2.5, Status.OK)
    assert first[ids["eq.near"]][1] == illegal_address and np.isnan(first[ids["eq.near"]][0])
    assert first[ids["eq.far"]][1] == illegal_address
    assert [(b.start, b.count) for b in poller.blocks] == [(0, 2), (2, 2), (4, 1), (500, 1)]
    # a device behind a gateway that stops answering: exception 11 for its points
    gateway = Status.modbus_exception(11)
    assert offline[ids["eq.a"]][1] == gateway and offline[ids["eq.b"]][1] == gateway


def test_device_behind_a_gateway_that_stops_answering_is_down(lt: LoopThread) -> None:
    """Exception 11 from a gateway: the device is down for the operator, but the
    gateway's connection is kept (no reconnect, no back-off) and the device is up
    again on its first good answer."""
    port = free_port()
    site = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "a", "unit": "1", "source": _src(port, 1, "holding", 0, "float32")},
        {"name": "c", "unit": "1", "source": _src(port, 1, "coil", 0, "bool")},
    ]}]})  # fmt: skip
    server = SiteServer(site)
    server.set_many({"eq.a": 1.5, "eq.c": 1})
    got: dict[int, tuple[float, int]] = {}
    sink = latest_into(got)
    key, points = next(iter(site.devices().items()))
    poller = DevicePoller(key, points, site.point_ids, sink, config=FAST)
    seen: list[tuple[bool, dict[int, tuple[float, int]]]] = []

    async def main() -> None:
        async with server:
            for offline in (False, True, True, False):
                server.set_device_offline(1, offline)
                await poller.poll_once()
                seen.append((poller.stats.up, dict(got)))
            poller.close()

    lt.run(main())
    a, c = site.point_ids["eq.a"], site.point_ids["eq.c"]
    gateway = Status.modbus_exception(11)
    assert [up for up, _ in seen] == [True, False, False, True]
    assert seen[1][1][a][1] == gateway and seen[1][1][c][1] == gateway
    assert seen[3][1][a] == (1.5, Status.OK) and seen[3][1][c] == (1.0, Status.OK)
    assert poller.stats.connect_attempts == 1  # one connection throughout
    assert "unreachable" in poller.stats.last_error


def test_writes_with_read_back(lt: LoopThread) -> None:
    port = free_port()
    w = {"min": -1000, "max": 1000}
    site = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "setpoint", "unit": "degC", "write": w,
         "source": _src(port, 4, "holding", 0, "float32", layout="CDAB")},
        {"name": "scaled", "unit": "degC", "write": w,
         "source": _src(port, 4, "holding", 2, "int16", scale=0.1)},
        {"name": "enable", "unit": "bool", "write": {"min": 0, "max": 1},
         "source": _src(port, 4, "coil", 0, "bool")},
        {"name": "flag3", "unit": "bool", "write": {"min": 0, "max": 1},
         "source": _src(port, 4, "holding", 3, "bit", bit=3)},
        {"name": "flag0", "unit": "bool", "source": _src(port, 4, "holding", 3, "bit", bit=0)},
        {"name": "temp", "unit": "degC", "source": _src(port, 4, "input", 0, "float32")},
    ]}]})  # fmt: skip
    server = SiteServer(site)
    server.set_many({"eq.temp": 7.25, "eq.flag0": 1})
    seen: list[tuple[str, float]] = []
    server.on_write(lambda tag, value: seen.append((tag, value)))
    writer = ModbusPointWriter(site, timeout_s=1.0)

    async def main() -> None:
        async with server:
            r = await writer.write("eq.setpoint", 6.5)
            assert (r.requested, r.written, r.read_back) == (6.5, 6.5, 6.5) and r.verified
            assert server.get("eq.setpoint") == 6.5
            r = await writer.write("eq.scaled", 12.34)  # int16 at 0.1: 12.3 goes on the wire
            assert r.written == pytest.approx(12.3) and r.read_back == r.written and r.verified
            r = await writer.write("eq.enable", 1)
            assert r.read_back == 1.0 and server.get("eq.enable") == 1.0
            r = await writer.write("eq.flag3", 1)  # read-modify-write keeps bit 0
            assert r.read_back == 1.0 and server.get("eq.flag0") == 1.0
            assert await writer.read("eq.temp") == 7.25
            with pytest.raises(WriteRejected):
                await writer.write("eq.temp", 1.0)  # input register: read-only
            with pytest.raises(WriteRejected):
                await writer.write("eq.flag0", 1.0)  # no write limits: not writable
            with pytest.raises(WriteRejected, match="does not fit int16"):
                await writer.write("eq.scaled", 5000.0)  # 50000 raw: past int16
            with pytest.raises(ModbusExceptionResponse) as exc:
                server.set_device_offline(4)
                await writer.read("eq.temp")
            assert exc.value.code == 11
            server.set_device_offline(4, False)
        with pytest.raises(DeviceUnreachable):
            await writer.write("eq.setpoint", 7.0)
        await writer.close()

    lt.run(main())
    assert [t for t, _ in seen] == ["eq.setpoint", "eq.scaled", "eq.enable", "eq.flag3"]


def test_recording_writer_applies_nothing() -> None:
    port = free_port()
    site = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "sp", "unit": "degC", "write": {"min": 0, "max": 20},
         "source": _src(port, 1, "holding", 0, "int16", scale=0.1)},
    ]}]})  # fmt: skip
    rec = RecordingWriter(site, values={"eq.sp": 7.0}, echo=False)
    r = asyncio.run(rec.write("eq.sp", 9.04))
    assert r.written == pytest.approx(9.0) and r.read_back == 7.0 and not r.verified
    assert [w.tag for w in rec.writes] == ["eq.sp"]
    echo = RecordingWriter(site)
    assert asyncio.run(echo.write("eq.sp", 9.0)).verified


def test_a_store_that_cannot_write_stops_the_ingest(tmp_path: Path) -> None:
    """A failing store is an error, not a status: run() raises instead of buffering forever."""
    port = free_port()  # nothing listens: every poll yields failure rows to write
    site = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "v", "unit": "1", "poll_interval_s": 0.05,
         "source": _src(port, 1, "holding", 0, "uint16")},
    ]}]})  # fmt: skip
    store = Store(tmp_path / "f.duckdb")
    ingestor = Ingestor(site, store, config=FAST, flush_interval_s=0.05)
    store.close()
    with pytest.raises(StoreError, match="cannot append readings"):
        asyncio.run(ingestor.run(duration=10))


def test_ingest_retention_rolls_up_old_rows(lt: LoopThread, tmp_path: Path) -> None:
    """With retain_age set, the ingest keeps the raw table bounded (1-minute roll-ups)."""
    port = free_port()
    site = parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": [
        {"name": "v", "unit": "1", "poll_interval_s": 0.02,
         "source": _src(port, 1, "holding", 0, "uint16")},
    ]}]})  # fmt: skip
    server = SiteServer(site)
    server.set("eq.v", 7)
    clock = ManualClock(datetime(2026, 1, 1, 12, 0, 10))
    store = Store(tmp_path / "f.duckdb")
    ingestor = Ingestor(
        site, store, clock=clock, config=FAST, flush_interval_s=0.02,
        retain_age=timedelta(minutes=1), retain_every_s=0.05,
    )  # fmt: skip
    lt.run(server.start())
    stop = asyncio.Event()
    run = lt.submit(ingestor.run(None, stop))
    try:
        wait_until(lambda: ingestor.rows_stored >= 5, 10, what="rows at 12:00:10")
        clock.set(datetime(2026, 1, 1, 12, 2, 30))  # 12:00 is now older than a minute
        rolled = "SELECT count(*) AS n FROM readings_1m"
        raw_old = "SELECT count(*) AS n FROM readings WHERE ts < '2026-01-01 12:01:00'"
        wait_until(
            lambda: (
                int(store.query(rolled)["n"][0]) >= 1 and int(store.query(raw_old)["n"][0]) == 0
            ),
            10,
            what="12:00 rolled up and removed from the raw table",
        )
    finally:
        lt.loop.call_soon_threadsafe(stop.set)
        run.result(10)
        lt.run(server.stop())
    agg = store.query("SELECT * FROM readings_1m")
    assert set(agg.bucket) == {datetime(2026, 1, 1, 12, 0)}
    assert (agg.vmean == 7.0).all() and agg.n.sum() >= 5 and (agg.n_bad == 0).all()
    assert store.row_count() > 0  # the recent minute stays raw
    store.close()


def test_slow_device_times_out_without_stalling_the_others(lt: LoopThread, tmp_path: Path) -> None:
    interval = 0.05
    port = free_port()
    pts = [
        {"name": f"v{d}", "unit": "kW", "poll_interval_s": interval,
         "source": _src(port, d, "holding", 0, "float32")}
        for d in (1, 2, 3)
    ]  # fmt: skip
    site = parse_site({"name": "t", "equipment": [{"id": "eq", "kind": "other", "points": pts}]})
    server = SiteServer(site)
    server.set_many({"eq.v1": 1.0, "eq.v2": 2.0, "eq.v3": 3.0})
    lt.run(server.start())
    store = Store(tmp_path / "f.duckdb")
    config = PollerConfig(timeout_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.2)
    ingestor = Ingestor(site, store, config=config, flush_interval_s=0.05)
    by_id = {p.key.device_id: p for p in ingestor.pollers}
    slow, others = by_id[2], [by_id[1], by_id[3]]
    stop = asyncio.Event()
    run = lt.submit(ingestor.run(None, stop))
    try:
        wait_until(lambda: all(p.stats.up for p in ingestor.pollers), 10, what="all up")
        server.set_device_delay(2, 1.0)  # answers 1 s late: past the 0.2 s timeout
        wait_until(lambda: slow.stats.statuses.get(Status.TIMEOUT, 0) >= 2, 10, what="timeouts")
        good0, t0 = [p.stats.good for p in others], time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 1.0, 5, what="1 s with a slow device")
        expected = (time.monotonic() - t0) / interval
        assert all(p.stats.good - g >= 0.5 * expected for p, g in zip(others, good0, strict=True))
        good_slow = slow.stats.good
        server.set_device_delay(2, 0.0)
        wait_until(lambda: slow.stats.up and slow.stats.good > good_slow, 10, what="recovery")
    finally:
        lt.loop.call_soon_threadsafe(stop.set)
        run.result(10)
        lt.run(server.stop())
    pid = store.point_id("eq.v2")
    codes = set(
        store.query("SELECT DISTINCT status FROM readings WHERE point_id = ?", [pid])["status"]
    )
    assert Status.TIMEOUT in codes and Status.OK in codes
    store.close()
