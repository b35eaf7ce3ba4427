"""Serve a site's BACnet points as BACnet/IP devices on their own UDP ports (bacpypes3).

:class:`BacnetSiteServer` runs one bacpypes3 application per BACnet device of the site
(``site.bacnet_devices()``: address HOST:PORT and device instance), with one object per
point: analog-input / binary-input for measurements, commandable analog-value /
analog-output / binary-output (a priority array, a relinquish-default) for set points.
Every object carries the units the site file expects, the point's description and its tag
as the object name — what discovery reads.

:meth:`set` is the twin's native control: a measurement's present-value, or a set point's
**priority 16** slot, so a client writing at 13 (the agent) overrides it and its
relinquish hands control back. Every client command is reported to :meth:`on_command`
callbacks as ``(tag, slots)`` — the non-null slots above 16 after the write — which
:class:`twin.sim.TwinRunner` turns into the twin's agent write, operator override or
release. :meth:`stop_device`/:meth:`start_device` kill and revive one device (its socket
closes: requests time out, as a dead controller's do).

Run it with the twin: ``facility-agent twin --bacnet`` (see :mod:`twin.bacnet_map`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bacpypes3.app import Application
from bacpypes3.basetypes import EngineeringUnits, PriorityValue
from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryInputObject, BinaryOutputObject, BinaryValueObjectCmd

from connectors.bacnet.client import close, make_application, priority_slots, ready, to_float
from connectors.bacnet.units import expected_units
from connectors.site import BacnetSource, DeviceKey, Point, Site

log = logging.getLogger(__name__)

CommandCallback = Callable[[str, dict[int, float]], None]
"""``cb(tag, slots)``: a client commanded ``tag``; ``slots`` are the non-null priorities
1–15 after the write (16 is the twin's own native control)."""

NATIVE_PRIORITY = 16


class _Notify:
    """Mixin: report every client write of a commandable object to the server."""

    _on_command: Callable[[Any], None] | None = None

    async def write_property(  # type: ignore[no-untyped-def]
        self, attr, value, index=None, priority=None
    ) -> None:
        await super().write_property(attr, value, index, priority)  # type: ignore[misc]
        if self._on_command is not None:
            self._on_command(self)


class _AV(_Notify, AnalogValueObjectCmd):
    pass


class _AO(_Notify, AnalogOutputObject):
    pass


class _BO(_Notify, BinaryOutputObject):
    pass


class _BV(_Notify, BinaryValueObjectCmd):
    pass


def _camel(units: str) -> str:
    head, *rest = units.split("-")
    return head + "".join(w.capitalize() for w in rest)


def _binary(value: float) -> str:
    return "active" if value >= 0.5 else "inactive"


def make_object(tag: str, point: Point, value: float) -> Any:
    """The bacpypes3 local object serving ``point`` (initial ``value``)."""
    src = point.source
    assert isinstance(src, BacnetSource)
    kind = src.object_type
    common: dict[str, Any] = {
        "objectIdentifier": (kind, src.instance),
        "objectName": tag,
        "description": point.description or tag,
    }
    units = expected_units(point.unit, src.units)
    if not src.binary:
        common["units"] = EngineeringUnits(_camel(units)) if units else EngineeringUnits("noUnits")
    if kind == "analog-input":
        return AnalogInputObject(presentValue=float(value), **common)
    if kind in ("analog-value", "analog-output"):
        cls = _AV if kind == "analog-value" else _AO
        return cls(presentValue=float(value), relinquishDefault=float(value), **common)
    if kind == "binary-input":
        return BinaryInputObject(presentValue=_binary(value), **common)
    if kind in ("binary-output", "binary-value"):
        cls2 = _BO if kind == "binary-output" else _BV
        return cls2(presentValue=_binary(value), relinquishDefault=_binary(value), **common)
    raise ValueError(f"{tag}: the twin does not serve {kind} objects")


class _Device:
    def __init__(self, key: DeviceKey, points: Sequence[tuple[str, Point]]) -> None:
        self.key = key
        self.points = list(points)
        self.app: Application | None = None
        self.objects: dict[str, Any] = {}


class BacnetSiteServer:
    """Serves the BACnet points of a site: one BACnet/IP device per (address, instance)."""

    def __init__(self, site: Site, *, no_rpm: Iterable[int] = ()) -> None:
        """``no_rpm``: device instances that reject ReadPropertyMultiple (unrecognized
        service), as some small controllers do."""
        self.site = site
        self.no_rpm = set(no_rpm)
        self._devices = {k: _Device(k, pts) for k, pts in site.bacnet_devices().items()}
        self._tag_device = {t: d for d in self._devices.values() for t, _ in d.points}
        self._values: dict[str, float] = dict.fromkeys(self._tag_device, 0.0)
        self._callbacks: list[CommandCallback] = []
        self._tag_of: dict[int, str] = {}

    # ---- lifecycle ------------------------------------------------------------------
    @property
    def keys(self) -> list[DeviceKey]:
        return list(self._devices)

    @property
    def ports(self) -> list[int]:
        return sorted(k.port for k in self._devices)

    def tags(self) -> list[str]:
        return list(self._tag_device)

    async def start(self) -> None:
        for key in self._devices:
            await self.start_device(key)

    async def stop(self) -> None:
        for key in self._devices:
            await self.stop_device(key)

    async def start_device(self, key: DeviceKey) -> None:
        """Start (or revive) one device; its objects keep the values and commands they had."""
        self._start(key)
        app = self._devices[key].app
        if app is not None:
            await ready(app)

    async def stop_device(self, key: DeviceKey) -> None:
        """Close one device's socket: its requests go unanswered (a dead controller)."""
        app = self._devices[key].app
        self._stop(key)
        if app is not None:
            await close(app)

    def set_device_offline(self, instance: int, offline: bool = True) -> None:
        """The twin's comm-loss fault: the device with ``instance`` stops answering (or is
        back). Call on the running event loop."""
        for key in self._devices:
            if key.device_id == instance:
                (self._stop if offline else self._start)(key)

    def _start(self, key: DeviceKey) -> None:
        dev = self._devices[key]
        if dev.app is not None:
            return
        if not dev.objects:
            for tag, p in dev.points:
                obj = make_object(tag, p, self._values[tag])
                if isinstance(obj, _Notify):
                    obj._on_command = self._commanded
                dev.objects[tag] = obj
                self._tag_of[id(obj)] = tag
        for obj in dev.objects.values():  # detach from a closed application, if any
            obj._app = None
        dev.app = make_application(
            f"{key.host}/8:{key.port}" if key.host.startswith("127.") else f"{key.host}:{key.port}",
            instance=key.device_id,
            name=dev.points[0][0].split(".")[0] if dev.points else f"device-{key.device_id}",
            objects=dev.objects.values(),
        )
        if key.device_id in self.no_rpm:  # no handler: bacpypes3 rejects the service
            dev.app.do_ReadPropertyMultipleRequest = None
        log.debug("BACnet device %s serving %d objects", key, len(dev.objects))

    def _stop(self, key: DeviceKey) -> None:
        dev = self._devices[key]
        if dev.app is not None:
            dev.app.close()
            dev.app = None

    def device_of(self, tag: str) -> DeviceKey:
        return self._tag_device[tag].key

    async def __aenter__(self) -> BacnetSiteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- values ---------------------------------------------------------------------
    def set(self, tag: str, value: float) -> None:
        """Native control: a measurement's present-value, a set point's priority-16 slot."""
        if tag not in self._tag_device:
            raise KeyError(f"unknown BACnet point {tag!r}")
        self._values[tag] = float(value)
        obj = self._tag_device[tag].objects.get(tag)
        if obj is None:
            return
        binary = self.site.point(tag).source.data_type.value == "bool"
        v: Any = _binary(value) if binary else float(value)
        if hasattr(obj, "priorityArray"):
            cur = obj.priorityArray[NATIVE_PRIORITY - 1]
            if getattr(cur, "null", None) is None and getattr(cur, cur._choice, None) == v:
                return
            obj.presentValue = v  # a commandable object puts it in slot 16
        else:
            obj.presentValue = v

    def set_many(self, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            if tag in self._tag_device:
                self.set(tag, value)

    def get(self, tag: str) -> float:
        """The present-value served for ``tag`` (what a client reads)."""
        obj = self._tag_device[tag].objects.get(tag)
        if obj is None:
            return self._values[tag]
        return to_float(obj.presentValue)

    def slots(self, tag: str) -> dict[int, float]:
        """Non-null priority-array slots of a commandable point (empty otherwise)."""
        obj = self._tag_device[tag].objects.get(tag)
        if obj is None or not hasattr(obj, "priorityArray"):
            return {}
        return priority_slots(obj.priorityArray)

    def command(self, tag: str, value: float | None, priority: int) -> None:
        """Write (or relinquish, ``None``) a slot locally, as a BMS operator panel would."""
        obj = self._tag_device[tag].objects[tag]
        binary = self.site.point(tag).source.data_type.value == "bool"
        pv = (
            PriorityValue(null=())
            if value is None
            else PriorityValue(enumerated=1 if value >= 0.5 else 0)
            if binary
            else PriorityValue(real=float(value))
        )
        obj.priorityArray[priority - 1] = pv
        self._commanded(obj)

    def drop(self, tag: str, priority: int) -> None:
        """Empty one slot without reporting it (the BMS itself lets a command go)."""
        obj = self._tag_device[tag].objects.get(tag)
        if obj is not None and hasattr(obj, "priorityArray"):
            obj.priorityArray[priority - 1] = PriorityValue(null=())

    def commandable(self) -> list[str]:
        """Tags of the commandable (priority-array) points."""
        return [t for t in self._tag_device if self.site.point(t).source.table.writable]

    def on_command(self, cb: CommandCallback) -> None:
        self._callbacks.append(cb)

    def _commanded(self, obj: Any) -> None:
        tag = self._tag_of.get(id(obj))
        if tag is None:
            return
        slots = {p: v for p, v in priority_slots(obj.priorityArray).items() if p < NATIVE_PRIORITY}
        for cb in self._callbacks:
            try:
                cb(tag, slots)
            except Exception:  # a callback's bug must not kill the device
                log.exception("on_command callback failed for %s", tag)


# --------------------------------------------------------------------------- another process


async def _serve_synthetic(points: int, devices: int, ports: list[int]) -> None:
    import asyncio
    import contextlib
    import os
    import signal
    import sys

    from twin.bacnet_map import synthetic_bacnet_site, synthetic_bacnet_value

    site = synthetic_bacnet_site(points, devices, ports=ports)
    server = BacnetSiteServer(site)
    server.set_many({t: synthetic_bacnet_value(i) for i, t in enumerate(site.point_ids)})
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    def _on_stdin() -> None:  # the parent holds our stdin: when it dies, we stop too
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    loop.add_reader(sys.stdin.fileno(), _on_stdin)
    print(f"READY {points} points on UDP {','.join(map(str, ports))}", flush=True)
    await stop.wait()
    await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m twin.bacnet_server --points N --ports P1,P2,…``: a synthetic BACnet plant
    of N analog inputs over one device per port (the BACnet benchmark's server)."""
    import argparse
    import asyncio

    p = argparse.ArgumentParser(prog="python -m twin.bacnet_server", description=main.__doc__)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--ports", required=True, help="comma-separated UDP ports, one per device")
    args = p.parse_args(argv)
    ports = [int(x) for x in args.ports.split(",")]
    asyncio.run(_serve_synthetic(args.points, len(ports), ports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
