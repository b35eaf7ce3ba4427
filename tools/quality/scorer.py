"""``score()``: the data-quality score of every point of a site over a window.

Pipeline: the site's points become a small parameter table (limits, poll
interval, which checks apply — :mod:`tools.quality.config`); two DuckDB queries
compute per-point window statistics (:mod:`tools.quality.checks`); one more
evaluates the cross-sensor physics rules (:mod:`tools.quality.physics`); pure
vectorised functions turn statistics into sub-scores and reasons
(:mod:`tools.quality.subscores`); the point score is the minimum of its
sub-scores and roll-ups take the weakest link (:mod:`tools.quality.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.site import Site
from connectors.store import Store
from tools.quality.checks import point_stats
from tools.quality.config import DEFAULT_CONFIG, QualityConfig, point_table
from tools.quality.physics import DEFAULT_RULES, PhysicsRule, physics_scores
from tools.quality.report import COLUMNS, SUBSCORES, QualityReport
from tools.quality.subscores import subscores


def score(
    store: Store,
    site: Site,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    tags: Sequence[str] | None = None,
    *,
    config: QualityConfig = DEFAULT_CONFIG,
    rules: tuple[PhysicsRule, ...] = DEFAULT_RULES,
) -> QualityReport:
    """Score ``tags`` (default: every point of ``site``) over ``[now - window, now]``.

    Physics rules are evaluated on the whole site (a rule needs its partners) but
    only the requested tags are returned. Raises KeyError for a tag not in the site.
    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, not {window}")
    start = now - window
    catalogue = store.tags
    pts = point_table(site, catalogue)
    stats, buckets = point_stats(
        store, start, now, config, pts[pts["point_id"] >= 0], exact_all=not config.screen
    )
    st = pts.merge(stats, on="point_id", how="left")
    st["at_setpoint"] = _at_setpoint(st)
    sub = subscores(st, now, window, config)
    df = pd.concat([st[["tag", "equipment"]], sub], axis=1)

    phys = physics_scores(store, site, pts, buckets, start, now, config, rules)
    df = df.merge(phys, on="tag", how="left")
    df["physics"] = df["physics"].fillna(1.0)
    reason = df["physics_reason"].astype(object)
    df["physics_reason"] = reason.where(reason.notna(), "")

    if tags is not None:
        wanted = list(dict.fromkeys(tags))
        unknown = [t for t in wanted if t not in site.points_by_tag]
        if unknown:
            raise KeyError(f"unknown point(s) {unknown[:5]} in site {site.name}")
        df = df.set_index("tag", drop=False).loc[wanted].reset_index(drop=True)

    scores = df[list(SUBSCORES)].to_numpy(float)
    df["score"] = np.clip(np.nanmin(scores, axis=1), 0.0, 1.0)
    df["reasons"], df["worst_reason"] = _reasons(df)
    return QualityReport(now, window, df[list(COLUMNS)].copy(), site.quality)


def _reasons(df: pd.DataFrame) -> tuple[list[list[str]], list[str]]:
    """Reasons of sub-scores below 1, worst first (ties: order of SUBSCORES)."""
    vals = df[list(SUBSCORES)].to_numpy(float)
    texts = df[[f"{c}_reason" for c in SUBSCORES]].to_numpy(object)
    all_reasons: list[list[str]] = [[] for _ in range(len(df))]
    worst = [""] * len(df)
    for i in np.flatnonzero((vals < 1.0).any(axis=1)):  # only points that lost score
        order = np.argsort(vals[i], kind="stable")
        rs = [str(texts[i, j]) for j in order if vals[i, j] < 1.0 and texts[i, j]]
        all_reasons[i] = rs
        worst[i] = rs[0] if rs else ""
    return all_reasons, worst


def _at_setpoint(st: pd.DataFrame) -> np.ndarray:
    """A controlled variable sitting on its setpoint (same equipment and unit) is not stuck."""
    sp_mask = st["writable"].to_numpy(bool) | st["brick"].str.contains("Setpoint").to_numpy(bool)
    sp = st.loc[sp_mask, ["equipment", "unit", "last_value"]].dropna()
    out = np.zeros(len(st), bool)
    if sp.empty:
        return out
    cand = st.reset_index().merge(sp, on=["equipment", "unit"], suffixes=("", "_sp"))
    tol = np.maximum(0.002 * cand["span"].fillna(1.0).to_numpy(float), 1e-6)
    hit = (np.abs(cand["last_value"] - cand["last_value_sp"]).to_numpy(float) <= tol) & ~cand[
        "writable"
    ].to_numpy(bool)
    out[cand.loc[hit, "index"].to_numpy(int)] = True
    return out
