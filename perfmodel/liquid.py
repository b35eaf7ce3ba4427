"""Direct-to-chip liquid cooling: the CDU loop, the GPU thermal chain, and DVFS.

Thermal chain (steady state, per GPU cold plate, energy balance + thermal
resistance; e.g. Incropera, *Fundamentals of Heat and Mass Transfer*, ch. 3):

    T_die = T_supply + q / (2·ṁ·c_p) + q · R_th

T_supply: coolant supply (°C); q: heat into the coolant per GPU (W); ṁ: coolant
mass flow per cold plate (kg/s); c_p: coolant heat capacity (J/(kg·K)); the
middle term is the rise to the plate's mean coolant temperature; R_th the die-
to-coolant resistance (K/W). The convective part of R_th scales with flow as
ṁ^−0.8 (Dittus–Boelter, turbulent internal flow), so a weak CDU pump heats the
dies.

DVFS: dynamic CMOS power P_dyn = α·C·V²·f (Weste & Harris, *CMOS VLSI Design*,
§5.1); over the DVFS range V rises roughly with f, so P_dyn ∝ f^k with k ≈ 2–3.
With an idle/static share p0 of rated power: ``P(f) = P_max·(p0 + (1 − p0)·f^k)``.
A power cap therefore maps to a clock fraction, and for compute-bound work
throughput ∝ clock.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CP_WATER",
    "RHO_WATER",
    "clock_for_power_cap",
    "coolant_return_temp",
    "die_temperature",
    "gpu_power",
    "thermal_resistance",
    "throttle_margin",
]

F = NDArray[np.float64]

#: Water near 25 °C: c_p in J/(kg·K), density in kg/m³ (IAPWS-95 values, rounded).
CP_WATER = 4180.0
RHO_WATER = 997.0


def coolant_return_temp(
    supply_c: ArrayLike,
    heat_kw: ArrayLike,
    flow_ls: ArrayLike,
    cp: float = CP_WATER,
    rho: float = RHO_WATER,
) -> F:
    """Return temperature (°C) of a loop carrying ``heat_kw`` at ``flow_ls`` (L/s): T_s + Q/(ρ·V·c_p)."""
    m = np.asarray(flow_ls, dtype=float) * rho / 1000.0
    q = np.asarray(heat_kw, dtype=float) * 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        # no heat, no rise — even at zero flow (0/0); heat with no flow rises without bound
        rise = np.where(q == 0.0, 0.0, q / (m * cp))
    return np.asarray(np.asarray(supply_c, dtype=float) + rise)


def thermal_resistance(
    flow_ratio: ArrayLike, r_conduction_kw: ArrayLike = 0.02, r_convection_kw: ArrayLike = 0.02
) -> F:
    """Die-to-coolant resistance (K/W): R_cond + R_conv·(ṁ/ṁ_design)^−0.8 (Dittus–Boelter scaling)."""
    fr = np.clip(np.asarray(flow_ratio, dtype=float), 1e-3, None)
    return np.asarray(
        np.asarray(r_conduction_kw, dtype=float) + np.asarray(r_convection_kw) * fr**-0.8
    )


def die_temperature(
    supply_c: ArrayLike,
    heat_w: ArrayLike,
    flow_kgs: ArrayLike,
    r_th_kw: ArrayLike,
    cp: float = CP_WATER,
) -> F:
    """GPU die temperature (°C) = T_supply + q/(2·ṁ·c_p) + q·R_th (per cold plate)."""
    q = np.asarray(heat_w, dtype=float)
    with np.errstate(divide="ignore"):
        rise = q / (2.0 * np.asarray(flow_kgs, dtype=float) * cp)
    return np.asarray(
        np.asarray(supply_c, dtype=float) + rise + q * np.asarray(r_th_kw, dtype=float)
    )


def gpu_power(
    clock_ratio: ArrayLike, p_max: ArrayLike, idle_share: float = 0.3, exponent: float = 2.5
) -> F:
    """GPU power (unit of ``p_max``) at clock fraction f: P_max·(p0 + (1 − p0)·f^k)."""
    f = np.clip(np.asarray(clock_ratio, dtype=float), 0.0, 1.0)
    return np.asarray(
        np.asarray(p_max, dtype=float) * (idle_share + (1.0 - idle_share) * f**exponent)
    )


def clock_for_power_cap(
    cap: ArrayLike, p_max: ArrayLike, idle_share: float = 0.3, exponent: float = 2.5
) -> F:
    """Clock fraction (–) at which the GPUs draw no more than ``cap`` (inverse of :func:`gpu_power`).

    1 when the cap is at or above ``p_max`` (or is NaN/inf: no cap); 0 when the
    cap is below the idle power. Throughput loss for compute-bound work = 1 − f.
    """
    c = np.asarray(cap, dtype=float)
    pm = np.asarray(p_max, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (c / pm - idle_share) / (1.0 - idle_share)
    f = np.clip(x, 0.0, 1.0) ** (1.0 / exponent)
    return np.asarray(np.where(np.isfinite(c), f, 1.0), dtype=float)


def throttle_margin(die_c: ArrayLike, throttle_c: ArrayLike) -> F:
    """Kelvin left before thermal throttling (negative: throttling)."""
    return np.asarray(np.asarray(throttle_c, dtype=float) - np.asarray(die_c, dtype=float))
