"""Read-only views of a site's store, the same whether the CLI opens the file or the running
site process answers through its API (``agent/api_reads.py``): one function, one output.

* :func:`quality_report` — the data-quality table of ``facility-agent quality``;
* :func:`good_readings` — the good readings of the last stretch (``facility-agent record``);
* :func:`latest_values` — the newest good value per point (``facility-agent whatif``).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.clock import utcnow
from connectors.errors import ConfigError, StoreError
from connectors.site import Site
from connectors.store import Store
from tools.quality import score

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """``15m``, ``900s``, ``1h``, ``90`` (seconds) → timedelta."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--window {text!r}: expected a positive duration like 15m, 900s, 1h")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def newest_ts(store: Store) -> datetime:
    """Time of the newest reading in the store (StoreError when it holds none)."""
    newest = pd.Timestamp(store.query("SELECT max(ts) AS t FROM readings")["t"].iloc[0])
    if pd.isna(newest):
        raise StoreError(f"{store.path}: no readings")
    return newest.to_pydatetime()


def instant(store: Store, at: str | None) -> datetime:
    """The end of the scored window: now, the newest reading (``latest``), or an ISO time."""
    if at is None:
        return utcnow()
    if at == "latest":
        return newest_ts(store) + timedelta(microseconds=1)
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        raise ConfigError(
            f"--at {at!r}: expected ISO time (2026-01-01T12:00:00) or 'latest'"
        ) from None


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def quality_report(
    store: Store,
    site: Site,
    window: str = "15m",
    at: str | None = None,
    equipment: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score every point (or ``equipment``'s) over ``window`` ending at ``at``.

    Returns JSON-ready ``{site, at, window, points: [{tag, equipment, score, level,
    worst_reason}], equipment: [{equipment, score, level, weakest, worst_reason}],
    faults: [{equipment, kind, message, tags}], no_data}`` with points weakest first;
    ``faults`` are equipment faults the residuals isolated (the sensors read true)."""
    span = parse_window(window)
    now = instant(store, at)
    tags = None
    if equipment:
        known = {e.id for e in site.equipment}
        bad = [e for e in equipment if e not in known]
        if bad:
            raise ConfigError(
                f"--equipment {bad[0]!r}: not in site {site.name} ({', '.join(sorted(known))})"
            )
        tags = [
            f"{eq.id}.{p.name}" for eq in site.equipment if eq.id in equipment for p in eq.points
        ]
    rep = score(store, site, now, span, tags=tags)
    df = rep.points.sort_values(["score", "tag"], kind="stable")
    level = site.quality.level
    points = [
        {
            "tag": str(r.tag),
            "equipment": str(r.equipment),
            "score": _clean(round(float(r.score), 4)),
            "level": level(float(r.score)),
            "worst_reason": str(r.worst_reason or ""),
        }
        for r in df.itertuples(index=False)
    ]
    eq = rep.equipment().sort_values(["score", "equipment"], kind="stable")
    equip = [
        {
            "equipment": str(e.equipment),
            "score": _clean(round(float(e.score), 4)),
            "level": int(e.level),
            "weakest": str(e.weakest),
            "worst_reason": str(e.worst_reason or ""),
        }
        for e in eq.itertuples(index=False)
    ]
    faults = [
        {"equipment": f.equipment, "kind": f.kind, "message": f.message, "tags": list(f.tags)}
        for f in rep.faults
        if not equipment or f.equipment in equipment
    ]
    return {
        "site": site.name,
        "at": now.isoformat(),
        "window": window,
        "points": points,
        "equipment": equip,
        "faults": faults,
        "no_data": bool((rep.points["freshness"] == 0).all()),
    }


def latest_values(store: Store) -> dict[str, float]:
    """{tag: newest good value} (finite values only)."""
    return {k: v for k, v in store.latest_values().items() if math.isfinite(v)}


def good_readings(store: Store, seconds: float) -> pd.DataFrame:
    """Good readings (ts, tag, value) of the last ``seconds`` before the newest reading."""
    end = newest_ts(store)
    return store.query(
        "SELECT r.ts, p.tag, r.value FROM readings r JOIN points p USING (point_id) "
        "WHERE r.ts > ? AND r.ts <= ? AND r.status = 0 ORDER BY r.ts",
        [end - timedelta(seconds=seconds), end],
    )


def to_parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, compression="zstd")
    return buf.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def scratch_store(site: Site, readings: pd.DataFrame) -> Store:
    """An in-memory store holding ``site``'s points and ``readings`` (ts, tag, value)."""
    store = Store(":memory:")
    store.register_site(site)
    known = readings[readings["tag"].isin(set(site.points_by_tag))]
    store.append_frame(known.assign(status=0))
    return store
