"""Data-quality scores: how far each reading can be trusted, and why.

Public API::

    report = score(store, site, now, window=timedelta(minutes=15), tags=None)  # cold
    sc = IncrementalScorer(store, site, window)   # a running agent: per-point running state
    sc.refresh(now); report = sc.report(now, tags)  # reads only the rows since the last refresh
    report.points                 # DataFrame: tag, equipment, score, freshness, completeness,
                                  #   range, flatline, noise, spike, rate, physics, reasons, worst_reason
    report.point_score(tag) ; report.reasons(tag) ; report.equipment_score(eq_id)
    report.decision_score(tags)   # (weakest-link score, ["tag: reason", …])
    report.level(tags, site.quality)
    report.faults                 # equipment faults the residuals isolated (the sensors read
                                  #   true): e.g. a CDU pump delivering less than its speed
    save(store, report)           # append to the DuckDB table `quality`

Modules: :mod:`.config` (thresholds, which checks apply, instrument specs),
:mod:`.tracker` (incremental per-point state), :mod:`.subscores` and
:mod:`.detectors` (statistics → sub-scores and reasons: stuck against the sensor's
noise, flapping, insufficient history), :mod:`.grid` (bucket means on one time grid),
:mod:`.physics` (cross-sensor rules per equipment kind), :mod:`.residuals` (drift and
bias: redundancy and balance residuals, single-fault isolation), :mod:`.cdu` (a degraded
CDU pump or a biased coolant flow meter: the heat balance decides), :mod:`.report`
(roll-ups), :mod:`.storage` (the ``quality`` table), :mod:`.scorer` (``score``,
:class:`IncrementalScorer`).
"""

from tools.quality.config import DEFAULT_CONFIG, QualityConfig
from tools.quality.physics import DEFAULT_RULES, PhysicsRule, Role
from tools.quality.report import QualityReport
from tools.quality.scorer import IncrementalScorer, score
from tools.quality.storage import QUALITY_DDL, save

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_RULES",
    "QUALITY_DDL",
    "IncrementalScorer",
    "PhysicsRule",
    "QualityConfig",
    "QualityReport",
    "Role",
    "save",
    "score",
]
