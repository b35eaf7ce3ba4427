"""The agent's what-if tool: live readings of a site → PlantState → Prediction.

``state_from_values(site, values)`` builds the performance model's
:class:`~perfmodel.whatif.PlantState` from the latest values of a site's points
(tags ``equipment.point`` as in ``twin/site.yaml``) and the equipment's
nameplate (``rated``). ``check(site, values, changes)`` predicts what a set of
point writes would do; changes may name site tags (``"ct_1.cw_supply_setpoint"``)
or PlantState fields (``"chw_supply_setpoint_c"``).

Which point is which field is the table in :mod:`tools.modelmap`; the state is
built in named steps (nameplates, plain readings, GPU cap, chiller staging,
pumps, CRAHs). Equipment is found by kind; pumps by id prefix ``chw_`` /
``cw_``. A missing reading keeps the model's design value for that field (the
state says which via ``missing``). A proposed NaN or infinite value is refused
with :class:`~connectors.errors.NonFiniteValue`, never predicted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from connectors.errors import NonFiniteValue
from connectors.site import Equipment, EquipmentKind, Site
from perfmodel.plantcal import PlantParameters
from perfmodel.whatif import Change, PlantState, Prediction, whatif, whatif_many
from tools.modelmap import RATED, READS, Setpoint, Spread, resolve_alias, setpoint_for

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


class _Readings:
    """Latest values of a site's points; remembers the points it wanted and did not get."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self.values = values
        self.missing: list[str] = []

    def read(self, eq: Equipment, point: str) -> float | None:
        """The value of ``eq.point``; None when the site has no such point or it was not read."""
        if not any(p.name == point for p in eq.points):
            return None
        tag = f"{eq.id}.{point}"
        v = _val(self.values, tag)
        if v is None:
            self.missing.append(tag)
        return v

    def on(self, eq: Equipment, point: str) -> bool | None:
        """A status point read as a flag (None: not read)."""
        v = self.read(eq, point)
        return None if v is None else v >= 0.5


Fields = dict[str, float]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _nameplates(site: Site) -> Fields:
    """Rated values (:data:`~tools.modelmap.RATED`) of the first unit of each kind / pump loop."""
    upd: Fields = {}
    for kind, keys in RATED.items():
        units = _of_kind(site, kind)
        if kind is EquipmentKind.PUMP:
            units = [eq for eq in units if _loop(eq) is not None]
        else:
            units = units[:1]
        for eq in units:
            for key, name in keys:
                if key in eq.rated:
                    upd[name.format(loop=_loop(eq))] = float(eq.rated[key])
    pdus = _of_kind(site, EquipmentKind.PDU)
    if pdus and all("rated_kw" in eq.rated for eq in pdus):
        upd["pdu_rated_kw"] = sum(float(eq.rated["rated_kw"]) for eq in pdus)
    if chillers := _of_kind(site, EquipmentKind.CHILLER):
        upd["chillers_installed"] = float(len(chillers))
    if crahs := _of_kind(site, EquipmentKind.CRAH):
        upd["crah_units"] = float(len(crahs))
    return upd


def _loop(eq: Equipment) -> str | None:
    """A pump's loop, by id prefix: ``chw`` or ``cw`` (None: neither)."""
    return "chw" if eq.id.startswith("chw") else "cw" if eq.id.startswith("cw") else None


def _plain_reads(site: Site, r: _Readings) -> Fields:
    """Readings that set a field as they are (:data:`~tools.modelmap.READS`)."""
    upd: Fields = {}
    for rd in READS:
        for eq in _of_kind(site, rd.kind)[:1]:
            v = r.read(eq, rd.point)
            if v is not None:
                upd[rd.field] = v
    return upd


def _gpu_cap(site: Site, r: _Readings, rated_kw: float) -> Fields:
    """The GPU power cap, read in % of rated power, as kW (≥ 100 % = no cap)."""
    for eq in _of_kind(site, EquipmentKind.GPU_CLUSTER)[:1]:
        cap = r.read(eq, "power_cap")
        if cap is not None:
            return {"gpu_power_cap_kw": _cap_kw(cap, rated_kw)}
    return {}


def _cap_kw(pct: float, rated_kw: float) -> float:
    return math.inf if pct >= 100.0 else pct / 100.0 * rated_kw


def _chillers(site: Site, r: _Readings) -> Fields:
    """Running and available chillers; the CHW set point averaged over the running ones."""
    chillers = _of_kind(site, EquipmentKind.CHILLER)
    if not chillers:
        return {}
    running = available = 0.0
    seen_run = False
    setpoints: list[float] = []
    for eq in chillers:
        run = r.on(eq, "running")
        trip = r.on(eq, "tripped")
        seen_run |= run is not None
        running += float(bool(run))
        available += 0.0 if trip else 1.0
        sp = r.read(eq, "chw_supply_setpoint")
        if sp is not None and (run or not seen_run):
            setpoints.append(sp)
    upd: Fields = {"chillers_available": available}
    if seen_run:  # no run status at all: keep the design staging
        upd["chillers_running"] = running
    if (sp_mean := _mean(setpoints)) is not None:
        upd["chw_supply_setpoint_c"] = sp_mean
    return upd


def _pumps(site: Site, r: _Readings) -> Fields:
    """CHW and CW pump speeds (0 when the pump is stopped)."""
    upd: Fields = {}
    for eq in _of_kind(site, EquipmentKind.PUMP):
        loop = _loop(eq)
        if loop is None:
            continue
        speed = r.read(eq, "speed")
        run = r.on(eq, "running")
        if speed is not None:
            upd[f"{loop}_pump_speed_pct"] = speed if run is not False else 0.0
    return upd


def _crahs(site: Site, r: _Readings) -> Fields:
    """CRAHs running (fan on, no fan fault); their fan speed and supply air set point averaged."""
    crahs = _of_kind(site, EquipmentKind.CRAH)
    n_run = 0.0
    seen = False
    speeds: list[float] = []
    sps: list[float] = []
    for eq in crahs:
        run = r.on(eq, "fan_running")
        fault = _val(r.values, f"{eq.id}.fan_fault")
        seen |= run is not None
        if run is False or (fault is not None and fault >= 0.5):
            continue
        n_run += 1.0
        if (speed := r.read(eq, "fan_speed")) is not None:
            speeds.append(speed)
        if (sp := r.read(eq, "supply_air_setpoint")) is not None:
            sps.append(sp)
    upd: Fields = {}
    if seen:  # no run status at all: keep the design count
        upd["crah_running"] = n_run
    if (v := _mean(speeds)) is not None:
        upd["crah_fan_speed_pct"] = v
    if (v := _mean(sps)) is not None:
        upd["crah_supply_air_setpoint_c"] = v
    return upd


def _cdu_flow(site: Site, r: _Readings) -> Fields:
    """The CDU pump as the flow meter shows it: delivered flow over design flow × speed
    (a worn or clogged pump delivers less than its speed says; the model's GPU dies must
    know before it slows the pump). Only while the pump runs (over 10 %)."""
    cdus = _of_kind(site, EquipmentKind.CDU)
    if not cdus:
        return {}
    eq = cdus[0]
    flow, speed = r.read(eq, "coolant_flow"), r.read(eq, "pump_speed")
    design = eq.rated.get("design_flow_ls")
    if flow is None or speed is None or not design or speed < 10.0:
        return {}
    return {"cdu_flow_factor": min(max(flow / (design * speed / 100.0), 0.05), 1.5)}


def build_state(
    site: Site, values: Mapping[str, float], base: PlantState | None = None
) -> StateBuild:
    """PlantState from ``values`` (tag → latest value) and nameplates; see module docstring."""
    s = base or PlantState()
    r = _Readings(values)
    upd = _nameplates(site)
    upd |= _plain_reads(site, r)
    upd |= _gpu_cap(site, r, upd.get("gpu_rated_kw", s.gpu_rated_kw))
    upd |= _chillers(site, r)
    upd |= _pumps(site, r)
    upd |= _crahs(site, r)
    upd |= _cdu_flow(site, r)
    return StateBuild(state=replace(s, **upd), missing=r.missing)  # type: ignore[arg-type]


def state_from_values(
    site: Site, values: Mapping[str, float], params: PlantParameters | None = None
) -> PlantState:
    """PlantState for the performance model from the latest ``values`` (tag → value) of
    ``site``, with the calibrated ``params`` (:mod:`tools.calibration`) when given."""
    state = build_state(site, values).state
    return params.apply(state) if params is not None else state


# ---- tag writes → model changes ------------------------------------------------------------


def _require_finite(w: TagChange) -> None:
    if not math.isfinite(w.value):
        raise NonFiniteValue(f"{w.tag}: proposed value {w.value} is not a finite number")


def changes_from_tags(
    site: Site,
    state: PlantState,
    writes: Sequence[TagChange],
    values: Mapping[str, float] | None = None,
) -> list[Change]:
    """Translate point writes into model changes (:data:`~tools.modelmap.SETPOINTS`).

    * plant-wide set points (``chiller_N.chw_supply_setpoint``,
      ``ct_1.cw_supply_setpoint``, ``cdu_1.coolant_supply_setpoint``, pump
      ``speed_setpoint``): the field, absolute or relative;
    * ``crah_N.supply_air_setpoint`` / ``fan_speed_setpoint``: one of n running
      CRAHs moves the average by (new − old)/n;
    * ``chiller_N.enable``: ±1 running chiller (none when it already runs / is
      already off, as ``values`` tell); ``gpu.power_cap`` (% of TDP) → kW.
    Field names and their short aliases pass through. ``values`` (the readings
    the state came from) give each unit's own current value where the model
    keeps only an average. A NaN or infinite value is refused
    (:class:`~connectors.errors.NonFiniteValue`).
    """
    vals = values or {}
    out: list[Change] = []
    for w in writes:
        _require_finite(w)
        if "." not in w.tag and w.tag not in site.points_by_tag:
            out.append(Change(resolve_alias(w.tag), w.value, w.relative))
            continue
        eq_id, point = w.tag.split(".", 1)
        eq = site.equipment_by_id(eq_id)
        sp = setpoint_for(eq, point)
        if sp is None:
            raise KeyError(f"the what-if model has no handle for {w.tag!r}")
        out += _change_for(sp, w, state, vals)
    return out


def _change_for(
    sp: Setpoint, w: TagChange, state: PlantState, vals: Mapping[str, float]
) -> list[Change]:
    """The model change one write makes, by how its set point spreads over the plant."""
    if sp.spread is Spread.COUNT:
        running = _val(vals, f"{w.tag.split('.', 1)[0]}.running")
        on = (w.value >= 0.5) if not w.relative else (w.value > 0)
        if running is None or (running >= 0.5) != on:
            return [Change(sp.field, 1.0 if on else -1.0, relative=True)]
        return []
    if sp.spread is Spread.PERCENT_OF_RATED:
        pct = w.value
        if w.relative:
            cur = state.gpu_power_cap_kw / state.gpu_rated_kw * 100.0
            pct = min(cur, 100.0) + w.value
        return [Change(sp.field, _cap_kw(pct, state.gpu_rated_kw))]
    if sp.spread is Spread.SHARE:
        n = max(state.crah_running, 1.0)
        if w.relative:
            return [Change(sp.field, w.value / n, relative=True)]
        # the unit's own value when read (its set point, else its reading), else the average
        own = _val(vals, w.tag)
        if own is None and sp.reads is not None:
            own = _val(vals, f"{w.tag.split('.', 1)[0]}.{sp.reads}")
        cur = own if own is not None else float(getattr(state, sp.field))
        return [Change(sp.field, (w.value - cur) / n, relative=True)]
    return [Change(sp.field, w.value, w.relative)]


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
            fixed.append(replace(c, target=resolve_alias(c.target)))
    return fixed + changes_from_tags(site, state, tagged, values)


def check(
    site: Site,
    values: Mapping[str, float],
    changes: Sequence[TagChange | Change],
    params: PlantParameters | None = None,
) -> Prediction:
    """What the ``changes`` (tag writes or model changes) would do to the plant in ``values``
    (on the calibrated ``params`` when given, else the catalogue model)."""
    state = state_from_values(site, values, params)
    return whatif(state, _as_changes(site, state, changes, values))


def check_many(
    site: Site,
    values: Mapping[str, float],
    batch: Sequence[Sequence[TagChange | Change]],
    params: PlantParameters | None = None,
) -> list[Prediction]:
    """:func:`check` for several candidate change sets in one vectorised pass."""
    state = state_from_values(site, values, params)
    res = whatif_many(state, [_as_changes(site, state, chg, values) for chg in batch])
    return [res.at(i) for i in range(len(res))]
