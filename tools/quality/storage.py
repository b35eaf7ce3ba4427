"""The ``quality`` table: every scoring run appended, one row per point.

``quality(ts, window_s, tag, equipment, score, level, freshness, completeness,
range, flatline, noise, spike, rate, physics, worst_reason, reasons VARCHAR[])``
— ``ts`` is the scored instant (the end of the window). Append-only: the latest
row per tag is the current score.
"""

from __future__ import annotations

import pandas as pd

from connectors.store import Store
from tools.quality.report import QualityReport

QUALITY_DDL = """
CREATE TABLE IF NOT EXISTS quality (
    ts TIMESTAMP NOT NULL,
    window_s DOUBLE NOT NULL,
    tag VARCHAR NOT NULL,
    equipment VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    level INTEGER NOT NULL,
    freshness DOUBLE, completeness DOUBLE, range DOUBLE, flatline DOUBLE,
    noise DOUBLE, spike DOUBLE, rate DOUBLE, physics DOUBLE,
    worst_reason VARCHAR,
    reasons VARCHAR[]
);
"""

_COLS = ["freshness", "completeness", "range", "flatline", "noise", "spike", "rate", "physics"]


def save(store: Store, report: QualityReport) -> None:
    """Append the report's point scores to the ``quality`` table (created if needed)."""
    store.ensure_schema(QUALITY_DDL)
    p = report.points
    df = pd.DataFrame(
        {
            "ts": pd.Timestamp(report.now),
            "window_s": report.window.total_seconds(),
            "tag": p["tag"].astype(str),
            "equipment": p["equipment"].astype(str),
            "score": p["score"].astype(float),
            "level": [report.thresholds.level(float(s)) for s in p["score"]],
            **{c: p[c].astype(float) for c in _COLS},
            "worst_reason": p["worst_reason"].astype(str),
            "reasons": [list(r) for r in p["reasons"]],
        }
    )
    cur = store.cursor()
    try:
        cur.register("_q_save", df)
        cur.execute(
            "INSERT INTO quality SELECT ts, window_s, tag, equipment, score, level, "
            + ", ".join(_COLS)
            + ", worst_reason, reasons FROM _q_save"
        )
    finally:
        cur.close()
