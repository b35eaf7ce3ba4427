"""Per-point statistics of a window, computed in DuckDB over ``readings`` (screen, then confirm).

Vectorised inside DuckDB, never row by row in Python. Each reading is first
classified (``cls``):

====  =====================================================================
 0    good: status ok, finite, not a sentinel, not denormal, inside min/max
 1    bad status (timeout, connection lost, decode error, Modbus exception)
 2    NaN / NULL value with status ok
 3    ±infinity
 4    sentinel: float32 max (≈3.4e38) or a raw marker (65535, −32768, …) that
      the point's declared range does not include
 5    denormal (0 < |v| < 1e-30, e.g. 1.68e-45)
 6    below the point's physical min
 7    above the point's physical max
====  =====================================================================

**Scan** (:data:`SCAN_SQL`): one pass over every reading of the window, no
sort of the raw rows — one hash aggregate keyed by (point, class, recent,
status, bucket), where only good readings have a bucket (``bucket_samples``
polls wide) and only bad ones a ``recent`` flag (good ones count their recent
readings): counts and examples of every class, and the good values per
bucket (count, first, last, min, max, sum). The point parameters are a
temporary table, so the join of every reading on them is a perfect hash join,
and the common case (a good reading) is classified by the first test.

**Screen** (:data:`SCREEN_SQL`): the bucket table (~20× smaller) in order per
point — the jump between consecutive buckets is an exact consecutive-sample
difference — and per-point summaries, with the bad readings' counts and examples
per point (a few rows). Noise for every point comes from here:
each bucket's *wiggle* (range minus net change: ≈ 2.6 σ for white noise over
20 samples, ~0 for a trend or a step), median over the early and the recent
buckets, robust to a spike or a step.

**Confirm** (:data:`SERIES_SQL`): points whose buckets *could* hide a rate
violation (a range above half of ``max_rate × sample spacing``), a spike (a range or jump
above the spike threshold), a flat-line (a long enough unchanged tail) or a
noise rise get the exact treatment — ``lag``/``lead`` over their good readings
in time order: rate ``|Δv|/Δt``, spike magnitude ``min(|v−prev|, |v−next|)``
when ``v`` is above or below both neighbours (a step is not a spike), the exact
last change and number of changes, and the median second difference
``|v − (prev+next)/2|`` — high-frequency noise, which a process that merely
moves more (a load step, a slowly hunting loop) does not have. A point the
screen lets through cannot fail those checks, so screening changes the speed,
never a score (a test compares both paths; assumes consecutive good samples at
least half the densest bucket's mean spacing apart).

Cost on the 10,000-point, 9 M-row benchmark: the scan is most of it (~0.6 CPU·s,
≈ 0.3 s on 2 cores); the exact pass touches only the screened-in points (a few per cent).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from connectors.store import Store
from tools.quality.config import DENORMAL, FLOAT32_MAX_ISH, SENTINELS, QualityConfig
from tools.quality.subscores import noise_ratio

_SENTINEL_OR = " OR ".join(f"r.value = {float(s)!r}" for s in SENTINELS)

# the first branch is the common case (a good reading) in fewer operations than the
# chain below: it implies every later test fails, so the class is unchanged
_CLASS = f"""
           CASE
               WHEN r.status = 0 AND r.value >= p.lo AND r.value <= p.hi
                    AND abs(r.value) < {FLOAT32_MAX_ISH}
                    AND (r.value = 0 OR abs(r.value) >= {DENORMAL}) THEN 0
               WHEN r.status <> 0 THEN 1
               WHEN r.value IS NULL OR isnan(r.value) THEN 2
               WHEN isinf(r.value) THEN 3
               WHEN abs(r.value) >= {FLOAT32_MAX_ISH}
                    OR (({_SENTINEL_OR}) AND NOT (r.value >= p.lo AND r.value <= p.hi)) THEN 4
               WHEN r.value <> 0 AND abs(r.value) < {DENORMAL} THEN 5
               WHEN r.value < p.lo THEN 6
               WHEN r.value > p.hi THEN 7
               ELSE 0
           END"""

# Pass 1 — one scan of every reading, one hash aggregate keyed by (point, class, recent,
# status, bucket); the bucket is set for good readings only (`bucket_samples` polls wide)
# and `recent` for bad ones only (good readings count their recent share in `n_recent`),
# so bad readings collapse into a few groups per point and good ones into exactly one row
# per bucket, ~20× fewer rows than readings. The good rows are the bucket table (Arrow, for
# pass 2 and the physics rules); pass 2 also sums the few bad rows per point.
SCAN_SQL = f"""
WITH x AS (
    SELECT r.point_id, r.ts, r.value, r.status, p.bw_us,
           {_CLASS} AS cls,
           r.ts >= p.recent_from AS is_recent
    FROM readings r JOIN _q_points p USING (point_id)
    WHERE r.ts >= $start AND r.ts <= $now
)
SELECT point_id, cls,
       CASE WHEN cls <> 0 THEN is_recent END AS recent,
       status,
       CASE WHEN cls = 0 THEN CAST((epoch_us(ts) - $start_us) // bw_us AS INTEGER) END AS b,
       count(*) AS n,
       count(*) FILTER (is_recent) AS n_recent,
       min(ts) AS t0, max(ts) AS t1,
       min(value) AS vmin, max(value) AS vmax,
       arg_min(value, ts) AS vf, arg_max(value, ts) AS vl,
       sum(value) AS vsum
FROM x
GROUP BY ALL
"""

BUCKETS_OF = """
SELECT point_id, b, n, n_recent, t0 AS tf, t1 AS tl, vf, vl, vmin, vmax, vsum
FROM _q_scan WHERE cls = 0
"""

# Pass 2: buckets in order per point (a sort of the small table) → jumps between
# consecutive buckets (exact consecutive-sample differences), the "wiggle" of each
# bucket — range minus net change, ≈ 2.6 σ for white noise over 20 samples, ~0 for
# trends and steps — and per-point summaries, joined with the counts and examples of every
# class of bad reading (counts 0 when absent). A bucket is early when its first reading is
# before the recent part of the window, i.e. when not all of it is recent.
SCREEN_SQL = """
WITH bj AS (
    SELECT k.*,
           k.vf - lag(k.vl) OVER g AS jump,
           epoch(k.tf - lag(k.tl) OVER g) AS jump_dt,
           CASE WHEN k.n >= 4 THEN (k.vmax - k.vmin) - abs(k.vl - k.vf) END AS wig
    FROM _q_buckets k
    WINDOW g AS (PARTITION BY k.point_id ORDER BY k.b)
),
good AS (
SELECT point_id,
       sum(n) AS n_good, sum(n_recent) AS n_good_recent,
       min(tf) AS first_good, max(tl) AS last_good, arg_max(vl, tl) AS last_value,
       max(vmax - vmin) AS max_range,
       max(abs(jump)) AS max_jump,
       max(abs(jump) / jump_dt) FILTER (jump_dt > 0) AS jump_rate,
       min(epoch(tl - tf) / (n - 1)) FILTER (n > 1) AS min_spacing,
       count(*) FILTER (vmax <> vmin OR jump <> 0) AS n_moving_buckets,
       max(tl) FILTER (vmax <> vmin OR jump <> 0) AS moved_ub,
       median(wig) FILTER (n_recent < n) AS wig_early,
       median(wig) FILTER (n_recent = n) AS wig_recent,
       count(wig) FILTER (n_recent < n) AS n_sigma_early,
       count(wig) FILTER (n_recent = n) AS n_sigma_recent
FROM bj
GROUP BY point_id
),
bad AS (
SELECT point_id,
       sum(n) AS n_bad,
       sum(n) FILTER (cls = 1) AS n_status,
       sum(n) FILTER (cls = 2) AS n_nan,
       sum(n) FILTER (cls = 3) AS n_inf,
       sum(n) FILTER (cls = 4) AS n_sentinel,
       sum(n) FILTER (cls = 5) AS n_denormal,
       sum(n) FILTER (cls = 6) AS n_low,
       sum(n) FILTER (cls = 7) AS n_high,
       sum(n_recent) FILTER (cls >= 2) AS n_badval_recent,
       sum(n_recent) AS n_bad_recent,
       min(vmin) FILTER (cls = 6) AS v_low,
       max(vmax) FILTER (cls = 7) AS v_high,
       max(vmax) FILTER (cls = 4) AS v_sentinel,
       max(greatest(abs(vmin), abs(vmax))) FILTER (cls = 5) AS v_denormal,
       min(t0) AS t0, max(t1) AS t1,
       arg_max(status, t1) AS status
FROM _q_scan WHERE cls <> 0
GROUP BY point_id
)
SELECT coalesce(g.point_id, b.point_id) AS point_id,
       coalesce(g.n_good, 0) + coalesce(b.n_bad, 0) AS n_rows,
       coalesce(g.n_good, 0) AS n_good,
       coalesce(b.n_status, 0) AS n_status,
       coalesce(b.n_nan, 0) AS n_nan,
       coalesce(b.n_inf, 0) AS n_inf,
       coalesce(b.n_sentinel, 0) AS n_sentinel,
       coalesce(b.n_denormal, 0) AS n_denormal,
       coalesce(b.n_low, 0) AS n_low,
       coalesce(b.n_high, 0) AS n_high,
       coalesce(g.n_good_recent, 0) AS n_good_recent,
       coalesce(b.n_badval_recent, 0) AS n_badval_recent,
       coalesce(g.n_good_recent, 0) + coalesce(b.n_badval_recent, 0) AS n_okstatus_recent,
       coalesce(g.n_good_recent, 0) + coalesce(b.n_bad_recent, 0) AS n_recent,
       b.v_low, b.v_high, b.v_sentinel, b.v_denormal,
       least(g.first_good, b.t0) AS first_ts,
       greatest(g.last_good, b.t1) AS last_ts,
       -- the status of the newest reading (good readings have status 0)
       CASE WHEN b.t1 >= g.last_good OR g.last_good IS NULL THEN b.status ELSE 0 END
           AS last_status,
       g.* EXCLUDE (point_id, n_good, n_good_recent)
FROM good g FULL OUTER JOIN bad b USING (point_id)
"""

# median wiggle (range − |last − first|) of n white-noise samples, in σ (simulated, 2e5 draws)
WIGGLE_MEDIAN = {10: 1.93, 20: 2.64}

# Exact pass over the good readings of the screened-in points, in time order.
SERIES_SQL = f"""
WITH x AS (
    SELECT r.point_id, r.ts, r.value, r.ts >= p.recent_from AS recent
    FROM readings r JOIN _q_suspects p USING (point_id)
    WHERE r.ts >= $start AND r.ts <= $now AND ({_CLASS}) = 0
),
w AS (
    SELECT point_id, ts, value, recent,
           lag(value) OVER g AS prv,
           lead(value) OVER g AS nxt,
           epoch(ts - lag(ts) OVER g) AS dt
    FROM x
    WINDOW g AS (PARTITION BY point_id ORDER BY ts)
),
d AS (
    SELECT point_id, ts, recent,
           abs(value - (prv + nxt) / 2) AS e,
           abs(value - prv) / dt AS rate,
           value <> 0 AND prv <> 0 AS nonzero,
           CASE WHEN (value - prv) * (value - nxt) > 0
                THEN least(abs(value - prv), abs(value - nxt)) ELSE 0 END AS spike,
           abs(value - prv) > $flat_tol * greatest(abs(value), 1.0) AS changed
    FROM w
)
SELECT point_id,
       max(rate) FILTER (isfinite(rate)) AS rate_max,
       arg_max(ts, rate) FILTER (isfinite(rate)) AS rate_ts,
       max(rate) FILTER (nonzero AND isfinite(rate)) AS rate_max_nz,
       arg_max(ts, rate) FILTER (nonzero AND isfinite(rate)) AS rate_ts_nz,
       max(spike) AS spike_max,
       arg_max(ts, spike) AS spike_ts,
       count(*) FILTER (changed) AS n_changes,
       max(ts) FILTER (changed) AS last_change,
       median(e) FILTER (NOT recent) AS e_early,
       median(e) FILTER (recent) AS e_recent
FROM d
GROUP BY point_id
"""

_EXACT_COLS = [
    "rate_max", "rate_ts", "rate_max_nz", "rate_ts_nz", "spike_max", "spike_ts", "n_changes",
    "last_change", "e_early", "e_recent",
]  # fmt: skip


def point_stats(
    store: Store,
    start: datetime,
    now: datetime,
    cfg: QualityConfig,
    points: pd.DataFrame,
    exact_all: bool = False,
) -> tuple[pd.DataFrame, pa.Table]:
    """Per-point statistics for the rows of ``points`` (see ``config.point_table``), and the
    bucket table (Arrow) the physics rules reuse.

    ``exact_all`` confirms every point (slow path; the tests compare it with the screen).
    """
    q = points[["point_id", "lo", "hi", "poll_s", "max_rate", "span", "stats"]].copy()
    q["bw"] = q["poll_s"] * cfg.bucket_samples
    q["bw_us"] = (q["bw"] * 1e6).round().astype("int64")
    q["recent_from"] = pd.Timestamp(now) - pd.to_timedelta(
        q["poll_s"] * cfg.recent_samples, unit="s"
    )
    params: dict[str, object] = {"start": start, "now": now}
    cur = store.cursor()
    try:
        _temp_table(cur, "_q_points", q[["point_id", "lo", "hi", "bw_us", "recent_from"]])
        scan = cur.sql(
            SCAN_SQL, params={**params, "start_us": int(pd.Timestamp(start).value // 1000)}
        ).to_arrow_table()
        cur.register("_q_scan", scan)
        buckets = cur.sql(BUCKETS_OF).to_arrow_table()
        cur.register("_q_buckets", buckets)
        screen = cur.execute(SCREEN_SQL).df()
        cur.unregister("_q_scan")
        del scan
        st = q.merge(screen, on="point_id", how="inner")
        sus = st.loc[exact_all | _suspects(st, cfg), ["point_id", "lo", "hi", "recent_from"]]
        if len(sus):
            _temp_table(cur, "_q_suspects", sus)
            exact = cur.execute(SERIES_SQL, {**params, "flat_tol": cfg.flat_rel_tol}).df()
        else:
            exact = pd.DataFrame(columns=["point_id", *_EXACT_COLS])
    finally:
        cur.close()
    out = st.drop(
        columns=["lo", "hi", "poll_s", "max_rate", "span", "stats", "bw", "bw_us", "recent_from"]
    )
    out = out.merge(exact, on="point_id", how="left")
    out["sigma_early"] = out["wig_early"] / _wiggle(cfg)
    out["sigma_recent"] = out["wig_recent"] / _wiggle(cfg)
    # when did the point last move: exact where confirmed, else the screen's upper bound
    out["moved_at"] = pd.to_datetime(out["last_change"]).fillna(pd.to_datetime(out["moved_ub"]))
    return out, buckets


def _temp_table(cur: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame) -> None:
    """``df`` as a temporary table of the cursor's own connection (gone when it closes).

    Unlike a registered DataFrame, a table has statistics and an INTEGER ``point_id`` like
    ``readings``: the join of every reading on it becomes a perfect hash join (~8× cheaper).
    """
    cur.register("_q_frame", df)
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            "SELECT * REPLACE (CAST(point_id AS INTEGER) AS point_id) FROM _q_frame"
        )
    finally:
        cur.unregister("_q_frame")


def _wiggle(cfg: QualityConfig) -> float:
    n = cfg.bucket_samples
    return WIGGLE_MEDIAN.get(n, 0.6 * float(np.sqrt(n)) + 0.05)


def _suspects(st: pd.DataFrame, cfg: QualityConfig) -> np.ndarray:
    """Points whose buckets could hide a rate violation, a spike or a flat-line."""
    poll = st["poll_s"].to_numpy(float)
    big = np.fmax(
        np.nan_to_num(st["max_range"].to_numpy(float)),
        np.nan_to_num(st["max_jump"].to_numpy(float)),
    )
    max_rate = st["max_rate"].to_numpy(float)
    # consecutive good samples are taken to be at least half the sample spacing apart: the
    # poll interval, or the mean spacing of the densest bucket if the point is sampled faster
    spacing = np.fmin(poll, st["min_spacing"].to_numpy(float))
    rate_sus = (big > 0.5 * max_rate * spacing) | (st["jump_rate"].to_numpy(float) > max_rate)
    sigma = (1.0 / _wiggle(cfg)) * np.fmax(
        np.nan_to_num(st["wig_early"].to_numpy(float)),
        np.nan_to_num(st["wig_recent"].to_numpy(float)),
    )
    span = st["span"].to_numpy(float)
    scale = np.where(
        np.isfinite(span), span, np.abs(st["last_value"].fillna(1.0).to_numpy(float)) + 1.0
    )
    den = np.maximum(1.4826 * sigma, cfg.spike_floor_frac * scale)
    spike_sus = big > 0.9 * cfg.spike_ratio_lo * den
    # the true last change is no earlier than one bucket before the screen's bound
    last_good = pd.to_datetime(st["last_good"])
    moved = pd.to_datetime(st["moved_ub"])
    flat_upper = (
        (last_good - moved).dt.total_seconds().to_numpy(float) + st["bw"].to_numpy(float)
    ) / poll
    flat_sus = (st["n_moving_buckets"].fillna(0).to_numpy(float) >= 3) & (
        np.nan_to_num(flat_upper) >= cfg.flat_samples - 1
    )
    sig_e = st["wig_early"].to_numpy(float) / _wiggle(cfg)
    sig_r = st["wig_recent"].to_numpy(float) / _wiggle(cfg)
    ratio, _ = noise_ratio(
        sig_e,
        sig_r,
        st["n_sigma_early"].fillna(0).to_numpy(float) >= 3,
        st["n_sigma_recent"].fillna(0).to_numpy(float) >= 2,
        scale,
        poll,
        cfg,
    )
    noise_sus = st["stats"].to_numpy(bool) & (ratio > cfg.noise_ratio_lo)
    return np.asarray(rate_sus | spike_sus | flat_sus | noise_sus, dtype=bool)
