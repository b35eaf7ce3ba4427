"""Impose a chiller fault's physics on fault-free data (RP-1043 names, SI units).

Three of the seven RP-1043 faults have no public data here (excess oil, reduced
evaporator water flow, non-condensables); the detector must still recognise
them from their physics. These pure functions turn fault-free rows into the
rows the same chiller would have shown with the fault, holding the operating
point (load Q, leaving chilled water TEO, entering condenser water TCI) fixed
as the plant's controls do. They are used by the tests and to build eval
scenarios; each states the physics, its assumptions and where its magnitude
comes from.

**Severity is RP-1043's own measure** (Comstock & Braun, 1999, RP-1043 final
report; four levels per fault, :data:`RP1043_LEVELS`): the share of condenser
tubes plugged (fouling), of water flow removed, of refrigerant charge lost or
added, of oil added over the nominal charge, and the share of nitrogen in the
condenser's gas. Each default is the fault's most severe RP-1043 level.

Provenance of the magnitudes (issue 15: the model used to be off against the real
files — fouling 5× too strong, the leak's subcooling of the wrong sign):

* checked against the four real files at their level (``facility-agent bench fdd``,
  "perturbation model vs real"): condenser-water flow (fwc10) and fouling (cf12) come
  from heat-exchanger physics with no constant read off the files and land within
  10 % of the measured shifts of their primary feature; overcharge's two constants are ro10's measured shifts
  (a development file); the leak's no-effect-up-to-10 % is what rl10 shows;
* the other magnitudes (leak beyond 10 %, excess oil, non-condensables) are physics with
  stated assumptions; the literature (Comstock, Braun & Groll, 2001, *The sensitivity of
  chiller performance to common faults*, HVAC&R Research 7(3); 2002, *A survey of common
  faults for chillers*, ASHRAE Trans. 108(1)) gives their directions and that excess oil
  and a small leak barely move any measurement.

Heat-exchanger relations (flooded shells, refrigerant at uniform temperature):
``NTU = ln((T_in − T_r) / (T_out − T_r))`` and, at fixed duty and leaving
temperature, ``T_out − T_r = ΔT / (exp(NTU) − 1)`` (Incropera & DeWitt,
*Fundamentals of heat and mass transfer*, ε-NTU with C_r = 0).
R-134a saturation slope near 30–40 °C: dP_sat/dT ≈ 26 kPa/K (ASHRAE
Handbook — Fundamentals, ch. 30 tables: 887 kPa at 35 °C, 1017 kPa at 40 °C).
Compressor power rises about 2.5 % per kelvin of extra lift (a typical
centrifugal chiller's sensitivity; cf. the EIR-vs-temperature curves of
EnergyPlus ``Chiller:Electric:EIR``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

R134A_DPDT_KPA_PER_K = 26.0
POWER_PER_K_LIFT = 0.025
WATER_SIDE_SHARE = 0.5  # share of a shell's thermal resistance on the water side
FLOW_EXPONENT = 0.8  # Dittus–Boelter: h ∝ velocity^0.8
ATM_KPA = 101.325  # RP-1043 pressures are gauge

#: RP-1043's four severity levels per fault (Comstock & Braun, 1999), in this module's units
RP1043_LEVELS: dict[str, tuple[float, ...]] = {
    "condenser_fouling": (0.12, 0.20, 0.30, 0.45),  # share of condenser tubes plugged
    "reduced_condenser_flow": (0.10, 0.20, 0.30, 0.40),  # share of design flow removed
    "reduced_evaporator_flow": (0.10, 0.20, 0.30, 0.40),
    "refrigerant_leak": (0.10, 0.20, 0.30, 0.40),  # share of the nominal charge lost
    "refrigerant_overcharge": (0.10, 0.20, 0.30, 0.40),  # share added over nominal
    "excess_oil": (0.14, 0.32, 0.50, 0.68),  # share of oil over the nominal charge
    "non_condensables": (0.01, 0.02, 0.03, 0.05),  # nitrogen share of the condenser gas
}

#: the real RP-1043 files shipped in ``../shared`` and the level each holds
RP1043_FILES: dict[str, tuple[str, float]] = {
    "cf12": ("condenser_fouling", 0.12),
    "fwc10": ("reduced_condenser_flow", 0.10),
    "rl10": ("refrigerant_leak", 0.10),
    "ro10": ("refrigerant_overcharge", 0.10),
}

# overcharge, per unit of added charge: ro10's measured mean shifts at 10 % (a development
# file), K — subcooling +0.77 K, condensing temperature over leaving water +0.56 K
OVERCHARGE_SUBCOOLING_K = 7.7
OVERCHARGE_APPROACH_K = 5.6
# leak: rl10 (10 % lost) moves nothing beyond another day's spread; below this share the
# condenser's liquid seal and the evaporator's pool absorb the loss
LEAK_ONSET = 0.10
# leak beyond the onset, per unit of charge lost (assumed; directions from the literature):
# the liquid seal thins (subcooling falls), the evaporator is starved (TRE falls, superheat rises)
LEAK_SUBCOOLING_K = 5.0
LEAK_EVAP_K = 1.7
LEAK_SUPERHEAT_K = 3.3
# excess oil (assumed): evaporator UA falls 0.37 per unit (−25 % at RP-1043's 68 %), the
# sump runs 3 K per unit warmer, oil drag adds 3 % power per unit
OIL_UA_LOSS = 0.37
OIL_SUMP_K = 3.0
OIL_POWER = 0.03


def _evap_ntu(df: pd.DataFrame) -> pd.Series:
    num = (df["TEI"] - df["TRE"]).clip(lower=1e-3)
    den = (df["TEO"] - df["TRE"]).clip(lower=1e-3)
    return np.log((num / den).clip(lower=1.0 + 1e-6))


def _cond_ntu(df: pd.DataFrame) -> pd.Series:
    num = (df["TRC"] - df["TCI"]).clip(lower=1e-3)
    den = (df["TRC"] - df["TCO"]).clip(lower=1e-3)
    return np.log((num / den).clip(lower=1.0 + 1e-6))


def _lift_power(df: pd.DataFrame, dlift_k: pd.Series | float) -> pd.Series:
    return df["kW"] * (1.0 + POWER_PER_K_LIFT * dlift_k)


def _ua_ratio_fewer_tubes(plugged: float) -> float:
    """UA of a shell with a share of its tubes plugged, the same water in the rest: area
    × (1 − p), water velocity ÷ (1 − p) so the water film h × (1 − p)^−0.8."""
    open_ = 1.0 - float(plugged)
    water = WATER_SIDE_SHARE * open_ ** (FLOW_EXPONENT - 1.0)
    refrigerant = (1.0 - WATER_SIDE_SHARE) / open_
    return 1.0 / (water + refrigerant)


def excess_oil(df: pd.DataFrame, severity: float = 0.68) -> pd.DataFrame:
    """Excess oil charge (``severity`` = share over nominal): oil carried into the flooded
    evaporator coats and foams the tubes.

    Evaporator UA falls by 37 %·severity (refrigerant-side film degraded; −25 % at
    RP-1043's 68 %, an assumption), so at the same duty and TEO the evaporating
    temperature TRE drops (approach ↑) and the lift rises; the shell stays flooded
    (superheat unchanged); a fuller sump runs warmer (+3 K·severity sump, +2.2 K feed) and
    oil drag adds 3 %·severity power. At RP-1043's 14 % the approach moves +0.24 K on
    average — within another day's spread (cf12's evaporator approach: +0.36 K): the
    literature finds excess oil the least visible of the seven.
    """
    s = float(severity)
    out = df.copy()
    ntu = _evap_ntu(df) * (1.0 - OIL_UA_LOSS * s)
    dt = df["TEI"] - df["TEO"]
    tre = df["TEO"] - dt / np.expm1(ntu).clip(lower=1e-3)
    dlift = df["TRE"] - tre
    out["TRE"] = tre
    out["TEA"] = df["TEO"] - tre
    out["TO_sump"] = df["TO_sump"] + OIL_SUMP_K * s
    if "TO_feed" in df:
        out["TO_feed"] = df["TO_feed"] + 0.75 * OIL_SUMP_K * s
    out["kW"] = _lift_power(df, dlift) * (1.0 + OIL_POWER * s)
    return out


def reduced_evaporator_flow(df: pd.DataFrame, severity: float = 0.4) -> pd.DataFrame:
    """Chilled-water flow cut by ``severity`` (0.1 = −10 %), load and TEO held.

    The mirror of :func:`reduced_condenser_flow` (which agrees with fwc10 within 10 %):
    ΔT_evap = Q/(ṁ c) rises by 1/(1 − s), so TEI rises, and the flow meter reads the cut;
    the water film coefficient falls with velocity^0.8, and with the higher NTU per unit
    flow the evaporating temperature is recomputed from ε-NTU (approach moves a little).
    """
    s = float(severity)
    out = df.copy()
    ntu = _evap_ntu(df)
    ua_ratio = 1.0 / ((1 - WATER_SIDE_SHARE) + WATER_SIDE_SHARE / (1 - s) ** FLOW_EXPONENT)
    ntu2 = ntu * ua_ratio / (1 - s)
    dt2 = (df["TEI"] - df["TEO"]) / (1 - s)
    out["FWE"] = df["FWE"] * (1 - s)
    out["TEI"] = df["TEO"] + dt2
    if "TWEI" in df:
        out["TWEI"] = df["TWEI"] + (dt2 - (df["TEI"] - df["TEO"]))
    tre = df["TEO"] - dt2 / np.expm1(ntu2).clip(lower=1e-3)
    out["TRE"] = tre
    out["TEA"] = df["TEO"] - tre
    out["kW"] = _lift_power(df, df["TRE"] - tre)
    return out


def non_condensables(df: pd.DataFrame, severity: float = 0.05) -> pd.DataFrame:
    """Non-condensable gas (``severity`` = nitrogen's share of the condenser's gas).

    By Dalton's law the gas adds ``severity × P_cond`` (absolute) to the condenser
    pressure (an assumption about how RP-1043's percentages were measured: ≈ 7.5 kPa,
    0.3 K per 1 % at this chiller's ~750 kPa). The condensing temperature RP-1043 reports
    (TRC) is the saturation temperature *of that pressure* (TRC = T_sat(PRC) within
    0.05 K in all four files), so it rises by dP/(dP_sat/dT) while the liquid stays
    where the water puts it: approach and subcooling rise by the same amount
    (liquid_excess unchanged), independent of load. The compressor works against the
    higher total pressure: discharge temperature +1.5·δT, power +2.5 %/K.
    """
    p_abs = df["PRC"] + ATM_KPA
    dp = float(severity) * p_abs
    dtr = dp / R134A_DPDT_KPA_PER_K
    out = df.copy()
    out["PRC"] = df["PRC"] + dp
    if "P_lift" in df:
        out["P_lift"] = df["P_lift"] + dp
    out["TRC"] = df["TRC"] + dtr
    out["TCA"] = df["TCA"] + dtr if "TCA" in df else df["TRC"] + dtr - df["TCO"]
    out["TRC_sub"] = df["TRC_sub"] + dtr
    out["TR_dis"] = df["TR_dis"] + 1.5 * dtr
    out["kW"] = _lift_power(df, dtr)
    return out


def condenser_fouling(df: pd.DataFrame, severity: float = 0.45) -> pd.DataFrame:
    """Fouling as RP-1043 made it: a share ``severity`` of the condenser tubes plugged.

    The same water runs through fewer tubes: UA × :func:`_ua_ratio_fewer_tubes` (area
    lost, water film a little better), so at the same heat rejected and water temperatures
    the condensing temperature rises over the leaving water: TRC = TCO + ΔT/(e^NTU' − 1).
    The effect grows with load (the approach does). No constant is read off cf12; at its
    12 % this gives +0.25 K on average, cf12 shows +0.24 K (the old fixed
    0.5 K/100 kW gave +1.3 K). The liquid is subcooled by the same tubes, so subcooling is
    unchanged; discharge temperature +1.2·δT, power +2.5 %/K of lift.
    """
    ntu = _cond_ntu(df) * _ua_ratio_fewer_tubes(severity)
    dt = (df["TCO"] - df["TCI"]).clip(lower=1e-3)
    trc = df["TCO"] + dt / np.expm1(ntu).clip(lower=1e-3)
    dtr = (trc - df["TRC"]).clip(lower=0.0)
    out = df.copy()
    out["TRC"] = df["TRC"] + dtr
    out["PRC"] = df["PRC"] + R134A_DPDT_KPA_PER_K * dtr
    if "TCA" in df:
        out["TCA"] = df["TCA"] + dtr
    out["TR_dis"] = df["TR_dis"] + 1.2 * dtr
    out["kW"] = _lift_power(df, dtr)
    return out


def reduced_condenser_flow(df: pd.DataFrame, severity: float = 0.4) -> pd.DataFrame:
    """Condenser-water flow cut by ``severity``: ΔT_cond rises by 1/(1 − s), TCI held.

    The leaving water is warmer, the condensing temperature follows it (approach
    roughly held), so lift and power rise with the extra ΔT. At 10 % this moves the
    condenser-water ΔT by +0.39 K on average; fwc10 shows +0.41 K.
    """
    s = float(severity)
    out = df.copy()
    dt = df["TCO"] - df["TCI"]
    extra = dt * (1 / (1 - s) - 1)
    out["FWC"] = df["FWC"] * (1 - s)
    out["TCO"] = df["TCO"] + extra
    out["TRC"] = df["TRC"] + extra
    out["PRC"] = df["PRC"] + R134A_DPDT_KPA_PER_K * extra
    out["TR_dis"] = df["TR_dis"] + 1.2 * extra
    out["kW"] = _lift_power(df, extra)
    return out


def refrigerant_leak(df: pd.DataFrame, severity: float = 0.4) -> pd.DataFrame:
    """Undercharge (``severity`` = share of the charge lost).

    Up to :data:`LEAK_ONSET` (10 %) nothing measurable: rl10 moves its subcooling by
    +0.05 K and no feature beyond another day's spread (the old model's −1.5 K was of the
    wrong sign there). Beyond it (assumed magnitudes, directions from the literature) the
    condenser's liquid seal thins — subcooling falls 5 K per unit lost — and the evaporator
    is starved: TRE falls 1.7 K and suction superheat rises 3.3 K per unit, adding lift.
    At RP-1043's 40 %: subcooling −1.5 K, evaporator approach +0.5 K, superheat +1 K.
    """
    x = max(0.0, float(severity) - LEAK_ONSET)
    out = df.copy()
    out["TRC_sub"] = (df["TRC_sub"] - LEAK_SUBCOOLING_K * x).clip(lower=0.0)
    out["TRE"] = df["TRE"] - LEAK_EVAP_K * x
    out["TEA"] = df["TEO"] - out["TRE"]
    out["Tsh_suc"] = df["Tsh_suc"] + LEAK_SUPERHEAT_K * x
    out["kW"] = _lift_power(df, LEAK_EVAP_K * x)
    return out


def refrigerant_overcharge(df: pd.DataFrame, severity: float = 0.4) -> pd.DataFrame:
    """Overcharge (``severity`` = share added): liquid floods condenser tubes — subcooling
    +7.7 K and condensing temperature +5.6 K per unit added (less area left to condense):
    ro10's measured shifts at 10 % (a development file), linear in the charge added."""
    s = float(severity)
    out = df.copy()
    dtr = OVERCHARGE_APPROACH_K * s
    out["TRC"] = df["TRC"] + dtr
    out["PRC"] = df["PRC"] + R134A_DPDT_KPA_PER_K * dtr
    if "TCA" in df:
        out["TCA"] = df["TCA"] + dtr
    out["TRC_sub"] = df["TRC_sub"] + OVERCHARGE_SUBCOOLING_K * s
    out["TR_dis"] = df["TR_dis"] + 1.2 * dtr
    out["kW"] = _lift_power(df, dtr)
    return out


PERTURBATIONS: dict[str, Callable[..., pd.DataFrame]] = {
    "condenser_fouling": condenser_fouling,
    "reduced_condenser_flow": reduced_condenser_flow,
    "reduced_evaporator_flow": reduced_evaporator_flow,
    "refrigerant_leak": refrigerant_leak,
    "refrigerant_overcharge": refrigerant_overcharge,
    "excess_oil": excess_oil,
    "non_condensables": non_condensables,
}


def impose(
    df: pd.DataFrame, fault: str, severity: float | None = None, start_s: float = 0.0
) -> pd.DataFrame:
    """Fault-free frame → the frame with ``fault`` from ``start_s`` seconds on (DatetimeIndex)."""
    try:
        fn = PERTURBATIONS[fault]
    except KeyError:
        raise KeyError(f"unknown chiller fault {fault!r}; known: {sorted(PERTURBATIONS)}") from None
    faulted = fn(df) if severity is None else fn(df, severity)
    if start_s <= 0:
        return faulted
    t = (df.index - df.index[0]).total_seconds()
    on = np.asarray(t >= start_s)
    out = df.copy()
    out.loc[on, :] = faulted.loc[on, :]
    return out


def fault_free_chiller(
    hours: float = 14.0, *, seed: int = 0, period_s: float = 10.0, hold_min: float = 30.0
) -> pd.DataFrame:
    """A fault-free centrifugal chiller recording (RP-1043 names, SI), for tests and scenarios.

    The operating point steps every ``hold_min`` minutes through loads of
    90–320 kW, leaving chilled water 5–10 °C and entering condenser water
    20–30 °C (RP-1043's test matrix). Water ΔTs come from the energy balance
    at fixed flows (12 L/s chilled, 15 L/s condenser); approaches grow with load
    like a shell-and-tube exchanger's; power follows a Carnot-fraction COP. Sensor
    noise: 0.03 K on temperatures, 0.3 % on flows and power.
    """
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 / period_s)
    per_hold = max(1, int(hold_min * 60 / period_s))
    steps = n // per_hold + 1
    q_lvl = rng.choice([90.0, 150.0, 210.0, 270.0, 320.0], steps)
    teo_lvl = rng.choice([5.0, 6.5, 8.0, 10.0], steps)
    tci_lvl = rng.choice([20.0, 23.0, 26.0, 29.0], steps)
    i = np.arange(n) // per_hold
    # first-order approach to each new operating point (time constant 3 min)
    alpha = 1.0 - np.exp(-period_s / 180.0)

    def smooth(v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        acc = v[0]
        for k in range(len(v)):
            acc += alpha * (v[k] - acc)
            out[k] = acc
        return out

    q, teo, tci = smooth(q_lvl[i]), smooth(teo_lvl[i]), smooth(tci_lvl[i])
    fwe, fwc = 12.0, 15.0
    cp = 4.186 * 0.999
    tre = teo - (0.8 + 0.006 * q)
    tco_guess = tci + q * 1.2 / (cp * fwc)
    trc = tco_guess + 0.4 + 0.007 * q
    t_ev, t_cd = tre + 273.15, trc + 273.15
    cop = 0.55 * t_ev / (t_cd - t_ev) * (1.0 - 0.15 * (1.0 - q / 320.0) ** 2)
    kw = q / cop
    tco = tci + (q + kw) / (cp * fwc)
    trc = tco + 0.4 + 0.007 * (q + kw)
    frame = {
        "TEO": teo,
        "TEI": teo + q / (cp * fwe),
        "TCI": tci,
        "TCO": tco,
        "TRE": tre,
        "TRC": trc,
        "TRC_sub": 2.5 + 0.008 * q,
        "Tsh_suc": 1.2 + 0.002 * q,
        "TR_dis": trc + 12.0 + 0.02 * q,
        "TO_sump": 44.0 + 0.01 * q,
        "TO_feed": 42.0 + 0.01 * q,
        "PRC": 400.0 + 26.0 * (trc - 20.0),
        "PRE": 250.0 + 12.0 * (tre - 3.0),
        "kW": kw,
        "FWE": np.full(n, fwe),
        "FWC": np.full(n, fwc),
    }
    noisy = {}
    for k, v in frame.items():
        scale = 0.003 * np.abs(v) if k in ("kW", "FWE", "FWC", "PRC", "PRE") else 0.03
        noisy[k] = v + rng.normal(0.0, 1.0, n) * scale
    out = pd.DataFrame(
        noisy, index=pd.date_range("2026-01-01", periods=n, freq=f"{int(period_s)}s", name="ts")
    )
    out["TEA"] = out["TEO"] - out["TRE"]
    out["TCA"] = out["TRC"] - out["TCO"]
    return out
