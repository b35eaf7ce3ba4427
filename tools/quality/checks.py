"""Per-point statistics of a window, computed by two DuckDB queries over ``readings``.

Vectorised inside DuckDB, never row by row in Python: :data:`COUNTS_SQL` is
one scan and one hash aggregate over every reading; :data:`SERIES_SQL` orders
the good readings per point with one window sort and aggregates them. Each
reading is classified first (``cls``):

====  =====================================================================
 0    good: status ok, finite, not a sentinel, not denormal, inside min/max
 1    bad status (timeout, connection lost, decode error, Modbus exception)
 2    NaN / NULL value with status ok
 3    ±infinity
 4    sentinel: float32 max (≈3.4e38) or a raw marker (65535, −32768, …) that the
      point's declared range does not include
 5    denormal (0 < |v| < 1e-30, e.g. 1.68e-45)
 6    below the point's physical min
 7    above the point's physical max
====  =====================================================================

Good readings are then ordered per point (``lag``/``lead`` over a window
partitioned by point and goodness) to get, for each sample, the previous and
next good sample. From those come the rate of change ``|Δv|/Δt``, the *spike
magnitude* of a local excursion that comes back (``min(|v−prev|, |v−next|)``
when ``v`` is above or below both neighbours, else 0 — a step is not a spike),
and the second difference ``|v − (prev+next)/2|`` whose median is a robust
noise level (≈ 1.22·σ for white noise, insensitive to trends and steps).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from connectors.store import Store
from tools.quality.config import DENORMAL, FLOAT32_MAX_ISH, SENTINELS, QualityConfig

_SENTINEL_LIST = ", ".join(repr(float(s)) for s in SENTINELS)

_CLASSIFIED = f"""
    SELECT r.point_id, r.ts, r.value, r.status, p.poll_s,
           r.ts >= $now - to_microseconds(CAST(p.poll_s * $recent * 1e6 AS BIGINT)) AS recent,
           CASE
               WHEN r.status <> 0 THEN 1
               WHEN r.value IS NULL OR isnan(r.value) THEN 2
               WHEN isinf(r.value) THEN 3
               WHEN abs(r.value) >= {FLOAT32_MAX_ISH}
                    OR (r.value IN ({_SENTINEL_LIST})
                        AND NOT (r.value >= p.lo AND r.value <= p.hi AND isfinite(p.hi - p.lo)))
                   THEN 4
               WHEN r.value <> 0 AND abs(r.value) < {DENORMAL} THEN 5
               WHEN r.value < p.lo THEN 6
               WHEN r.value > p.hi THEN 7
               ELSE 0
           END AS cls
    FROM readings r JOIN _q_points p USING (point_id)
    WHERE r.ts >= $start AND r.ts <= $now
"""

# Query A: every reading, no ordering needed — counts by class, freshness, completeness.
COUNTS_SQL = f"""
WITH x AS ({_CLASSIFIED})
SELECT point_id,
       count(*) AS n_rows,
       count(*) FILTER (cls = 0) AS n_good,
       count(*) FILTER (cls = 1) AS n_status,
       count(*) FILTER (cls = 2) AS n_nan,
       count(*) FILTER (cls = 3) AS n_inf,
       count(*) FILTER (cls = 4) AS n_sentinel,
       count(*) FILTER (cls = 5) AS n_denormal,
       count(*) FILTER (cls = 6) AS n_low,
       count(*) FILTER (cls = 7) AS n_high,
       count(*) FILTER (recent) AS n_recent,
       count(*) FILTER (recent AND cls = 0) AS n_good_recent,
       count(*) FILTER (recent AND cls >= 2) AS n_badval_recent,
       count(*) FILTER (recent AND cls <> 1) AS n_okstatus_recent,
       min(value) FILTER (cls = 6) AS v_low,
       max(value) FILTER (cls = 7) AS v_high,
       any_value(value) FILTER (cls = 4) AS v_sentinel,
       max(abs(value)) FILTER (cls = 5) AS v_denormal,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       min(ts) FILTER (cls = 0) AS first_good,
       max(ts) FILTER (cls = 0) AS last_good,
       arg_max(status, ts) AS last_status,
       arg_max(value, ts) FILTER (cls = 0) AS last_value
FROM x
GROUP BY point_id
"""

# Query B: good readings in time order per point — rate, spikes, noise, flat-line.
SERIES_SQL = f"""
WITH x AS ({_CLASSIFIED}),
w AS (
    SELECT point_id, ts, value, recent,
           lag(value) OVER g AS prv,
           lead(value) OVER g AS nxt,
           epoch(ts - lag(ts) OVER g) AS dt
    FROM x WHERE cls = 0
    WINDOW g AS (PARTITION BY point_id ORDER BY ts)
),
d AS (
    SELECT point_id, ts, value, prv, recent,
           abs(value - prv) / dt AS rate,
           value <> 0 AND prv <> 0 AS nonzero,
           CASE WHEN (value - prv) * (value - nxt) > 0
                THEN least(abs(value - prv), abs(value - nxt)) ELSE 0 END AS spike,
           abs(value - (prv + nxt) / 2) AS e,
           abs(value - prv) > $flat_tol * greatest(abs(value), 1.0) AS changed
    FROM w
)
SELECT point_id,
       max(rate) FILTER (rate IS NOT NULL AND isfinite(rate)) AS rate_max,
       arg_max(ts, rate) FILTER (rate IS NOT NULL AND isfinite(rate)) AS rate_ts,
       max(rate) FILTER (nonzero AND isfinite(rate)) AS rate_max_nz,
       arg_max(ts, rate) FILTER (nonzero AND isfinite(rate)) AS rate_ts_nz,
       max(spike) AS spike_max,
       arg_max(ts, spike) AS spike_ts,
       median(e) FILTER (NOT recent) AS noise_early,
       median(e) FILTER (recent) AS noise_recent,
       count(e) FILTER (recent) AS n_noise_recent,
       count(e) FILTER (NOT recent) AS n_noise_early,
       count(*) FILTER (changed) AS n_changes,
       max(ts) FILTER (changed) AS last_change
FROM d
GROUP BY point_id
"""


def point_stats(
    store: Store, start: datetime, now: datetime, cfg: QualityConfig, points: pd.DataFrame
) -> pd.DataFrame:
    """Per-point statistics (both queries joined on ``point_id``) for the rows of ``points``."""
    params = {"start": start, "now": now, "recent": float(cfg.recent_samples)}
    cur = store.cursor()
    try:
        cur.register("_q_points", points[["point_id", "lo", "hi", "poll_s"]])
        counts = cur.execute(COUNTS_SQL, params).df()
        series = cur.execute(SERIES_SQL, {**params, "flat_tol": cfg.flat_rel_tol}).df()
    finally:
        cur.close()
    return counts.merge(series, on="point_id", how="left")
