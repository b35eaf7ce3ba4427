"""The plant's steady state: the component models chained (see :mod:`perfmodel.whatif`).

:func:`solve` takes every :class:`~perfmodel.state.PlantState` field as a
broadcast numpy array and returns a :class:`PlantSolution` — one pass for one
plant or for ten thousand candidates. It is a chain of named steps, each a
pure function from the parameters and the earlier steps' results to a small
frozen dataclass:

1. :func:`wet_bulb` — weather;
2. :func:`it_load` — GPU power under the cap, DVFS throughput loss, liquid/air split;
3. :func:`liquid_chain` — CDU pump, flow and the GPU thermal resistance;
4. :func:`air_side` — CRAH fans, air flow, recirculation;
5. :func:`critical_power` — PDU and UPS losses;
6. :func:`loop_pumps` — chilled- and condenser-water pumps;
7. :func:`chw_loop` — the chilled-water load, ΔT and per-chiller flows;
8. :func:`condenser_loop` — chillers and tower, fixed point over condenser water;
9. :func:`chw_supply` — chilled water actually delivered (unmet load warms it);
10. :func:`downstream_temps` — CDU supply/return, GPU die, supply air, rack inlet;
11. :func:`totals` — cooling, transformer, facility power, PUE, battery runtime;
12. :func:`validity` — inputs inside the ranges the curves were fitted on.

Field names are the output names (units in the names); :meth:`PlantSolution.to_dict`
gives them flat, keyed by name, which is what the what-if's constraint table
and :class:`~perfmodel.whatif.Prediction` read. :func:`steady_state` is the
one-plant convenience (floats in a dict), e.g. for the twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from perfmodel import air, chiller, kpi, liquid, power, pumps, tower
from perfmodel.idf import ChillerEIR
from perfmodel.state import PlantState

__all__ = [
    "FREE_CONVECTION_FR_AIR",
    "MAX_CHW_RISE_K",
    "AirSide",
    "Chillers",
    "ChwLoop",
    "ChwSupply",
    "CriticalPower",
    "DownstreamTemps",
    "ItLoad",
    "LiquidChain",
    "LoopPumps",
    "PlantSolution",
    "Totals",
    "Tower",
    "Validity",
    "solve",
    "steady_state",
    "tower_reference_flow",
]

F = NDArray[np.float64]
Params = Mapping[str, F]

#: Air-flow ratio equivalent to free convection with the fan off (EnergyPlus default
#: "Fraction of Tower Capacity in Free Convection Regime" = 0.125).
FREE_CONVECTION_FR_AIR = 0.125
#: Largest chilled-water warming the model reports when chillers fall short (K).
MAX_CHW_RISE_K = 30.0


#: field metadata of a value later steps need that is not a model output (left out of to_dict)
_INTERNAL = MappingProxyType({"internal": True})


def _outputs(part: object) -> dict[str, F]:
    return {
        f.name: getattr(part, f.name)
        for f in fields(part)  # type: ignore[arg-type]
        if not f.metadata.get("internal")
    }


# ---- 1. weather ------------------------------------------------------------------------------
def wet_bulb(p: Params) -> F:
    """Outdoor wet bulb (°C): the given one, else computed from dry bulb and RH where NaN."""
    twb = p["outdoor_wetbulb_c"]
    if np.isnan(twb).any():
        db, rh = np.broadcast_arrays(p["outdoor_drybulb_c"], p["outdoor_rh_pct"])
        pairs, inv = np.unique(np.stack([db.ravel(), rh.ravel()]), axis=1, return_inverse=True)
        wb = tower.wet_bulb(pairs[0], pairs[1])[inv.ravel()].reshape(db.shape)
        twb = np.where(np.isnan(twb), wb, twb)
    return twb


# ---- 2. IT load and DVFS ---------------------------------------------------------------------
@dataclass(frozen=True)
class ItLoad:
    """GPU power after the cap (kW), IT total (kW), throughput lost to the cap (%)."""

    throughput_loss_pct: F
    gpu_kw: F
    it_kw: F
    liquid_kw: F = field(metadata=_INTERNAL)  # GPU heat into the cold plates
    air_kw: F = field(metadata=_INTERNAL)  # IT heat into the room air


def it_load(p: Params) -> ItLoad:
    """GPU power = min(demand, cap); the cap maps to a clock fraction and lost throughput."""
    demand = p["gpu_demand_kw"]
    cap = p["gpu_power_cap_kw"]
    gpu_kw = np.minimum(demand, np.where(np.isfinite(cap), cap, np.inf))
    clock_demand = liquid.clock_for_power_cap(demand, p["gpu_rated_kw"])
    clock = liquid.clock_for_power_cap(gpu_kw, p["gpu_rated_kw"])
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.where(clock_demand > 0, 100.0 * (1.0 - clock / clock_demand), 0.0)
    it_kw = gpu_kw + p["other_it_kw"]
    liquid_kw = p["liquid_fraction"] * gpu_kw
    return ItLoad(
        throughput_loss_pct=loss,
        gpu_kw=gpu_kw,
        it_kw=it_kw,
        liquid_kw=liquid_kw,
        air_kw=it_kw - liquid_kw,
    )


# ---- 3. CDU and GPU thermal chain ------------------------------------------------------------
@dataclass(frozen=True)
class LiquidChain:
    """CDU pump power (kW) and flow (L/s); per-GPU heat, flow and thermal resistance."""

    cdu_pump_kw: F
    cdu_flow_ls: F
    heat_per_gpu_w: F = field(metadata=_INTERNAL)
    flow_per_gpu_kgs: F = field(metadata=_INTERNAL)
    r_th_k_per_w: F = field(metadata=_INTERNAL)


def liquid_chain(p: Params, load: ItLoad) -> LiquidChain:
    """CDU pump by the affinity laws; the die-to-coolant resistance at this flow (the
    flow the pump delivers at its speed: design × speed × ``cdu_flow_factor``, < 1 for a
    worn or clogged pump, as the site's flow meter shows)."""
    cdu_speed = np.clip(p["cdu_pump_speed_pct"] / 100.0, 0.0, 1.0)
    ratio = cdu_speed * p["cdu_flow_factor"]
    cdu_flow = p["cdu_design_flow_ls"] * ratio
    r_half = 0.5 * p["r_th_k_per_w"]
    return LiquidChain(
        cdu_pump_kw=pumps.electric_power(p["cdu_pump_rated_kw"], cdu_speed),
        cdu_flow_ls=cdu_flow,
        heat_per_gpu_w=load.liquid_kw * 1000.0 / p["gpus"],
        flow_per_gpu_kgs=cdu_flow * liquid.RHO_WATER / 1000.0 / p["gpus"],
        r_th_k_per_w=liquid.thermal_resistance(ratio, r_half, r_half),
    )


# ---- 4. CRAH and rack air --------------------------------------------------------------------
@dataclass(frozen=True)
class AirSide:
    """Recirculated share of rack intake air, CRAH air flow (m³/s), IT's need, fan power (kW)."""

    recirculation: F
    crah_airflow_m3s: F
    it_airflow_min_m3s: F
    crah_fan_kw: F


def air_side(p: Params, load: ItLoad) -> AirSide:
    """CRAH fans by the affinity laws; IT air flow for the server ΔT; recirculation."""
    crah_speed = np.clip(p["crah_fan_speed_pct"] / 100.0, 0.0, 1.0)
    crah_flow = p["crah_running"] * p["crah_airflow_design_m3s"] * crah_speed
    crah_kw = p["crah_running"] * pumps.electric_power(p["crah_fan_rated_kw"], crah_speed)
    air_heat = load.air_kw + crah_kw
    it_flow = air_heat * 1000.0 / (air.RHO_AIR * air.CP_AIR * p["server_delta_t_k"])
    return AirSide(
        recirculation=air.recirculation_share(crah_flow, it_flow, p["recirculation_base"]),
        crah_airflow_m3s=crah_flow,
        it_airflow_min_m3s=it_flow * (1.0 - p["recirculation_base"]),
        crah_fan_kw=crah_kw,
    )


# ---- 5. electrical losses on the critical path -----------------------------------------------
@dataclass(frozen=True)
class CriticalPower:
    """UPS output and loss, PDU loss (kW)."""

    ups_output_kw: F
    ups_loss_kw: F
    pdu_loss_kw: F


def critical_power(p: Params, load: ItLoad, cdu: LiquidChain) -> CriticalPower:
    """PDU I²R loss, then the UPS carrying IT, PDU loss and the CDU pump."""
    pdu_loss = power.pdu_loss(load.it_kw, p["pdu_rated_kw"], 1.0) * p["pdu_loss_fraction"]
    ups_out = load.it_kw + pdu_loss + cdu.cdu_pump_kw
    return CriticalPower(
        ups_output_kw=ups_out,
        ups_loss_kw=power.ups_loss(ups_out, p["ups_capacity_kw"]),
        pdu_loss_kw=pdu_loss,
    )


# ---- 6. loop pumps ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopPumps:
    """Headered CHW and CW pumps: flows (L/s), speeds (%), electric power (kW)."""

    chw_flow_ls: F
    chw_pump_speed_pct: F
    cw_pump_speed_pct: F
    cw_flow_ls: F
    chw_pump_kw: F = field(metadata=_INTERNAL)
    cw_pump_kw: F = field(metadata=_INTERNAL)


def loop_pumps(p: Params) -> LoopPumps:
    """One VFD pump per loop by the affinity laws; a flow factor ≠ 1 is a pump whose installed
    curve (or system curve) delivers more or less than its design flow at a speed."""
    chw_speed = np.clip(p["chw_pump_speed_pct"] / 100.0, 0.0, 1.0)
    cw_speed = np.clip(p["cw_pump_speed_pct"] / 100.0, 0.0, 1.0)
    return LoopPumps(
        chw_flow_ls=p["chw_pump_design_flow_ls"] * p["chw_pump_flow_factor"] * chw_speed,
        chw_pump_speed_pct=100.0 * chw_speed,
        cw_pump_speed_pct=100.0 * cw_speed,
        cw_flow_ls=p["cw_pump_design_flow_ls"] * p["cw_pump_flow_factor"] * cw_speed,
        chw_pump_kw=pumps.electric_power(p["chw_pump_rated_kw"], chw_speed),
        cw_pump_kw=pumps.electric_power(p["cw_pump_rated_kw"], cw_speed),
    )


# ---- 7. chilled-water loop -------------------------------------------------------------------
@dataclass(frozen=True)
class ChwLoop:
    """Chilled-water load (kW), ΔT (K), per-chiller flows and their minimums (L/s)."""

    chw_load_kw: F
    chw_flow_per_chiller_ls: F
    cw_flow_per_chiller_ls: F
    chw_delta_t_k: F
    chw_flow_min_ls: F
    cw_flow_min_ls: F
    running: F = field(metadata=_INTERNAL)  # chillers running, ≥ 0


def chw_loop(
    p: Params, load: ItLoad, cdu: LiquidChain, air_: AirSide, ups: CriticalPower, pu: LoopPumps
) -> ChwLoop:
    """Load = IT + PDU and UPS losses + CRAH fan, CDU pump and CHW pump heat."""
    n_run = np.maximum(p["chillers_running"], 0.0)
    q_chw = (
        load.it_kw + ups.pdu_loss_kw + ups.ups_loss_kw + air_.crah_fan_kw + cdu.cdu_pump_kw
    ) + pu.chw_pump_kw
    with np.errstate(divide="ignore", invalid="ignore"):
        chw_each = np.where(n_run > 0, pu.chw_flow_ls / n_run, 0.0)
        cw_each = np.where(n_run > 0, pu.cw_flow_ls / n_run, 0.0)
    return ChwLoop(
        chw_load_kw=q_chw,
        chw_flow_per_chiller_ls=chw_each,
        cw_flow_per_chiller_ls=cw_each,
        chw_delta_t_k=liquid.coolant_return_temp(0.0, q_chw, pu.chw_flow_ls),
        chw_flow_min_ls=p["chiller_min_flow_ratio"] * p["chw_flow_design_per_chiller_ls"],
        cw_flow_min_ls=p["chiller_min_flow_ratio"] * p["cw_flow_design_per_chiller_ls"],
        running=n_run,
    )


# ---- 8. chillers and tower -------------------------------------------------------------------
@dataclass(frozen=True)
class Chillers:
    """The running chillers together: power (kW), PLR (inf with none running), COP, capacity."""

    chiller_kw: F
    chiller_plr: F
    chiller_min_plr: F
    chiller_capacity_avail_kw: F
    redundant_capacity_kw: F
    chillers_running: F
    chiller_cop: F
    plr_each: F = field(metadata=_INTERNAL)  # part-load ratio of each running chiller


@dataclass(frozen=True)
class Tower:
    """Condenser water (°C), tower range/approach (K), fan speed (%) and power (kW)."""

    cw_supply_c: F
    cw_return_c: F
    tower_range_k: F
    tower_approach_k: F
    tower_fan_speed_pct: F
    tower_fr_water: F
    tower_fan_kw: F


def _tower_auto(p: Params) -> tuple[NDArray[np.bool_], F]:
    """Where the fan is on automatic (NaN speed) and the fixed air-flow ratio elsewhere."""
    auto = np.isnan(p["tower_fan_speed_pct"])
    fixed_fr = np.clip(np.nan_to_num(p["tower_fan_speed_pct"], nan=100.0) / 100.0, 0.0, 1.0)
    return auto, fixed_fr


def _tower_leaving(p: Params, twb: F, rng: F, fr_w: F) -> F:
    """Water leaving the tower (°C) for a range ``rng`` (K).

    EnergyPlus "Variable Speed Cooling Towers": on automatic, full speed when even
    that is too warm; fan off when free convection already reaches the setpoint
    (the water is then colder); else exactly the setpoint.
    """
    auto, fixed_fr = _tower_auto(p)
    k = p["tower_air_flow_factor"]
    sp_cw = p["cw_supply_setpoint_c"]
    t_full = tower.leaving_water_temp(twb, rng, fr_w, k)
    t_free = tower.leaving_water_temp(twb, rng, fr_w, k * FREE_CONVECTION_FR_AIR)
    t_auto = np.where(t_free <= sp_cw, t_free, np.maximum(sp_cw, t_full))
    return np.asarray(
        np.where(auto, t_auto, tower.leaving_water_temp(twb, rng, fr_w, k * fixed_fr))
    )


def _tower_fan(p: Params, twb: F, rng: F, fr_w: F) -> tuple[F, F]:
    """Fan air-flow ratio and duty (time share): at minimum speed the fan cycles to hold
    the setpoint, so its power is the power at minimum speed × that share. The air actually
    moved is ``tower_air_flow_factor`` × the fan's speed fraction (a fouled fill moves less)."""
    auto, fixed_fr = _tower_auto(p)
    k = p["tower_air_flow_factor"]
    sp_cw = p["cw_supply_setpoint_c"]
    min_fr = p["tower_min_speed_pct"] / 100.0
    fr_eff = tower.speed_for_leaving_temp(
        sp_cw, twb, rng, fr_w, min_fr_air=FREE_CONVECTION_FR_AIR * float(np.min(k))
    )
    fr_auto = np.clip(fr_eff / k, 0.0, 1.0)
    fr_air = np.where(auto, np.maximum(fr_auto, min_fr), fixed_fr)
    t_min = tower.leaving_water_temp(twb, rng, fr_w, k * min_fr)
    t_free = tower.leaving_water_temp(twb, rng, fr_w, k * FREE_CONVECTION_FR_AIR)
    with np.errstate(divide="ignore", invalid="ignore"):
        duty = np.clip((t_free - sp_cw) / (t_free - t_min), 0.0, 1.0)
    duty = np.where(auto & (fr_auto < min_fr), np.nan_to_num(duty, nan=1.0), 1.0)
    return fr_air, duty


def condenser_loop(
    p: Params, ch: ChillerEIR, twb: F, loop: ChwLoop, pu: LoopPumps
) -> tuple[Chillers, Tower]:
    """Chillers share the load; the tower holds the CW setpoint if it can.

    Condenser heat = load + compressor power; a fixed point over the condenser
    water temperature closes the chiller–tower loop (converges to ~1e-6 K).
    """
    n_run = loop.running
    with np.errstate(divide="ignore", invalid="ignore"):
        q_each = np.where(n_run > 0, loop.chw_load_kw / n_run, 0.0)
    fr_w = pu.cw_flow_ls / tower_reference_flow(p)

    def chillers_at(t: F) -> chiller.ChillerResult:
        return chiller.chiller_performance(
            ch,
            q_each,
            p["chw_supply_setpoint_c"],
            t,
            capacity_kw=p["chiller_capacity_kw"],
            cop=p["chiller_cop"],
        )

    def tower_range(res: chiller.ChillerResult) -> F:
        return liquid.coolant_return_temp(0.0, n_run * res.cond_kw, pu.cw_flow_ls)

    t_cw = np.asarray(p["cw_supply_setpoint_c"], dtype=float)
    res = chillers_at(t_cw)
    rng = tower_range(res)
    for _ in range(6):
        t_cw = _tower_leaving(p, twb, rng, fr_w)
        res = chillers_at(t_cw)
        rng = tower_range(res)
    fr_air, duty = _tower_fan(p, twb, rng, fr_w)
    fan_kw = tower.fan_power(p["tower_fan_rated_kw"], fr_air) * duty
    chiller_kw = n_run * res.power_kw
    tw = Tower(
        cw_supply_c=t_cw,
        cw_return_c=t_cw + rng,
        tower_range_k=rng,
        tower_approach_k=t_cw - twb,
        tower_fan_speed_pct=np.where(
            n_run > 0, 100.0 * fr_air * np.where(duty < 1, duty, 1.0), 0.0
        ),
        tower_fr_water=fr_w,
        tower_fan_kw=np.where(n_run > 0, fan_kw, 0.0),
    )
    chs = Chillers(
        chiller_kw=chiller_kw,
        chiller_plr=np.where(n_run > 0, res.plr, np.inf),
        chiller_min_plr=np.full_like(chiller_kw, ch.min_plr),
        chiller_capacity_avail_kw=res.capacity_kw,
        redundant_capacity_kw=np.maximum(p["chillers_available"] - 1.0, 0.0) * res.capacity_kw,
        chillers_running=n_run,
        chiller_cop=res.cop,
        plr_each=res.plr,
    )
    return chs, tw


# ---- 9. chilled water delivered --------------------------------------------------------------
@dataclass(frozen=True)
class ChwSupply:
    """Chilled water actually delivered (°C) and the load the chillers cannot meet (kW)."""

    chw_supply_c: F
    chw_return_c: F
    chw_unmet_kw: F


def chw_supply(p: Params, ch: ChillerEIR, loop: ChwLoop, pu: LoopPumps, chs: Chillers) -> ChwSupply:
    """The setpoint while chillers have capacity; the unmet load warms the water beyond it."""
    met = loop.running * np.minimum(chs.plr_each, ch.max_plr) * chs.chiller_capacity_avail_kw
    q_chw = loop.chw_load_kw
    unmet = np.where(q_chw - met > 1e-6 * np.abs(q_chw), q_chw - met, 0.0)
    with np.errstate(invalid="ignore"):
        rise = np.where(unmet > 0, liquid.coolant_return_temp(0.0, unmet, pu.chw_flow_ls), 0.0)
    # no flow to carry it: saturate (every downstream limit is broken long before)
    chw_actual = p["chw_supply_setpoint_c"] + np.minimum(rise, MAX_CHW_RISE_K)
    return ChwSupply(
        chw_supply_c=chw_actual,
        chw_return_c=chw_actual + loop.chw_delta_t_k,
        chw_unmet_kw=unmet,
    )


# ---- 10. temperatures downstream of the chilled water ----------------------------------------
@dataclass(frozen=True)
class DownstreamTemps:
    """CDU supply/return, GPU die (and the highest the optimiser lets it run: throttle
    temperature minus the state's throttle margin), CRAH supply air and rack inlet (°C)."""

    cdu_supply_c: F
    cdu_return_c: F
    gpu_die_c: F
    gpu_die_limit_c: F
    supply_air_c: F
    rack_inlet_c: F


def downstream_temps(
    p: Params, load: ItLoad, cdu: LiquidChain, air_: AirSide, chw: ChwSupply
) -> DownstreamTemps:
    """CDU supply = max(setpoint, CHW + HX approach); die from the thermal chain; air side."""
    cdu_s = np.maximum(p["cdu_supply_setpoint_c"], chw.chw_supply_c + p["cdu_hx_approach_k"])
    sat = air.supply_air_temp(
        p["crah_supply_air_setpoint_c"], chw.chw_supply_c, p["crah_coil_approach_k"]
    )
    return DownstreamTemps(
        cdu_supply_c=cdu_s,
        cdu_return_c=liquid.coolant_return_temp(cdu_s, load.liquid_kw, cdu.cdu_flow_ls),
        gpu_die_c=liquid.die_temperature(
            cdu_s, cdu.heat_per_gpu_w, cdu.flow_per_gpu_kgs, cdu.r_th_k_per_w
        ),
        gpu_die_limit_c=np.asarray(p["gpu_throttle_c"] - p["gpu_throttle_margin_k"]),
        supply_air_c=sat,
        rack_inlet_c=air.rack_inlet_temp(sat, p["server_delta_t_k"], air_.recirculation),
    )


# ---- 11. totals ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Totals:
    """Power roll-up (kW, kVA), PUE, plant kW/ton, battery runtime (min)."""

    pumps_kw: F
    cooling_kw: F
    tx_load_kva: F
    tx_loss_kw: F
    facility_kw: F
    pue: F
    plant_kw_per_ton: F
    battery_runtime_min: F


def totals(
    p: Params,
    load: ItLoad,
    cdu: LiquidChain,
    air_: AirSide,
    ups: CriticalPower,
    pu: LoopPumps,
    loop: ChwLoop,
    chs: Chillers,
    tw: Tower,
) -> Totals:
    """Cooling and facility power through the transformer; PUE; battery runtime (Peukert)."""
    loop_pumps_kw = pu.chw_pump_kw + pu.cw_pump_kw
    chiller_kw, fan_kw, crah_kw = chs.chiller_kw, tw.tower_fan_kw, air_.crah_fan_kw
    ups_in = ups.ups_output_kw + ups.ups_loss_kw
    tx_load_kw = ups_in + chiller_kw + fan_kw + loop_pumps_kw + crah_kw
    tx_kva = tx_load_kw / p["power_factor"]
    tx_loss = power.transformer_loss(
        tx_kva, p["tx_rated_kva"], p["tx_no_load_kw"], p["tx_load_loss_kw"]
    )
    facility = tx_load_kw + tx_loss
    amps = power.battery_current(ups.ups_output_kw, p["battery_bus_v"])
    ah = p["battery_kwh"] * 1000.0 / p["battery_bus_v"]
    return Totals(
        pumps_kw=loop_pumps_kw + cdu.cdu_pump_kw,
        cooling_kw=chiller_kw + fan_kw + loop_pumps_kw + crah_kw + cdu.cdu_pump_kw,
        tx_load_kva=tx_kva,
        tx_loss_kw=tx_loss,
        facility_kw=facility,
        pue=kpi.pue(facility, load.it_kw),
        plant_kw_per_ton=kpi.kw_per_ton(chiller_kw + fan_kw + loop_pumps_kw, loop.chw_load_kw),
        battery_runtime_min=60.0
        * power.peukert_runtime_h(amps, ah, p["battery_rated_hours"], p["battery_peukert"]),
    )


# ---- 12. validity ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Validity:
    """1.0 where the inputs are inside the curves' fitted ranges, else 0.0."""

    valid_chiller_temps: F
    valid_chiller_plr: F
    valid_tower: F


def validity(p: Params, ch: ChillerEIR, twb: F, chs: Chillers, tw: Tower) -> Validity:
    """Chiller temperatures and PLR, tower correlation (idle plant: always valid)."""
    idle = chs.chillers_running <= 0
    plr = chs.plr_each
    in_plr = (plr >= ch.eirfplr.x_min - 1e-9) & (plr <= ch.eirfplr.x_max + 1e-9)
    in_tower = tower.in_validated_range(
        twb, tw.tower_range_k, tw.tower_approach_k, tw.tower_fr_water,
        (p["tower_validated_twb_min_c"], p["tower_validated_twb_max_c"]),
        (p["tower_validated_approach_min_k"], p["tower_validated_approach_max_k"]),
    )  # fmt: skip
    return Validity(
        valid_chiller_temps=chiller.in_range(ch, p["chw_supply_setpoint_c"], tw.cw_supply_c).astype(
            float
        ),
        valid_chiller_plr=(in_plr | idle).astype(float),
        valid_tower=(in_tower | idle).astype(float),
    )


# ---- the chain -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantSolution:
    """Every step's result for broadcast parameters; :meth:`to_dict` flattens by output name."""

    wetbulb_c: F
    load: ItLoad
    cdu: LiquidChain
    air: AirSide
    ups: CriticalPower
    pumps: LoopPumps
    loop: ChwLoop
    chillers: Chillers
    tower: Tower
    chw: ChwSupply
    temps: DownstreamTemps
    totals: Totals
    validity: Validity

    def to_dict(self) -> dict[str, F]:
        """Every output keyed by name (units in the names), internal step values left out."""
        out: dict[str, F] = {"wetbulb_c": self.wetbulb_c}
        for part in (
            self.load, self.cdu, self.air, self.ups, self.pumps, self.loop, self.chillers,
            self.tower, self.chw, self.temps, self.totals, self.validity,
        ):  # fmt: skip
            out.update(_outputs(part))
        return out


def solve(p: Params, ch: ChillerEIR) -> PlantSolution:
    """The steady state for broadcast parameter arrays ``p`` (every PlantState field)."""
    twb = wet_bulb(p)
    load = it_load(p)
    cdu = liquid_chain(p, load)
    air_ = air_side(p, load)
    ups = critical_power(p, load, cdu)
    pu = loop_pumps(p)
    loop = chw_loop(p, load, cdu, air_, ups, pu)
    chs, tw = condenser_loop(p, ch, twb, loop, pu)
    chw = chw_supply(p, ch, loop, pu, chs)
    return PlantSolution(
        wetbulb_c=twb,
        load=load,
        cdu=cdu,
        air=air_,
        ups=ups,
        pumps=pu,
        loop=loop,
        chillers=chs,
        tower=tw,
        chw=chw,
        temps=downstream_temps(p, load, cdu, air_, chw),
        totals=totals(p, load, cdu, air_, ups, pu, loop, chs, tw),
        validity=validity(p, ch, twb, chs, tw),
    )


def tower_reference_flow(p: Params) -> F:
    """Tower water flow (L/s) at the correlation's reference condition.

    EnergyPlus's procedure ("Variable Speed Cooling Towers"): the water-flow
    ratio at which the correlation, at FRair = 1, gives the design approach at
    the design wet bulb and range; reference flow = design flow / that ratio.
    """
    design_flow = p["cw_pump_design_flow_ls"]
    design_range = liquid.coolant_return_temp(0.0, p["tower_capacity_kw"], design_flow)
    lo = np.full(np.shape(design_range), 0.3)
    hi = np.full(np.shape(design_range), 1.6)
    k0, k1, k2, k3 = tower.cubic_in_water(p["tower_design_wetbulb_c"], design_range, 1.0)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        ap = ((k3 * mid + k2) * mid + k1) * mid + k0
        high = ap > p["tower_design_approach_k"]
        hi = np.where(high, mid, hi)
        lo = np.where(high, lo, mid)
    return np.asarray(design_flow / (0.5 * (lo + hi)))


def solve_state(state: PlantState) -> PlantSolution:
    """:func:`solve` for one state (every array has one element)."""
    p = {k: np.asarray([v], dtype=float) for k, v in state.numeric().items()}
    return solve(p, state.chiller)


def steady_state(state: PlantState) -> dict[str, float]:
    """Every output of the model for one state (no changes): floats keyed by name."""
    return {k: float(np.reshape(v, -1)[0]) for k, v in solve_state(state).to_dict().items()}
