"""ReplaySource slices one Arrow table made up front: each chunk holds exactly the rows and
last values that converting the chunk alone gives (NaN cells, a gap, an all-NaN column)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from connectors.clock import ManualClock
from connectors.importers._common import PointSpec, build_site
from connectors.replay import ReplaySource, frame_to_table


def _site():  # type: ignore[no-untyped-def]
    specs = {n: PointSpec("degC", lo=0, hi=50) for n in ("a", "b", "c")}
    return build_site("t", "chiller", "chiller", ["a", "b", "c"], specs, 10.0, PointSpec("1"))


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    day1 = pd.date_range("2026-01-01 00:00", periods=40, freq="10s")
    day2 = pd.date_range("2026-01-01 02:00", periods=25, freq="10s")  # a gap: empty chunks
    n = len(day1) + len(day2)
    a = rng.normal(10, 1, n)
    a[rng.random(n) < 0.3] = np.nan  # scattered missing cells
    b = rng.normal(20, 1, n)
    b[6:18] = np.nan  # missing for a whole chunk
    c = np.full(n, np.nan)  # never read
    return pd.DataFrame({"a": a, "b": b, "c": c}, index=day1.append(day2))


def test_chunks_equal_the_chunk_converted_alone() -> None:
    site = _site()
    src = ReplaySource(_frame(), site, ManualClock(), chunk=timedelta(minutes=1))
    ids = {t: i for i, t in enumerate(sorted(site.point_ids))}
    wide = src.frame
    n_empty = 0
    for ch in src.chunks(ids):
        part = wide[(wide.index >= ch.start) & (wide.index < ch.end)]
        assert ch.table.equals(frame_to_table(part, ids))
        last = part.ffill().iloc[-1] if len(part) else pd.Series(dtype=float)
        assert ch.values == {str(k): float(v) for k, v in last.items() if not pd.isna(v)}
        n_empty += ch.rows == 0
    assert n_empty > 0  # the gap was crossed
