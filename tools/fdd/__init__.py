"""Fault detection and diagnosis: pure detectors (frames in, flags out) and their policy hooks.

* :mod:`tools.fdd.chiller` — the seven RP-1043 chiller faults from physics residuals
  against a reference calibrated on fault-free data;
* :mod:`tools.fdd.synthetic` — each chiller fault's physics imposed on fault-free data;
* :mod:`tools.fdd.ahu` — ASHRAE Guideline 36 style air-handler fault conditions.

Importing this package registers derived values for policies
(:mod:`tools.policies.derived`):

``fdd.chiller:<fault_class>`` (kind ``chiller``)
    1.0 when the chiller detector holds a persistent alarm of that class over the
    recent history, 0.0 when it holds none (or another), ``nan`` when it cannot tell
    (no reference installed for the equipment, no history, not enough steady data).
``fdd.ahu:<fc>`` (kind ``ahu``, ``fc1`` … ``fc15``)
    1.0 when the G36 fault condition is flagged on the newest row of the recent history.

The chiller reference is calibrated offline (``facility-agent import rp1043 … --reference``
stores it beside the scenario as ``reference.json``); whoever runs the agent installs it
with :func:`set_chiller_reference` (per equipment id, or ``"*"`` for every chiller).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tools.fdd import ahu, chiller
from tools.fdd.chiller import FAULT_CLASSES, ChillerFddConfig, ChillerReference

__all__ = [
    "FAULT_CLASSES",
    "ChillerFddConfig",
    "ChillerReference",
    "ahu",
    "chiller",
    "clear_chiller_references",
    "clear_fdd_settings",
    "set_ahu_config",
    "set_chiller_reference",
]

_REFERENCES: dict[str, ChillerReference] = {}
_AHU_CONFIG: dict[str, ahu.AhuFddConfig] = {}


def set_chiller_reference(ref: ChillerReference, equipment_id: str = "*") -> None:
    """Install the fault-free reference the chiller detector compares an equipment against."""
    _REFERENCES[equipment_id] = ref


def clear_chiller_references() -> None:
    _REFERENCES.clear()


def clear_fdd_settings() -> None:
    """Forget every chiller reference and AHU configuration (a new plant, a new scenario)."""
    _REFERENCES.clear()
    _AHU_CONFIG.clear()


def chiller_reference(equipment_id: str) -> ChillerReference | None:
    return _REFERENCES.get(equipment_id) or _REFERENCES.get("*")


def set_ahu_config(cfg: ahu.AhuFddConfig, equipment_id: str = "*") -> None:
    """Choose the AHU tolerance set (default :data:`tools.fdd.ahu.G36_DEFAULTS`)."""
    _AHU_CONFIG[equipment_id] = cfg


def _wide(history: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Long history (ts, tag, value) → wide frame with point names as columns."""
    if history is None or history.empty:
        return pd.DataFrame()
    h = history.copy()
    h["name"] = h["tag"].str.removeprefix(prefix)
    wide = h.pivot_table(index="ts", columns="name", values="value", aggfunc="last")
    wide.index = pd.DatetimeIndex(wide.index)
    return wide.sort_index()


def _register() -> None:
    try:
        from tools.policies.derived import DerivedInput, register
    except ImportError:  # pragma: no cover - policies layer absent
        return

    cfg = ChillerFddConfig()
    history_s = float(cfg.window_rows * 10 * (cfg.persistence_of + 1))

    def chiller_alarm(x: DerivedInput) -> str | float | None:
        """The persistent chiller alarm over recent history (memoised per cycle)."""
        eq = x.equipment
        if eq is None:
            return math.nan
        key = f"fdd.chiller@{eq.id}"
        if key in x.memo:
            cached: str | float | None = x.memo[key]
            return cached
        ref = chiller_reference(eq.id)
        out: str | float | None = math.nan
        if ref is not None and x.history is not None:
            hist = x.history([x.tag(n) for n in chiller.INPUTS], history_s)
            wide = _wide(hist, f"{eq.id}.")
            if len(wide) >= cfg.window_rows * cfg.persistence:
                diag = chiller.diagnose(wide, ref, cfg)
                last = diag["alarm"].iloc[-1] if len(diag) else None
                out = last if isinstance(last, str) else None
        x.memo[key] = out
        return out

    def make_chiller(fault: str) -> Any:
        def fn(x: DerivedInput) -> float:
            a = chiller_alarm(x)
            if isinstance(a, float):
                return a
            return 1.0 if a == fault else 0.0

        fn.__doc__ = f"1 when the chiller detector holds a persistent {fault} alarm"
        return fn

    for fault in FAULT_CLASSES:
        register(
            f"fdd.chiller:{fault}",
            kinds=("chiller",),
            inputs=chiller.INPUTS,
            unit="flag",
            description=f"chiller FDD: persistent {fault.replace('_', ' ')} alarm (1/0)",
        )(make_chiller(fault))

    ahu_inputs = ("supply_air_temp", "mixed_air_temp", "outdoor_air_temp", "return_air_temp")
    ahu_points = (
        *ahu_inputs, "cooling_valve", "heating_valve", "oa_damper", "supply_fan_speed",
        "supply_fan_status", "supply_air_temp_setpoint", "supply_air_temp_heating_setpoint",
        "supply_air_temp_cooling_setpoint", "duct_static_pressure", "duct_static_pressure_setpoint",
    )  # fmt: skip

    def ahu_flags(x: DerivedInput) -> pd.Series | float:
        eq = x.equipment
        if eq is None or x.history is None:
            return math.nan
        key = f"fdd.ahu@{eq.id}"
        if key in x.memo:
            cached: pd.Series | float = x.memo[key]
            return cached
        acfg = _AHU_CONFIG.get(eq.id) or _AHU_CONFIG.get("*") or ahu.G36_DEFAULTS
        names = [p.name for p in eq.points if p.name in ahu_points]
        # enough history for the newest row's verdict: averaging, mode delay, persistence,
        # and with latched faults the longest a raised fault can hold unjudged
        minutes: float = acfg.average_min + acfg.mode_delay_min + acfg.persistence_min + 1
        if acfg.latch:
            minutes += acfg.hold_max_min
        seconds = 60.0 * minutes
        wide = _wide(x.history([x.tag(n) for n in names], seconds), f"{eq.id}.")
        if len(wide):  # the detector counts 1-minute samples, whatever the poll rate
            wide = wide.resample("1min").mean().dropna(how="all")
        out: pd.Series | float = math.nan
        if len(wide) >= acfg.persistence_min:
            out = ahu.flags(wide, acfg).iloc[-1]
        x.memo[key] = out
        return out

    def make_ahu(fc: str) -> Any:
        def fn(x: DerivedInput) -> float:
            row = ahu_flags(x)
            if isinstance(row, float):
                return row
            return 1.0 if bool(row[fc]) else 0.0

        fn.__doc__ = ahu.FC_DESCRIPTIONS[fc]
        return fn

    for fc in ahu.FC_NAMES:
        register(
            f"fdd.ahu:{fc}",
            kinds=("ahu",),
            inputs=ahu_inputs,
            unit="flag",
            description=f"G36 {fc.upper()}: {ahu.FC_DESCRIPTIONS[fc]} (1/0)",
        )(make_ahu(fc))


_register()
