"""Data quality over a run, for the report's plot (never an input of the run itself)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from agent.context import AgentContext
from connectors.site import Site
from connectors.store import Store
from tools.quality import score

QUALITY_SAMPLES = 40  # quality scored this many times over a run, for the report's plot


class QualitySampler:
    """Scores data quality (:func:`tools.quality.score`) a few dozen times over a run.

    The series is for the report ("quality over time"); a scorer that fails is noted
    once and the series stays empty — the run itself does not depend on it.
    """

    def __init__(
        self, store: Store, site: Site, cycles: int, tags: list[str] | None = None
    ) -> None:
        self.store, self.site = store, site
        self.every = max(1, cycles // QUALITY_SAMPLES)
        self.tags = tags
        self.rows: list[tuple[datetime, float, float]] = []
        self.error: str | None = None
        self._i = 0

    def from_agent(self, ctx: AgentContext | None) -> bool:
        """Take the score the agent computed this cycle (its short cache), at no extra cost."""
        cached = ctx.last_quality if ctx is not None else None
        if not cached:
            return False
        ts, res = cached
        vals = [float(v) for v in res.scores.values()]
        if vals and (not self.rows or self.rows[-1][0] != ts):
            self.rows.append((ts, float(np.mean(vals)), float(np.min(vals))))
        return True

    def __call__(self, now: datetime) -> None:
        self._i += 1
        if self.error is not None or self._i % self.every:
            return
        try:
            rep = score(self.store, self.site, now, tags=self.tags)
            s = pd.to_numeric(rep.points["score"], errors="coerce")
            self.rows.append((now, float(s.mean()), float(s.min())))
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["ts", "mean", "min"])


def referenced(ctx: AgentContext | None, site: Site) -> list[str] | None:
    """The points the agent's policies rest on (None: every point)."""
    tags = sorted(ctx.engine.referenced_tags) if ctx is not None else []
    tags = [t for t in tags if t in site.points_by_tag]
    return tags or None
