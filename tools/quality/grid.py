"""The window's bucket means on one time grid, for rules and relations across points.

Each point's good-reading buckets (``bucket_samples`` polls wide) are placed on a
grid of cells as wide as the finest bucket among the points asked for; a coarser
point holds its mean across the cells its bucket covers. A cell is *recent* when it
is among the last ``physics_recent_buckets`` (+ the open one).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from tools.quality.tracker import PointTracker, to_us


class CellGrid:
    """Bucket means of point rows ``rows`` (indices of the tracker's points) over the window."""

    def __init__(
        self,
        tracker: PointTracker,
        rows: np.ndarray,
        now: datetime,
        window: timedelta,
        recent_cells: int,
    ) -> None:
        rows = np.asarray(rows, int)
        self.pos = {int(r): j for j, r in enumerate(rows)}
        mean, bstart = tracker.bucket_means(now, window, rows)
        bw = tracker.bw_us[rows]
        # no rows (no physics rule, relation or CDU among the points): one cell per window, not
        # one per microsecond — that grid took seconds and a gigabyte per quality report
        self.cell_us = int(bw.min()) if len(rows) else max(1, window // timedelta(microseconds=1))
        start_us = to_us(now - window)
        self.origin_us = (start_us // self.cell_us) * self.cell_us
        k = int((to_us(now) - self.origin_us) // self.cell_us) + 1
        out = np.full((len(rows), k), np.nan)
        r_i, s_i = np.nonzero(~np.isnan(mean))
        k0 = (bstart[r_i, s_i] - self.origin_us) // self.cell_us
        reps = np.maximum(bw[r_i] // self.cell_us, 1)
        for rep in np.unique(reps):
            sel = reps == rep
            for j in range(int(rep)):
                kk = k0[sel] + j
                ok = (kk >= 0) & (kk < k)
                out[r_i[sel][ok], kk[ok]] = mean[r_i[sel][ok], s_i[sel][ok]]
        self.values = out
        self.recent = np.zeros(k, bool)
        self.recent[max(0, k - recent_cells - 1) :] = True

    @property
    def cells(self) -> int:
        return int(self.values.shape[1])

    def series(
        self, rows: list[int], agg: Literal["avg", "min", "max", "sum"] = "avg"
    ) -> np.ndarray:
        """One series from ``rows`` combined per cell (NaN where none — or, for a sum, any — is
        missing)."""
        x = self.values[[self.pos[i] for i in rows]]
        if len(rows) == 1:
            return x[0]
        if len(rows) == 0:
            return np.full(self.cells, np.nan)
        with np.errstate(invalid="ignore"):
            if agg == "sum":
                return np.where(np.isnan(x).any(axis=0), np.nan, np.nansum(x, axis=0))
            n = (~np.isnan(x)).sum(axis=0)
            if agg == "avg":
                return np.where(n > 0, np.nansum(x, axis=0) / np.maximum(n, 1), np.nan)
            red = np.fmin if agg == "min" else np.fmax
            return np.asarray(red.reduce(x, axis=0))

    def matrix(
        self, rows_per: list[list[int]], agg: Literal["avg", "min", "max", "sum"] = "avg"
    ) -> np.ndarray:
        """(len(rows_per), cells): one series per instance; gathered in one step when every
        instance has exactly one point."""
        if rows_per and all(len(r) == 1 for r in rows_per):
            return self.values[[self.pos[r[0]] for r in rows_per]]
        out = np.full((len(rows_per), self.cells), np.nan)
        for k, r in enumerate(rows_per):
            if r:
                out[k] = self.series(r, agg)
        return out
