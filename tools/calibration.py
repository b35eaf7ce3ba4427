"""The agent learns its plant model from the site's history: rolling least-squares calibration.

:func:`calibrate` reads a window of the site's readings from its DuckDB store, averages
them into bins (5 min), keeps the bins where the plant runs steadily, fits the corrections
of :class:`perfmodel.plantcal.PlantParameters` on the window's first 75 % and scores them
on the last 25 % (held out) against the catalogue model by ASHRAE Guideline 14's
CV(RMSE) and NMBE (:mod:`perfmodel.calibrate`):

* chiller kW (each running chiller's bins stacked) — EIR curve corrections;
* tower approach (K) — the tower's air-flow factor;
* CHW / CW pump flow (L/s) and power (kW) — flow and power factors.

A part is adopted only when its held-out CV(RMSE) beats the catalogue's; the others keep
the catalogue's value. A window is **refused** — nothing is adopted, the parameters in use
stay — when it has too little data (fewer than :data:`MIN_BINS` steady bins to fit and
to score), too little range (chiller part-load ratio spread under :data:`MIN_PLR_SPAN`
and condenser water spread under :data:`MIN_CW_SPAN_K`), or poor data quality (more than
:data:`MAX_BAD_SHARE` of a needed point's readings with a bad status, or missing points).

Every outcome, adopted or not, is a row of the site's table ``model_calibrations``
(:func:`save`); :func:`in_use` reads the newest adopted row — what ``whatif`` and the
agent's what-if run on (:class:`ModelState`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from connectors.site import EquipmentKind, Site
from connectors.store import Store
from perfmodel.calibrate import Metrics, metrics
from perfmodel.plant import solve_state
from perfmodel.plantcal import (
    PlantParameters,
    corrected,
    fit_chiller_correction,
    fit_tower_air,
    power_check,
    pump_power,
    ratio,
    tower_approach,
)
from perfmodel.state import PlantState
from tools.whatif import state_from_values

__all__ = [
    "CATALOGUE_IN_USE",
    "MAX_BAD_SHARE",
    "MIN_BINS",
    "MIN_CW_SPAN_K",
    "MIN_PLR_SPAN",
    "Calibration",
    "InUse",
    "ModelState",
    "calibrate",
    "in_use",
    "save",
]

BIN = timedelta(minutes=5)
HOLDOUT = 0.25
MIN_BINS = 12  # per part (fit and held out together): one hour of 5-minute bins
MIN_PLR_SPAN = 0.08
MIN_CW_SPAN_K = 1.0
MAX_BAD_SHARE = 0.10
RHO_CP = 4.186 * 0.998  # kJ/(L·K), chilled water

CAL_DDL = """
CREATE TABLE IF NOT EXISTS model_calibrations (
    fitted_at TIMESTAMP NOT NULL,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    adopted BOOLEAN NOT NULL,
    params JSON NOT NULL,
    metrics JSON NOT NULL,
    reason VARCHAR,
    source VARCHAR
);
"""


@dataclass(frozen=True)
class PartScore:
    """One calibrated part on held-out data: the fit's and the catalogue's G14 metrics."""

    name: str
    fitted: Metrics
    catalogue: Metrics
    adopted: bool

    def line(self) -> str:
        f, c = self.fitted, self.catalogue
        verdict = "adopted" if self.adopted else "not adopted (no better than the catalogue)"
        return (
            f"{self.name}: CV(RMSE) {f.cv_rmse_pct:.2f} % NMBE {f.nmbe_pct:+.2f} % "
            f"(catalogue {c.cv_rmse_pct:.2f} % / {c.nmbe_pct:+.2f} %), {f.points} held-out bins — "
            f"{verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        def m(x: Metrics) -> dict[str, float]:
            return {
                "cv_rmse_pct": round(x.cv_rmse_pct, 3),
                "nmbe_pct": round(x.nmbe_pct, 3),
                "points": x.points,
            }

        return {"fitted": m(self.fitted), "catalogue": m(self.catalogue), "adopted": self.adopted}


@dataclass(frozen=True)
class Calibration:
    """The outcome of one refit: adopted or refused (with why), and the held-out scores."""

    window_start: datetime
    window_end: datetime
    params: PlantParameters
    parts: list[PartScore] = field(default_factory=list)
    refused: str = ""

    @property
    def adopted(self) -> bool:
        return not self.refused and any(p.adopted for p in self.parts)

    def summary(self) -> str:
        head = f"window {self.window_start:%Y-%m-%d %H:%M} – {self.window_end:%H:%M} UTC"
        if self.refused:
            return f"{head}: refused — {self.refused}; the parameters in use stay"
        lines = [head, *("  " + p.line() for p in self.parts)]
        lines.append(
            f"  → {'adopted: ' + self.params.describe() if self.adopted else 'nothing adopted'}"
        )
        return "\n".join(lines)


# ---- history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tags:
    chillers: list[str]
    tower: str | None
    weather: str | None
    chw_pump: str | None
    cw_pump: str | None

    def needed(self, site: Site) -> list[str]:
        out = []
        for ch in self.chillers:
            out += [
                f"{ch}.{p}"
                for p in ("chw_supply_temp", "chw_return_temp", "chw_flow", "cw_entering_temp")
            ]
            out += [f"{ch}.power"]
        if self.tower:
            out += [f"{self.tower}.{p}" for p in ("cw_supply_temp", "cw_return_temp", "fan_speed")]
        if self.weather:
            out.append(f"{self.weather}.wet_bulb")
        for pump in (self.chw_pump, self.cw_pump):
            if pump:
                out += [f"{pump}.{p}" for p in ("speed", "flow", "power")]
        return [t for t in out if t in site.points_by_tag]


def _tags(site: Site) -> _Tags:
    def first(kind: EquipmentKind, prefix: str = "") -> str | None:
        return next(
            (e.id for e in site.equipment if e.kind is kind and e.id.startswith(prefix)), None
        )

    return _Tags(
        chillers=[e.id for e in site.equipment if e.kind is EquipmentKind.CHILLER],
        tower=first(EquipmentKind.COOLING_TOWER),
        weather=first(EquipmentKind.WEATHER),
        chw_pump=first(EquipmentKind.PUMP, "chw"),
        cw_pump=first(EquipmentKind.PUMP, "cw"),
    )


def _bad_shares(store: Store, tags: list[str], start: datetime, end: datetime) -> dict[str, float]:
    df = store.query(
        """SELECT p.tag, count(*) AS n, count(*) FILTER (WHERE r.status <> 0) AS bad
           FROM readings r JOIN points p USING (point_id)
           WHERE p.tag IN (SELECT unnest(?::VARCHAR[])) AND r.ts >= ? AND r.ts < ?
           GROUP BY p.tag""",
        [tags, start, end],
    )
    return {
        str(t): float(b) / float(n) if n else 1.0
        for t, n, b in zip(df["tag"], df["n"], df["bad"], strict=True)
    }


def _wide(store: Store, tags: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    b = store.buckets(tags, start, end, BIN)
    if b.empty:
        return pd.DataFrame()
    w = b.pivot_table(index="bucket", columns="tag", values="vmean")
    return w.sort_index()


# ---- the fit ------------------------------------------------------------------------------


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_fit = round(len(df) * (1.0 - HOLDOUT))
    return df.iloc[:n_fit], df.iloc[n_fit:]


def _chiller_samples(w: pd.DataFrame, t: _Tags) -> pd.DataFrame:
    rows = []
    for ch in t.chillers:
        cols = {
            "x": f"{ch}.chw_supply_temp",
            "ret": f"{ch}.chw_return_temp",
            "flow": f"{ch}.chw_flow",
            "y": f"{ch}.cw_entering_temp",
            "p": f"{ch}.power",
        }
        if not all(c in w for c in cols.values()):
            continue
        d = pd.DataFrame({k: w[c] for k, c in cols.items()}).dropna()
        d["q"] = d["flow"] * RHO_CP * (d["ret"] - d["x"])
        rows.append(d[(d["p"] > 5.0) & (d["q"] > 20.0) & (d["flow"] > 1.0)])
    return pd.concat(rows).sort_index() if rows else pd.DataFrame()


def _score(name: str, y: Any, fitted: Any, catalogue: Any) -> PartScore:
    mf, mc = metrics(y, fitted), metrics(y, catalogue)
    return PartScore(name, mf, mc, adopted=mf.cv_rmse_pct < mc.cv_rmse_pct)


def calibrate(
    store: Store, site: Site, end: datetime, window: timedelta = timedelta(hours=6)
) -> Calibration:
    """Fit on ``[end − window, end)`` of ``store``; see the module docstring."""
    start = end - window
    t = _tags(site)
    need = t.needed(site)
    base = state_from_values(site, {})  # nameplates and the catalogue curves

    def refuse(why: str) -> Calibration:
        return Calibration(start, end, PlantParameters(), refused=why)

    if not t.chillers:
        return refuse("the site has no chiller to calibrate")
    bad = _bad_shares(store, need, start, end)
    missing = [tag for tag in need if tag not in bad]
    if len(missing) == len(need):
        return refuse(f"too little data: no readings between {start:%H:%M} and {end:%H:%M}")
    if missing:
        return refuse(f"poor data quality: no readings of {', '.join(missing[:3])}")
    worst = max(bad, key=lambda k: bad[k])
    if bad[worst] > MAX_BAD_SHARE:
        return refuse(
            f"poor data quality: {100 * bad[worst]:.0f} % of {worst} readings bad "
            f"(at most {100 * MAX_BAD_SHARE:.0f} %)"
        )
    w = _wide(store, need, start, end)
    chs = _chiller_samples(w, t) if not w.empty else pd.DataFrame()
    if len(chs) < MIN_BINS:
        return refuse(
            f"too little data: {len(chs)} steady chiller bins of {BIN.seconds // 60} min "
            f"(need {MIN_BINS})"
        )
    cap, cop = base.chiller_capacity_kw, base.chiller_cop
    plr = chs["q"] / cap
    plr_span, cw_span = float(plr.max() - plr.min()), float(chs["y"].max() - chs["y"].min())
    if plr_span < MIN_PLR_SPAN and cw_span < MIN_CW_SPAN_K:
        return refuse(
            f"too little range: part-load ratio {plr.min():.2f}–{plr.max():.2f} "
            f"and condenser water {chs['y'].min():.1f}–{chs['y'].max():.1f} °C "
            f"(need a spread of {MIN_PLR_SPAN} or {MIN_CW_SPAN_K} K)"
        )
    parts: list[PartScore] = []
    fit, held = _split(chs)
    corr = fit_chiller_correction(base.chiller, cap, cop, fit["q"], fit["x"], fit["y"], fit["p"])
    args = (cap, cop, held["q"].to_numpy(), held["x"].to_numpy(), held["y"].to_numpy())
    ch_score = _score(
        "chiller kW",
        held["p"],
        power_check(corrected(base.chiller, corr), *args),
        power_check(base.chiller, *args),
    )
    parts.append(ch_score)
    if ch_score.adopted and ch_score.fitted.meets_guideline14_hourly():
        # scored within Guideline 14 on held-out data: the corrected curves are known to
        # hold over the temperatures the window spans, catalogue range or not
        corr = corr.validated_on(
            (float(chs["x"].min()), float(chs["x"].max())),
            (float(chs["y"].min()), float(chs["y"].max())),
        )
    upd: dict[str, Any] = {"chiller": corr if ch_score.adopted else None}
    if (tw := _tower_part(w, t, base)) is not None:
        score, k, spans = tw
        parts.append(score)
        upd["tower_air_flow_factor"] = k if score.adopted else 1.0
        if score.adopted and score.fitted.meets_guideline14_hourly():
            upd["tower_validated"] = spans  # held out within G14: valid where the data are
    for loop, pump in (("chw", t.chw_pump), ("cw", t.cw_pump)):
        for part in _pump_parts(w, loop, pump, base):
            score, key, k = part
            parts.append(score)
            upd[key] = k if score.adopted else 1.0
    return Calibration(start, end, PlantParameters(**upd), parts)


TowerSpans = tuple[tuple[float, float], tuple[float, float]]


def _tower_part(
    w: pd.DataFrame, t: _Tags, base: PlantState
) -> tuple[PartScore, float, TowerSpans] | None:
    if not (t.tower and t.weather and t.cw_pump):
        return None
    cols = [
        f"{t.tower}.cw_supply_temp",
        f"{t.tower}.cw_return_temp",
        f"{t.tower}.fan_speed",
        f"{t.weather}.wet_bulb",
        f"{t.cw_pump}.flow",
    ]
    if not all(c in w for c in cols):
        return None
    d = w[cols].dropna()
    d.columns = pd.Index(["sup", "ret", "fan", "wb", "flow"])
    d = d[(d["flow"] > 5.0) & (d["ret"] - d["sup"] > 1.0)]
    if len(d) < MIN_BINS:
        return None
    ref_flow = base.cw_pump_design_flow_ls / float(solve_state(base).tower.tower_fr_water[0])
    fit, held = _split(d)

    def cols_of(f: pd.DataFrame) -> tuple[Any, Any, Any, Any]:
        return f["wb"], f["ret"] - f["sup"], f["flow"] / ref_flow, f["fan"] / 100.0

    k = fit_tower_air(*cols_of(fit), fit["sup"] - fit["wb"])
    ap = held["sup"] - held["wb"]
    score = _score(
        "tower approach",
        ap,
        tower_approach(*cols_of(held), k),
        tower_approach(*cols_of(held), 1.0),
    )
    approach = d["sup"] - d["wb"]
    spans = (
        (float(d["wb"].min()), float(d["wb"].max())),
        (float(approach.min()), float(approach.max())),
    )
    return score, k, spans


def _pump_parts(
    w: pd.DataFrame, loop: str, pump: str | None, base: PlantState
) -> list[tuple[PartScore, str, float]]:
    if pump is None or not all(f"{pump}.{p}" in w for p in ("speed", "flow", "power")):
        return []
    d = w[[f"{pump}.speed", f"{pump}.flow", f"{pump}.power"]].dropna()
    d.columns = pd.Index(["speed", "flow", "power"])
    d = d[d["speed"] > 20.0]
    if len(d) < MIN_BINS:
        return []
    design = float(getattr(base, f"{loop}_pump_design_flow_ls"))
    rated = float(getattr(base, f"{loop}_pump_rated_kw"))
    fit, held = _split(d)
    q_cat = design * held["speed"] / 100.0
    k_q = ratio(fit["flow"], design * fit["speed"] / 100.0)
    p_cat = pump_power(rated, held["speed"] / 100.0)
    k_p = ratio(fit["power"], pump_power(rated, fit["speed"] / 100.0))
    name = loop.upper()
    return [
        (
            _score(f"{name} pump flow", held["flow"], k_q * q_cat, q_cat),
            f"{loop}_pump_flow_factor",
            k_q,
        ),
        (
            _score(f"{name} pump kW", held["power"], k_p * p_cat, p_cat),
            f"{loop}_pump_power_factor",
            k_p,
        ),
    ]


# ---- persistence --------------------------------------------------------------------------


def save(store: Store, cal: Calibration, fitted_at: datetime, source: str = "calibrate") -> None:
    """Record ``cal`` (adopted or not) in the site's ``model_calibrations`` table."""
    store.ensure_schema(CAL_DDL)
    store.execute(
        "INSERT INTO model_calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            fitted_at,
            cal.window_start,
            cal.window_end,
            cal.adopted,
            json.dumps(cal.params.to_dict()),
            json.dumps({p.name: p.to_dict() for p in cal.parts}),
            cal.refused or None,
            source,
        ],
    )


@dataclass(frozen=True)
class InUse:
    """The parameters the model runs on, and where they come from."""

    params: PlantParameters
    fitted_at: datetime | None = None
    window: tuple[datetime, datetime] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def header(self) -> str:
        """One line naming the parameters (what ``whatif`` prints in its header)."""
        if self.fitted_at is None or self.params.is_catalogue():
            return "model: catalogue (Carrier 19XR curves, nameplates; no calibration in the store)"
        assert self.window is not None
        return (
            f"model: calibrated {self.fitted_at:%Y-%m-%d %H:%M} UTC on "
            f"{self.window[0]:%m-%d %H:%M}–{self.window[1]:%m-%d %H:%M}: {self.params.describe()}"
        )


CATALOGUE_IN_USE = InUse(PlantParameters())


def in_use(store: Store) -> InUse:
    """The newest adopted calibration of the site (the catalogue when there is none)."""
    exists = store.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'model_calibrations'"
    )
    if not int(exists["n"].iloc[0]):
        return CATALOGUE_IN_USE
    df = store.query(
        """SELECT fitted_at, window_start, window_end, params, metrics FROM model_calibrations
           WHERE adopted ORDER BY fitted_at DESC, rowid DESC LIMIT 1"""
    )
    if df.empty:
        return CATALOGUE_IN_USE
    r = df.iloc[0]
    return InUse(
        PlantParameters.from_dict(json.loads(r["params"])),
        pd.Timestamp(r["fitted_at"]).to_pydatetime(),
        (
            pd.Timestamp(r["window_start"]).to_pydatetime(),
            pd.Timestamp(r["window_end"]).to_pydatetime(),
        ),
        json.loads(r["metrics"]),
    )


@dataclass
class ModelState:
    """What the agent's what-if runs on, kept current by :meth:`refit` (rolling calibration).

    ``interval``: how often a refit is tried; ``window``: how much history each one reads.
    A refused or not-adopted refit leaves :attr:`current` as it is.
    """

    current: InUse = CATALOGUE_IN_USE
    enabled: bool = True
    window: timedelta = timedelta(hours=6)
    interval: timedelta = timedelta(hours=1)
    last_try: datetime | None = None
    history: list[Calibration] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store) -> ModelState:
        return cls(current=in_use(store))

    @property
    def params(self) -> PlantParameters:
        return self.current.params

    def due(self, now: datetime) -> bool:
        return self.last_try is None or now - self.last_try >= self.interval

    def refit(
        self, store: Store, site: Site, now: datetime, source: str = "rolling"
    ) -> Calibration:
        """Refit on the last :attr:`window`, record it, and adopt it when it is adopted."""
        self.last_try = now
        cal = calibrate(store, site, now, self.window)
        save(store, cal, now, source)
        self.history.append(cal)
        if cal.adopted:
            self.current = InUse(
                cal.params,
                now,
                (cal.window_start, cal.window_end),
                {p.name: p.to_dict() for p in cal.parts},
            )
        return cal
