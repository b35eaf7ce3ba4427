"""Electric chiller: the DOE-2 / EnergyPlus ``Chiller:Electric:EIR`` model.

Source: EnergyPlus Engineering Reference, "Electric Chiller Model Based on
Fluid Temperature Differences" / "Electric Chiller Model Based on Condenser
Entering Temperature" (Chiller:Electric:EIR); Hydeman et al. (2002),
"Development and testing of a reformulated regression-based electric chiller
model", ASHRAE Trans. 108(2); DOE-2.1E Supplement.

    CAPFT  = a + b·Tchw + c·Tchw² + d·Tcw + e·Tcw² + f·Tchw·Tcw     (–)
    EIRFT  = same biquadratic form                                   (–)
    EIRFPLR = a + b·PLR + c·PLR²                                     (–)
    Q_avail = Q_ref · CAPFT                                          (kW)
    PLR     = Q_evap / Q_avail                                       (–)
    P       = Q_avail / COP_ref · EIRFT · EIRFPLR(max(PLR, min_unload)) · cycling
    cycling = min(1, PLR / min_PLR)                                  (–)
    Q_cond  = Q_evap + P · f_cond   (f_cond = 1: all compressor power to the condenser)

Tchw is the leaving chilled-water temperature (°C), Tcw the entering
condenser-water temperature (°C). Everything is numpy-vectorised: scalars or
arrays in (broadcast together), arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perfmodel.idf import Biquadratic, ChillerEIR, Quadratic

__all__ = [
    "ChillerResult",
    "biquadratic",
    "capft",
    "chiller_performance",
    "eirfplr",
    "eirft",
    "in_range",
    "quadratic",
    "rated_at",
]

F = NDArray[np.float64]


def biquadratic(curve: Biquadratic, x: ArrayLike, y: ArrayLike, *, clip: bool = False) -> F:
    """Evaluate ``c1 + c2·x + c3·x² + c4·y + c5·y² + c6·x·y``.

    With ``clip=True`` x and y are first held inside the curve's validity
    range (EnergyPlus does this when it evaluates a curve); by default the
    polynomial is evaluated as is, so it reproduces the curve exactly.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if clip:
        xa = np.clip(xa, curve.x_min, curve.x_max)
        ya = np.clip(ya, curve.y_min, curve.y_max)
    c1, c2, c3, c4, c5, c6 = curve.coefficients
    return np.asarray(c1 + xa * (c2 + c3 * xa) + ya * (c4 + c5 * ya) + c6 * xa * ya, dtype=float)


def quadratic(curve: Quadratic, x: ArrayLike, *, clip: bool = False) -> F:
    """Evaluate ``c1 + c2·x + c3·x²`` (optionally with x held in its range)."""
    xa = np.asarray(x, dtype=float)
    if clip:
        xa = np.clip(xa, curve.x_min, curve.x_max)
    c1, c2, c3 = curve.coefficients
    return np.asarray(c1 + xa * (c2 + c3 * xa), dtype=float)


def capft(
    ch: ChillerEIR, t_chw_leaving_c: ArrayLike, t_cw_entering_c: ArrayLike, *, clip: bool = False
) -> F:
    """Available-capacity ratio against temperatures (–)."""
    return biquadratic(ch.capft, t_chw_leaving_c, t_cw_entering_c, clip=clip)


def eirft(
    ch: ChillerEIR, t_chw_leaving_c: ArrayLike, t_cw_entering_c: ArrayLike, *, clip: bool = False
) -> F:
    """Full-load EIR ratio against temperatures (–)."""
    return biquadratic(ch.eirft, t_chw_leaving_c, t_cw_entering_c, clip=clip)


def eirfplr(ch: ChillerEIR, plr: ArrayLike) -> F:
    """EIR ratio against part-load ratio (–)."""
    return quadratic(ch.eirfplr, plr)


def in_range(
    ch: ChillerEIR, t_chw_leaving_c: ArrayLike, t_cw_entering_c: ArrayLike
) -> NDArray[np.bool_]:
    """True where both temperatures lie inside the CAPFT and EIRFT validity ranges (grown
    to the spans site data validated, :attr:`ChillerEIR.validated_chw_c` / ``validated_cw_c``)."""
    x = np.asarray(t_chw_leaving_c, dtype=float)
    y = np.asarray(t_cw_entering_c, dtype=float)
    x_lo, x_hi, y_lo, y_hi = valid_ranges(ch)
    ok = (x >= x_lo - 1e-9) & (x <= x_hi + 1e-9)
    ok &= (y >= y_lo - 1e-9) & (y <= y_hi + 1e-9)
    return np.asarray(ok, dtype=bool)


def valid_ranges(ch: ChillerEIR) -> tuple[float, float, float, float]:
    """(CHW min, CHW max, CW min, CW max) °C where the model is valid: where both curves
    were fitted, grown to the spans site data validated."""
    x_lo = max(ch.capft.x_min, ch.eirft.x_min)
    x_hi = min(ch.capft.x_max, ch.eirft.x_max)
    y_lo = max(ch.capft.y_min, ch.eirft.y_min)
    y_hi = min(ch.capft.y_max, ch.eirft.y_max)
    if (v := ch.validated_chw_c) is not None:
        x_lo, x_hi = min(x_lo, v[0]), max(x_hi, v[1])
    if (v := ch.validated_cw_c) is not None:
        y_lo, y_hi = min(y_lo, v[0]), max(y_hi, v[1])
    return x_lo, x_hi, y_lo, y_hi


@dataclass(frozen=True)
class ChillerResult:
    """One chiller's steady state; all arrays broadcast to the inputs' shape.

    power_kw: compressor electric input (kW); capacity_kw: available capacity
    at these temperatures (kW); plr: part-load ratio Q_evap/Q_avail (–, may
    exceed max_plr when overloaded); cond_kw: heat rejected to the condenser
    (kW); cop: Q_evap/P (–); valid: temperatures and PLR inside the curves'
    ranges.
    """

    power_kw: F
    capacity_kw: F
    plr: F
    cond_kw: F
    cop: F
    valid: NDArray[np.bool_]


def chiller_performance(
    ch: ChillerEIR,
    load_kw: ArrayLike,
    t_chw_leaving_c: ArrayLike,
    t_cw_entering_c: ArrayLike,
    *,
    capacity_kw: ArrayLike | None = None,
    cop: ArrayLike | None = None,
    cond_fraction: float = 1.0,
) -> ChillerResult:
    """Electric input and condenser heat of one chiller meeting ``load_kw`` (kW of cooling).

    ``capacity_kw`` / ``cop`` override the reference capacity (kW) and COP (–)
    of ``ch`` (e.g. a calibrated or degraded chiller). Load above the available
    capacity is met only up to ``max_plr``; the PLR returned is the demanded one
    so callers can see the overload. Energy balance: ``cond_kw = Q_met + P·cond_fraction``.
    As in EnergyPlus, CAPFT and EIRFT are evaluated with the temperatures held
    inside the curves' ranges (``valid`` says when they were outside).
    """
    q = np.asarray(load_kw, dtype=float)
    ref_cap = (
        np.asarray(capacity_kw, dtype=float)
        if capacity_kw is not None
        else np.asarray((ch.ref_capacity_w or 0.0) / 1000.0)
    )
    ref_cop = np.asarray(cop if cop is not None else ch.ref_cop, dtype=float)
    cap = ref_cap * capft(ch, t_chw_leaving_c, t_cw_entering_c, clip=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plr = np.where(cap > 0, q / cap, np.inf)
    plr_met = np.clip(plr, 0.0, ch.max_plr)
    q_met = plr_met * cap
    plr_op = np.maximum(plr_met, ch.min_unloading_ratio)
    cycling = np.minimum(1.0, plr_met / ch.min_plr) if ch.min_plr > 0 else np.ones_like(plr_met)
    power = (
        cap
        / ref_cop
        # curve inputs held inside their ranges, as EnergyPlus evaluates them: a biquadratic
        # extrapolated past its data (a loop at 26 °C after a restart) can go negative
        * eirft(ch, t_chw_leaving_c, t_cw_entering_c, clip=True)
        * eirfplr(ch, plr_op)
        * cycling
    )
    power = np.where(q > 0, power, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cop_out = np.where(power > 0, q_met / power, np.nan)
    valid = in_range(ch, t_chw_leaving_c, t_cw_entering_c) & (plr <= ch.eirfplr.x_max + 1e-9)
    valid &= (plr >= ch.eirfplr.x_min - 1e-9) | (q <= 0)
    shape = np.broadcast(
        q, np.asarray(t_chw_leaving_c), np.asarray(t_cw_entering_c), ref_cap, ref_cop
    ).shape

    def out(a: ArrayLike, dtype: type = float) -> NDArray[Any]:
        return np.broadcast_to(np.asarray(a, dtype=dtype), shape).copy()

    return ChillerResult(
        power_kw=out(power),
        capacity_kw=out(cap),
        plr=out(plr),
        cond_kw=out(q_met + power * cond_fraction),
        cop=out(cop_out),
        valid=out(valid, bool),
    )


def rated_at(ch: ChillerEIR, t_chw_leaving_c: float, t_cw_entering_c: float) -> ChillerEIR:
    """``ch`` with CAPFT and EIRFT rescaled to 1 at the given rating point (°C).

    A nameplate states capacity and COP at a rating point (AHRI 550/590: 6.67 °C leaving
    chilled water, 29.44 °C entering condenser water); a curve set taken from another
    chiller keeps its shape off that point but holds the nameplate at it.
    """
    from dataclasses import replace

    def scaled(c: Biquadratic) -> Biquadratic:
        k = float(biquadratic(c, t_chw_leaving_c, t_cw_entering_c))
        return replace(c, coefficients=tuple(v / k for v in c.coefficients))  # type: ignore[arg-type]

    return replace(
        ch,
        capft=scaled(ch.capft),
        eirft=scaled(ch.eirft),
        ref_chw_leaving_c=t_chw_leaving_c,
        ref_cond_entering_c=t_cw_entering_c,
    )
