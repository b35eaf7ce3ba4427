"""Scalar steady-state physics of the twin's plant (pure functions, SI-ish units).

The twin's dynamics (:mod:`twin.plant`) move each state towards the steady
state these functions give, through first-order lags. Everything here is a
small closed form on Python floats — the twin steps a simulated day in a few
seconds, so no numpy on the hot path.

Units: temperatures degC, power and heat kW, flow L/s (water) or m3/s (air),
fractions 0–1 unless named ``*_pct``.

Sources: water properties at 10–40 °C (ρ ≈ 997 kg/m3, cp ≈ 4.18 kJ/kg·K);
air ρ·cp ≈ 1.2 kg/m3 × 1.006 kJ/kg·K; affinity laws for pumps and fans
(power ∝ speed³); transformer losses and hot-spot rise after IEEE C57.91
(rise ∝ K^(2m), m = 0.8); UPS loss as a quadratic in load (no-load, linear and
I²R terms), the usual fit of manufacturer efficiency curves.
"""

from __future__ import annotations

import math

RHO_CP_WATER = 4.17  # kJ/(L·K): ρ·cp of water, 997 kg/m3 × 4.18 kJ/kg·K
RHO_CP_AIR = 1.207  # kJ/(m3·K)


def lag(x: float, target: float, dt: float, tau: float) -> float:
    """Exact first-order step of ``x`` towards ``target`` with time constant ``tau`` (s)."""
    if tau <= 0:
        return target
    x = target + (x - target) * math.exp(-dt / tau)
    return target if abs(x - target) < 1e-9 else x


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def water_dt(q_kw: float, flow_ls: float) -> float:
    """Temperature change (K) of a water stream carrying ``q_kw`` at ``flow_ls``."""
    return q_kw / (max(flow_ls, 0.05) * RHO_CP_WATER)


# ----------------------------------------------------------------- weather


def diurnal(hour: float, peak_hour: float = 15.0) -> float:
    """Cosine diurnal shape, +1 at ``peak_hour`` and −1 twelve hours later."""
    return math.cos(2.0 * math.pi * (hour - peak_hour) / 24.0)


def wet_bulb(t_db: float, rh_pct: float, pressure_pa: float = 101325.0) -> float:
    """Thermodynamic wet-bulb temperature (degC) from dry bulb and RH, via psychrolib."""
    import psychrolib

    psychrolib.SetUnitSystem(psychrolib.SI)
    return float(
        psychrolib.GetTWetBulbFromRelHum(t_db, clamp(rh_pct, 1.0, 100.0) / 100.0, pressure_pa)
    )


# ----------------------------------------------------------------- IT load


def gpu_power_w(activity: float, cap_frac: float, tdp_w: float, idle_w: float) -> float:
    """Per-GPU power (W): idle plus activity × dynamic range, held under the DVFS cap."""
    demand = idle_w + (tdp_w - idle_w) * clamp(activity, 0.0, 1.0)
    return min(demand, max(cap_frac * tdp_w, idle_w))


def dvfs_slowdown(demand_w: float, capped_w: float, idle_w: float, exponent: float = 2.5) -> float:
    """Throughput kept (0–1) when a GPU wanting ``demand_w`` is held at ``capped_w``.

    Dynamic power ∝ f·V² and V tracks f, so P_dyn ∝ f^≈2.5 in the DVFS range;
    throughput ∝ f, hence kept = (P_dyn,capped / P_dyn,demand)^(1/2.5).
    """
    dyn_demand = demand_w - idle_w
    if dyn_demand <= 1e-9 or capped_w >= demand_w:
        return 1.0
    return clamp((capped_w - idle_w) / dyn_demand, 0.0, 1.0) ** (1.0 / exponent)


def die_temp(coolant_c: float, gpu_w: float, r_th: float, flow_frac: float) -> float:
    """GPU die temperature (degC): coolant + P·R, with the convective part of R growing
    as flow falls (Nusselt ∝ Re^0.8: R_conv ∝ flow^−0.8). 1/3 of R is conduction."""
    f = max(flow_frac, 0.05)
    r = r_th * (1.0 / 3.0 + (2.0 / 3.0) * f**-0.8)
    return coolant_c + gpu_w * r


# ----------------------------------------------------------------- chiller


def chiller_capacity(cap_rated: float, t_chw: float, t_cw_in: float) -> float:
    """Available capacity (kW): ≈ +2 %/K of leaving chilled water, −1.5 %/K of entering
    condenser water, around AHRI 550/590 rating (6.7 °C / 29.4 °C)."""
    f = 1.0 + 0.02 * (t_chw - 6.7) - 0.015 * (t_cw_in - 29.4)
    return cap_rated * clamp(f, 0.5, 1.2)


def chiller_power(
    q_kw: float,
    cap_rated: float,
    cop_rated: float,
    t_chw: float,
    t_cw_leaving: float,
    fouling: float = 0.0,
) -> float:
    """Compressor power (kW) at evaporator load ``q_kw``.

    Lift scaling of a Carnot-fraction model: COP ∝ T_evap / (T_cond − T_evap),
    with T_evap = leaving chilled water − 2 K and T_cond = leaving condenser water
    + (1.5 + 6·fouling) K (fouling 0–1 raises the condenser approach); rated at
    6.7 °C / 35 °C. Part load: EIR(PLR) = 0.2 + 0.3·PLR + 0.5·PLR².
    """
    if q_kw <= 0.0:
        return 0.0
    te = t_chw - 2.0 + 273.15
    tc = t_cw_leaving + 1.5 + 6.0 * fouling + 273.15
    te0, tc0 = 6.7 - 2.0 + 273.15, 35.0 + 1.5 + 273.15
    lift = max(tc - te, 5.0)
    carnot_ratio = (te / lift) / (te0 / (tc0 - te0))
    p_full = cap_rated / (cop_rated * carnot_ratio)
    plr = clamp(q_kw / cap_rated, 0.0, 1.2)
    return p_full * (0.2 + 0.3 * plr + 0.5 * plr * plr)


# ----------------------------------------------------------------- cooling tower


def tower_approach(
    q_rej_kw: float, q_design_kw: float, fan_frac: float, flow_frac: float, design_approach: float
) -> float:
    """Approach (K) of leaving water over wet bulb: grows with load^0.7 and water flow^0.4,
    falls with airflow^0.7 (natural draft keeps 15 % airflow with fans off)."""
    load = max(q_rej_kw / q_design_kw, 0.0)
    air = max(fan_frac, 0.15)
    return design_approach * load**0.7 * max(flow_frac, 0.2) ** 0.4 / air**0.7


# ----------------------------------------------------------------- pumps, fans


def affinity_power(rated_kw: float, speed_frac: float, min_frac_power: float = 0.0) -> float:
    """Shaft-plus-drive power (kW) at ``speed_frac``: P ∝ n³ (affinity laws), VFD loss 3 %."""
    s = clamp(speed_frac, 0.0, 1.2)
    if s <= 0.0:
        return 0.0
    return rated_kw * max(s**3, min_frac_power) * 1.03


# ----------------------------------------------------------------- power chain


def ups_loss(p_out_kw: float, rated_kw: float) -> float:
    """Double-conversion UPS loss (kW): 1 % no-load + 2 % linear + 1.5 % × x² of rating."""
    x = max(p_out_kw, 0.0) / rated_kw
    return rated_kw * (0.01 + 0.02 * x + 0.015 * x * x)


def transformer_loss(
    load_kw: float, rated_kva: float, nl_kw: float, ll_kw: float, pf: float = 0.95
) -> float:
    """No-load plus load losses (kW): P_nl + P_ll·(S/S_rated)²."""
    k = load_kw / pf / rated_kva
    return nl_kw + ll_kw * k * k


def winding_hotspot(load_kw: float, rated_kva: float, ambient_c: float, pf: float = 0.95) -> float:
    """Steady hot-spot temperature (degC): ambient + 80 K rated rise × K^1.6 (IEEE C57.91)."""
    k = max(load_kw / pf / rated_kva, 0.0)
    return ambient_c + 80.0 * k**1.6


# ----------------------------------------------------------------- air side


def recirculation(supply_m3s: float, demand_m3s: float, base: float = 0.05) -> float:
    """Share of rack inlet air that is recirculated exhaust: a base share, growing as
    the CRAH supply falls short of the racks' airflow."""
    if demand_m3s <= 0:
        return base
    short = clamp(1.0 - supply_m3s / demand_m3s, 0.0, 1.0)
    return clamp(base + 0.9 * short, 0.0, 0.9)


def rack_inlet(supply_c: float, recirc: float, rack_dt: float) -> float:
    """Rack inlet (degC) with ``recirc`` of exhaust (inlet + rack_dt) mixed in:
    T_in = (1−r)·T_s + r·(T_in + ΔT) ⇒ T_in = T_s + r·ΔT/(1−r)."""
    r = clamp(recirc, 0.0, 0.9)
    return supply_c + r * rack_dt / (1.0 - r)
