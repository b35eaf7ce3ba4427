"""The plant's calibrated parameters: corrections to the catalogue model learned from a site.

:class:`PlantParameters` holds what a site's history can tell about its equipment beyond
the nameplate, each as a correction to the catalogue model of :mod:`perfmodel.plant`
(``None`` / 1.0 = the catalogue's own value):

* chiller: additive corrections to the catalogue EIR curves (they stay a biquadratic and a
  quadratic, so the solver runs them as any ``Chiller:Electric:EIR``)::

      EIRFT'(x, y) = EIRFT(x, y) + d0 + d1·(x − x0) + d2·(y − y0)
      EIRFPLR'(p)  = EIRFPLR(p) + e1·(p − 1) + e2·(p² − 1)      (EIRFPLR'(1) = EIRFPLR(1))

  (x leaving chilled water, y entering condenser water, °C; p part-load ratio). The
  capacity curve is the catalogue's: part-load data say nothing about full-load capacity;
* tower: ``tower_air_flow_factor`` — the air a fan speed moves against design (CoolTools
  approach with FRair scaled; a fouled fill < 1);
* pumps: flow and power factors against the design flow and rated power at a speed.

Fitting (:func:`fit_chiller_correction`, :func:`fit_tower_air`, :func:`ratio`) is least
squares; the chiller's five corrections carry a weak Gaussian prior at zero (ridge), so a
correction the data cannot see (no spread in condenser water, say) stays at the
catalogue's. :meth:`PlantParameters.apply` puts them on a :class:`PlantState`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from perfmodel import chiller as chm
from perfmodel import pumps, tower
from perfmodel.idf import ChillerEIR
from perfmodel.state import PlantState

__all__ = [
    "FREE_CONVECTION_FR_AIR",
    "ChillerCorrection",
    "PlantParameters",
    "corrected",
    "fit_chiller_correction",
    "fit_tower_air",
    "power_check",
    "pump_power",
    "ratio",
    "tower_approach",
]

F = NDArray[np.float64]
FREE_CONVECTION_FR_AIR = 0.125

#: prior σ of each chiller correction (d0, d1 /K, d2 /K, e1, e2): wide against what a
#: season's data pin down, narrow enough to hold an unseen one at zero
PRIOR_SIGMA = (0.3, 0.03, 0.03, 0.5, 0.5)
#: a temperature spread (K) below which the data cannot tell its slope
MIN_SPAN_K = 1.0


@dataclass(frozen=True)
class ChillerCorrection:
    """Additive corrections to the catalogue EIR curves (see the module docstring)."""

    d0: float = 0.0
    d1: float = 0.0
    d2: float = 0.0
    e1: float = 0.0
    e2: float = 0.0
    x0: float = 7.0
    y0: float = 29.0
    #: leaving CHW / entering CW (°C) spans of the site data the correction was fitted and
    #: scored on (None: not validated beyond the catalogue curves' own ranges)
    chw_range_c: tuple[float, float] | None = None
    cw_range_c: tuple[float, float] | None = None

    def is_zero(self) -> bool:
        return not any((self.d0, self.d1, self.d2, self.e1, self.e2))

    def validated_on(
        self, chw_range_c: tuple[float, float], cw_range_c: tuple[float, float]
    ) -> ChillerCorrection:
        """This correction, known to hold on the site data spanning these temperatures."""
        return replace(
            self,
            chw_range_c=(float(chw_range_c[0]), float(chw_range_c[1])),
            cw_range_c=(float(cw_range_c[0]), float(cw_range_c[1])),
        )


def corrected(ch: ChillerEIR, c: ChillerCorrection) -> ChillerEIR:
    """``ch`` with the correction folded into its EIRFT and EIRFPLR coefficients; where the
    correction was validated on site data outside the catalogue's temperature ranges, the
    model's validity grows to cover that data (:meth:`ChillerCorrection.validated_on`;
    the curves are still evaluated with their inputs held in their own ranges)."""
    a = ch.eirft.coefficients
    eirft = replace(
        ch.eirft,
        name=f"{ch.eirft.name} (calibrated)",
        coefficients=(
            a[0] + c.d0 - c.d1 * c.x0 - c.d2 * c.y0,
            a[1] + c.d1,
            a[2],
            a[3] + c.d2,
            a[4],
            a[5],
        ),
    )
    b = ch.eirfplr.coefficients
    eirfplr = replace(
        ch.eirfplr,
        name=f"{ch.eirfplr.name} (calibrated)",
        coefficients=(b[0] - c.e1 - c.e2, b[1] + c.e1, b[2] + c.e2),
    )
    return replace(
        ch,
        name=f"{ch.name} (calibrated)",
        eirft=eirft,
        eirfplr=eirfplr,
        validated_chw_c=c.chw_range_c,
        validated_cw_c=c.cw_range_c,
    )


def fit_chiller_correction(
    base: ChillerEIR,
    capacity_kw: float,
    cop: float,
    load_kw: ArrayLike,
    t_chw_c: ArrayLike,
    t_cw_c: ArrayLike,
    power_kw: ArrayLike,
    *,
    prior_sigma: tuple[float, ...] = PRIOR_SIGMA,
    min_span_k: float = MIN_SPAN_K,
) -> ChillerCorrection:
    """Least-squares corrections of ``base`` (at the nameplate ``capacity_kw``, ``cop``) to
    measured chiller power (kW) at loads (kW) and temperatures (°C); ridge prior at zero.

    A temperature the data hold within ``min_span_k`` says nothing about its slope: that
    correction is held at zero (the catalogue's slope), not left to what noise suggests."""
    q, x, y, pw = (np.asarray(v, dtype=float) for v in (load_kw, t_chw_c, t_cw_c, power_kw))
    x0, y0 = float(np.median(x)), float(np.median(y))
    sigma_p = 0.01 * float(np.mean(pw)) + 0.2  # a power meter's class plus averaging noise
    prior = np.asarray(prior_sigma, dtype=float)
    free = np.ones(5, dtype=bool)
    free[1] = float(np.ptp(x)) >= min_span_k
    free[2] = float(np.ptp(y)) >= min_span_k

    def full(th: F) -> F:
        out = np.zeros(5)
        out[free] = th
        return out

    def resid(th: F) -> F:
        d0, d1, d2, e1, e2 = (float(v) for v in full(th))
        c = ChillerCorrection(d0, d1, d2, e1, e2, x0=x0, y0=y0)
        p = chm.chiller_performance(corrected(base, c), q, x, y, capacity_kw=capacity_kw, cop=cop)
        return np.concatenate([(p.power_kw - pw) / sigma_p, th / prior[free]])

    res = least_squares(resid, np.zeros(int(free.sum())), method="trf", x_scale=prior[free])
    d0, d1, d2, e1, e2 = (float(v) for v in full(res.x))
    return ChillerCorrection(d0, d1, d2, e1, e2, x0=x0, y0=y0)


def tower_approach(
    twb_c: ArrayLike, range_k: ArrayLike, fr_water: ArrayLike, fan_fr: ArrayLike, air_factor: float
) -> F:
    """CoolTools approach (K) with the fan's speed fraction (free convection when off) × the
    tower's air-flow factor."""
    a = np.maximum(np.asarray(fan_fr, dtype=float), FREE_CONVECTION_FR_AIR) * air_factor
    return tower.approach_cooltools(twb_c, range_k, fr_water, a)


def fit_tower_air(
    twb_c: ArrayLike,
    range_k: ArrayLike,
    fr_water: ArrayLike,
    fan_fr: ArrayLike,
    approach_k: ArrayLike,
) -> float:
    """Least-squares air-flow factor (0.3–1.5) of the CoolTools approach to measured approach."""
    ap = np.asarray(approach_k, dtype=float)

    def resid(th: F) -> F:
        return tower_approach(twb_c, range_k, fr_water, fan_fr, float(th[0])) - ap

    res = least_squares(resid, np.array([1.0]), bounds=([0.3], [1.5]))
    return float(res.x[0])


def ratio(measured: ArrayLike, predicted: ArrayLike) -> float:
    """Least-squares factor k of ``measured ≈ k · predicted`` (through the origin)."""
    m, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    den = float(np.sum(p * p))
    return float(np.sum(m * p) / den) if den > 0 else math.nan


def pump_power(rated_kw: float, speed_fr: ArrayLike) -> F:
    """Electric power (kW) of a loop pump at a speed fraction (the model's affinity law)."""
    return pumps.electric_power(rated_kw, speed_fr)


@dataclass(frozen=True)
class PlantParameters:
    """Calibrated corrections to the catalogue model (every default: the catalogue)."""

    chiller: ChillerCorrection | None = None
    tower_air_flow_factor: float = 1.0
    chw_pump_flow_factor: float = 1.0
    cw_pump_flow_factor: float = 1.0
    chw_pump_power_factor: float = 1.0
    cw_pump_power_factor: float = 1.0
    #: (wet bulb °C, approach K) spans of the site data the tower factor was validated on
    tower_validated: tuple[tuple[float, float], tuple[float, float]] | None = None

    def apply(self, state: PlantState) -> PlantState:
        """``state`` with these corrections (on its own catalogue curves and nameplates)."""
        upd: dict[str, Any] = {
            "tower_air_flow_factor": self.tower_air_flow_factor,
            "chw_pump_flow_factor": self.chw_pump_flow_factor,
            "cw_pump_flow_factor": self.cw_pump_flow_factor,
            "chw_pump_rated_kw": state.chw_pump_rated_kw * self.chw_pump_power_factor,
            "cw_pump_rated_kw": state.cw_pump_rated_kw * self.cw_pump_power_factor,
        }
        if (tv := self.tower_validated) is not None:
            upd["tower_validated_twb_min_c"], upd["tower_validated_twb_max_c"] = tv[0]
            upd["tower_validated_approach_min_k"], upd["tower_validated_approach_max_k"] = tv[1]
        c = self.chiller
        if c is not None and not (c.is_zero() and c.chw_range_c is None and c.cw_range_c is None):
            upd["chiller"] = corrected(state.chiller, c)
        return replace(state, **upd)

    def is_catalogue(self) -> bool:
        return self == PlantParameters()

    def describe(self) -> str:
        """One line: every parameter that departs from the catalogue."""
        if self.is_catalogue():
            return "catalogue (no calibration)"
        parts = []
        if (c := self.chiller) is not None and not c.is_zero():
            ft = [f"{c.d0:+.3f}"]
            if c.d1:
                ft.append(f"{c.d1:+.4f}/K·(CHW−{c.x0:.1f})")
            if c.d2:
                ft.append(f"{c.d2:+.4f}/K·(CW−{c.y0:.1f})")
            parts.append(
                f"chiller EIRFT {' '.join(ft)}, EIRFPLR {c.e1:+.3f}·(p−1) {c.e2:+.3f}·(p²−1)"
            )
        if (c := self.chiller) is not None and c.chw_range_c and c.cw_range_c:
            parts.append(
                f"chiller validated on CHW {c.chw_range_c[0]:.1f}–{c.chw_range_c[1]:.1f} °C, "
                f"CW {c.cw_range_c[0]:.1f}–{c.cw_range_c[1]:.1f} °C"
            )
        if (tv := self.tower_validated) is not None:
            parts.append(
                f"tower validated on wet bulb {tv[0][0]:.1f}–{tv[0][1]:.1f} °C, "
                f"approach {tv[1][0]:.1f}–{tv[1][1]:.1f} K"
            )
        for name, v in (
            ("tower air", self.tower_air_flow_factor),
            ("CHW pump flow", self.chw_pump_flow_factor),
            ("CW pump flow", self.cw_pump_flow_factor),
            ("CHW pump power", self.chw_pump_power_factor),
            ("CW pump power", self.cw_pump_power_factor),
        ):
            if v != 1.0:
                parts.append(f"{name} ×{v:.3f}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlantParameters:
        d = dict(data)
        ch = d.pop("chiller", None)
        tv = d.pop("tower_validated", None)
        if tv is not None:
            d["tower_validated"] = (
                (float(tv[0][0]), float(tv[0][1])),
                (float(tv[1][0]), float(tv[1][1])),
            )
        if ch:
            ch = dict(ch)
            for k in ("chw_range_c", "cw_range_c"):
                if ch.get(k) is not None:
                    ch[k] = (float(ch[k][0]), float(ch[k][1]))
        return cls(chiller=ChillerCorrection(**ch) if ch else None, **d)


def power_check(ch: ChillerEIR, capacity_kw: float, cop: float, q: F, x: F, y: F) -> F:
    """Chiller power (kW) by the model's chiller (what calibration scores)."""
    return chm.chiller_performance(ch, q, x, y, capacity_kw=capacity_kw, cop=cop).power_kw
