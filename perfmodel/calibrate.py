"""Calibration: fit a chiller's EIR curves (and a tower's approach) to telemetry by least squares.

Tower: the CoolTools approach correlation (:mod:`perfmodel.tower`) with its
published coefficients; only the reference water and air flows are fitted.

Chiller (physics form, the EnergyPlus/DOE-2 EIR model of :mod:`perfmodel.chiller`
with the capacity curve held at 1 — part-load data say nothing about full-load
capacity):

    P = Q_ref/COP_ref · EIRFT(T_chw, T_cw) · EIRFPLR(Q/Q_ref)

The nine coefficients are fitted with :func:`scipy.optimize.least_squares`
(start: the reference chiller's own curves) and then normalised so that
EIRFT(ref) = EIRFPLR(1) = 1, giving a :class:`~perfmodel.idf.ChillerEIR` any
other function here can use. A plain regression
``P = b0 + b1·Q + b2·Q² + b3·T_cw + b4·T_chw + b5·Q·T_cw`` is fitted alongside
as the yardstick.

Metrics, ASHRAE Guideline 14-2014 §4.3.2 / Annex B (p = number of fitted
parameters, ȳ = mean measured):

    CV(RMSE) = 100 · sqrt(Σ(y − ŷ)² / (n − p)) / ȳ        (%)
    NMBE     = 100 · Σ(y − ŷ) / ((n − p) · ȳ)              (%)

Calibration criteria for hourly data: CV(RMSE) ≤ 30 %, |NMBE| ≤ 10 %.
(Sign: positive NMBE = the model under-predicts.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from perfmodel import chiller as chm
from perfmodel import tower
from perfmodel.curves_data import DEFAULT_CHILLER
from perfmodel.idf import Biquadratic, ChillerEIR, Quadratic

__all__ = [
    "ChillerFit",
    "Metrics",
    "RegressionFit",
    "TowerFit",
    "cv_rmse",
    "fit_chiller",
    "fit_regression",
    "fit_tower",
    "metrics",
    "nmbe",
]

F = NDArray[np.float64]


def cv_rmse(measured: ArrayLike, predicted: ArrayLike, p: int = 0) -> float:
    """Coefficient of variation of the RMSE (%), Guideline 14 (n − p degrees of freedom)."""
    y = np.asarray(measured, dtype=float)
    e = y - np.asarray(predicted, dtype=float)
    return float(100.0 * np.sqrt(np.sum(e**2) / (y.size - p)) / np.mean(y))


def nmbe(measured: ArrayLike, predicted: ArrayLike, p: int = 0) -> float:
    """Normalised mean bias error (%), Guideline 14; positive = model under-predicts."""
    y = np.asarray(measured, dtype=float)
    e = y - np.asarray(predicted, dtype=float)
    return float(100.0 * np.sum(e) / ((y.size - p) * np.mean(y)))


@dataclass(frozen=True)
class Metrics:
    """CV(RMSE) and NMBE (%) over ``points`` samples."""

    cv_rmse_pct: float
    nmbe_pct: float
    points: int

    def meets_guideline14_hourly(self) -> bool:
        return self.cv_rmse_pct <= 30.0 and abs(self.nmbe_pct) <= 10.0


def metrics(measured: ArrayLike, predicted: ArrayLike, p: int = 0) -> Metrics:
    y = np.asarray(measured, dtype=float)
    return Metrics(cv_rmse(y, predicted, p), nmbe(y, predicted, p), int(y.size))


@dataclass(frozen=True)
class ChillerFit:
    """A calibrated chiller and its fit on the training data."""

    chiller: ChillerEIR
    train: Metrics

    def predict(self, load_kw: ArrayLike, t_chw_c: ArrayLike, t_cw_c: ArrayLike) -> F:
        """Electric power (kW) at these loads (kW) and temperatures (°C)."""
        return predict_power(self.chiller, load_kw, t_chw_c, t_cw_c)


def predict_power(ch: ChillerEIR, load_kw: ArrayLike, t_chw_c: ArrayLike, t_cw_c: ArrayLike) -> F:
    """Chiller power (kW) by the EIR form with CAPFT = 1 (the calibrated form).

    As EnergyPlus does when it evaluates a curve, the temperatures are held
    inside the curve's range (no polynomial extrapolation).
    """
    q_ref = (ch.ref_capacity_w or 0.0) / 1000.0
    plr = np.asarray(load_kw, dtype=float) / q_ref
    eirft = chm.biquadratic(ch.eirft, t_chw_c, t_cw_c, clip=True)
    return np.asarray(q_ref / ch.ref_cop * eirft * chm.eirfplr(ch, plr), dtype=float)


def _model(theta: F, q_ref: float, x: F, y: F, plr: F) -> F:
    a = theta
    eirft = a[0] + a[1] * x + a[2] * x * x + a[3] * y + a[4] * y * y + a[5] * x * y
    eirfplr = 1.0 + a[6] * (plr - 1.0) + a[7] * (plr * plr - 1.0)  # EIRFPLR(1) = 1 by construction
    return np.asarray(q_ref * eirft * eirfplr)


def fit_chiller(
    load_kw: ArrayLike,
    t_chw_c: ArrayLike,
    t_cw_c: ArrayLike,
    power_kw: ArrayLike,
    *,
    ref_capacity_kw: float | None = None,
    ref_chw_c: float | None = None,
    ref_cw_c: float | None = None,
    start: ChillerEIR = DEFAULT_CHILLER,
    name: str = "calibrated",
) -> ChillerFit:
    """Least-squares EIR curves for one chiller from (load kW, CHW leaving °C, CW entering °C, power kW).

    ``ref_capacity_kw`` defaults to the largest load seen (PLR ≤ 1 in the
    data); the reference temperatures to the data's medians. The result's
    curves carry the data's ranges as their validity ranges.
    """
    q = np.asarray(load_kw, dtype=float)
    x = np.asarray(t_chw_c, dtype=float)
    y = np.asarray(t_cw_c, dtype=float)
    pw = np.asarray(power_kw, dtype=float)
    ok = np.isfinite(q) & np.isfinite(x) & np.isfinite(y) & np.isfinite(pw) & (q > 0) & (pw > 0)
    q, x, y, pw = q[ok], x[ok], y[ok], pw[ok]
    if q.size < 10:
        raise ValueError(f"need at least 10 valid samples to fit a chiller, got {q.size}")
    q_ref = float(ref_capacity_kw if ref_capacity_kw is not None else np.max(q))
    x_ref = float(ref_chw_c if ref_chw_c is not None else np.median(x))
    y_ref = float(ref_cw_c if ref_cw_c is not None else np.median(y))
    plr = q / q_ref
    # start: the reference chiller's curves scaled to this chiller's mean EIR
    c = start.eirft.coefficients
    scale = float(np.mean(pw / q)) / max(float(np.mean(predict_power(start, q, x, y) / q)), 1e-9)
    s0 = np.array([*(ci * scale / start.ref_cop for ci in c), 0.5, 0.5]) * 1.0
    res = least_squares(lambda th: _model(th, q_ref, x, y, plr) - pw, s0, method="lm")
    th = res.x
    # normalise: EIR_ref = EIRFT(x_ref, y_ref) · 1 → COP_ref = 1 / EIR_ref
    eir_ref = float(
        th[0]
        + th[1] * x_ref
        + th[2] * x_ref**2
        + th[3] * y_ref
        + th[4] * y_ref**2
        + th[5] * x_ref * y_ref
    )
    eirft = Biquadratic(
        name=f"{name} EIRFT",
        coefficients=tuple(float(v / eir_ref) for v in th[:6]),  # type: ignore[arg-type]
        x_min=float(x.min()),
        x_max=float(x.max()),
        y_min=float(y.min()),
        y_max=float(y.max()),
    )
    eirfplr = Quadratic(
        name=f"{name} EIRFPLR",
        coefficients=(float(1.0 - th[6] - th[7]), float(th[6]), float(th[7])),
        x_min=float(plr.min()),
        x_max=float(max(plr.max(), 1.0)),
    )
    capft = Biquadratic(
        f"{name} CAPFT",
        (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        eirft.x_min,
        eirft.x_max,
        eirft.y_min,
        eirft.y_max,
    )
    fitted = replace(
        start,
        name=name,
        ref_capacity_w=q_ref * 1000.0,
        ref_cop=1.0 / eir_ref,
        ref_chw_leaving_c=x_ref,
        ref_cond_entering_c=y_ref,
        capft=capft,
        eirft=eirft,
        eirfplr=eirfplr,
        min_plr=float(min(start.min_plr, plr.min())),
        max_plr=float(max(1.0, plr.max())),
        min_unloading_ratio=float(min(start.min_unloading_ratio, plr.min())),
    )
    return ChillerFit(fitted, metrics(pw, predict_power(fitted, q, x, y), p=8))


@dataclass(frozen=True)
class RegressionFit:
    """``P = b0 + b1·Q + b2·Q² + b3·T_cw + b4·T_chw + b5·Q·T_cw`` (kW, °C)."""

    coefficients: tuple[float, ...]
    train: Metrics

    def predict(self, load_kw: ArrayLike, t_chw_c: ArrayLike, t_cw_c: ArrayLike) -> F:
        return np.asarray(_design(load_kw, t_chw_c, t_cw_c) @ np.asarray(self.coefficients))


def _design(load_kw: ArrayLike, t_chw_c: ArrayLike, t_cw_c: ArrayLike) -> F:
    q = np.asarray(load_kw, dtype=float)
    x = np.asarray(t_chw_c, dtype=float)
    y = np.asarray(t_cw_c, dtype=float)
    return np.column_stack([np.ones_like(q), q, q * q, y, x, q * y])


def fit_regression(
    load_kw: ArrayLike, t_chw_c: ArrayLike, t_cw_c: ArrayLike, power_kw: ArrayLike
) -> RegressionFit:
    """Ordinary least squares of chiller power on load and temperatures (the plain yardstick)."""
    a = _design(load_kw, t_chw_c, t_cw_c)
    pw = np.asarray(power_kw, dtype=float)
    ok = np.all(np.isfinite(a), axis=1) & np.isfinite(pw)
    b, *_ = np.linalg.lstsq(a[ok], pw[ok], rcond=None)
    return RegressionFit(tuple(float(v) for v in b), metrics(pw[ok], a[ok] @ b, p=a.shape[1]))


@dataclass(frozen=True)
class TowerFit:
    """Calibrated CoolTools tower: approach = approach_cooltools(twb, range, k_w·FRw, k_a·FRair).

    ``water_scale`` and ``air_scale`` re-reference the flow ratios the data
    give (e.g. water flow over its median) to the correlation's reference
    flows — the same quantities EnergyPlus calibrates from a tower's design
    point; the 35 published coefficients stay as they are.
    """

    water_scale: float
    air_scale: float
    train: Metrics

    def predict(
        self, twb_c: ArrayLike, range_k: ArrayLike, fr_water: ArrayLike, fr_air: ArrayLike
    ) -> F:
        """Approach (K)."""
        w = self.water_scale * np.asarray(fr_water, dtype=float)
        a = self.air_scale * np.asarray(fr_air, dtype=float)
        return tower.approach_cooltools(twb_c, range_k, w, a)


def fit_tower(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_water: ArrayLike,
    fr_air: ArrayLike,
    approach_k: ArrayLike,
) -> TowerFit:
    """Least-squares water- and air-flow reference scales of the CoolTools approach (K) to measured approach."""
    t, r, w, a, ap = (
        np.asarray(v, dtype=float) for v in (twb_c, range_k, fr_water, fr_air, approach_k)
    )
    ok = np.isfinite(t) & np.isfinite(r) & np.isfinite(w) & np.isfinite(a) & np.isfinite(ap)
    t, r, w, a, ap = t[ok], r[ok], w[ok], a[ok], ap[ok]
    if t.size < 5:
        raise ValueError(f"need at least 5 valid samples to fit a tower, got {t.size}")

    def resid(th: F) -> F:
        return tower.approach_cooltools(t, r, th[0] * w, th[1] * a) - ap

    res = least_squares(resid, np.array([1.0, 1.0]), bounds=([0.1, 0.1], [5.0, 5.0]))
    kw, ka = (float(v) for v in res.x)
    pred = tower.approach_cooltools(t, r, kw * w, ka * a)
    return TowerFit(kw, ka, metrics(ap, pred, p=2))
