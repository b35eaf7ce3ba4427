"""Discovery: Who-Is a BACnet/IP address, read its device and objects, draft a site section.

:func:`discover` asks one address (``HOST:PORT``) Who-Is, reads the answering device's
``object-list`` and, per object, its name, description, units and present value (one
ReadPropertyMultiple per object, ReadProperty when the device refuses it).
:func:`draft_section` renders what was found as YAML an integrator edits and pastes into a
site file: one ``device_defaults`` entry and one equipment whose points refer to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from connectors.bacnet.client import (
    BacnetError,
    address,
    close,
    is_error,
    local_address_for,
    make_application,
    object_id,
    property_id,
    request,
)
from connectors.bacnet.units import canonical, site_unit_for
from connectors.errors import DeviceError, DeviceTimeout
from connectors.site import BACNET_COMMANDABLE, BACNET_OBJECT_TABLES

_PROPS = ("object-name", "description", "units", "present-value")


@dataclass
class FoundObject:
    object: str  # "analog-input,3"
    name: str = ""
    description: str = ""
    units: str | None = None  # canonical BACnet name
    present_value: Any = None

    @property
    def object_type(self) -> str:
        return self.object.split(",")[0]


@dataclass
class FoundDevice:
    address: str
    instance: int
    name: str = ""
    vendor: str = ""
    objects: list[FoundObject] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # object types a site cannot use


async def discover(addr: str, *, timeout_s: float = 3.0, device: int | None = None) -> FoundDevice:
    """Who-Is ``addr`` (HOST:PORT) and read everything a site section needs."""
    host, _, port_s = addr.rpartition(":")
    if not host or not port_s.isdigit():
        raise DeviceError(f"address must be HOST:PORT, not {addr!r}")
    target = address(host, int(port_s))
    app = make_application(local_address_for([host]))
    try:
        iams = await request(
            app.who_is(device, device, target, timeout=timeout_s), timeout_s + 2, f"Who-Is {addr}"
        )
        if not iams:
            raise DeviceTimeout(f"{addr}: no I-Am within {timeout_s:g} s (is a device there?)")
        inst = int(iams[0].iAmDeviceIdentifier[1])
        dev_id = object_id(f"device,{inst}")
        found = FoundDevice(addr, inst)

        async def rp(obj: Any, prop: str) -> Any:
            return await request(
                app.read_property(target, obj, property_id(prop)), timeout_s, f"{addr} {prop}"
            )

        found.name = str(await rp(dev_id, "object-name"))
        try:
            found.vendor = str(await rp(dev_id, "vendor-name"))
        except BacnetError:
            found.vendor = ""
        for oid in await rp(dev_id, "object-list"):
            kind, inst_n = str(oid[0]), int(oid[1])
            if kind not in BACNET_OBJECT_TABLES:
                if kind not in ("device", "network-port"):
                    found.skipped.append(f"{kind},{inst_n}")
                continue
            obj = FoundObject(f"{kind},{inst_n}")
            values = await _read_props(app, target, object_id(obj.object), timeout_s, addr)
            obj.name = str(values.get("object-name") or obj.object)
            obj.description = str(values.get("description") or "")
            if values.get("units") is not None:
                obj.units = canonical(str(values["units"]))
            obj.present_value = values.get("present-value")
            found.objects.append(obj)
        return found
    finally:
        await close(app)


async def _read_props(
    app: Any, target: Any, oid: Any, timeout_s: float, addr: str
) -> dict[str, Any]:
    try:
        res = await request(
            app.read_property_multiple(target, [oid, [property_id(p) for p in _PROPS]]),
            timeout_s,
            f"{addr} ReadPropertyMultiple",
        )
        return {str(prop): v for _o, prop, _i, v in res or [] if not is_error(v)}
    except BacnetError:
        out: dict[str, Any] = {}
        for p in _PROPS:
            try:
                out[p] = await request(
                    app.read_property(target, oid, property_id(p)), timeout_s, f"{addr} {p}"
                )
            except BacnetError:
                continue
        return out


def _ident(text: str, fallback: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_\-]+", "_", text.strip()).strip("_-").lower()
    if not s or not re.match(r"[A-Za-z_]", s):
        s = f"{fallback}_{s}" if s else fallback
    return s


def draft_section(found: FoundDevice) -> str:
    """The draft site-file section (YAML, with comments) for a discovered device."""
    dev_name = _ident(found.name, f"device_{found.instance}")
    points: list[dict[str, Any]] = []
    names: set[str] = set()
    for o in found.objects:
        name = _ident(o.name.split(".")[-1], o.object.replace(",", "_").replace("-", "_"))
        while name in names:
            name += "_"
        names.add(name)
        binary = o.object_type.startswith("binary-")
        unit = "bool" if binary else site_unit_for(o.units) if o.units else "1"
        p: dict[str, Any] = {"name": name, "unit": unit}
        if o.description:
            p["description"] = o.description
        p["source"] = {"object": o.object}
        if o.object_type in BACNET_COMMANDABLE:
            p["write"] = {"min": 0, "max": 1} if binary else {"min": "TODO", "max": "TODO"}
        points.append(p)
    section = {
        "device_defaults": {
            dev_name: {"protocol": "bacnet", "address": found.address, "device": found.instance}
        },
        "equipment": [
            {"id": dev_name, "kind": "other", "name": found.name, "device_ref": dev_name,
             "points": points}
        ],
    }  # fmt: skip
    head = [
        f"# BACnet device {found.instance} '{found.name}' at {found.address}"
        + (f" ({found.vendor})" if found.vendor else ""),
        f"# {len(points)} objects; draft by `facility-agent discover bacnet`: set each",
        "# equipment kind, Brick classes, plausible min/max and the write limits (TODO),",
        "# then paste under your site file's device_defaults: and equipment:.",
    ]
    if found.skipped:
        head.append(f"# not mapped (object types a site cannot use): {', '.join(found.skipped)}")
    body = yaml.safe_dump(section, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(head) + "\n" + body
