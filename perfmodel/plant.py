"""The plant's steady state: the component models chained (see :mod:`perfmodel.whatif`).

:func:`solve` takes every :class:`~perfmodel.state.PlantState` field as a
broadcast numpy array and returns every output as an array — one pass for one
plant or for ten thousand candidates. :func:`steady_state` is the one-plant
convenience (floats in a dict), e.g. for the twin.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perfmodel import air, chiller, kpi, liquid, power, pumps, tower
from perfmodel.idf import ChillerEIR
from perfmodel.state import PlantState

__all__ = [
    "FREE_CONVECTION_FR_AIR",
    "MAX_CHW_RISE_K",
    "solve",
    "steady_state",
    "tower_reference_flow",
]

F = NDArray[np.float64]

#: Air-flow ratio equivalent to free convection with the fan off (EnergyPlus default
#: "Fraction of Tower Capacity in Free Convection Regime" = 0.125).
FREE_CONVECTION_FR_AIR = 0.125
#: Largest chilled-water warming the model reports when chillers fall short (K).
MAX_CHW_RISE_K = 30.0


def solve(p: dict[str, F], ch: ChillerEIR) -> dict[str, F]:
    """The steady state for broadcast parameter arrays ``p`` (every PlantState field).

    Returns arrays keyed by output name; the main ones (units in the names):
    facility_kw, it_kw, cooling_kw, pue, plant_kw_per_ton, chiller_kw,
    chiller_plr, chiller_cop, chiller_capacity_avail_kw, tower_fan_kw,
    tower_fan_speed_pct, tower_range_k, tower_approach_k, pumps_kw, crah_fan_kw,
    cdu_pump_kw, chw_supply_c, chw_return_c, chw_delta_t_k, chw_load_kw,
    chw_unmet_kw, cw_supply_c, cw_return_c, cdu_supply_c, cdu_return_c,
    gpu_die_c, gpu_kw, throughput_loss_pct, supply_air_c, rack_inlet_c,
    recirculation, ups_output_kw, ups_loss_kw, pdu_loss_kw, tx_load_kva,
    tx_loss_kw, battery_runtime_min, wetbulb_c; valid_* flags (1.0/0.0).
    """
    o: dict[str, F] = {}
    # 1. weather --------------------------------------------------------------------------
    twb = p["outdoor_wetbulb_c"]
    if np.isnan(twb).any():
        db, rh = np.broadcast_arrays(p["outdoor_drybulb_c"], p["outdoor_rh_pct"])
        pairs, inv = np.unique(np.stack([db.ravel(), rh.ravel()]), axis=1, return_inverse=True)
        wb = tower.wet_bulb(pairs[0], pairs[1])[inv.ravel()].reshape(db.shape)
        twb = np.where(np.isnan(twb), wb, twb)
    o["wetbulb_c"] = twb
    # 2. IT and DVFS ----------------------------------------------------------------------
    demand = p["gpu_demand_kw"]
    cap = p["gpu_power_cap_kw"]
    gpu_kw = np.minimum(demand, np.where(np.isfinite(cap), cap, np.inf))
    clock_demand = liquid.clock_for_power_cap(demand, p["gpu_rated_kw"])
    clock = liquid.clock_for_power_cap(gpu_kw, p["gpu_rated_kw"])
    with np.errstate(divide="ignore", invalid="ignore"):
        o["throughput_loss_pct"] = np.where(
            clock_demand > 0, 100.0 * (1.0 - clock / clock_demand), 0.0
        )
    o["gpu_kw"] = gpu_kw
    it_kw = gpu_kw + p["other_it_kw"]
    o["it_kw"] = it_kw
    liquid_kw = p["liquid_fraction"] * gpu_kw
    air_kw = it_kw - liquid_kw
    # 3. chilled-water supply (the setpoint; chillers hold it while they have capacity) ----
    chw_s = p["chw_supply_setpoint_c"]
    # 4. CDU and GPU thermal chain --------------------------------------------------------
    cdu_speed = np.clip(p["cdu_pump_speed_pct"] / 100.0, 0.0, 1.0)
    cdu_flow = p["cdu_design_flow_ls"] * cdu_speed
    cdu_kw = pumps.electric_power(p["cdu_pump_rated_kw"], cdu_speed)
    heat_w = liquid_kw * 1000.0 / p["gpus"]
    m_gpu = cdu_flow * liquid.RHO_WATER / 1000.0 / p["gpus"]
    r_half = 0.5 * p["r_th_k_per_w"]
    r_th = liquid.thermal_resistance(cdu_speed, r_half, r_half)
    o["cdu_pump_kw"] = cdu_kw
    o["cdu_flow_ls"] = cdu_flow
    # 5. CRAH and rack inlet --------------------------------------------------------------
    crah_speed = np.clip(p["crah_fan_speed_pct"] / 100.0, 0.0, 1.0)
    crah_flow = p["crah_running"] * p["crah_airflow_design_m3s"] * crah_speed
    crah_kw = p["crah_running"] * pumps.electric_power(p["crah_fan_rated_kw"], crah_speed)
    air_heat = air_kw + crah_kw
    it_flow = air_heat * 1000.0 / (air.RHO_AIR * air.CP_AIR * p["server_delta_t_k"])
    r = air.recirculation_share(crah_flow, it_flow, p["recirculation_base"])
    o["recirculation"] = r
    o["crah_airflow_m3s"] = crah_flow
    o["it_airflow_min_m3s"] = it_flow * (1.0 - p["recirculation_base"])
    o["crah_fan_kw"] = crah_kw
    # 6. electrical losses on the critical path ------------------------------------------
    pdu_loss = power.pdu_loss(it_kw, p["pdu_rated_kw"], 1.0) * p["pdu_loss_fraction"]
    ups_out = it_kw + pdu_loss + cdu_kw
    ups_loss = power.ups_loss(ups_out, p["ups_capacity_kw"])
    o["ups_output_kw"] = ups_out
    o["ups_loss_kw"] = ups_loss
    o["pdu_loss_kw"] = pdu_loss
    # 7. pumps ---------------------------------------------------------------------------
    chw_speed = np.clip(p["chw_pump_speed_pct"] / 100.0, 0.0, 1.0)
    cw_speed = np.clip(p["cw_pump_speed_pct"] / 100.0, 0.0, 1.0)
    n_run = np.maximum(p["chillers_running"], 0.0)
    chw_flow = p["chw_pump_design_flow_ls"] * chw_speed
    cw_flow = p["cw_pump_design_flow_ls"] * cw_speed
    chw_pump_kw = pumps.electric_power(p["chw_pump_rated_kw"], chw_speed)
    cw_pump_kw = pumps.electric_power(p["cw_pump_rated_kw"], cw_speed)
    # 8. chilled-water load ---------------------------------------------------------------
    q_chw = it_kw + pdu_loss + ups_loss + crah_kw + cdu_kw + chw_pump_kw
    o["chw_load_kw"] = q_chw
    with np.errstate(divide="ignore", invalid="ignore"):
        o["chw_flow_per_chiller_ls"] = np.where(n_run > 0, chw_flow / n_run, 0.0)
        o["cw_flow_per_chiller_ls"] = np.where(n_run > 0, cw_flow / n_run, 0.0)
    dt_chw = liquid.coolant_return_temp(0.0, q_chw, chw_flow)
    o["chw_delta_t_k"] = dt_chw
    o["chw_flow_ls"] = chw_flow
    o["chw_pump_speed_pct"] = 100.0 * chw_speed
    o["cw_pump_speed_pct"] = 100.0 * cw_speed
    o["cw_flow_ls"] = cw_flow
    o["chw_flow_min_ls"] = p["chiller_min_flow_ratio"] * p["chw_flow_design_per_chiller_ls"]
    o["cw_flow_min_ls"] = p["chiller_min_flow_ratio"] * p["cw_flow_design_per_chiller_ls"]
    # 9. chillers and tower, fixed point over condenser water temperature ----------------
    with np.errstate(divide="ignore", invalid="ignore"):
        q_each = np.where(n_run > 0, q_chw / n_run, 0.0)
    fr_w = cw_flow / tower_reference_flow(p)
    auto = np.isnan(p["tower_fan_speed_pct"])
    fixed_fr = np.clip(np.nan_to_num(p["tower_fan_speed_pct"], nan=100.0) / 100.0, 0.0, 1.0)
    min_fr = p["tower_min_speed_pct"] / 100.0
    t_cw = np.asarray(p["cw_supply_setpoint_c"], dtype=float)
    sp_cw = p["cw_supply_setpoint_c"]

    def tower_leaving(rng: F) -> F:
        # EnergyPlus "Variable Speed Cooling Towers": full speed when even that is too warm;
        # fan off when free convection already reaches the setpoint (the water is then colder)
        t_full = tower.leaving_water_temp(twb, rng, fr_w, 1.0)
        t_free = tower.leaving_water_temp(twb, rng, fr_w, FREE_CONVECTION_FR_AIR)
        t_auto = np.where(t_free <= sp_cw, t_free, np.maximum(sp_cw, t_full))
        return np.asarray(
            np.where(auto, t_auto, tower.leaving_water_temp(twb, rng, fr_w, fixed_fr))
        )

    def chillers_at(t: F) -> chiller.ChillerResult:
        return chiller.chiller_performance(
            ch, q_each, chw_s, t, capacity_kw=p["chiller_capacity_kw"], cop=p["chiller_cop"]
        )

    res = chillers_at(t_cw)
    rng = liquid.coolant_return_temp(0.0, n_run * res.cond_kw, cw_flow)
    for _ in range(6):  # condenser water ↔ compressor power; converges to ~1e-6 K
        t_cw = tower_leaving(rng)
        res = chillers_at(t_cw)
        rng = liquid.coolant_return_temp(0.0, n_run * res.cond_kw, cw_flow)
    fr_auto = tower.speed_for_leaving_temp(sp_cw, twb, rng, fr_w, min_fr_air=FREE_CONVECTION_FR_AIR)
    fr_air = np.where(auto, np.maximum(fr_auto, min_fr), fixed_fr)
    # at minimum speed the fan cycles to hold the setpoint: power × time share at min speed
    t_min = tower.leaving_water_temp(twb, rng, fr_w, min_fr)
    t_free = tower.leaving_water_temp(twb, rng, fr_w, FREE_CONVECTION_FR_AIR)
    with np.errstate(divide="ignore", invalid="ignore"):
        duty = np.clip((t_free - sp_cw) / (t_free - t_min), 0.0, 1.0)
    duty = np.where(auto & (fr_auto < min_fr), np.nan_to_num(duty, nan=1.0), 1.0)
    fan_kw = tower.fan_power(p["tower_fan_rated_kw"], fr_air) * duty
    fan_kw = np.where(n_run > 0, fan_kw, 0.0)
    o["cw_supply_c"] = t_cw
    o["cw_return_c"] = t_cw + rng
    o["tower_range_k"] = rng
    o["tower_approach_k"] = t_cw - twb
    o["tower_fan_speed_pct"] = np.where(
        n_run > 0, 100.0 * fr_air * np.where(duty < 1, duty, 1.0), 0.0
    )
    o["tower_fr_water"] = fr_w
    o["tower_fan_kw"] = fan_kw
    chiller_kw = n_run * res.power_kw
    o["chiller_kw"] = chiller_kw
    o["chiller_plr"] = np.where(n_run > 0, res.plr, np.inf)
    o["chiller_min_plr"] = np.full_like(chiller_kw, ch.min_plr)
    o["chiller_capacity_avail_kw"] = res.capacity_kw
    o["redundant_capacity_kw"] = np.maximum(p["chillers_available"] - 1.0, 0.0) * res.capacity_kw
    o["chillers_running"] = n_run
    o["chiller_cop"] = res.cop
    # chillers short of capacity: the unmet load warms the chilled water (CHW ΔT over the flow)
    met = n_run * np.minimum(res.plr, ch.max_plr) * res.capacity_kw
    unmet = np.where(q_chw - met > 1e-6 * np.abs(q_chw), q_chw - met, 0.0)
    with np.errstate(invalid="ignore"):
        rise = np.where(unmet > 0, liquid.coolant_return_temp(0.0, unmet, chw_flow), 0.0)
    # no flow to carry it: saturate (every downstream limit is broken long before)
    chw_actual = chw_s + np.minimum(rise, MAX_CHW_RISE_K)
    o["chw_supply_c"] = chw_actual
    o["chw_return_c"] = chw_actual + dt_chw
    o["chw_unmet_kw"] = unmet
    # temperatures downstream of the chilled water (CDU, CRAH, racks, GPUs) -----------------
    cdu_s = np.maximum(p["cdu_supply_setpoint_c"], chw_actual + p["cdu_hx_approach_k"])
    o["cdu_supply_c"] = cdu_s
    o["cdu_return_c"] = liquid.coolant_return_temp(cdu_s, liquid_kw, cdu_flow)
    o["gpu_die_c"] = liquid.die_temperature(cdu_s, heat_w, m_gpu, r_th)
    sat = air.supply_air_temp(
        p["crah_supply_air_setpoint_c"], chw_actual, p["crah_coil_approach_k"]
    )
    o["supply_air_c"] = sat
    o["rack_inlet_c"] = air.rack_inlet_temp(sat, p["server_delta_t_k"], r)
    # 10. totals --------------------------------------------------------------------------
    pumps_kw = chw_pump_kw + cw_pump_kw
    o["pumps_kw"] = pumps_kw + cdu_kw
    cooling_kw = chiller_kw + fan_kw + pumps_kw + crah_kw + cdu_kw
    o["cooling_kw"] = cooling_kw
    ups_in = ups_out + ups_loss
    tx_load_kw = ups_in + chiller_kw + fan_kw + pumps_kw + crah_kw
    tx_kva = tx_load_kw / p["power_factor"]
    tx_loss = power.transformer_loss(
        tx_kva, p["tx_rated_kva"], p["tx_no_load_kw"], p["tx_load_loss_kw"]
    )
    o["tx_load_kva"] = tx_kva
    o["tx_loss_kw"] = tx_loss
    facility = tx_load_kw + tx_loss
    o["facility_kw"] = facility
    o["pue"] = kpi.pue(facility, it_kw)
    o["plant_kw_per_ton"] = kpi.kw_per_ton(chiller_kw + fan_kw + pumps_kw, q_chw)
    amps = power.battery_current(ups_out, p["battery_bus_v"])
    ah = p["battery_kwh"] * 1000.0 / p["battery_bus_v"]
    o["battery_runtime_min"] = 60.0 * power.peukert_runtime_h(
        amps, ah, p["battery_rated_hours"], p["battery_peukert"]
    )
    # validity -----------------------------------------------------------------------------
    o["valid_chiller_temps"] = chiller.in_range(ch, chw_s, t_cw).astype(float)
    o["valid_chiller_plr"] = (
        ((res.plr >= ch.eirfplr.x_min - 1e-9) & (res.plr <= ch.eirfplr.x_max + 1e-9)) | (n_run <= 0)
    ).astype(float)
    o["valid_tower"] = (tower.in_range(twb, rng, t_cw - twb, fr_w) | (n_run <= 0)).astype(float)
    return o


def tower_reference_flow(p: dict[str, F]) -> F:
    """Tower water flow (L/s) at the correlation's reference condition.

    EnergyPlus's procedure ("Variable Speed Cooling Towers"): the water-flow
    ratio at which the correlation, at FRair = 1, gives the design approach at
    the design wet bulb and range; reference flow = design flow / that ratio.
    """
    design_flow = p["cw_pump_design_flow_ls"]
    design_range = liquid.coolant_return_temp(0.0, p["tower_capacity_kw"], design_flow)
    lo = np.full(np.shape(design_range), 0.3)
    hi = np.full(np.shape(design_range), 1.6)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        ap = tower.approach_cooltools(p["tower_design_wetbulb_c"], design_range, mid, 1.0)
        high = ap > p["tower_design_approach_k"]
        hi = np.where(high, mid, hi)
        lo = np.where(high, lo, mid)
    return np.asarray(design_flow / (0.5 * (lo + hi)))


def steady_state(state: PlantState) -> dict[str, float]:
    """Every output of the model for one state (no changes): floats keyed by name."""
    p = {k: np.asarray([v], dtype=float) for k, v in state.numeric().items()}
    return {k: float(v.reshape(-1)[0]) for k, v in solve(p, state.chiller).items()}
