"""The BACnet/IP poller: one task per device, ReadPropertyMultiple batches.

:class:`BacnetPoller` reads the points of ONE BACnet device (address, instance) and hands
every reading to a sink with a status, like the Modbus :class:`~connectors.modbus.DevicePoller`:

* ``ok`` — the value the device served;
* ``timeout`` — no answer within ``timeout_s`` (the device is down: capped back-off);
* ``not_connected`` — the device is down and inside its back-off (no request is sent);
* ``bacnet_error`` — the device answered this property with an error (unknown object …);
* ``unit_mismatch`` — the device reports other engineering units than the site file says
  (checked whenever the device comes up; such a point is never stored as good);
* ``decode_error`` — the value is not a number (or NaN/∞).

Reads are batched per poll interval into ReadPropertyMultiple requests of at most
``max_properties`` properties (large answers are segmented by bacpypes3). A device that
rejects ReadPropertyMultiple (reject/abort or an error on the service) is read with one
ReadProperty per point from then on. All pollers of an ingest share one local BACnet
application (one UDP socket); each device still runs in its own task, so a dead device
never stalls the others.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bacpypes3.app import Application

from connectors.bacnet.client import (
    BacnetError,
    address,
    describe,
    is_error,
    object_id,
    property_id,
    request,
    to_float,
)
from connectors.bacnet.units import canonical, expected_units
from connectors.clock import Clock, SystemClock
from connectors.errors import DeviceError, DeviceTimeout
from connectors.modbus import DeviceStats, PollerConfig, ReadingSink, Taken, to_us
from connectors.pacing import Stoppable
from connectors.site import BacnetSource, DeviceKey, Point
from connectors.status import Status, status_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Item:
    tag: str
    pid: int
    source: BacnetSource
    objid: Any
    prop: Any
    units: str | None  # expected BACnet units (None: not checked)


class BacnetPoller(Stoppable):
    """Polls one BACnet device on its points' poll intervals until :meth:`stop`.

    Needs a local application (:meth:`attach`) before :meth:`run`; the Ingestor makes one
    per run and shares it. The interface the Ingestor uses (``key``, ``config``, ``stats``,
    ``run``, ``stop``, ``take_pending``, ``decode_taken``) is the Modbus poller's; readings
    go to the sink at once (nothing is buffered), so the last two have nothing to do.
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
        max_properties: int = 40,
        use_rpm: bool = True,
    ) -> None:
        self.key = key
        self.sink = sink
        self.config = config or PollerConfig()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.stats = DeviceStats()
        self.use_rpm = use_rpm
        self.max_properties = max(1, max_properties)
        self.address = address(key.host, key.port)
        self.n_points = len(points)
        by_interval: dict[float, list[_Item]] = {}
        for tag, p in points:
            src = p.source
            assert isinstance(src, BacnetSource)
            item = _Item(
                tag,
                ids[tag],
                src,
                object_id(src.object),
                property_id(src.property),
                None if src.binary else expected_units(p.unit, src.units),
            )
            by_interval.setdefault(p.poll_interval_s, []).append(item)
        self.groups: dict[float, list[_Item]] = dict(sorted(by_interval.items()))
        self.app: Application | None = None
        self._units_prop = property_id("units")
        self.mismatched: dict[str, str] = {}  # tag → units the device reports
        self._units_checked = False
        self._failures = 0
        self._next_attempt = 0.0

    # ---- the Ingestor's interface ---------------------------------------------
    def attach(self, app: Application) -> None:
        self.app = app

    def take_pending(self) -> Taken:
        return []  # readings go to the sink at once

    def decode_taken(self, taken: Taken, sink: ReadingSink | None = None) -> int:
        return 0

    def drain(self) -> int:
        return 0

    async def run(self) -> None:
        self._stopping = False
        due = dict.fromkeys(self.groups, time.monotonic())
        while not self._stopping:
            now = time.monotonic()
            for interval, group in self.groups.items():
                if due[interval] <= now and not self._stopping:
                    await self.poll_group(group)
                    nxt = due[interval] + interval
                    now2 = time.monotonic()
                    due[interval] = nxt if nxt > now2 else now2 + interval - (now2 - nxt) % interval
            await self._sleep(max(0.0, min(due.values(), default=now + 1) - time.monotonic()))

    async def poll_once(self) -> None:
        for group in self.groups.values():
            await self.poll_group(group)

    # ---- one poll ---------------------------------------------------------------
    async def poll_group(self, group: list[_Item]) -> None:
        if self.app is None:
            raise RuntimeError("BacnetPoller needs attach(app) before polling")
        if time.monotonic() < self._next_attempt:
            self._emit_failure(group, Status.NOT_CONNECTED)
            return
        try:
            checking = not self._units_checked
            if checking:
                self.mismatched.clear()
            for i in range(0, len(group), self.max_properties):
                if self._stopping:
                    return
                batch = group[i : i + self.max_properties]
                if self.use_rpm:
                    try:  # after coming up, the first read of a batch asks for its units too
                        values = await self._read_multiple(batch, units=checking)
                    except BacnetError as err:  # the service itself refused: RP from now on
                        log.info("%s refuses ReadPropertyMultiple (%s); reading point by point",
                                 self.key, err)  # fmt: skip
                        self.use_rpm = False
                if not self.use_rpm:
                    if checking:
                        await self._check_units(batch)
                    values = await self._read_each(batch)
                self._came_up()
                self._emit(batch, values)
            if checking:
                self._units_checked = True
        except DeviceTimeout as err:
            self._went_down(Status.TIMEOUT, str(err))
            self._emit_failure(group, Status.TIMEOUT)
        except DeviceError as err:
            self._went_down(Status.CONNECTION_LOST, str(err))
            self._emit_failure(group, Status.CONNECTION_LOST)
        except (ValueError, TypeError, RuntimeError, AttributeError) as err:
            # an answer bacpypes3 could not make sense of: a status, never a dead task
            log.debug("%s: unusable answer", self.key, exc_info=True)
            self._went_down(Status.BACNET_ERROR, f"unusable answer: {err!r}")
            self._emit_failure(group, Status.BACNET_ERROR)

    async def _read_multiple(self, batch: list[_Item], *, units: bool = False) -> list[Any]:
        """One ReadPropertyMultiple for the batch's values (and, with ``units``, the units of
        its analog objects, checked against the site file)."""
        assert self.app is not None
        params: list[Any] = []
        for it in batch:
            params += [it.objid, [it.prop, self._units_prop] if units and it.units else [it.prop]]
        self.stats.requests += 1
        t0 = time.monotonic()
        result = await request(
            self.app.read_property_multiple(self.address, params),
            self.config.timeout_s,
            f"{self.key} ReadPropertyMultiple",
        )
        self.stats.latency.observe(time.monotonic() - t0)  # answered (as Modbus counts it)
        if result is None:
            raise BacnetError("no ReadPropertyMultiple answer")
        got = {(tuple(oid), prop): value for oid, prop, _idx, value in result}
        if units:
            for it in batch:
                if it.units is not None:
                    self._judge_units(it, got.get((tuple(it.objid), self._units_prop)))
        return [got.get((tuple(it.objid), it.prop)) for it in batch]

    async def _read_each(self, batch: list[_Item]) -> list[Any]:
        assert self.app is not None
        out: list[Any] = []
        for it in batch:
            self.stats.requests += 1
            t0 = time.monotonic()
            try:
                out.append(
                    await request(
                        self.app.read_property(self.address, it.objid, it.prop),
                        self.config.timeout_s,
                        f"{self.key} {it.source.object}",
                    )
                )
            except BacnetError as err:
                out.append(err)  # an error answer is an answer
            self.stats.latency.observe(time.monotonic() - t0)
        return out

    async def _check_units(self, batch: list[_Item]) -> None:
        """Units of the batch's analog objects, one ReadProperty each (no RPM)."""
        assert self.app is not None
        for it in batch:
            if it.units is None:
                continue
            self.stats.requests += 1
            try:
                got = await request(
                    self.app.read_property(self.address, it.objid, self._units_prop),
                    self.config.timeout_s,
                    f"{self.key} {it.source.object} units",
                )
            except BacnetError:
                continue  # the object has no units property: nothing to check
            self._judge_units(it, got)

    def _judge_units(self, it: _Item, got: Any) -> None:
        if got is None or is_error(got):
            return  # no units property: nothing to check
        reported = canonical(str(got))
        if reported != it.units:
            self.mismatched[it.tag] = reported
            log.warning(
                "%s: %s reports units %s, the site file expects %s; its readings are "
                "flagged unit_mismatch", self.key, it.tag, reported, it.units,
            )  # fmt: skip

    # ---- readings -----------------------------------------------------------------
    def _now_us(self) -> int:
        if type(self.clock) is SystemClock:
            return time.time_ns() // 1000
        return to_us(self.clock.now())

    def _emit(self, batch: list[_Item], values: list[Any]) -> None:
        n = len(batch)
        vals = np.full(n, np.nan)
        status = np.zeros(n, dtype=np.uint8)
        for k, (it, v) in enumerate(zip(batch, values, strict=True)):
            if v is None or is_error(v) or isinstance(v, BacnetError):
                status[k] = Status.BACNET_ERROR
                if v is not None and not isinstance(v, BacnetError):
                    self.stats.last_error = describe(v)
                continue
            if it.tag in self.mismatched:
                status[k] = Status.UNIT_MISMATCH
                continue
            try:
                f = to_float(v)
            except ValueError:
                status[k] = Status.DECODE_ERROR
                continue
            if not math.isfinite(f):
                status[k] = Status.DECODE_ERROR
                continue
            vals[k] = f
        st = self.stats
        st.readings += n
        good = int(np.count_nonzero(status == 0))
        st.good += good
        for code in np.unique(status[status != 0]).tolist():
            st.statuses[code] = st.statuses.get(code, 0) + int(np.count_nonzero(status == code))
        st.last_status = Status.OK if good == n else int(status.max())
        ids = np.array([it.pid for it in batch], dtype=np.int32)
        self.sink(np.full(n, self._now_us(), dtype=np.int64), ids, vals, status)

    def _emit_failure(self, group: list[_Item], status: int) -> None:
        n = len(group)
        st = self.stats
        st.readings += n
        st.last_status = status
        st.statuses[status] = st.statuses.get(status, 0) + n
        self.sink(
            np.full(n, self._now_us(), dtype=np.int64),
            np.array([it.pid for it in group], dtype=np.int32),
            np.full(n, np.nan),
            np.full(n, status, dtype=np.uint8),
        )

    # ---- device state -------------------------------------------------------------
    def _went_down(self, status: int, detail: str) -> None:
        self._failures += 1
        self._next_attempt = time.monotonic() + self.config.backoff(self._failures, self.rng)
        self._units_checked = False  # a device that comes back may be another one
        st = self.stats
        st.last_error = detail
        if st.up or st.down_since is None:
            st.down_since = time.monotonic()
            log.warning(
                "BACnet device %s is down (%s: %s); polling continues with back-off up to %.0f s",
                self.key, status_name(status), detail, self.config.backoff_max_s,
            )  # fmt: skip
        st.up = False

    def _came_up(self) -> None:
        st = self.stats
        if not st.up:
            if st.down_since is not None:
                log.info(
                    "BACnet device %s is back after %.1f s",
                    self.key, time.monotonic() - st.down_since,
                )  # fmt: skip
            st.up = True
            st.down_since = None
        self._failures = 0
        self._next_attempt = 0.0


def bacnet_pollers(
    devices: Mapping[DeviceKey, Sequence[tuple[str, Point]]],
    ids: Mapping[str, int],
    sink: ReadingSink,
    *,
    config: PollerConfig | None = None,
    clock: Clock | None = None,
    rng: Callable[[], random.Random] | None = None,
) -> list[BacnetPoller]:
    """One poller per BACnet device of a site (``site.bacnet_devices()``)."""
    return [
        BacnetPoller(
            key, pts, ids, sink, config=config, clock=clock, rng=rng() if rng is not None else None
        )
        for key, pts in devices.items()
    ]
