"""Writing BACnet points: at the agent's priority, read back with the priority array.

:class:`BacnetPointWriter` is the BACnet side of the write seam
(:class:`connectors.writer.PointWriter`); :class:`connectors.writer.SiteWriter` routes
BACnet points to it. Above it the guarded actuator (``tools/actuation.py``) keeps every
rule — gate, clamp, read-back, verify, journal, rollback — unchanged:

* :meth:`write` writes ``present-value`` at the point's ``priority`` (default 13), then
  reads back ``present-value`` and ``priority-array``. When a higher priority (a lower
  number, e.g. an operator at 8) holds a value, the read-back is the operator's value and
  the write does not verify: the agent does not fight an override.
* :meth:`relinquish` writes null at the agent's priority: whatever is below it (native
  control at 16, or the relinquish-default) takes over. Rollback, revert and e-stop
  hand-back use it instead of writing an old value.
* :meth:`overridden_by` answers (priority, value) of a command above the agent's: the
  actuator refuses to write and reports it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from bacpypes3.app import Application
from bacpypes3.primitivedata import Enumerated, Null, Real, Unsigned

from connectors.bacnet.client import (
    address,
    close,
    local_address_for,
    make_application,
    object_id,
    priority_slots,
    property_id,
    request,
    to_float,
)
from connectors.clock import Clock, SystemClock
from connectors.errors import DecodeError, WriteRejected
from connectors.site import BacnetSource, Site
from connectors.writer import WriteResult, quantise


@dataclass(frozen=True)
class Readback:
    """present-value and the non-null slots of the priority array, after a write."""

    present_value: float
    slots: dict[int, float]


class BacnetPointWriter:
    """Writes BACnet points of a site and reads them back (one local application, lazily)."""

    def __init__(
        self,
        site: Site,
        *,
        timeout_s: float = 2.0,
        clock: Clock | None = None,
        local: str | None = None,
    ) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.clock = clock or SystemClock()
        hosts = [k.host for k in site.bacnet_devices()]
        self.local = local or local_address_for(hosts)
        self._app: Application | None = None
        self._lock: asyncio.Lock | None = None

    # ---- the PointWriter protocol ---------------------------------------------------
    async def write(self, tag: str, value: float) -> WriteResult:
        src = self._source(tag, writing=True)
        if not math.isfinite(value):
            raise WriteRejected(f"{tag}: refusing to write non-finite value {value}")
        written = quantise(value, src)
        await self._write_pv(tag, src, _wire(src, written))
        rb = await self.readback(tag)
        return WriteResult(tag, float(value), written, rb.present_value, self.clock.now())

    async def read(self, tag: str) -> float:
        src = self._source(tag)
        app = await self._application()
        raw = await request(
            app.read_property(address(src.host, src.port), object_id(src.object),
                              property_id(src.property)),
            self.timeout_s, f"{tag} ({src.object} at {src.address})",
        )  # fmt: skip
        try:
            return to_float(raw)
        except ValueError as err:
            raise DecodeError(f"{tag}: {err}") from err

    async def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            await close(app)

    # ---- priority array -----------------------------------------------------------------
    def can_relinquish(self, tag: str) -> bool:
        return True

    async def relinquish(self, tag: str) -> WriteResult:
        """Write null at the agent's priority; ``written`` and ``read_back`` are the value
        the point holds afterwards (native control's, an operator's, or the default)."""
        src = self._source(tag, writing=True)
        await self._write_pv(tag, src, Null(()))
        rb = await self.readback(tag)
        if src.priority in rb.slots:
            raise WriteRejected(f"{tag}: priority {src.priority} still holds a value")
        return WriteResult(tag, math.nan, rb.present_value, rb.present_value, self.clock.now())

    async def readback(self, tag: str) -> Readback:
        src = self._source(tag)
        pv = await self.read(tag)
        if not src.commandable:
            return Readback(pv, {})
        app = await self._application()
        arr = await request(
            app.read_property(address(src.host, src.port), object_id(src.object),
                              property_id("priority-array")),
            self.timeout_s, f"{tag} priority-array",
        )  # fmt: skip
        return Readback(pv, priority_slots(arr))

    async def overridden_by(self, tag: str) -> tuple[int, float] | None:
        """(priority, value) of the highest command above the agent's priority, else None."""
        src = self._source(tag)
        if not src.commandable:
            return None
        rb = await self.readback(tag)
        above = sorted(p for p in rb.slots if p < src.priority)
        return (above[0], rb.slots[above[0]]) if above else None

    async def agent_slot(self, tag: str) -> float | None:
        """What the agent's own priority slot holds (None: relinquished)."""
        src = self._source(tag)
        return (await self.readback(tag)).slots.get(src.priority)

    # ---- internals ------------------------------------------------------------------------
    def _source(self, tag: str, *, writing: bool = False) -> BacnetSource:
        try:
            point = self.site.point(tag)
        except KeyError as err:
            raise WriteRejected(str(err)) from None
        src = point.source
        if not isinstance(src, BacnetSource):
            raise WriteRejected(f"{tag} is not a BACnet point")
        if writing and (not point.writable or not src.commandable):
            raise WriteRejected(f"{tag} is not a writable point")
        return src

    async def _application(self) -> Application:
        if self._app is None:
            self._app = make_application(self.local)
        return self._app

    async def _write_pv(self, tag: str, src: BacnetSource, value: object) -> None:
        app = await self._application()
        await request(
            app.write_property(address(src.host, src.port), object_id(src.object),
                               property_id(src.property), value, priority=src.priority),
            self.timeout_s, f"{tag} write at priority {src.priority}",
        )  # fmt: skip


def _wire(src: BacnetSource, value: float) -> object:
    """The BACnet primitive a value goes on the wire as for this object type."""
    if src.binary:
        return Enumerated(1 if value >= 0.5 else 0)
    if src.object_type.startswith("multi-state"):
        return Unsigned(round(value))
    return Real(value)
