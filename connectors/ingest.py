"""Ingest: every device's poller running at once, readings batched into the Store.

:class:`Ingestor` registers the site's points in the :class:`~connectors.store.Store`,
starts one :class:`~connectors.modbus.DevicePoller` task per device and collects
their readings in memory. A flusher task writes them to DuckDB through Arrow
whenever ``flush_rows`` readings are pending or ``flush_interval_s`` has passed.

Decoding and storing stay off the hot path — the request/response round trip of
each device, which is what bounds throughput (a poll is latency-bound: see
``facility-agent bench ingest``). Pollers only buffer the registers of good
answers; the flusher decodes them stacked per block and appends one Arrow batch
to DuckDB in a worker thread (≈0.07 µs and ≈0.085 µs of CPU a reading; DuckDB
releases the GIL while it inserts). By size it flushes whole DuckDB row groups
(:data:`DUCKDB_ROW_GROUP`), which DuckDB writes straight to the file.
``write_in_thread=False`` appends on the loop instead: measured on the shared
2-core box it is as fast when the machine is saturated and no faster when it is not.

Live numbers for a progress line come from :meth:`Ingestor.stats`.

Example::

    store = Store("facility.duckdb")
    ingestor = Ingestor(site, store)
    await ingestor.run(duration=60)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa

from connectors.bacnet.client import close as close_application
from connectors.bacnet.client import local_address_for, make_application
from connectors.bacnet.poller import BacnetPoller
from connectors.clock import Clock, SystemClock
from connectors.modbus import (
    DevicePoller,
    FloatArray,
    IntArray,
    PollerConfig,
    StatusArray,
    Taken,
    TsArray,
)
from connectors.site import Site
from connectors.store import READINGS_SCHEMA, Store

_Pending = tuple[TsArray, IntArray, FloatArray, StatusArray]

DUCKDB_ROW_GROUP = 122_880
"""Rows in one DuckDB row group. An insert of at least this many rows is written
straight to the database file as compressed row groups; a smaller one goes
through the write-ahead log and is written again at checkpoint. Measured on the
2-core box: ≈0.13 µs of CPU a row for 100,000-row appends, ≈0.085 µs from
122,880 rows up — so flushing by size waits for whole row groups."""


@dataclass(frozen=True)
class IngestStats:
    """A snapshot for the progress line."""

    elapsed_s: float
    points_per_s: float  # readings per second over the last few seconds
    readings: int  # readings produced (any status)
    good: int  # readings with status ok
    rows_stored: int  # rows in DuckDB so far (this run)
    pending: int  # readings waiting for the next flush
    devices_up: int
    devices_down: int
    requests: int

    def line(self) -> str:
        return (
            f"{self.points_per_s:>10,.0f} points/s | devices up {self.devices_up} "
            f"down {self.devices_down} | rows stored {self.rows_stored:,} | {self.elapsed_s:.0f} s"
        )


def build_batch(pending: list[_Pending]) -> pa.Table:
    """Concatenate pending reading columns into one readings Arrow table."""
    ts = np.concatenate([p[0] for p in pending])
    ids = np.concatenate([p[1] for p in pending])
    values = np.concatenate([p[2] for p in pending])
    status = np.concatenate([p[3] for p in pending])
    return pa.Table.from_arrays(
        [
            pa.array(ts.view("datetime64[us]"), type=pa.timestamp("us")),
            pa.array(ids, type=pa.int32()),
            pa.array(values, type=pa.float64(), from_pandas=True),  # NaN → NULL
            pa.array(status, type=pa.uint8()),
        ],
        schema=READINGS_SCHEMA,
    )


class Ingestor:
    """Runs all device pollers on their intervals and batches readings into the store."""

    def __init__(
        self,
        site: Site,
        store: Store,
        *,
        clock: Clock | None = None,
        config: PollerConfig | None = None,
        flush_rows: int = 2 * DUCKDB_ROW_GROUP,
        flush_interval_s: float = 1.0,
        retain_age: timedelta | None = None,
        retain_every_s: float = 60.0,
        rng: random.Random | None = None,
        write_in_thread: bool = True,
    ) -> None:
        self.site = site
        self.store = store
        self.clock = clock or SystemClock()
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.retain_age = retain_age
        self.retain_every_s = retain_every_s
        self.ids = store.register_site(site)
        rng = rng or random.Random()
        modbus = [
            DevicePoller(
                key,
                points,
                self.ids,
                self._collect,
                config=config,
                clock=self.clock,
                rng=random.Random(rng.random()),
                defer_decode=True,
                on_buffered=self._buffered,
            )
            for key, points in site.devices().items()
        ]
        bacnet = site.bacnet_devices()
        self.bacnet_pollers: list[BacnetPoller] = [
            BacnetPoller(
                key,
                points,
                self.ids,
                self._collect,
                config=config,
                clock=self.clock,
                rng=random.Random(rng.random()),
            )
            for key, points in bacnet.items()
        ]
        self.bacnet_local = local_address_for(k.host for k in bacnet)
        self.pollers: list[DevicePoller | BacnetPoller] = [*modbus, *self.bacnet_pollers]
        self.rows_stored = 0
        self.write_in_thread = write_in_thread
        self._pending: list[_Pending] = []
        self._pending_rows = 0
        self._kick: asyncio.Event | None = None
        self._stopping = False
        self._flush_lock: asyncio.Lock | None = None
        self._started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)

    # ---- hot path --------------------------------------------------------------
    def _buffered(self, n: int) -> None:
        """A poller holds ``n`` more undecoded readings: flush by size counts them too."""
        self._pending_rows += n
        if self._pending_rows >= self.flush_rows and self._kick is not None:
            self._kick.set()

    def _collect(self, ts: TsArray, ids: IntArray, values: FloatArray, status: StatusArray) -> None:
        self._pending.append((ts, ids, values, status))
        self._pending_rows += len(ids)
        if self._pending_rows >= self.flush_rows and self._kick is not None:
            self._kick.set()

    # ---- running ---------------------------------------------------------------
    async def run(self, duration: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Poll until ``duration`` seconds pass or ``stop`` is set (or the task is cancelled);
        then stop the pollers and flush what is pending."""
        self._kick = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._started = time.monotonic()
        self._samples.clear()
        self._samples.append((self._started, self.stats_readings()))
        app = make_application(self.bacnet_local) if self.bacnet_pollers else None
        for bp in self.bacnet_pollers:
            bp.attach(app)
        tasks = [asyncio.create_task(p.run(), name=f"poll {p.key}") for p in self.pollers]
        flusher = asyncio.create_task(self._flusher(), name="ingest flusher")
        waiter = asyncio.create_task((stop or asyncio.Event()).wait(), name="ingest stop")
        try:
            # ends at duration, on stop, or when the flusher fails (e.g. the disk is full)
            await asyncio.wait({waiter, flusher}, timeout=duration, return_when="FIRST_COMPLETED")
        finally:
            waiter.cancel()
            # stop flags first: on Python 3.11 a cancellation racing a pymodbus response
            # can be swallowed by asyncio.wait_for, so cancelling alone is not enough
            self._stopping = True
            for p in self.pollers:
                p.stop()
            self._kick.set()
            everything = [*tasks, flusher]
            _, late = await asyncio.wait(everything, timeout=self._grace_s())
            for t in late:
                t.cancel()
            results = await asyncio.gather(*everything, return_exceptions=True)
            if app is not None:
                await close_application(app)
            await self.flush()
        failure = results[-1]  # the flusher's: a store that cannot write is not a status
        if isinstance(failure, Exception):
            raise failure

    def _grace_s(self) -> float:
        timeouts = [p.config.timeout_s for p in self.pollers]
        return 2.0 * max(timeouts, default=1.0) + 1.0

    async def _flusher(self) -> None:
        assert self._kick is not None
        last_retain = time.monotonic()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.flush_interval_s)
            self._kick.clear()
            await self.flush()
            if (
                self.retain_age is not None
                and time.monotonic() - last_retain >= self.retain_every_s
            ):
                last_retain = time.monotonic()
                await asyncio.to_thread(self.store.retain, self.clock.now(), self.retain_age)

    async def flush(self) -> int:
        """Decode buffered reads and write everything pending to the store. Returns rows written.

        On the event loop only the buffers are swapped; decoding (stacked per
        block) and the Arrow append run in the writer thread (or inline with
        ``write_in_thread=False``).
        """
        lock = self._flush_lock or asyncio.Lock()
        async with lock:
            taken = [(p, p.take_pending()) for p in self.pollers]
            pending, self._pending, self._pending_rows = self._pending, [], 0
            if not pending and not any(t for _, t in taken):
                return 0
            if self.write_in_thread:
                n = await asyncio.to_thread(self._write, pending, taken)
            else:
                n = self._write(pending, taken)
            self.rows_stored += n
            return n

    def _write(
        self, pending: list[_Pending], taken: list[tuple[DevicePoller | BacnetPoller, Taken]]
    ) -> int:
        rows = list(pending)
        for poller, t in taken:
            poller.decode_taken(t, lambda *cols: rows.append(cols))
        if not rows:
            return 0
        return self.store.append_arrow(build_batch(rows))

    # ---- numbers ---------------------------------------------------------------
    def stats_readings(self) -> int:
        return sum(p.stats.readings for p in self.pollers)

    def stats(self) -> IngestStats:
        now = time.monotonic()
        readings = self.stats_readings()
        self._samples.append((now, readings))
        # rate since the newest sample at least 1 s old (or the oldest one)
        old = self._samples[0]
        for t, r in self._samples:
            if now - t < 1.0:
                break
            old = (t, r)
        dt = now - old[0]
        rate = (readings - old[1]) / dt if dt > 0 else 0.0
        up = sum(1 for p in self.pollers if p.stats.up)
        return IngestStats(
            elapsed_s=now - self._started,
            points_per_s=rate,
            readings=readings,
            good=sum(p.stats.good for p in self.pollers),
            rows_stored=self.rows_stored,
            pending=self._pending_rows,
            devices_up=up,
            devices_down=len(self.pollers) - up,
            requests=sum(p.stats.requests for p in self.pollers),
        )
