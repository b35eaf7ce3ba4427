"""An air handler's supply-fan heat, measured from a period its operator declares fault-free.

G36 has ΔT_SF (the air's temperature rise through the supply fan) set at commissioning.
No document gives it for the LBNL units, and a guessed one turns the tests across the fan
(FC5, FC8, FC12, FC14, FC15) into false alarms or blind spots (see :mod:`tools.fdd.ahu`).
What a site can do instead is what it does for the chiller's reference (``fdd learn``):
name a period in which the unit was healthy and measure it there.

:func:`learn_fan_heat` takes the rows of such a period in which the detector itself would
judge the tests across the fan with both coils shut — fan on, settled in its operating
state (G36's mode delay), enough airflow (``min_fan_speed``) — and fits
``SAT − MAT = a + b·(speed/100)²`` by least squares (``b`` only when the speed moved by
at least ``MIN_SPEED_SPAN`` points; else a constant). The spread is twice the robust
standard deviation of the residuals (1.4826 · MAD), so about 95 % of healthy rows lie
within it. :func:`commissioned` returns the detector settings with that fan heat,
``fan_heat_commissioned`` and the spread; the tests across the fan then use the sensors'
own tolerances widened by the spread instead of G36's field ones.

Naming the period is the operator's statement that the unit was healthy in it: nothing
here checks it, and a leaking coil in that period is learned as fan heat. Refuses (a
``ValueError`` naming what is missing) when fewer than ``min_rows`` rows qualify.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tools.fdd import ahu

MIN_ROWS = 60  # an hour of 1-minute rows with both coils shut
MIN_SPEED_SPAN = 15.0  # % speed the period must span for the speed term to be fitted


@dataclass(frozen=True)
class FanHeat:
    """ΔT_SF = ``base`` + ``speed2``·(speed/100)², K; ``spread`` K; what it was fitted on."""

    base: float
    speed2: float
    spread: float
    rows: int
    speed_lo: float
    speed_hi: float

    def describe(self) -> str:
        term = f" + {self.speed2:.2f}·(speed/100)²" if self.speed2 else ""
        return (
            f"fan heat {self.base:.2f} K{term} ± {self.spread:.2f} K from {self.rows} rows "
            f"with both coils shut (fan {self.speed_lo:.0f}–{self.speed_hi:.0f} %)"
        )


def qualifying_rows(df: pd.DataFrame, cfg: ahu.AhuFddConfig) -> pd.DataFrame:
    """The averaged rows (``sat``, ``mat``, ``fan_speed``) of ``df`` on which the detector
    would judge the coils-shut tests across the fan."""
    avg, os_, settled = ahu.settled_state(df, cfg)
    ok = (
        (os_ > 0).to_numpy()
        & settled
        & (avg["cooling_valve"] <= cfg.valve_closed).to_numpy()
        & (avg["heating_valve"] <= cfg.valve_closed).to_numpy()
        & avg["sat"].notna().to_numpy()
        & avg["mat"].notna().to_numpy()
        & ~(avg["fan_speed"] < cfg.min_fan_speed).to_numpy()
    )
    return avg.loc[ok, ["sat", "mat", "fan_speed"]]


def learn_fan_heat(
    df: pd.DataFrame, cfg: ahu.AhuFddConfig = ahu.LAB_GRADE, min_rows: int = MIN_ROWS
) -> FanHeat:
    """Fit the fan heat on the declared fault-free rows ``df`` (see the module doc)."""
    q = qualifying_rows(df, cfg)
    if len(q) < min_rows:
        raise ValueError(
            f"too few rows to learn the fan heat from: {len(q)} settled rows with the fan on "
            f"and both coils shut, need {min_rows} — choose a longer fault-free period"
        )
    dt = (q["sat"] - q["mat"]).to_numpy(dtype=float)
    speed = q["fan_speed"].to_numpy(dtype=float)
    known = np.isfinite(speed)
    lo, hi = (
        (float(np.min(speed[known])), float(np.max(speed[known])))
        if known.any()
        else (float("nan"), float("nan"))
    )
    b = 0.0
    if known.sum() >= min_rows and hi - lo >= MIN_SPEED_SPAN:
        x = np.column_stack([np.ones(int(known.sum())), (speed[known] / 100.0) ** 2])
        coef, *_ = np.linalg.lstsq(x, dt[known], rcond=None)
        a, b = float(coef[0]), float(coef[1])
        resid = dt[known] - x @ coef
    else:
        a = float(np.median(dt))
        resid = dt - a
    mad = float(np.median(np.abs(resid - np.median(resid))))
    return FanHeat(
        base=a,
        speed2=b,
        spread=2.0 * 1.4826 * mad,
        rows=len(q),
        speed_lo=lo,
        speed_hi=hi,
    )


def commissioned(cfg: ahu.AhuFddConfig, fan_heat: FanHeat) -> ahu.AhuFddConfig:
    """``cfg`` with the measured fan heat taken as the unit's commissioned value."""
    return replace(
        cfg,
        fan_heat=fan_heat.base,
        fan_heat_speed2=fan_heat.speed2,
        fan_heat_spread=fan_heat.spread,
        fan_heat_commissioned=True,
    )
