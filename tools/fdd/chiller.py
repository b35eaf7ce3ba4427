"""Chiller fault detection and diagnosis: physics residuals against a fault-free reference.

The seven classic faults of ASHRAE RP-1043 (Comstock & Braun, 1999, *Development
of analysis tools for the evaluation of fault detection and diagnostics in
chillers*, final report RP-1043; Comstock, Braun & Groll, 2002, *A survey of
common faults for chillers*, ASHRAE Trans. 108(1)) are recognised from how
they move a handful of physical *features* away from what a fault-free
chiller shows at the same operating point:

=========================  ====  ==========================================================
feature                    unit  definition (RP-1043 column names)
=========================  ====  ==========================================================
``cond_approach``          K     refrigerant condensing temp − condenser water out (TRC − TCO)
``cond_dt``                K     condenser water ΔT (TCO − TCI)
``evap_approach``          K     evaporator water out − evaporating temp (TEO − TRE)
``evap_dt``                K     evaporator water ΔT (TEI − TEO)
``subcooling``             K     liquid subcooling (TRC_sub)
``liquid_excess``          K     subcooling − condenser approach = TCO − T_liquid
``superheat``              K     suction superheat (Tsh_suc)
``discharge``              °C    compressor discharge temperature (TR_dis)
``oil_temp``               °C    oil sump temperature (TO_sump)
``power``                  kW    compressor power (kW)
``cw_flow`` / ``chw_flow`` 1     condenser / evaporator water flow relative to the reference
=========================  ====  ==========================================================

The reference (:class:`ChillerReference`) is calibrated on fault-free data:
each feature is regressed on the three independent variables that set a
chiller's operating point — leaving chilled-water temperature TEO, entering
condenser water TCI and the evaporator load Q = ρ·c·FWE·(TEI − TEO) — with a
quadratic polynomial, on steady-state rows only (the usual practice of
Comstock & Braun and of Reddy, 2007, *Development and evaluation of a simple
model-based automated fault detection and diagnosis method suitable for
process faults of large chillers*, ASHRAE Trans. 113(2)). Residuals are
averaged over windows and divided by the spread of window residuals on the
fault-free data (with a physical floor), giving z-scores.

Diagnosis uses a sign table (:data:`SIGNATURES`) in the manner of the rule
tables of Comstock & Braun and of Zhao, Wang & Xiao (2013, *Diagnostic
Bayesian networks for diagnosing air handling units faults* — and the chiller
DBN of Zhao et al., Applied Energy 2013): every fault expects some features
to rise (+1), fall (−1) or stay put (0). A window's score for a fault is the
agreement of its z-scores with that pattern; a window is abnormal when the
best score passes a threshold *and* the fault's primary feature moved
clearly; an alarm needs the same fault class named in ``persistence`` of the
last ``persistence_of`` judged windows (3 of 5 by default — not consecutive
windows; noise and transients do not alarm).

The physics behind each signature (see also :mod:`tools.fdd.synthetic`, which
imposes them on fault-free data):

* reduced condenser water flow — the same heat rejected by less water: cw ΔT
  rises, the measured flow falls;
* reduced evaporator water flow — the same load in less water: chw ΔT rises,
  the measured flow falls; the condenser side is untouched. Like reduced condenser
  flow, it rests on the flow meter and the water ΔT only (by ε-NTU the evaporator
  approach moves +0.05 K at −10 % — the old table expected it to fall — while it
  moves 0.1–0.4 K between RP-1043 days whatever the fault: a sign on it only let
  another day's drift argue against the flow meter);
* condenser fouling — an added tube-side resistance: condensing temperature
  rises over the leaving water (approach ↑) in proportion to heat rejected;
  the liquid is not colder (liquid_excess ≤ 0), water flow and ΔT unchanged;
* non-condensable gas — partial pressure of the gas adds to the condenser
  pressure, so the saturation temperature read from it rises while the liquid
  stays where the water puts it: approach and subcooling rise *together*
  (liquid_excess ≈ 0), discharge temperature rises with the higher lift. The
  textbook test — condenser pressure above saturation at the measured condensing
  temperature — needs a condensing temperature measured apart from the pressure;
  RP-1043's TRC is T_sat(PRC) (within 0.05 K in all four files), so here the gas
  shows only through TRC itself;
* refrigerant overcharge — liquid backs up and floods condenser tubes:
  subcooling rises more than the approach (liquid_excess ↑);
* refrigerant leak (undercharge) — the evaporator is starved: evaporator
  approach and suction superheat rise, condenser side unchanged, subcooling
  does not rise;
* excess oil — oil in the evaporator coats the tubes and foams: evaporator
  approach rises while superheat does not (the flooded shell stays wet), more
  oil in the sump runs warmer, condenser side unchanged. These are small effects
  (the literature finds excess oil the least visible of the seven; oil pressures
  swing by 160 kPa between RP-1043 days): at RP-1043's lower levels the right
  answer is "not detected", and the persistence rule keeps it from another class.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors.errors import ConfigError

FAULT_CLASSES: tuple[str, ...] = (
    "condenser_fouling",
    "reduced_condenser_flow",
    "reduced_evaporator_flow",
    "refrigerant_leak",
    "refrigerant_overcharge",
    "excess_oil",
    "non_condensables",
)

#: RP-1043 file labels (the ``Y`` column) → fault class; ``None`` = fault-free.
RP1043_LABELS: dict[str, str | None] = {
    "normal": None,
    "cf": "condenser_fouling",
    "fwc": "reduced_condenser_flow",
    "fwe": "reduced_evaporator_flow",
    "rl": "refrigerant_leak",
    "ro": "refrigerant_overcharge",
    "eo": "excess_oil",
    "nc": "non_condensables",
}

SIGMA_FOLDS = 3  # folds (hour blocks, round-robin) the reference's spreads are estimated over
BLOCK_S = 3600.0

WATER_CP = 4.186  # kJ/(kg·K), water near 10 °C
WATER_RHO = 0.999  # kg/L

#: Physical input names (RP-1043 columns) the features use.
INPUTS: tuple[str, ...] = (
    "TEI", "TEO", "TCI", "TCO", "TRE", "TRC", "TRC_sub", "Tsh_suc", "TR_dis",
    "TO_sump", "kW", "FWC", "FWE",
)  # fmt: skip

#: Alternative names a frame may use for the inputs (a replayed store uses safe names).
ALIASES: dict[str, tuple[str, ...]] = {
    "TEI": ("chw_return_temp",),
    "TEO": ("chw_supply_temp",),
    "TCI": ("cw_entering_temp",),
    "TCO": ("cw_leaving_temp",),
    "kW": ("power",),
    "FWC": ("cw_flow",),
    "FWE": ("chw_flow",),
}


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    for c in (name, *ALIASES.get(name, ())):
        if c in df.columns:
            return pd.to_numeric(df[c], errors="coerce").astype(float)
    return pd.Series(np.nan, index=df.index, dtype=float)


def load_kw(df: pd.DataFrame) -> pd.Series:
    """Evaporator load Q = ρ·c·FWE·(TEI − TEO) in kW (FWE in L/s, temperatures in °C)."""
    return WATER_RHO * WATER_CP * _col(df, "FWE") * (_col(df, "TEI") - _col(df, "TEO"))


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    floor: float  # smallest spread (in unit) a z-score is divided by: sensor resolution
    fn: Callable[[pd.DataFrame], pd.Series]


FEATURES: tuple[Feature, ...] = (
    Feature("cond_approach", "K", 0.08, lambda d: _col(d, "TRC") - _col(d, "TCO")),
    Feature("cond_dt", "K", 0.05, lambda d: _col(d, "TCO") - _col(d, "TCI")),
    Feature("evap_approach", "K", 0.05, lambda d: _col(d, "TEO") - _col(d, "TRE")),
    Feature("evap_dt", "K", 0.05, lambda d: _col(d, "TEI") - _col(d, "TEO")),
    Feature("subcooling", "K", 0.08, lambda d: _col(d, "TRC_sub")),
    Feature(
        "liquid_excess",
        "K",
        0.05,
        lambda d: _col(d, "TRC_sub") - (_col(d, "TRC") - _col(d, "TCO")),
    ),
    Feature("superheat", "K", 0.05, lambda d: _col(d, "Tsh_suc")),
    Feature("discharge", "degC", 0.2, lambda d: _col(d, "TR_dis")),
    Feature("oil_temp", "degC", 0.2, lambda d: _col(d, "TO_sump")),
    Feature("power", "kW", 0.5, lambda d: _col(d, "kW")),
)
FLOW_FEATURES: dict[str, str] = {"cw_flow": "FWC", "chw_flow": "FWE"}
FLOW_FLOOR = 0.01  # relative: flow meters are good to about 1 %
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES) + tuple(FLOW_FEATURES)

#: fault → {feature: expected sign}; 0 = expected to stay at the reference.
SIGNATURES: dict[str, dict[str, int]] = {
    "reduced_condenser_flow": {"cond_dt": +1, "cw_flow": -1, "chw_flow": 0, "evap_dt": 0},
    "reduced_evaporator_flow": {"evap_dt": +1, "chw_flow": -1, "cw_flow": 0, "cond_dt": 0},
    "condenser_fouling": {
        "cond_approach": +1, "power": +1, "discharge": +1, "liquid_excess": -1,
        "cond_dt": 0, "cw_flow": 0,
    },
    "non_condensables": {
        "cond_approach": +1, "subcooling": +1, "discharge": +1, "power": +1,
        "liquid_excess": 0, "cw_flow": 0,
    },
    "refrigerant_overcharge": {
        "subcooling": +1, "liquid_excess": +1, "cond_approach": +1, "cw_flow": 0,
    },
    "refrigerant_leak": {
        "subcooling": -1, "liquid_excess": -1, "evap_approach": +1, "superheat": +1, "power": 0,
        "chw_flow": 0,
    },
    "excess_oil": {
        "evap_approach": +1, "oil_temp": +1, "superheat": 0, "cond_approach": 0, "chw_flow": 0,
    },
}  # fmt: skip

#: The feature that must move (|z| ≥ primary_z, in the expected direction) for a fault to be named.
PRIMARY: dict[str, tuple[str, ...]] = {
    "reduced_condenser_flow": ("cond_dt", "cw_flow"),
    "reduced_evaporator_flow": ("evap_dt", "chw_flow"),
    "condenser_fouling": ("cond_approach", "power", "discharge"),
    "non_condensables": ("cond_approach",),
    "refrigerant_overcharge": ("subcooling",),
    "refrigerant_leak": ("subcooling",),
    "excess_oil": ("evap_approach",),
}


def features(df: pd.DataFrame) -> pd.DataFrame:
    """All physical features of a wide frame (RP-1043 names, SI), one column each."""
    out = {f.name: f.fn(df) for f in FEATURES}
    return pd.DataFrame(out, index=df.index)


def steady_mask(df: pd.DataFrame, rows: int = 30, min_load_kw: float = 50.0) -> pd.Series:
    """Rows at steady state: running, loaded, TEO/TCI/Q steady over ``rows`` samples.

    Limits: rolling std of TEO and TCI < 0.2 K and of Q < 5 % of its mean
    (transients between test points break the quasi-static reference model).
    """
    q = load_kw(df)
    teo, tci, kw = _col(df, "TEO"), _col(df, "TCI"), _col(df, "kW")
    r = pd.DataFrame({"teo": teo, "tci": tci, "q": q}).rolling(
        rows, center=True, min_periods=rows // 2
    )
    sd = r.std()
    mean_q = q.rolling(rows, center=True, min_periods=rows // 2).mean()
    ok = (
        (q > min_load_kw)
        & (kw > 1.0)
        & (kw < 5000.0)  # cf12.xls has corrupt kW (~1e10): not an operating point
        & (sd["teo"] < 0.2)
        & (sd["tci"] < 0.2)
        & (sd["q"] < 0.05 * mean_q)
    )
    return ok.fillna(False).astype(bool)


#: smallest 5th–95th percentile spread of an operating variable the regression uses; below
#: it the variable is pinned at its median (TEO, TCI in K; Q as a share of its median)
MIN_SPAN: dict[str, float] = {"TEO": 0.3, "TCI": 0.3, "Q": 0.03}


def _pinned(teo: np.ndarray, tci: np.ndarray, q: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, v in (("TEO", teo), ("TCI", tci), ("Q", q)):
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        med = float(np.median(v))
        span = float(np.percentile(v, 95) - np.percentile(v, 5))
        if span < MIN_SPAN[name] * (abs(med) if name == "Q" else 1.0):
            out[name] = med
    return out


def _pin(
    teo: np.ndarray, tci: np.ndarray, q: np.ndarray, pinned: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def held(name: str, v: np.ndarray) -> np.ndarray:
        return np.full_like(v, pinned[name]) if name in pinned else v

    return held("TEO", teo), held("TCI", tci), held("Q", q)


def _design(teo: np.ndarray, tci: np.ndarray, q: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    a, b, c = teo / scale[0], tci / scale[1], q / scale[2]
    one = np.ones_like(a)
    return np.column_stack([one, a, b, c, a * a, b * b, c * c, a * b, a * c, b * c])


@dataclass
class ChillerReference:
    """Fault-free expectations of each feature as a function of (TEO, TCI, Q).

    ``coef[f]`` are polynomial coefficients, ``sigma[f]`` the spread of window
    means of the residual on the calibration data, ``flow_ref`` the fault-free
    median water flows (L/s), ``bounds`` the calibrated operating range.
    """

    coef: dict[str, list[float]]
    sigma: dict[str, float]
    flow_ref: dict[str, float]
    scale: list[float]
    bounds: dict[str, list[float]]
    window_rows: int
    n_rows: int
    source: str = ""
    sigma_method: str = "in_sample"
    #: operating variables that did not move in the calibration data (a plant holding its
    #: chilled-water setpoint): held at their median in the regression, which then says
    #: nothing about them — windows away from that value are not judged (``bounds``)
    pinned: dict[str, float] = field(default_factory=dict)

    # ---- calibration -----------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        *,
        window_rows: int = 60,
        source: str = "",
        sigma_folds: int = SIGMA_FOLDS,
    ) -> ChillerReference:
        """Calibrate on fault-free data (e.g. RP-1043 ``normal.xls`` via ``read_rp1043``).

        The spreads (``sigma``) are those of *out-of-fold* residuals: the rows are cut into
        hour blocks dealt round-robin into ``sigma_folds`` folds, each fold's residuals come
        from a polynomial fitted on the other folds. A fit's own residuals understate what
        it will meet on new data (normal.xls held out against a reference fitted on the
        rest of it raised false alarms), so the z-scores are divided by prediction errors,
        not by fit errors. With ``sigma_folds=0`` (or data too short for it) the in-sample
        spreads are kept; ``sigma_method`` says which.
        """
        ref = cls._fit(df, window_rows=window_rows, source=source)
        if sigma_folds >= 2:
            oof = _out_of_fold_sigma(df, ref, sigma_folds, window_rows)
            if oof is not None:
                ref.sigma.update(oof)
                ref.sigma_method = f"out_of_fold_{sigma_folds}"
        return ref

    @classmethod
    def _fit(cls, df: pd.DataFrame, *, window_rows: int, source: str) -> ChillerReference:
        mask = steady_mask(df).to_numpy()
        if mask.sum() < 100:
            raise ConfigError(
                f"{source or 'reference'}: only {int(mask.sum())} steady running rows; "
                "need ≥ 100 to calibrate a chiller reference"
            )
        teo, tci, q = _col(df, "TEO").to_numpy(), _col(df, "TCI").to_numpy(), load_kw(df).to_numpy()
        scale = [
            max(float(np.nanmedian(np.abs(teo[mask]))), 1.0),
            max(float(np.nanmedian(np.abs(tci[mask]))), 1.0),
            max(float(np.nanmedian(np.abs(q[mask]))), 1.0),
        ]
        pinned = _pinned(teo[mask], tci[mask], q[mask])
        x = _design(*_pin(teo, tci, q, pinned), scale)
        feats = features(df)
        coef: dict[str, list[float]] = {}
        sigma: dict[str, float] = {}
        for f in FEATURES:
            y = feats[f.name].to_numpy()
            m = mask & np.isfinite(y) & np.all(np.isfinite(x), axis=1)
            if m.sum() < 100:
                continue
            c, *_ = np.linalg.lstsq(x[m], y[m], rcond=None)
            coef[f.name] = [float(v) for v in c]
            r = pd.Series(np.where(m, y - x @ c, np.nan), index=df.index)
            wm = _window_means(r, m, window_rows)
            sigma[f.name] = max(float(np.nanstd(wm)), f.floor)
        flow_ref: dict[str, float] = {}
        for name, col in FLOW_FEATURES.items():
            v = _col(df, col).to_numpy()[mask]
            v = v[np.isfinite(v) & (v > 0)]
            if len(v) > 100:
                flow_ref[name] = float(np.median(v))
                rel = pd.Series(
                    np.where(mask, _col(df, col).to_numpy() / flow_ref[name] - 1, np.nan)
                )
                wm = _window_means(rel, mask, window_rows)
                sigma[name] = max(float(np.nanstd(wm)), FLOW_FLOOR)
        bounds = {
            "TEO": [float(np.nanmin(teo[mask])), float(np.nanmax(teo[mask]))],
            "TCI": [float(np.nanmin(tci[mask])), float(np.nanmax(tci[mask]))],
            "Q": [float(np.nanmin(q[mask])), float(np.nanmax(q[mask]))],
        }
        return cls(
            coef, sigma, flow_ref, scale, bounds, window_rows, int(mask.sum()), source,
            pinned=pinned,
        )  # fmt: skip

    # ---- persistence (the importer stores the reference beside the scenario) -----------
    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": self.coef, "sigma": self.sigma, "flow_ref": self.flow_ref, "scale": self.scale,
            "bounds": self.bounds, "window_rows": self.window_rows, "n_rows": self.n_rows,
            "source": self.source, "sigma_method": self.sigma_method, "pinned": self.pinned,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], origin: str = "<reference>") -> ChillerReference:
        try:
            return cls(
                coef={k: [float(x) for x in v] for k, v in d["coef"].items()},
                sigma={k: float(v) for k, v in d["sigma"].items()},
                flow_ref={k: float(v) for k, v in d["flow_ref"].items()},
                scale=[float(x) for x in d["scale"]],
                bounds={k: [float(x) for x in v] for k, v in d["bounds"].items()},
                window_rows=int(d["window_rows"]),
                n_rows=int(d["n_rows"]),
                source=str(d.get("source", "")),
                sigma_method=str(d.get("sigma_method", "in_sample")),
                pinned={k: float(v) for k, v in d.get("pinned", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{origin}: not a chiller reference: {err!r}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> ChillerReference:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{p}: cannot read chiller reference: {err}") from None
        return cls.from_dict(data, origin=p.name)

    def covers(self, op: pd.DataFrame, margin: float = 0.1) -> bool:
        """Whether the mean operating point of ``op`` (columns TEO, TCI, Q) lies inside the
        calibrated bounds widened by ``margin`` of each span (at least 0.5 K, 5 % of top load)."""
        for k, floor in (("TEO", 0.5), ("TCI", 0.5), ("Q", 0.05 * self.bounds["Q"][1])):
            lo, hi = self.bounds[k]
            v = float(op[k].mean()) if len(op) else math.nan
            pad = max(margin * (hi - lo), floor)
            if not (lo - pad <= v <= hi + pad):
                return False
        return True

    # ---- residuals ---------------------------------------------------------------------
    def residuals(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per-row residual (measured − expected) of every feature, in the feature's unit."""
        teo, tci, q = _col(df, "TEO").to_numpy(), _col(df, "TCI").to_numpy(), load_kw(df).to_numpy()
        x = _design(*_pin(teo, tci, q, self.pinned), self.scale)
        feats = features(df)
        out: dict[str, np.ndarray] = {}
        for name, c in self.coef.items():
            out[name] = feats[name].to_numpy() - x @ np.asarray(c)
        for name, col in FLOW_FEATURES.items():
            if name in self.flow_ref:
                out[name] = _col(df, col).to_numpy() / self.flow_ref[name] - 1.0
        return pd.DataFrame(out, index=df.index)


def hour_blocks(index: pd.DatetimeIndex, block_s: float = BLOCK_S) -> np.ndarray:
    """Block number of every row: whole ``block_s`` periods since the first row."""
    if len(index) == 0:
        return np.zeros(0, dtype=int)
    t = np.asarray((index - index[0]).total_seconds(), dtype=float)
    return (t // block_s).astype(int)


def _out_of_fold_sigma(
    df: pd.DataFrame, ref: ChillerReference, k: int, window_rows: int
) -> dict[str, float] | None:
    """Spread of window-mean residuals predicted by references fitted without each fold
    (hour blocks round-robin into ``k`` folds); None when a fold cannot be fitted."""
    folds = hour_blocks(pd.DatetimeIndex(df.index)) % k
    if len(np.unique(folds)) < k:
        return None
    mask = steady_mask(df).to_numpy()
    oof = pd.DataFrame(np.nan, index=df.index, columns=[*ref.coef, *ref.flow_ref])
    for j in range(k):
        hold = folds == j
        train = df.copy()
        train.loc[hold, :] = np.nan
        try:
            r = ChillerReference._fit(train, window_rows=window_rows, source="")
        except ConfigError:
            return None
        res = r.residuals(df)
        for c in oof.columns:
            if c in res:
                oof.loc[hold, c] = res.loc[hold, c]
    out: dict[str, float] = {}
    floors = {f.name: f.floor for f in FEATURES} | dict.fromkeys(FLOW_FEATURES, FLOW_FLOOR)
    for c in oof.columns:
        v = oof[c]
        wm = _window_means(v, mask & np.isfinite(v.to_numpy()), window_rows)
        if len(wm) >= 2:
            out[c] = max(float(np.nanstd(wm)), ref.sigma.get(c, 0.0), floors[c])
    return out


def _window_means(r: pd.Series, mask: np.ndarray, rows: int) -> np.ndarray:
    """Means of ``r`` over consecutive blocks of ``rows`` rows that are ≥ 50 % steady."""
    v = r.to_numpy()
    n = len(v) // rows
    out = []
    for i in range(n):
        seg = slice(i * rows, (i + 1) * rows)
        m = mask[seg] & np.isfinite(v[seg])
        if m.sum() >= rows // 2:
            out.append(float(v[seg][m].mean()))
    return np.asarray(out)


@dataclass(frozen=True)
class ChillerFddConfig:
    """Detection settings: the shipped configuration, frozen before any scoring.

    Defaults: 10-minute windows of 10-s data; an alarm when one class is named in 3 of
    the last 5 judged windows. The out-of-sample evaluation (``facility-agent bench
    fdd``) scores exactly these values and shows a grid around them; it never picks them.
    """

    window_rows: int = 60
    sample_s: float = 10.0  # the period of a row (RP-1043's); the live agent resamples to it
    min_steady_fraction: float = 0.5
    score_threshold: float = 1.5  # mean signed agreement, in z units
    primary_z: float = 3.0  # the fault's primary feature must move this many sigmas
    primary_abs: Mapping[str, float] = field(
        default_factory=lambda: {
            "cond_approach": 0.15, "cond_dt": 0.15, "evap_approach": 0.1, "evap_dt": 0.15,
            "subcooling": 0.2, "superheat": 0.15, "power": 1.0, "discharge": 0.5,
            "cw_flow": 0.05, "chw_flow": 0.05,
        }
    )  # fmt: skip
    z_clip: float = 6.0
    still_tolerance: float = 1.5  # |z| a "should stay put" feature may wander without penalty
    persistence: int = 3  # windows of the same class …
    persistence_of: int = 5  # … among the last this many evaluated windows
    # a window is judged only at an operating point the reference was fitted on: its mean
    # TEO / TCI / load inside the reference's bounds widened by this share of their span
    # (and at least 0.5 K, 5 % of the top load) — a regression knows nothing beyond them
    bounds_margin: float = 0.1


def score_faults(z: Mapping[str, float], cfg: ChillerFddConfig | None = None) -> dict[str, float]:
    """Agreement of z-scores with each fault's signature (higher = more like that fault).

    score = mean over the features the fault moves of s · clip(z) (s = ±1), minus
    the mean over the features it should leave alone of max(0, |clip(z)| − tolerance).
    A feature that is not measured (nan) is left out.
    """
    cfg = cfg or ChillerFddConfig()
    out: dict[str, float] = {}
    for fault, sig in SIGNATURES.items():
        moved: list[float] = []
        still: list[float] = []
        for feat, s in sig.items():
            v = z.get(feat, math.nan)
            if not math.isfinite(v):
                continue
            v = max(-cfg.z_clip, min(cfg.z_clip, v))
            if s != 0:
                moved.append(s * v)
            else:
                still.append(max(0.0, abs(v) - cfg.still_tolerance))
        if not moved:
            out[fault] = math.nan
            continue
        out[fault] = float(np.mean(moved)) - (float(np.mean(still)) if still else 0.0)
    return out


def _primary_ok(
    fault: str, z: Mapping[str, float], r: Mapping[str, float], cfg: ChillerFddConfig
) -> bool:
    for feat in PRIMARY[fault]:
        s = SIGNATURES[fault][feat]
        zv, rv = z.get(feat, math.nan), r.get(feat, math.nan)
        if not (math.isfinite(zv) and math.isfinite(rv)):
            continue
        if s * zv >= cfg.primary_z and s * rv >= cfg.primary_abs.get(feat, 0.0):
            return True
    return False


def classify(
    z: Mapping[str, float], r: Mapping[str, float], cfg: ChillerFddConfig | None = None
) -> tuple[str | None, float, dict[str, float]]:
    """One window: (fault class or None, its score, all scores)."""
    cfg = cfg or ChillerFddConfig()
    scores = score_faults(z, cfg)
    best, best_s = None, -math.inf
    for fault, s in scores.items():
        if math.isfinite(s) and s > best_s and _primary_ok(fault, z, r, cfg):
            best, best_s = fault, s
    if best is None or best_s < cfg.score_threshold:
        return None, best_s if math.isfinite(best_s) else math.nan, scores
    return best, best_s, scores


def _persistent(recent: Sequence[str | None], k: int) -> str | None:
    """The class named in at least ``k`` of the recent windows (the most named one), else None."""
    counts: dict[str, int] = {}
    for f in recent:
        if f is not None:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return None
    best = max(counts, key=lambda f: counts[f])
    return best if counts[best] >= k else None


def diagnose(
    df: pd.DataFrame, ref: ChillerReference, cfg: ChillerFddConfig | None = None
) -> pd.DataFrame:
    """Window-by-window diagnosis of a wide frame (DatetimeIndex, RP-1043 names, SI).

    Returns one row per window: ``start``, ``end``, ``steady`` (fraction),
    ``z_<feature>``, ``score_<fault>``, ``fault`` (the window's class or None),
    ``alarm`` (the class once it is named in ``persistence`` of the last ``persistence_of``
    judged windows, else None).
    """
    cfg = cfg or ChillerFddConfig()
    res = ref.residuals(df)
    mask = steady_mask(df).to_numpy()
    op = pd.DataFrame({"TEO": _col(df, "TEO"), "TCI": _col(df, "TCI"), "Q": load_kw(df)})
    rows = cfg.window_rows
    n = len(df) // rows
    records: list[dict[str, Any]] = []
    recent: list[str | None] = []
    alarm: str | None = None
    for i in range(n):
        seg = slice(i * rows, (i + 1) * rows)
        m = mask[seg]
        frac = float(m.mean())
        rec: dict[str, Any] = {
            "start": df.index[seg.start],
            "end": df.index[seg.stop - 1],
            "steady": frac,
        }
        fault: str | None = None
        inside = frac >= cfg.min_steady_fraction and ref.covers(op.iloc[seg][m], cfg.bounds_margin)
        rec["in_range"] = inside
        if inside:
            block = res.iloc[seg][m]
            rmean = {c: float(block[c].mean()) for c in block.columns}
            z = {c: rmean[c] / ref.sigma[c] for c in rmean if c in ref.sigma}
            fault, _best, scores = classify(z, rmean, cfg)
            rec.update({f"z_{k}": v for k, v in z.items()})
            rec.update({f"score_{k}": v for k, v in scores.items()})
            recent = [*recent, fault][-cfg.persistence_of :]
            alarm = _persistent(recent, cfg.persistence)
        # a window without steady data neither confirms nor clears an alarm
        rec["fault"] = fault
        rec["alarm"] = alarm
        records.append(rec)
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class Detection:
    fault_class: str
    first_detected: pd.Timestamp
    first_detected_s: float
    alarm_windows: int


def detect(
    df: pd.DataFrame, ref: ChillerReference, cfg: ChillerFddConfig | None = None
) -> list[Detection]:
    """Persistent alarms per fault class, first time each was raised (seconds from the start)."""
    diag = diagnose(df, ref, cfg)
    if diag.empty:
        return []
    return detections(diag, pd.Timestamp(df.index[0]))


def detections(diag: pd.DataFrame, t0: pd.Timestamp) -> list[Detection]:
    """The persistent alarms of a diagnosis (:func:`diagnose`), first time each was raised."""
    out: list[Detection] = []
    if diag.empty or "alarm" not in diag:
        return out
    for fault, grp in diag[diag["alarm"].notna()].groupby("alarm", sort=False):
        first = grp["end"].iloc[0]
        out.append(Detection(str(fault), first, float((first - t0).total_seconds()), len(grp)))
    return sorted(out, key=lambda d: d.first_detected)


def dominant(detections: Sequence[Detection]) -> str | None:
    """The fault class alarmed in most windows (the file-level diagnosis)."""
    if not detections:
        return None
    return max(detections, key=lambda d: d.alarm_windows).fault_class


def fault_class_for_label(label: str) -> str | None:
    """RP-1043 ``Y`` label or file stem (``"CF"``, ``"cf12"``, ``"Normal"``) → fault class.

    Raises :class:`ConfigError` for a label that names none of the seven faults.
    """
    m = re.match(r"[a-z]+", label.strip().lower())  # "EO14", "nc3", "Normal R", "fwe20_b"
    key = m.group(0) if m else ""
    if key in RP1043_LABELS:
        return RP1043_LABELS[key]
    raise ConfigError(f"RP-1043 label {label!r} names no known fault ({sorted(RP1043_LABELS)})")
