"""The plant state the performance model works on, and the changes a what-if applies.

:class:`PlantState` is a flat dataclass of floats (units in the field names) so
that any field can be broadcast over thousands of candidates; :class:`Change`
sets or shifts one field (named by its field name; site point names are mapped
to fields in the tools layer, :mod:`tools.modelmap`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

from perfmodel.curves_data import DEFAULT_CHILLER
from perfmodel.idf import ChillerEIR

__all__ = ["NUMERIC_FIELDS", "Change", "PlantState", "resolve_target"]

NAN = math.nan
INF = math.inf


@dataclass(frozen=True)
class PlantState:
    """The plant as the model sees it: loads, weather, equipment status, setpoints, ratings.

    Defaults are the twin's design data hall (``twin/site.yaml``): a 1 MW GPU
    cluster, 3 × 700 kW chillers (2 + 1), one tower, headered CHW and CW pumps,
    4 CRAHs, one CDU, a 1500 kW UPS and a 2500 kVA transformer. Units are in
    the field names; speeds in %, NaN tower fan speed = automatic (the fan
    holds ``cw_supply_setpoint_c``), inf power cap = no cap.
    """

    # IT load -------------------------------------------------------------------------
    gpu_demand_kw: float = 900.0  # what the cluster would draw uncapped at current work
    gpu_rated_kw: float = 1000.0  # cluster power at full clocks and full utilisation
    gpu_power_cap_kw: float = INF
    other_it_kw: float = 0.0  # air-cooled IT outside the GPU cluster
    gpus: float = 1024.0
    liquid_fraction: float = 0.8  # share of GPU-cluster heat taken by cold plates
    gpu_throttle_c: float = 85.0
    # the mean die the model predicts stays this far under the throttle temperature (the
    # hottest die runs a few kelvin over the mean; sensors and the model are not exact)
    gpu_throttle_margin_k: float = 10.0
    r_th_k_per_w: float = 0.045  # die-to-coolant at design flow (half conduction, half convection)
    # weather ---------------------------------------------------------------------------
    outdoor_drybulb_c: float = 30.0
    outdoor_rh_pct: float = 40.0
    outdoor_wetbulb_c: float = NAN  # NaN: computed from dry bulb and RH
    # chillers --------------------------------------------------------------------------
    chillers_installed: float = 3.0
    chillers_available: float = 3.0  # not tripped, not locked out
    chillers_running: float = 2.0
    chiller_capacity_kw: float = 700.0
    chiller_cop: float = 6.1
    chw_supply_setpoint_c: float = 7.0
    chw_flow_design_per_chiller_ls: float = 30.0
    cw_flow_design_per_chiller_ls: float = 36.0
    chiller_min_flow_ratio: float = 0.5  # evaporator / condenser minimum flow over design
    # pumps (headered, one VFD pump per loop) ---------------------------------------------
    chw_pump_speed_pct: float = 100.0
    chw_pump_design_flow_ls: float = 60.0
    chw_pump_rated_kw: float = 30.0
    cw_pump_speed_pct: float = 100.0
    cw_pump_design_flow_ls: float = 72.0
    cw_pump_rated_kw: float = 37.0
    chw_pump_flow_factor: float = 1.0  # delivered flow / design flow at a speed (calibrated)
    cw_pump_flow_factor: float = 1.0
    chw_pump_min_speed_pct: float = 40.0
    cw_pump_min_speed_pct: float = 50.0
    chw_delta_t_max_k: float = 10.0  # coils and CDU HX cannot carry the load beyond this ΔT
    # tower -----------------------------------------------------------------------------
    cw_supply_setpoint_c: float = 29.0
    tower_fan_speed_pct: float = NAN
    tower_fan_rated_kw: float = 45.0
    tower_capacity_kw: float = 2400.0
    tower_design_approach_k: float = 4.0
    tower_design_wetbulb_c: float = 24.0
    tower_min_speed_pct: float = 20.0
    tower_air_flow_factor: float = 1.0  # air moved / design air at a fan speed (fouled fill < 1)
    # wet bulb (°C) and approach (K) spans where site data validated the (calibrated) tower
    # correlation beyond its own range (NaN: not validated; see perfmodel.plantcal)
    tower_validated_twb_min_c: float = NAN
    tower_validated_twb_max_c: float = NAN
    tower_validated_approach_min_k: float = NAN
    tower_validated_approach_max_k: float = NAN
    # CRAH ------------------------------------------------------------------------------
    crah_units: float = 4.0
    crah_running: float = 4.0
    crah_fan_speed_pct: float = 80.0
    crah_fan_rated_kw: float = 7.5
    crah_airflow_design_m3s: float = 6.0
    crah_supply_air_setpoint_c: float = 22.0
    crah_coil_approach_k: float = 5.0
    server_delta_t_k: float = 12.0
    recirculation_base: float = 0.05
    # CDU -------------------------------------------------------------------------------
    cdu_supply_setpoint_c: float = 30.0
    cdu_hx_approach_k: float = 3.0
    cdu_pump_speed_pct: float = 100.0
    cdu_flow_factor: float = 1.0  # delivered flow / (design flow × speed): the pump as measured
    cdu_design_flow_ls: float = 24.0
    cdu_pump_rated_kw: float = 15.0
    # power chain -----------------------------------------------------------------------
    ups_capacity_kw: float = 1500.0
    battery_kwh: float = 250.0
    battery_bus_v: float = 480.0
    battery_rated_hours: float = 1.0  # capacity stated at the 1 h rate (UPS practice)
    battery_peukert: float = 1.05  # Li-ion ≈ 1.05; VRLA lead-acid ≈ 1.1–1.3
    min_battery_runtime_min: float = 5.0
    pdu_rated_kw: float = 1600.0
    pdu_loss_fraction: float = 0.015
    tx_rated_kva: float = 2500.0
    tx_no_load_kw: float = 3.0
    tx_load_loss_kw: float = 20.0
    power_factor: float = 0.95
    # model -----------------------------------------------------------------------------
    chiller: ChillerEIR = field(default=DEFAULT_CHILLER, compare=False, repr=False)

    def numeric(self) -> dict[str, float]:
        """The numeric fields as a plain dict (what the solver broadcasts)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self) if f.name != "chiller"}

    def with_changes(self, changes: Sequence[Change]) -> PlantState:
        """A copy with ``changes`` applied (relative changes add to the current value)."""
        upd: dict[str, float] = {}
        for ch in changes:
            name = resolve_target(ch.target)
            base = upd.get(name, float(getattr(self, name)))
            upd[name] = base + ch.value if ch.relative else ch.value
        return replace(self, **upd)  # type: ignore[arg-type]


NUMERIC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PlantState) if f.name != "chiller")


def resolve_target(name: str) -> str:
    """``name`` itself when it is a numeric :class:`PlantState` field, else a ``KeyError``.

    Site point names and short aliases are the tools layer's business
    (:mod:`tools.modelmap`); the model knows its own fields only.
    """
    if name in NUMERIC_FIELDS:
        return name
    raise KeyError(f"unknown what-if target {name!r}; use a PlantState field")


@dataclass(frozen=True)
class Change:
    """Set ``target`` to ``value`` (or add ``value`` when ``relative``)."""

    target: str
    value: float
    relative: bool = False

    def __str__(self) -> str:
        return f"{self.target}{'+=' if self.relative else '='}{self.value:g}"
