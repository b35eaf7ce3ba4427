"""Which of the twin's equipment speak BACnet, and their object map (pure).

A real plant mixes protocols: chillers and power on Modbus, CRAHs and the CDU on BACnet.
:func:`to_bacnet` turns chosen equipment of a (Modbus) site into BACnet/IP devices on
127.0.0.1, one device per equipment on its own UDP port, described once under the site's
``device_defaults`` (points refer to it with ``device_ref``):

* input registers → ``analog-input``, discrete inputs → ``binary-input``;
* holding registers (set points) → commandable ``analog-value``;
* coils → commandable ``binary-output``.

Instances count per object type in file order, from 0. The twin keeps serving the same
equipment over Modbus too (the Modbus map is the original site), so Modbus clients and
tests see no change; a site from :func:`to_bacnet` reads those points over BACnet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.site import Site, Table, parse_site

#: The twin's equipment served over BACnet by default.
BACNET_EQUIPMENT = ("crah_1", "crah_2", "crah_3", "crah_4", "cdu_1")
#: First UDP port of the twin's BACnet devices (47808 is left to a real BACnet stack).
BACNET_BASE_PORT = 47810
#: Device instance of the first BACnet device (the others follow).
BACNET_BASE_INSTANCE = 1001

_OBJECT_TYPE = {
    Table.INPUT: "analog-input",
    Table.DISCRETE: "binary-input",
    Table.HOLDING: "analog-value",
    Table.COIL: "binary-output",
}


def to_bacnet(
    site: Site,
    equipment: Iterable[str] = BACNET_EQUIPMENT,
    *,
    host: str = "127.0.0.1",
    base_port: int = BACNET_BASE_PORT,
    base_instance: int = BACNET_BASE_INSTANCE,
    priority: int | None = None,
    ports: Sequence[int] | None = None,
) -> Site:
    """``site`` with ``equipment`` moved to BACnet/IP devices (see the module docstring);
    ``ports`` (one per equipment) replaces ``base_port + n``."""
    data: dict[str, Any] = site.model_dump(mode="json", exclude_defaults=False)
    wanted = list(equipment)
    known = {eq["id"] for eq in data["equipment"]}
    missing = [e for e in wanted if e not in known]
    if missing:
        raise KeyError(f"no equipment {', '.join(missing)} in site {site.name}")
    defaults = dict(data.get("device_defaults") or {})
    for n, eq_id in enumerate(wanted):
        eq = next(e for e in data["equipment"] if e["id"] == eq_id)
        name = f"{eq_id}_bacnet"
        dev: dict[str, Any] = {
            "protocol": "bacnet",
            "address": f"{host}:{ports[n] if ports is not None else base_port + n}",
            "device": base_instance + n,
        }
        if priority is not None:
            dev["priority"] = priority
        defaults[name] = dev
        eq["device_ref"] = name
        counters: dict[str, int] = {}
        for p in eq["points"]:
            kind = _OBJECT_TYPE[Table(p["source"]["table"])]
            inst = counters.get(kind, 0)
            counters[kind] = inst + 1
            p["source"] = {"object": f"{kind},{inst}"}
    data["device_defaults"] = defaults
    return parse_site(data, origin=f"{site.name}+bacnet")


_MIXED_DEFAULT: Site | None = None


def bacnet_twin_site(site: Site | None = None) -> Site:
    """The twin's site as the agent sees it with BACnet on: CRAHs and CDU over BACnet.

    Without ``site``: the twin's default site (``twin/site.yaml``) so converted — the
    default site of the agent's commands (built once per process)."""
    global _MIXED_DEFAULT
    if site is not None:
        return to_bacnet(site)
    if _MIXED_DEFAULT is None:
        from connectors.site import load_site
        from twin import default_site_path

        _MIXED_DEFAULT = to_bacnet(load_site(default_site_path()))  # not the twin's cached one
    return _MIXED_DEFAULT


def synthetic_bacnet_site(
    points: int = 1000,
    devices: int = 4,
    *,
    host: str = "127.0.0.1",
    ports: Sequence[int] | None = None,
    base_port: int = BACNET_BASE_PORT,
    poll_interval_s: float = 1.0,
) -> Site:
    """A deterministic site of ``points`` analog-input points over ``devices`` BACnet
    devices (instances 1…N, one UDP port each): the BACnet benchmark's plant."""
    per = [points // devices + (1 if i < points % devices else 0) for i in range(devices)]
    defaults: dict[str, Any] = {}
    equipment: list[dict[str, Any]] = []
    for d, n in enumerate(per):
        name = f"bdev{d + 1:02d}"
        port = ports[d] if ports is not None else base_port + d
        defaults[name] = {"protocol": "bacnet", "address": f"{host}:{port}", "device": d + 1}
        pts = [
            {
                "name": f"p{i:05d}",
                "unit": "degC",
                "poll_interval_s": poll_interval_s,
                "source": {"object": f"analog-input,{i}"},
            }
            for i in range(n)
        ]
        equipment.append({"id": name, "kind": "other", "device_ref": name, "points": pts})
    return parse_site(
        {"name": "synthetic-bacnet", "device_defaults": defaults, "equipment": equipment},
        origin="<synthetic-bacnet>",
    )


def synthetic_bacnet_value(i: int) -> float:
    """A deterministic value a BACnet REAL holds exactly."""
    return float((i * 37) % 1000) / 4.0
