"""Air-handler fault conditions in the style of ASHRAE Guideline 36 (2021), §5.16.14.

G36 evaluates fault conditions (FC) on 5-minute rolling averages of a few AHU
points, only in the operating states (OS) where each makes sense, and raises a
fault only when the condition persists (alarm delay). Operating states:

* OS1 heating (heating valve open, cooling closed, outdoor-air damper at minimum);
* OS2 free cooling (economizer, both valves closed, damper above minimum);
* OS3 economizer + mechanical cooling (cooling open, damper ~100 %);
* OS4 mechanical cooling at minimum outdoor air;
* OS0 (here) fan off / unknown — no evaluation.

Implemented (names and formulas after G36; ε are the sensor tolerances, ΔT_SF the
supply-fan heat):

======  ==============================================================================
FC1     duct static below setpoint with the fan at full speed: DSP < DSPSP − ε_DSP and fan ≥ 99 % − ε_VFD
FC2     mixed air colder than both return and outdoor air: MAT + ε_MAT < min(RAT − ε_RAT, OAT − ε_OAT)
FC3     mixed air warmer than both: MAT − ε_MAT > max(RAT + ε_RAT, OAT + ε_OAT)
FC5     (OS1) supply air not warmer than mixed air while heating: SAT + ε_SAT ≤ MAT − ε_MAT + ΔT_SF
FC6     (OS1, OS4, and closed damper) outdoor-air fraction (MAT − RAT)/(OAT − RAT) off the
        damper command by more than ε_OA, when |RAT − OAT| ≥ ΔT_min
FC7     (OS1) supply air below setpoint with the heating valve full open: SAT < SATSP − ε_SAT, HC ≥ 99 %
FC8     (OS2) SAT ≠ MAT + ΔT_SF in free cooling: |SAT − ΔT_SF − MAT| > √(ε_SAT² + ε_MAT²)
FC10    (OS3) MAT ≠ OAT at 100 % outdoor air: |MAT − OAT| > √(ε_MAT² + ε_OAT²)
FC12    (OS3, OS4) supply air not colder than mixed air while cooling: SAT − ε_SAT − ΔT_SF ≥ MAT + ε_MAT
FC13    (OS3, OS4) supply air above setpoint with the cooling valve full open: SAT > SATSP + ε_SAT, CC ≥ 99 %
FC14    (both coils shut) temperature drop across the inactive cooling coil: MAT + ΔT_SF − SAT ≥ √(ε_SAT² + ε_MAT²)
FC15    (both coils shut) temperature rise across the inactive heating coil: SAT − ΔT_SF − MAT ≥ √(ε_SAT² + ε_MAT²)
======  ==============================================================================

FC4 (hunting) and FC9/FC11 (outdoor temperature vs economizer state) are about
control sequences, not equipment faults, and are left out. FC14/FC15 use MAT as the
coil entering and SAT as the leaving temperature (the LBNL units have no coil
air-temperature sensors between coils); since those straddle both coils, a coil's
passing is judged only with both valves shut (G36 judges FC14 in OS1 and FC15 in
OS3/OS4 with coil sensors, where the active coil does not mask the other). Nothing
is judged for ``mode_delay_min`` after a change of operating state (G36's mode delay).

Faults are states, not instants. A stuck damper does not mend itself when the
economizer happens to open the damper anyway; its condition merely stops being
observable. So, with ``latch`` (the default), a raised fault holds until it is
cleared by ``clear_min`` samples of healthy evidence — the same condition judged
and met, or for the conditions judged only at saturation (FC1, FC7, FC13) the loop
modulating below it; FC5 (supply air colder than mixed air while heating: the
cooling coil passes) is also cleared by a healthy FC14 — or until it has gone
``hold_max_min`` unjudged (every state of a daily schedule recurs within a day),
or the data has a gap. Everything is causal: a row's flags use only rows up to it,
so the same function serves the live agent (over recent history) and the replay.

Two tolerance sets: :data:`G36_DEFAULTS` (the guideline's defaults for
field-grade sensors: ε_SAT = ε_RAT = ε_OAT = 2 °F, ε_MAT = 5 °F) and
:data:`LAB_GRADE` for calibrated sensors (±0.3 K, as in LBNL's FLEXLAB), where
much weaker faults are visible. The LBNL evaluation reports both. The supply-fan
heat ΔT_SF is a property of the unit, set at commissioning as G36 asks; a wrong one
makes FC14/FC15 fire on a healthy unit, so sites and scenarios can override any field
(:func:`config_with`). It must come from the unit's documentation or commissioning,
never from the data being scored: the LBNL inventory documents no fan heat for its
units, so both tolerance sets use G36's default 1 °F (0.56 K). (Earlier values — 0.35 K
for FLEXLAB, 1.1 K for MZVAV-2-2 — were read off the very files they were scored on.)
An uncommissioned fan heat is an error of its own: healthy MZVAV-2-2 shows 1.1–1.75 K
from mixed to supply air with both coils shut (more at higher fan speed), so at lab
tolerances (±0.42 K around 0.56 K) FC15 fired in free cooling on 4 of 13 fault-free days
and the latch held it for hours (specificity 0.736). Unless ``fan_heat_commissioned``,
the tests across the fan (FC5, FC8, FC12, FC14, FC15) keep G36's field tolerances
(:func:`across_fan_tolerances`). A fan heat measured on a declared fault-free period
(:mod:`tools.fdd.ahu_commission`, which may make it rise with fan speed) is commissioned.

The sensors' grade sets a tolerance only where the sensor is the error (issue 15, for a
unit the rules were not developed on). The mixing tests (FC2, FC3, FC10) keep G36's 5 °F
for MAT, because the mixing box is stratified; FLEXLAB's healthy MAT reads 1–1.8 K off
OAT at 100 % outdoor air. FC6 never asks for an outdoor-air fraction finer than the
sensors can measure over the OAT − RAT span. FC7/FC13 keep G36's ε_SAT (``eps_loop``),
because a saturated loop trails a reset setpoint. No test comparing two air temperatures
is judged below ``min_fan_speed``: heat gains through the casing and idle coils grow as
airflow falls.

Input: a wide frame with a DatetimeIndex and the names of
:mod:`connectors.importers.lbnl` (``supply_air_temp``, ``mixed_air_temp``,
``outdoor_air_temp``, ``return_air_temp``, ``oa_damper`` %, ``cooling_valve`` %,
``heating_valve`` %, ``supply_fan_speed`` %, optional ``supply_fan_status``,
``supply_air_temp_setpoint`` or the heating/cooling setpoints, ``duct_static_pressure``
and its setpoint in Pa).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

FC_NAMES: tuple[str, ...] = (
    "fc1", "fc2", "fc3", "fc5", "fc6", "fc7", "fc8", "fc10", "fc12", "fc13", "fc14", "fc15",
)  # fmt: skip

FC_DESCRIPTIONS: dict[str, str] = {
    "fc1": "duct static pressure too low with the supply fan at full speed",
    "fc2": "mixed air temperature too low: should be between outdoor and return air",
    "fc3": "mixed air temperature too high: should be between outdoor and return air",
    "fc5": "supply air temperature too low: should be above mixed air while heating",
    "fc6": "outdoor-air fraction does not match the damper command",
    "fc7": "supply air temperature too low with the heating valve full open",
    "fc8": "supply and mixed air should be about equal in free cooling",
    "fc10": "mixed and outdoor air should be about equal at 100 % outdoor air",
    "fc12": "supply air temperature too high: should be below mixed air while cooling",
    "fc13": "supply air temperature too high with the cooling valve full open",
    "fc14": "temperature drop across the inactive cooling coil (valve leaking or stuck)",
    "fc15": "temperature rise across the inactive heating coil (valve leaking or stuck)",
}


@dataclass(frozen=True)
class AhuFddConfig:
    """Tolerances (K, Pa, %) and timing. Defaults are G36's (§5.16.14, Table 5.16.14.x)."""

    eps_sat: float = 2 * 5 / 9  # 2 °F
    eps_rat: float = 2 * 5 / 9
    eps_oat: float = 2 * 5 / 9
    eps_mat: float = 5 * 5 / 9  # 5 °F
    eps_mat_mixing: float = (
        5 * 5 / 9
    )  # MAT tolerance where outdoor and return air mix (stratification)
    fan_heat: float = 1 * 5 / 9  # ΔT_SF, supply-fan temperature rise
    # whether ``fan_heat`` was measured at this unit's commissioning; if not, the tests that
    # compare supply with mixed air across the fan (FC5, FC8, FC12, FC14, FC15) keep G36's
    # field tolerances whatever the sensors: the unknown ΔT_SF, not the sensor, sets the error
    fan_heat_commissioned: bool = False
    # a commissioned fan heat may rise with speed: ΔT_SF = fan_heat + fan_heat_speed2·(speed/100)²
    # (fan power ∝ speed³, airflow ∝ speed), and comes with the spread (K) it was measured with
    fan_heat_speed2: float = 0.0
    fan_heat_spread: float = 0.0
    # FC7/FC13 (valve saturated, supply air off its setpoint): a loop trailing a moving
    # (reset) setpoint, not the sensor, sets this error — G36's ε_SAT whatever the sensors
    eps_loop: float = 2 * 5 / 9
    # tests comparing two air temperatures (FC2, FC3, FC5, FC6, FC8, FC10, FC12, FC14, FC15)
    # are judged only at this supply-fan speed (%) or above: heat gained through the casing and
    # idle coils moves the air by ΔT ∝ 1/airflow (a VAV unit idling at 10 % sees five times
    # what it sees at 50 %), and the fan heat is not known at any speed (see module doc)
    min_fan_speed: float = 20.0
    eps_dsp: float = 0.1 * 249.089  # 0.1 inH2O in Pa
    eps_vfd: float = 5.0  # % speed
    eps_oa: float = 0.05  # outdoor-air fraction, damper commanded closed
    eps_oa_min: float = 0.3  # … at the minimum position (command ≠ airflow fraction: damper curve)
    dt_min: float = 10 * 5 / 9  # |RAT − OAT| needed to compute the OA fraction
    valve_closed: float = 1.0  # % command counted as closed
    valve_full: float = 99.0  # % command counted as full open
    damper_min: float = 15.0  # % minimum outdoor-air damper position (site sequence)
    average_min: int = 5  # rolling average, samples (1-min data → 5 min)
    persistence_min: int = 30  # a condition must hold this many samples to flag
    mode_delay_min: int = 15  # samples after an operating-state change (fan start…) not judged
    latch: bool = True  # a raised fault holds until judged healthy (see _latch)
    clear_min: int = 30  # healthy samples, with the condition judged, that clear a raised fault
    # a raised fault is not carried over midnight: each calendar day must confirm it again
    # (off by default: README "AHU fault detection: what generalises" says what it costs)
    rearm_daily: bool = False
    hold_max_min: float = 24 * 60.0  # minutes a raised fault holds with its condition unjudged
    gap_min: float = 10.0  # rows further apart start a new segment: no average or state across


G36_DEFAULTS = AhuFddConfig()
LAB_GRADE = replace(
    AhuFddConfig(),
    eps_sat=0.3,
    eps_rat=0.3,
    eps_oat=0.3,
    eps_mat=0.3,
    eps_mat_mixing=5 * 5 / 9,  # G36's: stratification in the mixing box, not sensor grade
    fan_heat=1 * 5 / 9,  # G36's default: no document gives FLEXLAB's (see the module doc)
    eps_oa=0.04,
    dt_min=4.0,
)


def config_with(base: AhuFddConfig, overrides: dict[str, float | int | bool]) -> AhuFddConfig:
    """``base`` with some fields replaced (e.g. ``{"fan_heat": 1.1}``); unknown names raise
    ``ValueError`` naming them. A ``fan_heat`` given is the unit's commissioned value
    (``fan_heat_commissioned`` unless that is given too)."""
    known = set(AhuFddConfig.__dataclass_fields__)
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown AHU detector setting(s) {bad}; known: {sorted(known)}")
    if "fan_heat" in overrides:
        overrides = {"fan_heat_commissioned": True, **overrides}
    return replace(base, **overrides)  # type: ignore[arg-type]


def _get(df: pd.DataFrame, *names: str) -> pd.Series | None:
    for n in names:
        if n in df.columns:
            return pd.to_numeric(df[n], errors="coerce").astype(float)
    return None


def operating_state(avg: pd.DataFrame, cfg: AhuFddConfig) -> pd.Series:
    """G36 operating state per row (0 = off/unknown, 1–4 as in the module docstring)."""
    cc = avg["cooling_valve"]
    hc = avg["heating_valve"]
    oa = avg["oa_damper"]
    fan_on = avg["_fan_on"] > 0.5
    closed_cc = cc <= cfg.valve_closed
    closed_hc = hc <= cfg.valve_closed
    at_min = oa <= cfg.damper_min + 1.0
    os_ = pd.Series(0, index=avg.index, dtype=int)
    os_[fan_on & ~closed_hc & closed_cc] = 1
    os_[fan_on & closed_hc & closed_cc & ~at_min] = 2
    os_[fan_on & closed_hc & closed_cc & at_min] = 1  # ventilation at minimum OA, no coil: like OS1
    os_[fan_on & ~closed_cc & closed_hc & (oa >= 90.0)] = 3
    os_[fan_on & ~closed_cc & closed_hc & at_min] = 4
    return os_


def averaged(
    df: pd.DataFrame, cfg: AhuFddConfig = G36_DEFAULTS, starts: np.ndarray | None = None
) -> pd.DataFrame:
    """The detector's inputs on short names (``sat``, ``mat``, ``oat``, ``rat``, valves,
    damper, setpoints, static pressure, ``_fan_on``), as ``average_min``-sample rolling means.
    Absent points are NaN (valves 0, fan on when neither status nor speed is known).
    ``starts`` are the segment starts (:func:`segment_starts`), computed when not given."""
    idx = df.index
    sat = _get(df, "supply_air_temp")
    mat = _get(df, "mixed_air_temp")
    oat = _get(df, "outdoor_air_temp")
    rat = _get(df, "return_air_temp")
    cc = _get(df, "cooling_valve")
    hc = _get(df, "heating_valve")
    oa = _get(df, "oa_damper")
    fan_speed = _get(df, "supply_fan_speed")
    fan_status = _get(df, "supply_fan_status")
    sp = _get(df, "supply_air_temp_setpoint")
    sp_h = _get(df, "supply_air_temp_heating_setpoint")
    sp_c = _get(df, "supply_air_temp_cooling_setpoint")
    dsp = _get(df, "duct_static_pressure")
    dsp_sp = _get(df, "duct_static_pressure_setpoint")
    nan = pd.Series(np.nan, index=idx)
    zero = pd.Series(0.0, index=idx)
    if fan_status is not None:
        fan_on = fan_status
    elif fan_speed is not None:
        fan_on = (fan_speed > 1.0).astype(float)
    else:
        fan_on = pd.Series(1.0, index=idx)
    raw = pd.DataFrame(
        {
            "sat": sat if sat is not None else nan,
            "mat": mat if mat is not None else nan,
            "oat": oat if oat is not None else nan,
            "rat": rat if rat is not None else nan,
            "cooling_valve": cc if cc is not None else zero,
            "heating_valve": hc if hc is not None else zero,
            "oa_damper": oa if oa is not None else nan,
            "fan_speed": fan_speed if fan_speed is not None else nan,
            "sp_h": sp_h if sp_h is not None else (sp if sp is not None else nan),
            "sp_c": sp_c if sp_c is not None else (sp if sp is not None else nan),
            "dsp": dsp if dsp is not None else nan,
            "dsp_sp": dsp_sp if dsp_sp is not None else nan,
            "_fan_on": fan_on,
        },
        index=idx,
    )
    if starts is None:
        starts = segment_starts(_ts_ns(idx), cfg.gap_min)
    if not starts[1:].any():
        return raw.rolling(cfg.average_min, min_periods=1).mean()
    # no average reaches across a gap in the data
    seg = np.cumsum(starts)
    return raw.groupby(seg).rolling(cfg.average_min, min_periods=1).mean().droplevel(0)


def _ts_ns(idx: pd.Index) -> np.ndarray:
    """Row times in nanoseconds whatever the index's unit (pandas may hold s, ms, µs or ns);
    rows are taken as 1-minute samples when the frame has no time index."""
    if isinstance(idx, pd.DatetimeIndex):
        return np.asarray(idx.as_unit("ns").asi8)
    return np.arange(len(idx), dtype=np.int64) * 60_000_000_000


def segment_starts(ts_ns: np.ndarray, gap_min: float) -> np.ndarray:
    """True on the first row and on every row more than ``gap_min`` minutes after the previous."""
    starts = np.ones(len(ts_ns), dtype=bool)
    starts[1:] = np.diff(ts_ns) > gap_min * 60e9
    return starts


def settled_state(
    df: pd.DataFrame, cfg: AhuFddConfig = G36_DEFAULTS, starts: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """The averaged inputs, the operating state and where the unit has settled in it.

    G36's mode delay: nothing is judged while the unit settles after a change of operating
    state (a fan start, heating to cooling): sensors in still air, coils and dampers moving."""
    if starts is None:
        starts = segment_starts(_ts_ns(df.index), cfg.gap_min)
    avg = averaged(df, cfg, starts)
    os_ = operating_state(avg, cfg)
    change = starts | np.r_[True, os_.to_numpy()[1:] != os_.to_numpy()[:-1]]
    settled = (
        _held(~change, cfg.mode_delay_min, starts)
        if cfg.mode_delay_min
        else np.ones(len(change), dtype=bool)
    )
    return avg, os_, settled


def flags(df: pd.DataFrame, cfg: AhuFddConfig = G36_DEFAULTS) -> pd.DataFrame:
    """Per-row boolean flag per fault condition (columns :data:`FC_NAMES`) plus ``os`` and ``any``.

    A condition is raised on a row when it held on the rolling averages for
    ``persistence_min`` samples up to that row. With ``cfg.latch`` (the default)
    a raised fault then stays raised until it is cleared by ``clear_min`` samples
    of healthy evidence, or goes stale after ``hold_max_min`` minutes unjudged
    (see :func:`_latch`). Missing points make the FCs that need them all-False
    (not evaluated), never an error. Causal: a row's flags use only rows up to it.
    """
    idx = df.index
    ts = _ts_ns(idx)
    starts = segment_starts(ts, cfg.gap_min)
    avg, os_, settled = settled_state(df, cfg, starts)
    cond, evaluable, healthy = _conditions(avg, os_.where(settled, 0), cfg)
    out = pd.DataFrame(index=idx)
    for name in FC_NAMES:
        c = cond[name].fillna(False).to_numpy(dtype=bool)
        held = _held(c, cfg.persistence_min, starts)
        if cfg.latch:
            ok = healthy[name].fillna(False).to_numpy(dtype=bool) & ~c
            judged = evaluable[name].fillna(False).to_numpy(dtype=bool) | ok
            cleared = _held(ok, cfg.clear_min, starts)
            expire = starts | _new_day(ts) if cfg.rearm_daily else starts
            held = _latch(held, cleared, judged, expire, ts, cfg.hold_max_min)
        out[name] = held
    out["os"] = os_
    out["any"] = out[list(FC_NAMES)].any(axis=1)
    return out


def _conditions(
    a: pd.DataFrame, os_: pd.Series, cfg: AhuFddConfig
) -> tuple[dict[str, pd.Series], dict[str, pd.Series], dict[str, pd.Series]]:
    """Each fault condition on the rolling averages, where it can be judged, and what clears it.

    ``evaluable[fc]`` is the operating state (and inputs) in which the condition
    means something; ``cond[fc]`` is true where it is evaluable and violated.
    ``healthy[fc]`` is evidence that the unit is sound in that respect. For most
    conditions that is ``evaluable & ~cond``; for the three that are judged only
    at saturation (FC1 fan at full speed, FC7/FC13 valve full open) a healthy loop
    rarely stays there, so the evidence is the loop modulating below saturation —
    it meets its load with capacity to spare.
    """
    on = os_ > 0
    fh = fan_heat_series(a, cfg)
    # enough airflow for a temperature difference to mean something (unknown speed: judged)
    airflow = ~(a.fan_speed < cfg.min_fan_speed)
    em = cfg.eps_mat_mixing
    # across the fan (SAT vs MAT): the sensor tolerances, or G36's field ones when the fan
    # heat is not the unit's commissioned value (see :func:`across_fan_tolerances`)
    e_sat, e_mat, e_mix = across_fan_tolerances(cfg)
    eps_sm = float(np.hypot(e_sat, e_mat))
    closed_cc = a.cooling_valve <= cfg.valve_closed
    closed_hc = a.heating_valve <= cfg.valve_closed
    temps = a.sat.notna() & a.mat.notna()
    mixing = a.mat.notna() & a.rat.notna() & a.oat.notna()
    span = a.oat - a.rat
    frac = (a.mat - a.rat) / span.where(span.abs() >= cfg.dt_min)
    cmd = a.oa_damper / 100.0
    damper_closed = a.oa_damper <= cfg.valve_closed
    off_by = (frac - cmd).abs()
    # the fraction's own measurement error: MAT − RAT over the span, both read within ε
    frac_err = float(np.hypot(cfg.eps_mat, cfg.eps_rat)) / span.abs()
    ev: dict[str, pd.Series] = {
        "fc1": on & a.dsp.notna() & a.dsp_sp.notna() & (a.fan_speed >= 99.0 - cfg.eps_vfd),
        "fc2": on & mixing,
        "fc3": on & mixing,
        "fc5": (os_ == 1) & ~closed_hc & temps,
        # damper commanded closed: the fraction must be ~0; at minimum, ~the minimum
        "fc6": on & frac.notna() & (damper_closed | os_.isin([1, 4])),
        "fc7": (os_ == 1) & (a.heating_valve >= cfg.valve_full) & a.sat.notna() & a.sp_h.notna(),
        "fc8": (os_ == 2) & temps,
        "fc10": (os_ == 3) & a.mat.notna() & a.oat.notna(),
        "fc12": os_.isin([3, 4]) & temps,
        "fc13": os_.isin([3, 4]) & (a.cooling_valve >= cfg.valve_full) & a.sat.notna()
        & a.sp_c.notna(),
        # MAT and SAT straddle both coils: a coil's passing shows only with both shut
        "fc14": on & closed_cc & closed_hc & temps,
        "fc15": on & closed_hc & closed_cc & temps,
    }  # fmt: skip
    violated: dict[str, pd.Series] = {
        "fc1": a.dsp < a.dsp_sp - cfg.eps_dsp,
        "fc2": a.mat + em < np.minimum(a.rat - cfg.eps_rat, a.oat - cfg.eps_oat),
        "fc3": a.mat - em > np.maximum(a.rat + cfg.eps_rat, a.oat + cfg.eps_oat),
        "fc5": a.sat + e_sat <= a.mat - e_mat + fh,
        "fc6": (damper_closed & (off_by > np.maximum(cfg.eps_oa, frac_err)))
        | (~damper_closed & (off_by > np.maximum(cfg.eps_oa_min, frac_err))),
        "fc7": a.sat < a.sp_h - cfg.eps_loop,
        "fc8": (a.sat - fh - a.mat).abs() > float(np.hypot(e_sat, e_mix)),
        "fc10": (a.mat - a.oat).abs() > float(np.hypot(em, cfg.eps_oat)),
        "fc12": a.sat - e_sat - fh >= a.mat + e_mat,
        "fc13": a.sat > a.sp_c + cfg.eps_loop,
        "fc14": a.mat + fh - a.sat >= eps_sm,
        "fc15": a.sat - fh - a.mat >= eps_sm,
    }  # fmt: skip
    for k in ("fc2", "fc3", "fc5", "fc6", "fc8", "fc10", "fc12", "fc14", "fc15"):
        ev[k] = ev[k] & airflow
    cond = {k: ev[k] & violated[k].fillna(False) for k in FC_NAMES}
    healthy = {k: ev[k] & ~violated[k].fillna(True) for k in FC_NAMES}
    # a loop that modulates (not saturated) is meeting its load: capacity is there
    healthy["fc1"] |= on & a.fan_speed.notna() & (a.fan_speed < 99.0 - cfg.eps_vfd)
    healthy["fc7"] |= (os_ == 1) & ~closed_hc & (a.heating_valve < cfg.valve_full)
    healthy["fc13"] |= os_.isin([3, 4]) & ~closed_cc & (a.cooling_valve < cfg.valve_full)
    # supply air colder than mixed air while heating (FC5) means the cooling coil passes
    # water: disproved when, both coils shut, no drop shows across them (FC14 healthy).
    # FC8 (free cooling) is the two inactive-coil tests at once.
    healthy["fc5"] = healthy["fc5"] | healthy["fc14"]
    healthy["fc8"] = healthy["fc8"] | (healthy["fc14"] & healthy["fc15"])
    return cond, ev, healthy


def fan_heat_series(a: pd.DataFrame, cfg: AhuFddConfig) -> pd.Series:
    """ΔT_SF per row of the averaged inputs: ``fan_heat`` plus the speed term (none where the
    speed is unknown)."""
    extra = cfg.fan_heat_speed2 * (a["fan_speed"] / 100.0) ** 2
    return cfg.fan_heat + extra.fillna(0.0)


def across_fan_tolerances(cfg: AhuFddConfig) -> tuple[float, float, float]:
    """(ε_SAT, ε_MAT, ε_MAT mixing) for the tests comparing supply with mixed air across
    the supply fan (FC5, FC8, FC12, FC14, FC15).

    Those tests subtract the fan heat ΔT_SF, a property of the unit that G36 has set at
    commissioning. Without a commissioned value the default (1 °F) is a guess whose error
    exceeds calibrated sensors' (MZVAV-2-2, healthy, shows 1.1–1.75 K across a shut coil
    pair, varying with fan speed): there the guideline's field tolerances are kept, so a
    lab-grade sensor set does not turn an unknown fan heat into a leaking-coil alarm.
    """
    if cfg.fan_heat_commissioned:
        # the spread of the commissioning measurement adds to the supply-air sensor's
        return float(np.hypot(cfg.eps_sat, cfg.fan_heat_spread)), cfg.eps_mat, cfg.eps_mat_mixing
    g = G36_DEFAULTS
    return (
        max(cfg.eps_sat, g.eps_sat),
        max(cfg.eps_mat, g.eps_mat),
        max(cfg.eps_mat_mixing, g.eps_mat_mixing),
    )


def _held(x: np.ndarray, samples: int, starts: np.ndarray | None = None) -> np.ndarray:
    """True where ``x`` has been true for the last ``samples`` rows (itself included),
    counting no row before the latest segment start (a gap in the data)."""
    n = len(x)
    if n == 0:
        return x.copy()
    i = np.arange(n)
    run_from = np.maximum.accumulate(np.where(~x, i + 1, 0))  # first row of the current run
    if starts is not None:
        run_from = np.maximum(run_from, np.maximum.accumulate(np.where(starts, i, 0)))
    return x & (i - run_from + 1 >= samples)


def _new_day(ts_ns: np.ndarray) -> np.ndarray:
    """True on each row whose calendar day differs from the previous row's."""
    day = ts_ns // (86_400 * 1_000_000_000)
    out = np.ones(len(day), dtype=bool)
    out[1:] = day[1:] != day[:-1]
    return out


def _latch(
    raised: np.ndarray,
    cleared: np.ndarray,
    evaluable: np.ndarray,
    starts: np.ndarray,
    ts_ns: np.ndarray,
    hold_min: float,
) -> np.ndarray:
    """A fault once raised stays raised until it is cleared by healthy evidence.

    A stuck damper does not mend itself when the economizer opens the damper anyway: the
    condition just stops being observable. So a raised fault holds while its condition cannot
    be judged, and clears only when it has been judged healthy (``cleared``) or when it has not
    been judged at all for ``hold_min`` minutes (a stale verdict). A gap in the data
    (a segment start) voids every verdict: nobody knows what happened meanwhile.
    """
    n = len(raised)
    if n == 0:
        return raised.copy()
    hold_ns = hold_min * 60e9
    last_ev = np.where(evaluable, ts_ns, np.iinfo(np.int64).min)
    last_ev = np.maximum.accumulate(last_ev)
    stale = (ts_ns - last_ev) > hold_ns
    stale |= starts
    event = np.where(raised, 1, np.where(cleared | stale, -1, 0))
    pos = np.where(event != 0, np.arange(n), -1)
    pos = np.maximum.accumulate(pos)
    return (pos >= 0) & (event[np.maximum(pos, 0)] == 1)


@dataclass(frozen=True)
class RowScores:
    rows: int
    faulted_rows: int
    flagged_rows: int
    precision: float | None
    recall: float | None
    specificity: float | None


def row_scores(predicted: pd.Series | np.ndarray, truth: pd.Series | np.ndarray) -> RowScores:
    """Row precision, recall and specificity (share of fault-free rows left unflagged),
    over the labeled rows: a missing label (``<NA>``) is left out, not counted as faulted."""
    tv = pd.Series(pd.array(np.asarray(truth, dtype=object), dtype="boolean"))
    known = tv.notna().to_numpy()
    p = np.asarray(predicted, dtype=bool)[known]
    t = tv[known].to_numpy(dtype=bool)
    tp = int((p & t).sum())
    fp = int((p & ~t).sum())
    tn = int((~p & ~t).sum())
    fn = int((~p & t).sum())
    return RowScores(
        rows=len(p),
        faulted_rows=int(t.sum()),
        flagged_rows=int(p.sum()),
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        specificity=tn / (tn + fp) if tn + fp else None,
    )
