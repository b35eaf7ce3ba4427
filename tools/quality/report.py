"""The result of a scoring run and its roll-ups.

Roll-up rule (weakest link): the score of a set of points — an equipment, or the
points a decision rests on — is the **minimum** of their scores. One untrusted
input is enough to make a conclusion untrusted, and averaging would let many
healthy points hide one bad one. The level a set allows is
``site.quality.level(min score)`` (defaults ≥ 0.95 → 3, ≥ 0.80 → 2, ≥ 0.50 → 1,
else 0). The mean is kept beside the minimum for context only.

A point's own score is likewise the minimum of its sub-scores (freshness,
completeness, range, flat-line, noise, spike, rate, physics); its
``worst_reason`` is the reason of the lowest sub-score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from connectors.site import QualityThresholds

SUBSCORES = ("range", "freshness", "completeness", "flatline", "spike", "noise", "rate", "physics")
COLUMNS = (
    "tag", "equipment", "score", "freshness", "completeness", "range", "flatline", "noise",
    "spike", "rate", "physics", "reasons", "worst_reason",
)  # fmt: skip


@dataclass(frozen=True)
class EquipmentFault:
    """A fault of the machine, not of its sensors, found by residual isolation (e.g. a CDU
    pump that delivers less flow than its speed predicts while the heat balance agrees)."""

    equipment: str
    kind: str  # e.g. "cdu_pump_degradation"
    message: str
    tags: tuple[str, ...] = ()  # the sensors whose readings show it (trusted)
    score: float = 1.0  # of the residual it explains (how clearly it shows)


@dataclass
class QualityReport:
    """Scores of every point over ``[now - window, now]``; ``points`` has :data:`COLUMNS`."""

    now: datetime
    window: timedelta
    points: pd.DataFrame
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    # equipment faults the residuals isolated (the sensors read true: the machine is off):
    # one sentence each, starting with the equipment id
    faults: tuple[EquipmentFault, ...] = ()

    def __post_init__(self) -> None:
        self._by_tag = self.points.set_index("tag", drop=False)

    # ---- points ---------------------------------------------------------------------
    def point_score(self, tag: str) -> float:
        """Score of one point; KeyError for a tag that was not scored."""
        try:
            return float(self._by_tag.at[tag, "score"])
        except KeyError:
            raise KeyError(f"no quality score for {tag!r}") from None

    def reasons(self, tag: str) -> list[str]:
        """Why the point lost score, worst first (empty when it scored 1)."""
        try:
            return list(self._by_tag.at[tag, "reasons"])
        except KeyError:
            raise KeyError(f"no quality score for {tag!r}") from None

    # ---- roll-ups -------------------------------------------------------------------
    def equipment_score(self, eq_id: str) -> float:
        """Weakest point of the equipment."""
        rows = self.points[self.points["equipment"] == eq_id]
        if rows.empty:
            raise KeyError(f"no scored points on equipment {eq_id!r}")
        return float(rows["score"].min())

    def equipment(self) -> pd.DataFrame:
        """Per equipment: score (min), mean, points, weakest tag and its worst reason."""
        df = self.points.sort_values("score", kind="stable")
        g = df.groupby("equipment", sort=True)
        out = g.agg(score=("score", "min"), mean=("score", "mean"), points=("tag", "count"))
        first = g.first()
        out["weakest"] = first["tag"]
        out["worst_reason"] = first["worst_reason"]
        out["level"] = [self.thresholds.level(float(s)) for s in out["score"]]
        return out.reset_index()

    def decision_score(self, tags: Iterable[str]) -> tuple[float, list[str]]:
        """Weakest-link score of the points a decision rests on, and why (``tag: reason``)."""
        tags = list(tags)
        if not tags:
            return 1.0, []
        missing = [t for t in tags if t not in self._by_tag.index]
        if missing:
            raise KeyError(f"no quality score for {missing[:5]}")
        rows = self._by_tag.loc[tags].sort_values("score", kind="stable")
        why = [
            f"{r.tag}: {r.worst_reason}"
            for r in rows.itertuples(index=False)
            if r.score < self.thresholds.level3 and r.worst_reason
        ]
        return float(rows["score"].min()), why

    def level(self, tags: Iterable[str], thresholds: QualityThresholds | None = None) -> int:
        """Highest autonomy level the data behind ``tags`` allows."""
        th = thresholds or self.thresholds
        return th.level(self.decision_score(tags)[0])
