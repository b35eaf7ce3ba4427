"""Read-only telemetry queries: the agent's observation and the LLM's tools.

* :func:`latest_array` — the per-cycle observation: ONE DuckDB query giving the
  newest good value of every point as a numpy array aligned with
  ``site.point_ids`` (``nan`` = no good reading within ``lookback``), plus its age.
* :func:`latest_values`, :func:`window_stats`, :func:`point_quality` — small
  JSON-able answers for the LLM (a handful of numbers, never a raw dump).

Nothing here writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from connectors.site import Site
from connectors.store import Store

FloatArray = npt.NDArray[np.float64]
MAX_TAGS = 50


@dataclass
class Snapshot:
    """Newest good value per point (aligned with ``site.point_ids``) and its age in seconds."""

    now: datetime
    values: FloatArray
    age_s: FloatArray

    def get(self, site: Site, tag: str) -> float:
        return float(self.values[site.point_ids[tag]])

    def as_dict(self, site: Site, tags: Sequence[str]) -> dict[str, float]:
        ids = site.point_ids
        return {t: float(self.values[ids[t]]) for t in tags if t in ids}


def _site_index(store: Store, site: Site) -> npt.NDArray[np.int64]:
    """store point_id → position in ``site.point_ids`` (−1 when not in the site).

    Built on every call (about 15 µs for the twin's 170 points): a cache here would
    be per-site state in a module, keyed on object ids that Python reuses."""
    st = store.tags
    size = max(st.values(), default=-1) + 1
    lut = np.full(max(size, 1), -1, np.int64)
    for tag, pos in site.point_ids.items():
        pid = st.get(tag)
        if pid is not None:
            lut[pid] = pos
    return lut


def latest_array(
    store: Store, site: Site, now: datetime, lookback: timedelta = timedelta(minutes=2)
) -> Snapshot:
    """One query: newest good reading per point since ``now - lookback``."""
    lut = _site_index(store, site)
    res = store.query_numpy(
        """SELECT point_id, arg_max(value, ts) AS v, epoch(max(ts)) AS t FROM readings
           WHERE ts >= ? AND ts <= ? AND status = 0 AND value IS NOT NULL GROUP BY point_id""",
        [now - lookback, now],
    )
    n = len(site.point_ids)
    values = np.full(n, np.nan)
    age = np.full(n, np.inf)
    pid = np.asarray(res["point_id"], np.int64)
    if len(pid):
        ok = pid < len(lut)
        pos = np.full(len(pid), -1)
        pos[ok] = lut[pid[ok]]
        keep = pos >= 0
        values[pos[keep]] = np.asarray(res["v"], float)[keep]
        t_now = (now - datetime(1970, 1, 1)).total_seconds()
        age[pos[keep]] = t_now - np.asarray(res["t"], float)[keep]
    return Snapshot(now, values, age)


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def latest_values(store: Store, site: Site, tags: Sequence[str], now: datetime) -> dict[str, Any]:
    """{tag: {value, age_s}} for at most 50 known tags; unknown tags are listed, not guessed."""
    known = [t for t in tags if t in site.points_by_tag][:MAX_TAGS]
    unknown = [t for t in tags if t not in site.points_by_tag]
    snap = latest_array(store, site, now, timedelta(hours=1))
    ids = site.point_ids
    out: dict[str, Any] = {
        t: {
            "value": _clean(snap.values[ids[t]]),
            "unit": site.point(t).unit,
            "age_s": _clean(snap.age_s[ids[t]]) if np.isfinite(snap.age_s[ids[t]]) else None,
        }
        for t in known
    }
    return {"values": out, "unknown": unknown}


def window_stats(
    store: Store, site: Site, tag: str, now: datetime, minutes: float = 15.0
) -> dict[str, Any]:
    """min / mean / max / last / count of good readings, and the bad count, over the last minutes."""
    if tag not in site.points_by_tag:
        return {"error": f"unknown point {tag!r}"}
    df = store.window([tag], now - timedelta(minutes=minutes), now + timedelta(microseconds=1))
    good = df[df["status"] == 0]["value"].dropna()
    return {
        "tag": tag,
        "unit": site.point(tag).unit,
        "minutes": minutes,
        "n": len(good),
        "n_bad": int((df["status"] != 0).sum()),
        "min": _clean(good.min()) if len(good) else None,
        "mean": _clean(good.mean()) if len(good) else None,
        "max": _clean(good.max()) if len(good) else None,
        "last": _clean(good.iloc[-1]) if len(good) else None,
    }


def point_quality(report: Any, tag: str) -> dict[str, Any]:
    """Quality score and reasons of one point from a quality report (tools.quality)."""
    try:
        return {
            "tag": tag,
            "score": _clean(report.point_score(tag)),
            "reasons": list(report.reasons(tag)),
        }
    except KeyError:
        return {"error": f"no quality score for {tag!r}"}
