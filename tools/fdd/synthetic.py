"""Impose a chiller fault's physics on fault-free data (RP-1043 names, SI units).

Three of the seven RP-1043 faults have no public data (excess oil, reduced
evaporator water flow, non-condensables); the detector must still recognise
them from their physics. These pure functions turn fault-free rows into the
rows the same chiller would have shown with the fault, holding the operating
point (load Q, leaving chilled water TEO, entering condenser water TCI) fixed
as the plant's controls do. They are used by the tests and to build eval
scenarios; each states the physics and its assumptions.

Heat-exchanger relations (flooded shells, refrigerant at uniform temperature):
``NTU = ln((T_in − T_r) / (T_out − T_r))`` and, at fixed duty and leaving
temperature, ``T_out − T_r = ΔT / (exp(NTU) − 1)`` (Incropera & DeWitt,
*Fundamentals of heat and mass transfer*, ε-NTU with C_r = 0).
R-134a saturation slope near 35–40 °C: dP_sat/dT ≈ 26 kPa/K (ASHRAE
Handbook — Fundamentals, ch. 30 tables: 887 kPa at 35 °C, 1017 kPa at 40 °C).
Compressor power rises about 2.5 % per kelvin of extra lift (a typical
centrifugal chiller's sensitivity; cf. the EIR-vs-temperature curves of
EnergyPlus ``Chiller:Electric:EIR``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tools.fdd.chiller import load_kw

R134A_DPDT_KPA_PER_K = 26.0
POWER_PER_K_LIFT = 0.025
WATER_SIDE_SHARE = 0.5  # share of a shell's thermal resistance on the water side
FLOW_EXPONENT = 0.8  # Dittus–Boelter: h ∝ velocity^0.8


def _evap_ntu(df: pd.DataFrame) -> pd.Series:
    num = (df["TEI"] - df["TRE"]).clip(lower=1e-3)
    den = (df["TEO"] - df["TRE"]).clip(lower=1e-3)
    return np.log((num / den).clip(lower=1.0 + 1e-6))


def _lift_power(df: pd.DataFrame, dlift_k: pd.Series | float) -> pd.Series:
    return df["kW"] * (1.0 + POWER_PER_K_LIFT * dlift_k)


def excess_oil(df: pd.DataFrame, severity: float = 1.0) -> pd.DataFrame:
    """Excess oil charge: oil carried into the flooded evaporator fouls and foams the tubes.

    Evaporator UA falls by 25 %·severity (refrigerant-side film degraded), so at the
    same duty and TEO the evaporating temperature TRE drops (approach ↑) and the
    lift rises; the shell stays flooded (superheat unchanged); a fuller sump runs
    warmer (+2 K·severity oil sump, +1.5 K feed) and oil drag adds 2 %·severity power.
    """
    out = df.copy()
    ntu = _evap_ntu(df) * (1.0 - 0.25 * severity)
    dt = df["TEI"] - df["TEO"]
    tre = df["TEO"] - dt / np.expm1(ntu).clip(lower=1e-3)
    dlift = df["TRE"] - tre
    out["TRE"] = tre
    out["TEA"] = df["TEO"] - tre
    out["TO_sump"] = df["TO_sump"] + 2.0 * severity
    if "TO_feed" in df:
        out["TO_feed"] = df["TO_feed"] + 1.5 * severity
    out["kW"] = _lift_power(df, dlift) * (1.0 + 0.02 * severity)
    return out


def reduced_evaporator_flow(df: pd.DataFrame, severity: float = 0.2) -> pd.DataFrame:
    """Chilled-water flow cut by ``severity`` (0.2 = −20 %), load and TEO held.

    ΔT_evap = Q/(ṁ c) rises by 1/(1 − s), so TEI rises; the water-side film
    coefficient falls with velocity^0.8, and with the higher NTU per unit flow
    the evaporating temperature is recomputed from ε-NTU (approach falls a little).
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


def non_condensables(df: pd.DataFrame, severity: float = 1.0) -> pd.DataFrame:
    """Non-condensable gas in the condenser: a partial pressure of 35 kPa·severity.

    The condenser pressure gauge reads refrigerant + gas, so the saturation
    temperature read from it (TRC) rises by dP/(dP_sat/dT) while the liquid stays
    where the water puts it: approach and subcooling rise by the same amount,
    independent of load. The compressor works against the higher total pressure:
    discharge temperature +1.5·δT, power +2.5 %/K.
    """
    dp = 35.0 * severity
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


def condenser_fouling(df: pd.DataFrame, severity: float = 1.0) -> pd.DataFrame:
    """Tube fouling: an added resistance, so TRC rises by R·Q_cond (0.5 K per 100 kW·severity).

    The liquid is subcooled by the same fouled tubes, so subcooling is unchanged;
    discharge temperature +1.2·δT, power +2.5 %/K of lift.
    """
    q_cond = load_kw(df) + df["kW"].clip(upper=1000.0)
    dtr = 0.5 * severity * q_cond / 100.0
    out = df.copy()
    out["TRC"] = df["TRC"] + dtr
    out["PRC"] = df["PRC"] + R134A_DPDT_KPA_PER_K * dtr
    if "TCA" in df:
        out["TCA"] = df["TCA"] + dtr
    out["TR_dis"] = df["TR_dis"] + 1.2 * dtr
    out["kW"] = _lift_power(df, dtr)
    return out


def reduced_condenser_flow(df: pd.DataFrame, severity: float = 0.2) -> pd.DataFrame:
    """Condenser-water flow cut by ``severity``: ΔT_cond rises by 1/(1 − s), TCI held.

    The leaving water is warmer, the condensing temperature follows it (approach
    roughly held), so lift and power rise with the extra ΔT.
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


def refrigerant_leak(df: pd.DataFrame, severity: float = 1.0) -> pd.DataFrame:
    """Undercharge: less liquid backs up in the condenser (subcooling −1.5 K·severity)
    and the evaporator is starved (approach +0.5 K, superheat +1 K per severity)."""
    out = df.copy()
    out["TRC_sub"] = (df["TRC_sub"] - 1.5 * severity).clip(lower=0.0)
    out["TRE"] = df["TRE"] - 0.5 * severity
    out["TEA"] = df["TEO"] - out["TRE"]
    out["Tsh_suc"] = df["Tsh_suc"] + 1.0 * severity
    out["kW"] = _lift_power(df, 0.5 * severity)
    return out


def refrigerant_overcharge(df: pd.DataFrame, severity: float = 1.0) -> pd.DataFrame:
    """Overcharge: liquid floods condenser tubes — subcooling +1.5 K and condensing
    temperature +0.8 K per severity (less area left to condense)."""
    out = df.copy()
    dtr = 0.8 * severity
    out["TRC"] = df["TRC"] + dtr
    out["PRC"] = df["PRC"] + R134A_DPDT_KPA_PER_K * dtr
    out["TRC_sub"] = df["TRC_sub"] + 1.5 * severity
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
