"""Helpers shared by the dataset importers: safe point names and a dummy-source site builder.

Recorded datasets have no Modbus map, but the site model wants a source for
every point; importers give each point a distinct input-register address on a
dummy device (127.0.0.1:502, never polled — the data arrives by replay).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.site import Site, parse_site

_REPLACEMENTS = (("%", "_pct"), ("/", "_per_"), ("(", ""), (")", ""), ("#", "num"))


def safe_name(column: str) -> str:
    """A site point name for a dataset column: ``"kW/Ton"`` → ``"kW_per_Ton"``, ``"RLA%"`` → ``"RLA_pct"``.

    Letters, digits, ``_`` and ``-`` only, starting with a letter or ``_``.
    """
    s = column.strip()
    for old, new in _REPLACEMENTS:
        s = s.replace(old, new)
    s = re.sub(r"[^A-Za-z0-9_\-]+", "_", s).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = "_" + s
    return s


@dataclass(frozen=True)
class PointSpec:
    """What an importer knows about one column: unit, Brick class, physical limits.

    ``lo``/``hi`` are the physically plausible range and ``rate`` the fastest
    plausible change (units per second), from engineering knowledge of the
    equipment — not fitted to the data, so that dirty data is caught.
    """

    unit: str
    brick: str | None = None
    lo: float | None = None
    hi: float | None = None
    rate: float | None = None
    description: str = ""


def build_site(
    name: str,
    equipment_id: str,
    kind: str,
    columns: Sequence[str],
    specs: Mapping[str, PointSpec],
    poll_interval_s: float,
    default: PointSpec,
    description: str = "",
) -> Site:
    """A one-equipment site whose points are the columns (names made safe)."""
    points = []
    seen: set[str] = set()
    for i, col in enumerate(columns):
        spec = specs.get(col, default)
        pname = safe_name(col)
        if pname in seen:
            raise ValueError(f"two columns map to the same point name {pname!r}")
        seen.add(pname)
        point: dict[str, object] = {
            "name": pname,
            "unit": spec.unit,
            "description": spec.description or col,
            "poll_interval_s": poll_interval_s,
            "source": {
                "host": "127.0.0.1",
                "port": 502,
                "device_id": 1,
                "table": "input",
                "address": 2 * i,
                "data_type": "float32",
            },
        }
        if spec.brick:
            point["brick"] = spec.brick
        if spec.lo is not None:
            point["min"] = spec.lo
        if spec.hi is not None:
            point["max"] = spec.hi
        if spec.rate is not None:
            point["max_rate"] = spec.rate
        points.append(point)
    data = {
        "name": name,
        "description": description,
        "equipment": [{"id": equipment_id, "kind": kind, "points": points}],
    }
    return parse_site(data, origin=f"<{name} importer>")
