"""The data-quality scorer's cell grid when no point takes part in a physics check.

A site with no physics rule, relation or CDU among its points (an LBNL air handler) gives
the grid no rows. Its cell width used to fall back to 1 µs: every quality report then built
a window of microsecond cells (a 15-minute window: 9·10⁸ cells, ~1 GB and seconds per
report), which made each LBNL open-loop replay take 12–20 minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.importers.lbnl import lbnl_site
from connectors.replay import replay_frame
from connectors.store import Store
from tools.quality import score
from tools.quality.grid import CellGrid
from tools.quality.scorer import IncrementalScorer

COLUMNS = ["supply_air_temp", "mixed_air_temp", "outdoor_air_temp", "return_air_temp"]


def _frame(minutes: int) -> pd.DataFrame:
    idx = pd.date_range("2026-01-05 08:00", periods=minutes, freq="1min", name="ts")
    rng = np.random.default_rng(3)
    base = np.array([13.0, 18.0, 10.0, 22.0])
    return pd.DataFrame(base + rng.normal(0, 0.05, (minutes, 4)), index=idx, columns=COLUMNS)


def test_a_grid_without_rows_has_a_few_cells_not_one_per_microsecond(tmp_path: Path) -> None:
    site = lbnl_site(COLUMNS)
    frame = _frame(60)
    now = frame.index[-1].to_pydatetime() + timedelta(minutes=1)
    with Store(tmp_path / "g.duckdb") as store:
        replay_frame(store, frame, site)
        scorer = IncrementalScorer(store, site)
        scorer.refresh(now)
        assert len(scorer._grid_rows) == 0  # no physics on these points: the case at issue
        grid = CellGrid(scorer.tracker, scorer._grid_rows, now, scorer.window, 3)
        assert grid.cells <= 2
        assert grid.recent.shape == (grid.cells,)
        assert grid.values.shape == (0, grid.cells)


def test_quality_of_a_site_without_physics_is_still_scored(tmp_path: Path) -> None:
    site = lbnl_site(COLUMNS)
    frame = _frame(60)
    now: datetime = frame.index[-1].to_pydatetime() + timedelta(minutes=1)
    with Store(tmp_path / "g.duckdb") as store:
        replay_frame(store, frame, site)
        rep = score(store, site, now)
    s = pd.to_numeric(rep.points["score"])
    assert len(s) == len(COLUMNS)
    assert (s > 0.8).all(), rep.points[["tag", "score", "worst_reason"]]
