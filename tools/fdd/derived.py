"""The detectors as derived values for policies, bound to one site's :class:`FddState`.

:func:`derived_specs` returns the specs; whoever builds the site's policy engine adds
them to its :class:`~tools.policies.derived.DerivedRegistry` (the agent context does).

``fdd.chiller:<fault_class>`` (kind ``chiller``)
    1.0 when the chiller detector holds a persistent alarm of that class over the
    recent history, 0.0 when it holds none (or another), ``nan`` when it cannot tell
    (no reference for the equipment, no history, not enough steady data). The
    history is resampled to the detector's sample period (10 s) first, so a window
    is ten minutes whatever the poll rate. The detector needs the water-side points
    (RP-1043's TEI, TEO, TCI, TCO, kW, FWE, or the twin's names for them) and uses
    the refrigerant-side ones when the chiller has them.
``fdd.ahu:<fc>`` (kind ``ahu``, ``fc1`` … ``fc15``)
    1.0 when the G36 fault condition is flagged on the newest row of the recent history.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import pandas as pd

from tools.fdd.ahu import FC_DESCRIPTIONS, FC_NAMES
from tools.fdd.ahu import flags as ahu_flags
from tools.fdd.chiller import ALIASES, FAULT_CLASSES, INPUTS, ChillerFddConfig, diagnose
from tools.fdd.state import FddState
from tools.policies.derived import DerivedInput, DerivedSpec, spec

#: What the chiller detector cannot do without: the operating point and the water side.
CHILLER_REQUIRED: tuple[str, ...] = ("TEI", "TEO", "TCI", "TCO", "kW", "FWE")
CHILLER_OPTIONAL: tuple[str, ...] = tuple(n for n in INPUTS if n not in CHILLER_REQUIRED)
T = TypeVar("T")
_CHILLER_NAMES = frozenset(INPUTS) | {a for al in ALIASES.values() for a in al}

AHU_INPUTS = ("supply_air_temp", "mixed_air_temp", "outdoor_air_temp", "return_air_temp")
AHU_POINTS = (
    *AHU_INPUTS, "cooling_valve", "heating_valve", "oa_damper", "supply_fan_speed",
    "supply_fan_status", "supply_air_temp_setpoint", "supply_air_temp_heating_setpoint",
    "supply_air_temp_cooling_setpoint", "duct_static_pressure", "duct_static_pressure_setpoint",
)  # fmt: skip


def wide(history: pd.DataFrame | None, prefix: str) -> pd.DataFrame:
    """Long history (ts, tag, value) → wide frame with point names as columns."""
    if history is None or history.empty:
        return pd.DataFrame()
    h = history.copy()
    h["name"] = h["tag"].str.removeprefix(prefix)
    w = h.pivot_table(index="ts", columns="name", values="value", aggfunc="last")
    w.index = pd.DatetimeIndex(w.index)
    return w.sort_index()


def _flag(
    verdict: Callable[[DerivedInput], T | float], hit: Callable[[T], bool]
) -> Callable[[DerivedInput], float]:
    """A 1/0 flag from a detector's verdict (a float verdict — ``nan``, cannot tell — passes)."""

    def fn(x: DerivedInput) -> float:
        v = verdict(x)
        if isinstance(v, float):
            return v
        return 1.0 if hit(v) else 0.0

    return fn


def derived_specs(state: FddState, cfg: ChillerFddConfig | None = None) -> list[DerivedSpec]:
    """Every detector value, reading references and AHU settings from ``state``."""
    return [*_chiller_specs(state, cfg or ChillerFddConfig()), *_ahu_specs(state)]


def _chiller_specs(state: FddState, cfg: ChillerFddConfig) -> list[DerivedSpec]:
    history_s = float(cfg.window_rows * cfg.sample_s * (cfg.persistence_of + 1))

    def alarm(x: DerivedInput) -> str | float | None:
        """The persistent chiller alarm over recent history (memoised per cycle)."""
        eq = x.equipment
        if eq is None:
            return math.nan
        key = f"fdd.chiller@{eq.id}"
        if key in x.memo:
            cached: str | float | None = x.memo[key]
            return cached
        ref = state.chiller_reference(eq.id)
        out: str | float | None = math.nan
        if ref is not None and x.history is not None:
            tags = [x.tag(p.name) for p in eq.points if p.name in _CHILLER_NAMES]
            w = wide(x.history(tags, history_s), f"{eq.id}.")
            if len(w):  # the reference's windows count samples of the detector's period
                w = w.resample(pd.Timedelta(seconds=cfg.sample_s)).mean().dropna(how="all")
            if len(w) >= cfg.window_rows * cfg.persistence:
                diag = diagnose(w, ref, cfg)
                last = diag["alarm"].iloc[-1] if len(diag) else None
                out = last if isinstance(last, str) else None
        x.memo[key] = out
        return out

    return [
        spec(
            f"fdd.chiller:{fault}",
            _flag(alarm, partial(operator.eq, fault)),
            kinds=("chiller",),
            inputs=CHILLER_REQUIRED,
            optional=CHILLER_OPTIONAL,
            aliases=ALIASES,
            unit="flag",
            description=f"chiller FDD: persistent {fault.replace('_', ' ')} alarm (1/0)",
        )
        for fault in FAULT_CLASSES
    ]


def _ahu_specs(state: FddState) -> list[DerivedSpec]:
    def flags(x: DerivedInput) -> pd.Series | float:
        eq = x.equipment
        if eq is None or x.history is None:
            return math.nan
        key = f"fdd.ahu@{eq.id}"
        if key in x.memo:
            cached: pd.Series | float = x.memo[key]
            return cached
        acfg = state.ahu_config(eq.id)
        names = [p.name for p in eq.points if p.name in AHU_POINTS]
        # enough history for the newest row's verdict: averaging, mode delay, persistence,
        # and with latched faults the longest a raised fault can hold unjudged
        minutes: float = acfg.average_min + acfg.mode_delay_min + acfg.persistence_min + 1
        if acfg.latch:
            minutes += acfg.hold_max_min
        w = wide(x.history([x.tag(n) for n in names], 60.0 * minutes), f"{eq.id}.")
        if len(w):  # the detector counts 1-minute samples, whatever the poll rate
            w = w.resample("1min").mean().dropna(how="all")
        out: pd.Series | float = math.nan
        if len(w) >= acfg.persistence_min:
            out = ahu_flags(w, acfg).iloc[-1]
        x.memo[key] = out
        return out

    return [
        spec(
            f"fdd.ahu:{fc}",
            _flag(flags, operator.itemgetter(fc)),
            kinds=("ahu",),
            inputs=AHU_INPUTS,
            unit="flag",
            description=f"G36 {fc.upper()}: {FC_DESCRIPTIONS[fc]} (1/0)",
        )
        for fc in FC_NAMES
    ]
