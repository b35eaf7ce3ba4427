"""The Modbus TCP poller: one task and one connection per device.

:class:`DevicePoller` reads the points of ONE device (host, port, device id) in
coalesced block reads (:mod:`connectors.blocks`), decodes each block with a
vectorised :class:`~connectors.codec.BlockDecoder`, and hands every reading to
a sink with a status (:mod:`connectors.status`):

* ``ok`` — decoded value;
* ``timeout`` — the device did not answer within ``timeout_s``;
* ``connection_lost`` — the TCP connection dropped or was refused;
* ``not_connected`` — the device is down and inside its reconnect back-off;
* ``modbus_exception_N`` — the device answered with exception code N;
* ``decode_error`` — the answer did not decode (wrong length, NaN/∞ float).

A failure is a row with a NULL value and that status, never a silent zero.

Reconnects use capped exponential back-off with jitter: no request or connect
is made to a down device before its next attempt time, so a dead device costs
nothing but one timer per poll interval (never a busy loop). A read that fails
because the connection dropped is retried once on a fresh connection at once —
a restarted device is back on the next read, not after a back-off. A device
going down is logged once at WARNING, nothing while it stays down, and once at
INFO when it is back.

If a device rejects a coalesced read with exception 2 (illegal data address —
some devices refuse reads spanning unmapped registers), the block is split into
one read per point and retried, so one bad address fails only its own point.

Each device runs in its own task (see :class:`connectors.ingest.Ingestor`), so
a dead or slow device never stalls the others.

Throughput: a poll is a strict request/response round trip per connection, so
anything done between one answer and the next request adds to every round trip.
The client's register answers keep their wire bytes (:mod:`connectors.modbus_pdu`)
instead of pymodbus's word-by-word list. With ``defer_decode`` (the Ingestor's
mode) a good answer's bytes are only appended to a buffer; :meth:`DevicePoller.drain`
decodes all buffered reads of a block at once as a ``(K, count)`` stack — one
numpy pass per block per flush instead of one per read. That is what keeps the
pipeline near the raw read rate (``facility-agent bench ingest``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from connectors.blocks import Block, plan_blocks, split
from connectors.clock import Clock, SystemClock
from connectors.codec import BlockDecoder
from connectors.latency import LatencyHistogram
from connectors.modbus_pdu import answer_bytes, lean_client
from connectors.pacing import Stoppable
from connectors.site import DeviceKey, Point, Table
from connectors.status import Status, status_name

log = logging.getLogger(__name__)

# pymodbus logs every failed connect at ERROR with frame dumps: a dead device would
# flood the log. Our poller reports device state itself; keep pymodbus quiet unless
# the application configured its logger explicitly.
for _name in ("pymodbus", "pymodbus.logging"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.CRITICAL)

EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)

TsArray = npt.NDArray[np.int64]
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
StatusArray = npt.NDArray[np.uint8]
ReadingSink = Callable[[TsArray, IntArray, FloatArray, StatusArray], None]
"""``sink(ts_us, point_ids, values, statuses)``: readings as equal-length columns;
``ts_us`` is microseconds since the Unix epoch (UTC). Failed readings carry NaN values."""


def to_us(ts: datetime) -> int:
    """UTC-naive datetime → integer microseconds since the epoch."""
    return (ts - EPOCH) // _US


@dataclass(frozen=True)
class PollerConfig:
    """Tuning of one device's poller (seconds)."""

    timeout_s: float = 1.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter: float = 0.25  # each back-off delay is scaled by U(1 - jitter, 1)
    max_gap: int = 8
    max_bit_gap: int = 64

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Delay before connect attempt number ``failures + 1`` (failures ≥ 1)."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, failures - 1))
        return base * rng.uniform(1.0 - self.jitter, 1.0)


@dataclass
class DeviceStats:
    """What a poller has done so far (read by the ingest progress line and tests)."""

    up: bool = False
    requests: int = 0
    readings: int = 0
    good: int = 0
    connect_attempts: int = 0
    down_since: float | None = None
    last_status: int = Status.NOT_CONNECTED
    last_error: str = ""
    statuses: dict[int, int] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # answered requests


class _Planned:
    """A block with everything its hot path needs precomputed, and its undecoded reads."""

    __slots__ = (
        "bit_offsets",
        "block",
        "decoder",
        "failed_values",
        "ids",
        "raw",
        "raw_ts",
        "split",
    )
    decoder: BlockDecoder | None
    bit_offsets: npt.NDArray[np.intp] | None

    def __init__(self, block: Block, ids: Mapping[str, int], *, split: bool = False) -> None:
        self.block = block
        self.ids = np.array([ids[t] for t in block.tags], dtype=np.int32)
        self.failed_values = np.full(len(block), np.nan)
        self.split = split
        self.raw: list[bytes | Sequence[bool]] = []  # successful reads, not yet decoded
        self.raw_ts: list[int] = []
        if block.table.is_bit_table:
            self.decoder = None
            self.bit_offsets = np.array(
                [s.address - block.start for s in block.sources], dtype=np.intp
            )
        else:
            self.decoder = BlockDecoder(block.start, block.sources)
            self.bit_offsets = None

    def take(self) -> tuple[list[bytes | Sequence[bool]], list[int]]:
        """Hand over the buffered reads (cheap: swaps two lists)."""
        raw, ts = self.raw, self.raw_ts
        self.raw, self.raw_ts = [], []
        return raw, ts

    def decode(
        self, raw: list[bytes | Sequence[bool]], ts: list[int]
    ) -> tuple[TsArray, IntArray, FloatArray, StatusArray] | None:
        """Decode taken reads of this block at once (stacked, one numpy pass).

        Touches no mutable state of the block, so it may run in a worker thread.
        """
        if not raw:
            return None
        k, n = len(raw), len(self.block)
        if self.decoder is None:
            values = np.array(raw, dtype=np.float64)[:, self.bit_offsets].ravel()
        else:
            # register answers are kept as their wire bytes: stack them without a copy per word
            regs = np.frombuffer(b"".join(raw), dtype=">u2").reshape(k, self.block.count)  # type: ignore[arg-type]
            values = self.decoder.decode(regs).ravel()
        status = np.zeros(k * n, dtype=np.uint8)
        if self.decoder is not None and self.decoder.has_float:
            bad = ~np.isfinite(values)
            if bad.any():  # NaN/∞ from a float register: flagged, not stored as good
                status[bad] = Status.DECODE_ERROR
                values[bad] = np.nan
        return np.repeat(np.array(ts, dtype=np.int64), n), np.tile(self.ids, k), values, status


Taken = list[tuple[_Planned, list[bytes | Sequence[bool]], list[int]]]


GATEWAY_CODES = frozenset({10, 11})
"""Modbus exceptions a TCP gateway answers for a device behind it that is unreachable
(path unavailable, target failed to respond): the device is down, the link is not."""


class _ReadFailed(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class DevicePoller(Stoppable):
    """Polls one Modbus device on its points' poll intervals until :meth:`stop`.

    ``sink`` receives readings as columns. Without ``defer_decode`` every read is
    decoded and handed over at once; with it, good reads are buffered until
    :meth:`drain` (``on_buffered(n)`` reports each buffered read's size, so a
    caller can flush by size). Failures are always handed over at once.
    """

    def __init__(
        self,
        key: DeviceKey,
        points: Sequence[tuple[str, Point]],
        ids: Mapping[str, int],
        sink: ReadingSink,
        *,
        config: PollerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        defer_decode: bool = False,
        on_buffered: Callable[[int], None] | None = None,
    ) -> None:
        self.key = key
        self.defer_decode = defer_decode
        self.on_buffered = on_buffered
        self.sink = sink
        self.config = config or PollerConfig()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.stats = DeviceStats()
        self.n_points = len(points)
        # one group of blocks per poll interval
        by_interval: dict[float, list[tuple[str, Point]]] = {}
        for tag, p in points:
            by_interval.setdefault(p.poll_interval_s, []).append((tag, p))
        self.groups: dict[float, list[_Planned]] = {
            interval: [
                _Planned(b, ids)
                for b in plan_blocks(
                    [(t, p.modbus) for t, p in pts],
                    max_gap=self.config.max_gap,
                    max_bit_gap=self.config.max_bit_gap,
                )
            ]
            for interval, pts in sorted(by_interval.items())
        }
        self._client: AsyncModbusTcpClient | None = None
        self._failures = 0
        self._next_attempt = 0.0

    # ---- public --------------------------------------------------------------
    @property
    def blocks(self) -> list[Block]:
        return [pb.block for group in self.groups.values() for pb in group]

    async def run(self) -> None:
        """Poll until :meth:`stop` (or cancellation), each interval group on its own schedule."""
        self._stopping = False
        try:
            due = dict.fromkeys(self.groups, time.monotonic())
            while not self._stopping:
                now = time.monotonic()
                for interval, group in self.groups.items():
                    if due[interval] <= now and not self._stopping:
                        await self.poll_group(group)
                        # next slot on the grid; skip missed slots instead of bursting
                        nxt = due[interval] + interval
                        now2 = time.monotonic()
                        due[interval] = (
                            nxt if nxt > now2 else now2 + interval - (now2 - nxt) % interval
                        )
                await self._sleep(max(0.0, min(due.values()) - time.monotonic()))
        finally:
            self.close()
            self.drain()

    async def poll_once(self) -> None:
        """Read every block once (tests, one-shot reads)."""
        for group in self.groups.values():
            await self.poll_group(group)
        self.drain()

    async def poll_group(self, group: list[_Planned]) -> None:
        i = 0
        while i < len(group) and not self._stopping:
            replacement = await self._poll_block(group[i])
            if replacement is not None:  # the block was split: poll its parts in its place
                self._drain_block(group[i])
                group[i : i + 1] = replacement
                for pb in replacement:
                    await self._poll_block(pb)
                i += len(replacement)
            else:
                i += 1

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- one block -----------------------------------------------------------
    async def _poll_block(self, pb: _Planned) -> list[_Planned] | None:
        if not await self._ensure_connected():
            self._emit_failure(pb, Status.NOT_CONNECTED)
            return None
        try:
            rr = await self._request(pb.block)
        except _ReadFailed as first:
            if first.status != Status.CONNECTION_LOST:
                self._went_down(first.status, str(first))
                self._emit_failure(pb, first.status)
                return None
            # the connection had dropped: retry once on a fresh one
            if not await self._reconnect_now():  # (that marked the device down)
                self._emit_failure(pb, Status.CONNECTION_LOST)
                return None
            try:
                rr = await self._request(pb.block)
            except _ReadFailed as again:
                self._went_down(again.status, str(again))
                self._emit_failure(pb, again.status)
                return None
        if rr.isError():
            code = int(getattr(rr, "exception_code", 4) or 4)
            if code in GATEWAY_CODES:
                # the gateway answers but the device behind it does not: the device is
                # down (for the operator and the progress line), the connection is fine
                self._went_down(
                    Status.modbus_exception(code), "the gateway reports the device unreachable",
                    keep_connection=True,
                )  # fmt: skip
                self._emit_failure(pb, Status.modbus_exception(code))
                return None
            self._came_up()
            if code == 2 and len(pb.block) > 1 and not pb.split:
                ids = dict(zip(pb.block.tags, pb.ids.tolist(), strict=True))
                log.info(
                    "%s rejects the coalesced read %s[%d:%d]; reading its %d points one by one",
                    self.key, pb.block.table.value, pb.block.start, pb.block.end, len(pb.block),
                )  # fmt: skip
                return [_Planned(b, ids, split=True) for b in split(pb.block)]
            self._emit_failure(pb, Status.modbus_exception(code))
            return None
        self._came_up()
        self._emit_values(pb, rr)
        return None

    async def _request(self, block: Block) -> ModbusPDU:
        client = self._client
        if client is None:
            raise _ReadFailed(Status.CONNECTION_LOST, "not connected")
        self.stats.requests += 1
        dev = self.key.device_id
        t0 = time.monotonic()
        try:
            if block.table is Table.HOLDING:
                rr = await client.read_holding_registers(
                    block.start, count=block.count, device_id=dev
                )
            elif block.table is Table.INPUT:
                rr = await client.read_input_registers(
                    block.start, count=block.count, device_id=dev
                )
            elif block.table is Table.COIL:
                rr = await client.read_coils(block.start, count=block.count, device_id=dev)
            else:
                rr = await client.read_discrete_inputs(
                    block.start, count=block.count, device_id=dev
                )
            self.stats.latency.observe(time.monotonic() - t0)
            return rr
        except ConnectionException as err:
            raise _ReadFailed(Status.CONNECTION_LOST, str(err)) from err
        except (TimeoutError, ModbusException, OSError) as err:
            lost = not client.connected
            raise _ReadFailed(Status.CONNECTION_LOST if lost else Status.TIMEOUT, str(err)) from err

    def _emit_values(self, pb: _Planned, rr: ModbusPDU) -> None:
        """Keep the registers of a good answer; they are decoded in :meth:`drain`."""
        ts = self._now_us()
        data: bytes | Sequence[bool]
        if pb.decoder is None:
            data = rr.bits
            if len(data) < pb.block.count:
                self._emit_failure(pb, Status.DECODE_ERROR, ts)
                return
            data = data[: pb.block.count]
        else:
            data = answer_bytes(rr)
            if len(data) != 2 * pb.block.count:
                self._emit_failure(pb, Status.DECODE_ERROR, ts)
                return
        pb.raw.append(data)
        pb.raw_ts.append(ts)
        self.stats.readings += len(pb.block)
        self.stats.last_status = Status.OK
        if not self.defer_decode:
            self._drain_block(pb)
        elif self.on_buffered is not None:
            self.on_buffered(len(pb.block))

    def drain(self) -> int:
        """Decode all buffered reads (stacked per block) and hand them to the sink.

        With ``defer_decode`` the ingest flusher does this (as :meth:`take_pending`
        on the event loop, then :meth:`decode_taken` in its writer thread), so
        decoding costs one numpy pass per block per flush instead of one per read
        and stays off the request/response path. Returns readings handed over.
        """
        return self.decode_taken(self.take_pending())

    def take_pending(self) -> Taken:
        """Swap out every block's buffered reads (cheap; call on the event loop)."""
        out: Taken = []
        for group in self.groups.values():
            for pb in group:
                if pb.raw:
                    out.append((pb, *pb.take()))
        return out

    def decode_taken(self, taken: Taken, sink: ReadingSink | None = None) -> int:
        """Decode reads from :meth:`take_pending` and pass them to ``sink`` (default: the
        poller's). Safe in a worker thread: it only adds to ``stats.good``."""
        sink = sink or self.sink
        total = 0
        for pb, raw, ts in taken:
            out = pb.decode(raw, ts)
            if out is None:
                continue
            bad = int(np.count_nonzero(out[3]))
            self.stats.good += len(out[1]) - bad
            if bad:
                self.stats.statuses[Status.DECODE_ERROR] = (
                    self.stats.statuses.get(Status.DECODE_ERROR, 0) + bad
                )
            sink(*out)
            total += len(out[1])
        return total

    def _drain_block(self, pb: _Planned) -> int:
        return self.decode_taken([(pb, *pb.take())])

    def _now_us(self) -> int:
        if type(self.clock) is SystemClock:
            return time.time_ns() // 1000
        return to_us(self.clock.now())

    def _emit_failure(self, pb: _Planned, status: int, ts: int | None = None) -> None:
        n = len(pb.block)
        st = self.stats
        st.readings += n
        st.last_status = status
        st.statuses[status] = st.statuses.get(status, 0) + n
        self.sink(
            np.full(n, self._now_us() if ts is None else ts, dtype=np.int64),
            pb.ids,
            pb.failed_values.copy(),
            np.full(n, status, dtype=np.uint8),
        )

    # ---- connection state ----------------------------------------------------
    def _new_client(self) -> AsyncModbusTcpClient:
        return lean_client(
            self.key.host,
            self.key.port,
            timeout=self.config.timeout_s,
            retries=0,
            reconnect_delay=0,  # reconnects are ours, with back-off
            reconnect_delay_max=0,
            name=str(self.key),
        )

    async def _ensure_connected(self) -> bool:
        if self._client is not None and self._client.connected:
            return True
        if time.monotonic() < self._next_attempt:
            return False
        return await self._reconnect_now()

    async def _reconnect_now(self) -> bool:
        self.close()
        self.stats.connect_attempts += 1
        client = self._new_client()
        try:
            ok = await client.connect()
        except (TimeoutError, ModbusException, OSError) as err:
            ok, detail = False, str(err)
        else:
            detail = "connection refused or timed out"
        if ok:
            self._client = client
            return True
        client.close()
        self._went_down(Status.CONNECTION_LOST, f"cannot connect: {detail}")
        return False

    def _went_down(self, status: int, detail: str, *, keep_connection: bool = False) -> None:
        """Mark the device down (logged once). Unless the connection itself is fine (a
        gateway answering for a dead device behind it), drop it and back off."""
        if not keep_connection:
            self.close()
            self._failures += 1
            self._next_attempt = time.monotonic() + self.config.backoff(self._failures, self.rng)
        st = self.stats
        st.last_error = detail
        if st.up or st.down_since is None:
            st.down_since = time.monotonic()
            how = (
                "polling continues on its interval"
                if keep_connection
                else f"polling continues with back-off up to {self.config.backoff_max_s:.0f} s"
            )
            log.warning(
                "device %s is down (%s: %s); %s", self.key, status_name(status), detail, how
            )
        st.up = False

    def _came_up(self) -> None:
        st = self.stats
        if not st.up:
            if st.down_since is not None:
                log.info(
                    "device %s is back after %.1f s", self.key, time.monotonic() - st.down_since
                )
            st.up = True
            st.down_since = None
        self._failures = 0
        self._next_attempt = 0.0
