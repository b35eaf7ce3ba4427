"""The agent's what-if tool: live readings of a site → PlantState → Prediction.

``state_from_values(site, values)`` builds the performance model's
:class:`~perfmodel.whatif.PlantState` from the latest values of a site's points
(tags ``equipment.point`` as in ``twin/site.yaml``) and the equipment's
nameplate (``rated``). ``check(site, values, changes)`` predicts what a set of
point writes would do; changes may name site tags (``"ct_1.cw_supply_setpoint"``)
or PlantState fields (``"chw_supply_setpoint_c"``).

Equipment is found by kind (chiller, cooling_tower, pump, crah, cdu,
gpu_cluster, ups, transformer, pdu, weather); pumps by id prefix ``chw_`` /
``cw_``. A missing reading keeps the model's design value for that field (the
state says which via ``missing``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from connectors.site import Equipment, EquipmentKind, Site
from perfmodel.whatif import Change, PlantState, Prediction, whatif, whatif_many

__all__ = [
    "StateBuild",
    "TagChange",
    "build_state",
    "changes_from_tags",
    "check",
    "check_many",
    "state_from_values",
]


@dataclass(frozen=True)
class TagChange:
    """A write to a site point: ``tag`` to ``value`` (or by ``value`` when ``relative``)."""

    tag: str
    value: float
    relative: bool = False


@dataclass(frozen=True)
class StateBuild:
    """The state plus what could not be read (so callers can lower confidence)."""

    state: PlantState
    missing: list[str]


def _of_kind(site: Site, kind: EquipmentKind) -> list[Equipment]:
    return [eq for eq in site.equipment if eq.kind is kind]


def _val(values: Mapping[str, float], tag: str) -> float | None:
    v = values.get(tag)
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _has(eq: Equipment, point: str) -> bool:
    return any(p.name == point for p in eq.points)


def build_state(
    site: Site, values: Mapping[str, float], base: PlantState | None = None
) -> StateBuild:
    """PlantState from ``values`` (tag → latest value) and nameplates; see module docstring."""
    s = base or PlantState()
    upd: dict[str, float] = {}
    missing: list[str] = []

    def read(eq: Equipment, point: str) -> float | None:
        tag = f"{eq.id}.{point}"
        if not _has(eq, point):
            return None
        v = _val(values, tag)
        if v is None:
            missing.append(tag)
        return v

    def rated(eq: Equipment, key: str, name: str) -> None:
        if key in eq.rated:
            upd[name] = float(eq.rated[key])

    # GPU cluster ----------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.GPU_CLUSTER)[:1]:
        rated(eq, "rated_power_kw", "gpu_rated_kw")
        rated(eq, "gpus", "gpus")
        rated(eq, "throttle_temp_c", "gpu_throttle_c")
        rated(eq, "liquid_fraction", "liquid_fraction")
        rated_kw = upd.get("gpu_rated_kw", s.gpu_rated_kw)
        it = read(eq, "it_power")
        if it is not None:
            upd["gpu_demand_kw"] = it
        cap = read(eq, "power_cap")
        if cap is not None:
            upd["gpu_power_cap_kw"] = math.inf if cap >= 100.0 else cap / 100.0 * rated_kw
    # weather ----------------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.WEATHER)[:1]:
        for point, name in (
            ("outdoor_temp", "outdoor_drybulb_c"),
            ("outdoor_rh", "outdoor_rh_pct"),
        ):
            v = read(eq, point)
            if v is not None:
                upd[name] = v
        wb = read(eq, "wet_bulb")
        if wb is not None:
            upd["outdoor_wetbulb_c"] = wb
    # chillers ---------------------------------------------------------------------------
    chillers = _of_kind(site, EquipmentKind.CHILLER)
    if chillers:
        upd["chillers_installed"] = float(len(chillers))
        first = chillers[0]
        rated(first, "capacity_kw", "chiller_capacity_kw")
        rated(first, "cop_rated", "chiller_cop")
        rated(first, "design_chw_flow_ls", "chw_flow_design_per_chiller_ls")
        rated(first, "design_cw_flow_ls", "cw_flow_design_per_chiller_ls")
        running = 0.0
        available = 0.0
        seen_run = False
        setpoints: list[float] = []
        for eq in chillers:
            run = read(eq, "running")
            trip = read(eq, "tripped")
            seen_run |= run is not None
            is_running = run is not None and run >= 0.5
            running += float(is_running)
            available += 0.0 if (trip is not None and trip >= 0.5) else 1.0
            sp = read(eq, "chw_supply_setpoint")
            if sp is not None and (is_running or not seen_run):
                setpoints.append(sp)
        if seen_run:  # no run status at all: keep the design staging
            upd["chillers_running"] = running
        upd["chillers_available"] = available
        if setpoints:
            upd["chw_supply_setpoint_c"] = sum(setpoints) / len(setpoints)
    # pumps ------------------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.PUMP):
        prefix = "chw" if eq.id.startswith("chw") else "cw" if eq.id.startswith("cw") else None
        if prefix is None:
            continue
        rated(eq, "design_flow_ls", f"{prefix}_pump_design_flow_ls")
        rated(eq, "rated_kw", f"{prefix}_pump_rated_kw")
        rated(eq, "min_speed_pct", f"{prefix}_pump_min_speed_pct")
        speed = read(eq, "speed")
        run = read(eq, "running")
        if speed is not None:
            upd[f"{prefix}_pump_speed_pct"] = speed if (run is None or run >= 0.5) else 0.0
    # tower ------------------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.COOLING_TOWER)[:1]:
        rated(eq, "capacity_kw", "tower_capacity_kw")
        rated(eq, "fan_rated_kw", "tower_fan_rated_kw")
        rated(eq, "design_approach_c", "tower_design_approach_k")
        rated(eq, "design_wet_bulb_c", "tower_design_wetbulb_c")
        sp = read(eq, "cw_supply_setpoint")
        if sp is not None:
            upd["cw_supply_setpoint_c"] = sp
    # CRAHs ------------------------------------------------------------------------------
    crahs = _of_kind(site, EquipmentKind.CRAH)
    if crahs:
        upd["crah_units"] = float(len(crahs))
        rated(crahs[0], "fan_rated_kw", "crah_fan_rated_kw")
        rated(crahs[0], "airflow_m3s", "crah_airflow_design_m3s")
        n_run = 0.0
        seen_crah = False
        speeds: list[float] = []
        sps: list[float] = []
        for eq in crahs:
            run = read(eq, "fan_running")
            fault = _val(values, f"{eq.id}.fan_fault")
            seen_crah |= run is not None
            on = (run is None or run >= 0.5) and not (fault is not None and fault >= 0.5)
            if not on:
                continue
            n_run += 1.0
            sp_speed = read(eq, "fan_speed")
            if sp_speed is not None:
                speeds.append(sp_speed)
            sp = read(eq, "supply_air_setpoint")
            if sp is not None:
                sps.append(sp)
        if seen_crah:  # no run status at all: keep the design count
            upd["crah_running"] = n_run
        if speeds:
            upd["crah_fan_speed_pct"] = sum(speeds) / len(speeds)
        if sps:
            upd["crah_supply_air_setpoint_c"] = sum(sps) / len(sps)
    # CDU --------------------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.CDU)[:1]:
        rated(eq, "design_flow_ls", "cdu_design_flow_ls")
        rated(eq, "pump_rated_kw", "cdu_pump_rated_kw")
        rated(eq, "r_th_k_per_w", "r_th_k_per_w")
        sp = read(eq, "coolant_supply_setpoint")
        if sp is not None:
            upd["cdu_supply_setpoint_c"] = sp
        speed = read(eq, "pump_speed")
        if speed is not None:
            upd["cdu_pump_speed_pct"] = speed
    # power chain ------------------------------------------------------------------------
    for eq in _of_kind(site, EquipmentKind.UPS)[:1]:
        rated(eq, "capacity_kw", "ups_capacity_kw")
        rated(eq, "battery_kwh", "battery_kwh")
    for eq in _of_kind(site, EquipmentKind.TRANSFORMER)[:1]:
        rated(eq, "rated_kva", "tx_rated_kva")
        rated(eq, "no_load_loss_kw", "tx_no_load_kw")
        rated(eq, "load_loss_kw", "tx_load_loss_kw")
    pdus = _of_kind(site, EquipmentKind.PDU)
    if pdus and all("rated_kw" in eq.rated for eq in pdus):
        upd["pdu_rated_kw"] = sum(float(eq.rated["rated_kw"]) for eq in pdus)
    return StateBuild(state=replace(s, **upd), missing=missing)  # type: ignore[arg-type]


def state_from_values(site: Site, values: Mapping[str, float]) -> PlantState:
    """PlantState for the performance model from the latest ``values`` (tag → value) of ``site``."""
    return build_state(site, values).state


# ---- tag writes → model changes ------------------------------------------------------------

# point name -> (PlantState field, kind of mapping)
_POINT_FIELDS: dict[str, str] = {
    "chw_supply_setpoint": "chw_supply_setpoint_c",
    "cw_supply_setpoint": "cw_supply_setpoint_c",
    "coolant_supply_setpoint": "cdu_supply_setpoint_c",
    "supply_air_setpoint": "crah_supply_air_setpoint_c",
    "fan_speed_setpoint": "crah_fan_speed_pct",
}


def changes_from_tags(
    site: Site,
    state: PlantState,
    writes: Sequence[TagChange],
    values: Mapping[str, float] | None = None,
) -> list[Change]:
    """Translate point writes into model changes.

    * ``chiller_N.chw_supply_setpoint`` / ``ct_1.cw_supply_setpoint`` /
      ``cdu_1.coolant_supply_setpoint``: plant-wide setpoints (absolute);
    * ``crah_N.supply_air_setpoint`` / ``fan_speed_setpoint``: one of n running
      CRAHs moves the average by (new − old)/n;
    * ``chw_pump_1.speed_setpoint`` / ``cw_pump_1.speed_setpoint``: pump speed %;
    * ``chiller_N.enable``: ±1 running chiller (none when it already runs / is
      already off, as ``values`` tell); ``gpu.power_cap`` (% of TDP) → kW.
    Plant-state field names pass through unchanged. ``values`` (the readings the
    state came from) give each unit's own current value where the model keeps
    only an average.
    """
    vals = values or {}
    out: list[Change] = []
    for w in writes:
        if "." not in w.tag and w.tag not in site.points_by_tag:
            out.append(Change(w.tag, w.value, w.relative))
            continue
        eq_id, point = w.tag.split(".", 1)
        eq = site.equipment_by_id(eq_id)
        if point == "enable" and eq.kind is EquipmentKind.CHILLER:
            running = _val(vals, f"{eq_id}.running")
            on = (w.value >= 0.5) if not w.relative else (w.value > 0)
            if running is None or (running >= 0.5) != on:
                out.append(Change("chillers_running", 1.0 if on else -1.0, relative=True))
        elif point == "power_cap":
            pct = w.value
            if w.relative:
                cur = state.gpu_power_cap_kw / state.gpu_rated_kw * 100.0
                pct = min(cur, 100.0) + w.value
            kw = math.inf if pct >= 100.0 else pct / 100.0 * state.gpu_rated_kw
            out.append(Change("gpu_power_cap_kw", kw))
        elif point == "speed_setpoint" and eq.kind is EquipmentKind.PUMP:
            name = "chw_pump_speed_pct" if eq_id.startswith("chw") else "cw_pump_speed_pct"
            out.append(Change(name, w.value, w.relative))
        elif (
            point in ("supply_air_setpoint", "fan_speed_setpoint") and eq.kind is EquipmentKind.CRAH
        ):
            name = _POINT_FIELDS[point]
            n = max(state.crah_running, 1.0)
            if w.relative:
                out.append(Change(name, w.value / n, relative=True))
            else:
                # the unit's own value when read (its setpoint, else its speed), else the average
                own = _val(vals, w.tag)
                if own is None and point == "fan_speed_setpoint":
                    own = _val(vals, f"{eq_id}.fan_speed")
                cur = own if own is not None else float(getattr(state, name))
                out.append(Change(name, (w.value - cur) / n, relative=True))
        elif point in _POINT_FIELDS:
            out.append(Change(_POINT_FIELDS[point], w.value, w.relative))
        else:
            raise KeyError(f"the what-if model has no handle for {w.tag!r}")
    return out


def _as_changes(
    site: Site,
    state: PlantState,
    changes: Sequence[TagChange | Change],
    values: Mapping[str, float] | None = None,
) -> list[Change]:
    tagged = [c for c in changes if isinstance(c, TagChange)]
    direct = [c for c in changes if isinstance(c, Change)]
    fixed: list[Change] = []
    for c in direct:  # a Change naming a site tag is a tag write
        if c.target in site.points_by_tag:
            tagged.append(TagChange(c.target, c.value, c.relative))
        else:
            fixed.append(c)
    return fixed + changes_from_tags(site, state, tagged, values)


def check(
    site: Site, values: Mapping[str, float], changes: Sequence[TagChange | Change]
) -> Prediction:
    """What the ``changes`` (tag writes or model changes) would do to the plant in ``values``."""
    state = state_from_values(site, values)
    return whatif(state, _as_changes(site, state, changes, values))


def check_many(
    site: Site, values: Mapping[str, float], batch: Sequence[Sequence[TagChange | Change]]
) -> list[Prediction]:
    """:func:`check` for several candidate change sets in one vectorised pass."""
    state = state_from_values(site, values)
    res = whatif_many(state, [_as_changes(site, state, chg, values) for chg in batch])
    return [res.at(i) for i in range(len(res))]
