"""Open cooling tower: approach from wet bulb, range, water and air flow ratios; fan power.

Approach correlation: the CoolTools cross-flow tower model (Benton et al.
2002, "Generalized modeling and simulation software tool for evaluating the
performance of cooling towers", ASHRAE Trans. 108(1)) with the 35 coefficients
EnergyPlus ships for ``CoolingTower:VariableSpeed`` model type
``CoolToolsCrossFlow`` (EnergyPlus Engineering Reference, "Variable Speed
Cooling Towers", Table "Approach Temperature Correlation Coefficients").
Validity (same table): wet bulb −1.0…26.7 °C, range 1.1…11.1 K, approach
1.1…11.1 K, water-flow ratio 0.75…1.25. Reference condition: 25.6 °C wet bulb,
35 °C water in, 29.4 °C water out (range 5.56 K, approach 3.89 K) at
FRair = FRwater = 1.

Wet bulb from dry bulb and relative humidity: psychrolib (Meyer & Thevenard,
ASHRAE Handbook—Fundamentals 2017 ch. 1 formulas).

Fan power: EnergyPlus default ``P = P_design · FRair³`` (fan affinity law).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psychrolib
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COOLTOOLS",
    "COOLTOOLS_LIMITS",
    "TowerLimits",
    "approach_cooltools",
    "fan_power",
    "in_range",
    "leaving_water_temp",
    "speed_for_leaving_temp",
    "wet_bulb",
]

F = NDArray[np.float64]

#: CoolTools cross-flow coefficients, as in EnergyPlus ``CondenserLoopTowers.cc``.
COOLTOOLS: tuple[float, ...] = (
    0.52049709836241, -10.617046395344, 10.7292974722538, -2.74988377158227,
    4.73629943913743, -8.25759700874711, 1.57640938114136, 6.51119643791324,
    1.50433525206692, -3.2888529287801, 0.0257786145353773, 0.182464289315254,
    -0.0818947291400898, -0.215010003996285, 0.0186741309635284, 0.0536824177590012,
    -0.00270968955115031, 0.00112277498589279, -0.00127758497497718, 0.0000760420796601607,
    1.43600088336017, -0.5198695909109, 0.117339576910507, 1.50492810819924,
    -0.135898905926974, -0.152577581866506, -0.0533843828114562, 0.00493294869565511,
    -0.00796260394174197, 0.000222619828621544, -0.0543952001568055, 0.00474266879161693,
    -0.0185854671815598, 0.00115667701293848, 0.000807370664460284,
)  # fmt: skip


@dataclass(frozen=True)
class TowerLimits:
    """Validity range of an approach correlation (°C, K, –)."""

    twb_min: float = -1.0
    twb_max: float = 26.7
    range_min: float = 1.1
    range_max: float = 11.1
    approach_min: float = 1.1
    approach_max: float = 11.1
    fr_water_min: float = 0.75
    fr_water_max: float = 1.25


COOLTOOLS_LIMITS = TowerLimits()


def approach_cooltools(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_water: ArrayLike,
    fr_air: ArrayLike,
    coefficients: tuple[float, ...] = COOLTOOLS,
) -> F:
    """Tower approach (K) = leaving water − entering air wet bulb.

    twb_c: entering-air wet bulb (°C); range_k: entering − leaving water (K);
    fr_water, fr_air: water and air flow over their reference values (–).
    """
    a = np.asarray(fr_air, dtype=float)
    w = np.asarray(fr_water, dtype=float)
    t = np.asarray(twb_c, dtype=float)
    r = np.asarray(range_k, dtype=float)
    c = coefficients
    out = (
        c[0] + c[1] * a + c[2] * a * a + c[3] * a * a * a
        + c[4] * w + c[5] * a * w + c[6] * a * a * w + c[7] * w * w + c[8] * a * w * w + c[9] * w * w * w
        + c[10] * t + c[11] * a * t + c[12] * a * a * t + c[13] * w * t + c[14] * a * w * t
        + c[15] * w * w * t + c[16] * t * t + c[17] * a * t * t + c[18] * w * t * t + c[19] * t * t * t
        + c[20] * r + c[21] * a * r + c[22] * a * a * r + c[23] * w * r + c[24] * a * w * r
        + c[25] * w * w * r + c[26] * t * r + c[27] * a * t * r + c[28] * w * t * r + c[29] * t * t * r
        + c[30] * r * r + c[31] * a * r * r + c[32] * w * r * r + c[33] * t * r * r + c[34] * r * r * r
    )  # fmt: skip
    return np.asarray(out, dtype=float)


def leaving_water_temp(
    twb_c: ArrayLike, range_k: ArrayLike, fr_water: ArrayLike, fr_air: ArrayLike
) -> F:
    """Leaving (cold) water temperature (°C) = wet bulb + approach."""
    return np.asarray(twb_c, dtype=float) + approach_cooltools(twb_c, range_k, fr_water, fr_air)


def speed_for_leaving_temp(
    target_c: ArrayLike,
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_water: ArrayLike,
    *,
    min_fr_air: float = 0.2,
    iterations: int = 30,
) -> F:
    """Air-flow ratio (–) that brings the leaving water to ``target_c``, held to [min_fr_air, 1].

    Vectorised bisection: approach falls monotonically with air flow over the
    correlation's range. Where the target is below what full speed reaches the
    answer is 1; where even ``min_fr_air`` overshoots it, ``min_fr_air``.
    """
    target = np.asarray(target_c, dtype=float)
    shape = np.broadcast(target, np.asarray(twb_c), np.asarray(range_k), np.asarray(fr_water)).shape
    k0, k1, k2, k3 = cubic_in_air(twb_c, range_k, fr_water)
    gap = target - np.asarray(twb_c, dtype=float)  # the approach that meets the target
    lo = np.full(shape, min_fr_air)
    hi = np.ones(shape)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        too_warm = ((k3 * mid + k2) * mid + k1) * mid + k0 > gap
        lo = np.where(too_warm, mid, lo)
        hi = np.where(too_warm, hi, mid)
    return np.asarray(hi, dtype=float)


def cubic_in_air(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_water: ArrayLike,
    coefficients: tuple[float, ...] = COOLTOOLS,
) -> tuple[F, F, F, F]:
    """(k0, k1, k2, k3): the correlation as a cubic in the air-flow ratio at fixed wet bulb,
    range and water flow — approach = k0 + k1·a + k2·a² + k3·a³ (it is at most cubic in a).

    Found exactly from four evaluations (a = 0…3, finite differences), so a search over
    fan speed costs a few multiplications per step instead of the 35-term polynomial."""
    return _cubic(
        *(
            approach_cooltools(twb_c, range_k, fr_water, a, coefficients)
            for a in (0.0, 1.0, 2.0, 3.0)
        )
    )


def cubic_in_water(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_air: ArrayLike,
    coefficients: tuple[float, ...] = COOLTOOLS,
) -> tuple[F, F, F, F]:
    """As :func:`cubic_in_air`, in the water-flow ratio at fixed wet bulb, range and air flow."""
    return _cubic(
        *(approach_cooltools(twb_c, range_k, w, fr_air, coefficients) for w in (0.0, 1.0, 2.0, 3.0))
    )


def _cubic(p0: F, p1: F, p2: F, p3: F) -> tuple[F, F, F, F]:
    """Coefficients of the cubic through (0, p0), (1, p1), (2, p2), (3, p3)."""
    k3 = (p3 - 3.0 * p2 + 3.0 * p1 - p0) / 6.0
    k2 = (p2 - 2.0 * p1 + p0) / 2.0 - 3.0 * k3
    k1 = p1 - p0 - k2 - k3
    return p0, k1, k2, k3


def fan_power(design_kw: ArrayLike, fr_air: ArrayLike, exponent: float = 3.0) -> F:
    """Fan electric power (kW) = design power · FRair^exponent (affinity law, exponent 3)."""
    return np.asarray(
        np.asarray(design_kw, dtype=float) * np.asarray(fr_air, dtype=float) ** exponent
    )


def in_range(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    approach_k: ArrayLike,
    fr_water: ArrayLike,
    limits: TowerLimits = COOLTOOLS_LIMITS,
) -> NDArray[np.bool_]:
    """True where the correlation's inputs and result lie inside its validity range."""
    t, r, ap, w = (np.asarray(v, dtype=float) for v in (twb_c, range_k, approach_k, fr_water))
    return np.asarray(
        (t >= limits.twb_min) & (t <= limits.twb_max)
        & (r >= limits.range_min) & (r <= limits.range_max)
        & (ap >= limits.approach_min) & (ap <= limits.approach_max)
        & (w >= limits.fr_water_min - 1e-9) & (w <= limits.fr_water_max + 1e-9),
        dtype=bool,
    )  # fmt: skip


def in_validated_range(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    approach_k: ArrayLike,
    fr_water: ArrayLike,
    twb_span: tuple[ArrayLike, ArrayLike],
    approach_span: tuple[ArrayLike, ArrayLike],
    limits: TowerLimits = COOLTOOLS_LIMITS,
) -> NDArray[np.bool_]:
    """:func:`in_range` with the wet-bulb and approach ranges grown to the spans where site
    data validated the correlation (NaN spans: the correlation's own range)."""
    t, r, ap, w = (np.asarray(v, dtype=float) for v in (twb_c, range_k, approach_k, fr_water))
    t_lo = np.fmin(limits.twb_min, np.asarray(twb_span[0], dtype=float))
    t_hi = np.fmax(limits.twb_max, np.asarray(twb_span[1], dtype=float))
    a_lo = np.fmin(limits.approach_min, np.asarray(approach_span[0], dtype=float))
    a_hi = np.fmax(limits.approach_max, np.asarray(approach_span[1], dtype=float))
    return np.asarray(
        (t >= t_lo - 1e-9) & (t <= t_hi + 1e-9)
        & (r >= limits.range_min) & (r <= limits.range_max)
        & (ap >= a_lo - 1e-9) & (ap <= a_hi + 1e-9)
        & (w >= limits.fr_water_min - 1e-9) & (w <= limits.fr_water_max + 1e-9),
        dtype=bool,
    )  # fmt: skip


_wb_scalar = np.vectorize(
    lambda tdb, rh, p: psychrolib.GetTWetBulbFromRelHum(float(tdb), float(rh), float(p)),
    otypes=[float],
)


def wet_bulb(t_drybulb_c: ArrayLike, rh_pct: ArrayLike, pressure_pa: ArrayLike = 101325.0) -> F:
    """Thermodynamic wet-bulb temperature (°C) from dry bulb (°C) and RH (%), via psychrolib (SI)."""
    psychrolib.SetUnitSystem(psychrolib.SI)
    rh = np.clip(np.asarray(rh_pct, dtype=float) / 100.0, 0.0, 1.0)
    return np.asarray(_wb_scalar(t_drybulb_c, rh, pressure_pa), dtype=float)


psychrolib.SetUnitSystem(psychrolib.SI)
