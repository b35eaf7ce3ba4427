"""Site points ↔ performance-model fields: the one table that says which point is which field.

The performance model (:mod:`perfmodel`) knows :class:`~perfmodel.state.PlantState`
fields only; a site knows equipment kinds and point names. Everything that
crosses between the two reads the tables here:

* :data:`SETPOINTS` — each writable point and the field it drives, with how a
  write on one unit moves the field (:class:`Spread`), the policy ``variables``
  names the optimiser understands and the short aliases the what-if accepts;
* :data:`READS` — plain readings that set a field (first unit of a kind);
* :data:`RATED` — nameplate keys (``rated:`` in the site file) → fields;
* :data:`SENSOR_OUTPUTS` — sensor point names → the model output that predicts
  them (what a write's verification compares with).

Users: :mod:`tools.whatif` (state from readings, tag writes → model changes),
the agent's optimiser wiring (policy variables → fields → tag writes) and its
verification (predicted value of a sensor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from connectors.site import Equipment, EquipmentKind, Site

__all__ = [
    "ALIASES",
    "OPTIMISER_FIELDS",
    "RATED",
    "READS",
    "SENSOR_OUTPUTS",
    "SETPOINTS",
    "Read",
    "Setpoint",
    "Spread",
    "field_changes_to_tags",
    "model_output_for",
    "resolve_alias",
    "setpoint_for",
    "write_range",
]

K = EquipmentKind


class Spread(StrEnum):
    """How a write on one unit moves the model's one plant-wide field."""

    PLANT = "plant"  # every unit holds the same value: the write sets the field
    SHARE = "share"  # the field is the average over n running units: a write moves it by 1/n
    COUNT = "count"  # enable/disable: one more or one fewer unit running
    PERCENT_OF_RATED = "percent_of_rated"  # % of rated power → kW (≥ 100 % = no cap)


@dataclass(frozen=True)
class Setpoint:
    """A writable ``point`` on equipment of ``kind`` (id starting with ``loop``) drives ``field``.

    ``reads`` names the reading that stands for a unit's current value when the
    set point itself has not been read (a fan's speed for its speed set point).
    """

    field: str
    kind: EquipmentKind
    point: str
    spread: Spread = Spread.PLANT
    loop: str = ""
    reads: str | None = None
    variables: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def matches(self, eq: Equipment, point: str) -> bool:
        return point == self.point and eq.kind is self.kind and eq.id.startswith(self.loop)

    def units(self, site: Site) -> list[str]:
        """Ids of the site's equipment this set point lives on."""
        return [
            eq.id for eq in site.equipment if eq.kind is self.kind and eq.id.startswith(self.loop)
        ]


SETPOINTS: tuple[Setpoint, ...] = (
    Setpoint(
        "chw_supply_setpoint_c", K.CHILLER, "chw_supply_setpoint",
        variables=("chw_supply_setpoint",), aliases=("chw_supply_setpoint",),
    ),
    Setpoint(
        "cw_supply_setpoint_c", K.COOLING_TOWER, "cw_supply_setpoint",
        variables=("cw_supply_setpoint", "tower_fan"), aliases=("cw_supply_setpoint",),
    ),
    Setpoint(
        "cdu_supply_setpoint_c", K.CDU, "coolant_supply_setpoint",
        variables=("cdu_supply_setpoint",),
        aliases=("coolant_supply_setpoint", "cdu_supply_setpoint"),
    ),
    Setpoint(
        "cdu_pump_speed_pct", K.CDU, "pump_speed_setpoint", reads="pump_speed",
        variables=("cdu_pump_speed",), aliases=("cdu_pump_speed",),
    ),
    Setpoint(
        "crah_supply_air_setpoint_c", K.CRAH, "supply_air_setpoint", Spread.SHARE,
        aliases=("supply_air_setpoint", "crah_supply_air_setpoint"),
    ),
    Setpoint(
        "crah_fan_speed_pct", K.CRAH, "fan_speed_setpoint", Spread.SHARE, reads="fan_speed",
        variables=("crah_fan_speed",), aliases=("fan_speed_setpoint", "crah_fan_speed"),
    ),
    Setpoint(
        "chw_pump_speed_pct", K.PUMP, "speed_setpoint", loop="chw",
        variables=("chw_pump_speed",), aliases=("chw_pump_speed",),
    ),
    Setpoint(
        "cw_pump_speed_pct", K.PUMP, "speed_setpoint", loop="cw",
        variables=("cw_pump_speed",), aliases=("cw_pump_speed",),
    ),
    Setpoint(
        "chillers_running", K.CHILLER, "enable", Spread.COUNT,
        variables=("staging",), aliases=("chillers",),
    ),
    Setpoint(
        "gpu_power_cap_kw", K.GPU_CLUSTER, "power_cap", Spread.PERCENT_OF_RATED,
        aliases=("power_cap", "gpu_power_cap"),
    ),
)  # fmt: skip

#: Short names the what-if accepts for a field (set point aliases plus fields no point writes).
ALIASES: Mapping[str, str] = {
    **{a: s.field for s in SETPOINTS for a in s.aliases},
    "tower_fan_speed": "tower_fan_speed_pct",
    "crahs": "crah_running",
}

#: policy ``then.variables`` → the PlantState field the optimiser may move for it
OPTIMISER_FIELDS: Mapping[str, str] = {v: s.field for s in SETPOINTS for v in s.variables}


@dataclass(frozen=True)
class Read:
    """The reading of ``point`` on the first equipment of ``kind`` sets ``field``."""

    kind: EquipmentKind
    point: str
    field: str


READS: tuple[Read, ...] = (
    Read(K.GPU_CLUSTER, "it_power", "gpu_demand_kw"),
    Read(K.WEATHER, "outdoor_temp", "outdoor_drybulb_c"),
    Read(K.WEATHER, "outdoor_rh", "outdoor_rh_pct"),
    Read(K.WEATHER, "wet_bulb", "outdoor_wetbulb_c"),
    Read(K.COOLING_TOWER, "cw_supply_setpoint", "cw_supply_setpoint_c"),
    Read(K.CDU, "coolant_supply_setpoint", "cdu_supply_setpoint_c"),
    Read(K.CDU, "pump_speed", "cdu_pump_speed_pct"),
)

#: nameplate key → field, per kind (first unit of the kind; ``{loop}`` = the pump's loop)
RATED: Mapping[EquipmentKind, tuple[tuple[str, str], ...]] = {
    K.GPU_CLUSTER: (
        ("rated_power_kw", "gpu_rated_kw"),
        ("gpus", "gpus"),
        ("throttle_temp_c", "gpu_throttle_c"),
        ("liquid_fraction", "liquid_fraction"),
    ),
    K.CHILLER: (
        ("capacity_kw", "chiller_capacity_kw"),
        ("cop_rated", "chiller_cop"),
        ("design_chw_flow_ls", "chw_flow_design_per_chiller_ls"),
        ("design_cw_flow_ls", "cw_flow_design_per_chiller_ls"),
    ),
    K.PUMP: (
        ("design_flow_ls", "{loop}_pump_design_flow_ls"),
        ("rated_kw", "{loop}_pump_rated_kw"),
        ("min_speed_pct", "{loop}_pump_min_speed_pct"),
    ),
    K.COOLING_TOWER: (
        ("capacity_kw", "tower_capacity_kw"),
        ("fan_rated_kw", "tower_fan_rated_kw"),
        ("design_approach_c", "tower_design_approach_k"),
        ("design_wet_bulb_c", "tower_design_wetbulb_c"),
    ),
    K.CRAH: (("fan_rated_kw", "crah_fan_rated_kw"), ("airflow_m3s", "crah_airflow_design_m3s")),
    K.CDU: (
        ("design_flow_ls", "cdu_design_flow_ls"),
        ("pump_rated_kw", "cdu_pump_rated_kw"),
        ("r_th_k_per_w", "r_th_k_per_w"),
    ),
    K.UPS: (("capacity_kw", "ups_capacity_kw"), ("battery_kwh", "battery_kwh")),
    K.TRANSFORMER: (
        ("rated_kva", "tx_rated_kva"),
        ("no_load_loss_kw", "tx_no_load_kw"),
        ("load_loss_kw", "tx_load_loss_kw"),
    ),
}

#: sensor point name → the model output that predicts it (for verification)
SENSOR_OUTPUTS: Mapping[str, str] = {
    "coolant_supply_temp": "cdu_supply_c",
    "gpu_temp_max": "gpu_die_c",
    "rack_inlet_temp": "rack_inlet_c",
    "chw_supply_temp": "chw_supply_c",
    "cw_supply_temp": "cw_supply_c",
    "facility_power": "facility_kw",
    "cooling_power": "cooling_kw",
    "pue": "pue",
}


def setpoint_for(eq: Equipment, point: str) -> Setpoint | None:
    """The table row for a write to ``point`` of ``eq`` (None: the model has no handle)."""
    return next((s for s in SETPOINTS if s.matches(eq, point)), None)


def write_range(site: Site, name: str) -> tuple[float, float] | None:
    """The values every unit's write limits let field ``name`` take (the intersection over
    the units of its plant-wide or averaged set points; None: no point writes it directly)."""
    lo, hi, seen = -float("inf"), float("inf"), False
    for s in SETPOINTS:
        if s.field != name or s.spread not in (Spread.PLANT, Spread.SHARE):
            continue
        for u in s.units(site):
            p = site.points_by_tag.get(f"{u}.{s.point}")
            if p is None or p[1].write is None:
                continue
            lo, hi, seen = max(lo, p[1].write.min), min(hi, p[1].write.max), True
    return (lo, hi) if seen else None


def resolve_alias(name: str) -> str:
    """A short alias → its field; any other name is returned as it is."""
    return ALIASES.get(name, name)


def model_output_for(tag: str) -> str | None:
    """The model output that predicts the sensor ``tag`` (``equipment.point``), if any."""
    return SENSOR_OUTPUTS.get(tag.split(".", 1)[-1])


def field_changes_to_tags(
    site: Site, values: Mapping[str, float], field_changes: Mapping[str, float]
) -> list[tuple[str, float]]:
    """Optimiser changes (PlantState fields) back to writes on the site's writable points.

    A plant-wide field is written to every unit that holds it; a running count
    enables idle, untripped units or disables running ones (last first).
    """
    out: list[tuple[str, float]] = []
    for name, v in field_changes.items():
        for s in SETPOINTS:
            if s.field != name:
                continue
            units = s.units(site)
            if s.spread is Spread.COUNT:
                out += _staging_writes(s, units, values, round(v))
            elif s.spread is not Spread.PERCENT_OF_RATED:
                out += [(f"{u}.{s.point}", v) for u in units]
    return [(t, val) for t, val in out if t in site.points_by_tag and site.point(t).writable]


def _staging_writes(
    s: Setpoint, units: list[str], values: Mapping[str, float], target: int
) -> list[tuple[str, float]]:
    running = [u for u in units if values.get(f"{u}.running", 0.0) >= 0.5]
    idle = [u for u in units if u not in running and values.get(f"{u}.tripped", 0.0) < 0.5]
    n = target - len(running)
    if n > 0:
        return [(f"{u}.{s.point}", 1.0) for u in idle[:n]]
    if n < 0:
        return [(f"{u}.{s.point}", 0.0) for u in running[n:]]
    return []
