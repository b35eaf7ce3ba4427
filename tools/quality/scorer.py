"""``score()`` and :class:`IncrementalScorer`: the data-quality score of every point of a site.

Pipeline: the site's points become a small parameter table (limits, poll interval,
sensor noise and resolution, which checks apply — :mod:`tools.quality.config`); new
readings are folded once into per-point running state (:mod:`tools.quality.tracker`);
a report reduces that state over the window into statistics, pure vectorised
functions turn them into sub-scores and reasons (:mod:`tools.quality.subscores`,
:mod:`tools.quality.detectors`), the cross-sensor physics rules and residuals lower
the points they implicate (:mod:`tools.quality.physics`, :mod:`tools.quality.residuals`);
the point score is the minimum of its sub-scores and roll-ups take the weakest link
(:mod:`tools.quality.report`).

``score(store, site, now, window)`` builds the state from the window's readings (a cold
start); a running agent keeps an :class:`IncrementalScorer` and calls ``refresh(now)``
(only the readings since the last refresh are read) and ``report(now, tags)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.site import Site
from connectors.store import Store
from tools.quality import cdu, detectors
from tools.quality.config import DEFAULT_CONFIG, QualityConfig, point_table
from tools.quality.grid import CellGrid
from tools.quality.physics import (
    DEFAULT_RULES,
    PhysicsRule,
    physics_plan,
    physics_scores,
    role_table,
)
from tools.quality.report import COLUMNS, SUBSCORES, EquipmentFault, QualityReport
from tools.quality.residuals import (
    DEFAULT_RELATIONS,
    Explanation,
    Relation,
    instances,
    member_rows,
    residual_scores,
)
from tools.quality.subscores import columns, nrows, subscore_arrays
from tools.quality.tracker import Batch, PointTracker

# detectors whose result is shown in an existing column of the report (and the `quality`
# table): the column keeps the lower of the two, the reason says which
FOLDED = (("stuck", "flatline"), ("flapping", "noise"), ("history", "completeness"),
          ("residual", "physics"))  # fmt: skip
ALL_SUBSCORES = SUBSCORES + tuple(k for k, _ in FOLDED)
#: the sub-scores about a reading's value, not its arrival (freshness, completeness, history)
VALUE_SUBSCORES = ("range", "flatline", "spike", "noise", "rate", "stuck", "flapping")

_CHUNK_ROWS = 1 << 18
_FETCH = "SELECT ts, point_id, value, status FROM readings WHERE ts > $lo AND ts <= $hi"


class IncrementalScorer:
    """Per-point running state of one site's readings in ``store`` (see the module docstring).

    ``refresh(now)`` reads the readings since the previous refresh (re-reading ``grace``
    before it, for rows a poller flushed late; rows already seen are skipped) and folds
    them in. A ``now`` earlier than a previous refresh, or a store whose point catalogue
    changed, rebuilds the state from the window (a cold start).
    """

    def __init__(
        self,
        store: Store,
        site: Site,
        window: timedelta = timedelta(minutes=15),
        *,
        config: QualityConfig = DEFAULT_CONFIG,
        rules: tuple[PhysicsRule, ...] = DEFAULT_RULES,
        relations: tuple[Relation, ...] = DEFAULT_RELATIONS,
        grace: timedelta = timedelta(seconds=10),
    ) -> None:
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, not {window}")
        self.store, self.site, self.window = store, site, window
        self.config, self.rules, self.relations, self.grace = config, rules, relations, grace
        self._reset()

    def _reset(self) -> None:
        self._catalogue = dict(self.store.tags)
        self.points = point_table(self.site, self._catalogue)
        for c in ("tag", "equipment", "kind", "name", "unit", "brick"):  # plain objects: fast
            self.points[c] = self.points[c].astype(object)
        p = self.points
        self._points0 = columns(p.reset_index(drop=True))  # the report's left half, built once
        self.tracker = PointTracker(
            p["point_id"].to_numpy(),
            p["lo"].to_numpy(float),
            p["hi"].to_numpy(float),
            p["poll_s"].to_numpy(float),
            self.config,
            self.window,
        )
        self.fetched_to: datetime | None = None
        # the sub-scores of every point at the last (now, window, rows folded): a second
        # report on the same data (a decision's wider scope) only selects from it
        self._scored: (
            tuple[
                tuple[datetime, timedelta, int], tuple[dict[str, np.ndarray], list[EquipmentFault]]
            ]
            | None
        ) = None
        # what depends on the site only: the physics rules' roles, the residuals' instances
        self._row_of = {t: i for i, t in enumerate(p["tag"])}
        self._sp_pairs = _setpoint_pairs(p)
        self._physics = physics_plan(role_table(self.site, p, self.rules), self.rules)
        self._instances = instances(p, self.relations)
        self._cdus = cdu.cdu_plan(self.site, p)
        self._grid_rows = np.union1d(
            np.union1d(self._physics.roles["row"].to_numpy(np.int64), member_rows(self._instances)),
            cdu.plan_rows(self._cdus),
        ).astype(np.int64)

    @property
    def rows(self) -> int:
        """Readings folded into the state so far."""
        return self.tracker.rows

    def refresh(self, now: datetime) -> int:
        """Fold the readings up to ``now`` not seen yet; returns how many were new."""
        if self.fetched_to is not None and (
            now < self.fetched_to or len(self.store.tags) != len(self._catalogue)
        ):
            self._reset()
        lo = now - self.window
        if self.fetched_to is not None:
            lo = max(lo, self.fetched_to - self.grace)
        cur = self.store.cursor()
        try:
            table = cur.sql(_FETCH, params={"lo": lo, "hi": now}).to_arrow_table()
        finally:
            cur.close()
        self.fetched_to = now if self.fetched_to is None else max(self.fetched_to, now)
        n = 0
        for off in range(0, table.num_rows, _CHUNK_ROWS):  # cache-sized pieces, in time order
            n += self.tracker.update(Batch.from_arrow(table.slice(off, _CHUNK_ROWS)))
        return n

    def _at_setpoint(self, last: np.ndarray) -> np.ndarray:
        """A controlled variable sitting on its setpoint (same equipment and unit) is not stuck."""
        i, j, tol = self._sp_pairs
        out = np.zeros(len(last), bool)
        with np.errstate(invalid="ignore"):
            hit = np.abs(last[i] - last[j]) <= tol
        out[i[hit]] = True
        return out

    def report(
        self, now: datetime, tags: Sequence[str] | None = None, window: timedelta | None = None
    ) -> QualityReport:
        """Scores of ``tags`` (default: every point) over ``[now - window, now]``.

        Raises KeyError for a tag not in the site.
        """
        window = window or self.window
        if window > self.window:
            raise ValueError(f"window {window} is longer than the state keeps ({self.window})")
        sel = np.arange(len(self.points))
        if tags is not None:
            wanted = list(dict.fromkeys(tags))
            unknown = [t for t in wanted if t not in self.site.points_by_tag]
            if unknown:
                raise KeyError(f"unknown point(s) {unknown[:5]} in site {self.site.name}")
            sel = np.asarray([self._row_of[t] for t in wanted], dtype=np.int64)
        key = (now, window, self.tracker.rows)
        if self._scored is None or self._scored[0] != key:
            self._scored = (key, self._subscores(now, window))
        c, faults = self._scored[1]
        vals = np.column_stack([c[k][sel].astype(float) for k in ALL_SUBSCORES])
        texts = np.column_stack([c[f"{k}_reason"][sel].astype(object) for k in ALL_SUBSCORES])
        out: dict[str, object] = {
            "tag": self.points["tag"].to_numpy()[sel],
            "equipment": self.points["equipment"].to_numpy()[sel],
            "score": np.clip(np.nanmin(vals, axis=1), 0.0, 1.0),
        }
        for k in SUBSCORES:
            out[k] = c[k][sel].astype(float)
        for extra, shown in FOLDED:
            out[shown] = np.fmin(out[shown], c[extra][sel].astype(float))  # type: ignore[call-overload]
        out["reasons"], out["worst_reason"] = _reasons(vals, texts)
        df = pd.DataFrame({k: out[k] for k in COLUMNS})
        return QualityReport(now, window, df, self.site.quality, tuple(faults))

    def _subscores(
        self, now: datetime, window: timedelta
    ) -> tuple[dict[str, np.ndarray], list[EquipmentFault]]:
        """Every sub-score and its reason, per point of the site (the state as it is), and
        the equipment faults the residuals' isolation found."""
        cfg = self.config
        stats = self.tracker.window_arrays(now, window)
        stats.pop("point_id")
        stats["at_setpoint"] = self._at_setpoint(stats["last_value"])
        st = {**self._points0, **stats}  # columns as arrays: no DataFrame until the end
        # columns as arrays; one DataFrame at the end (adding columns one by one is slow)
        c: dict[str, np.ndarray] = subscore_arrays(st, now, window, cfg)
        c["stuck"], c["stuck_reason"] = detectors.stuck(st, cfg)
        c["flapping"], c["flapping_reason"] = detectors.flapping(st, window, cfg)
        c["history"], c["history_reason"] = detectors.history(st, now, window, cfg)

        grid = CellGrid(self.tracker, self._grid_rows, now, window, cfg.physics_recent_buckets)
        phys = physics_scores(grid, self._physics, cfg)
        own = np.column_stack(
            [c[k] for k in ALL_SUBSCORES if k not in ("physics", "residual", "history")]
        )
        known_bad = set(np.flatnonzero(own.astype(float).min(axis=1) < 0.95).tolist())
        # a witness of the CDU isolation is bad when its values are (range, flat, spikes,
        # noise, rate), not when polls went missing: its missing cells are left out there
        values = np.column_stack([c[k] for k in VALUE_SUBSCORES])
        wrong = set(np.flatnonzero(values.astype(float).min(axis=1) < 0.95).tolist())
        tags_all = self.points["tag"].to_numpy()
        findings = cdu.flow_isolation(grid, self._cdus, tags_all, wrong)
        _real_flow_steps(c, findings, self._row_of, cfg)
        known_bad -= {self._row_of[f.flow_tag] for f in findings if f.verdict in REAL_FLOW}
        explained, found = _explain(findings, self._row_of)
        settling = {
            (rel, f.cdu): f.settling
            for f in findings
            if f.settling is not None
            for rel in cdu.HEAT_RELATIONS
        }
        applied: list[tuple[tuple[str, str], float]] = []
        res = residual_scores(
            grid, self.points, cfg, self._instances, phys, known_bad, explained, applied,
            settling,
        )  # fmt: skip
        resolved = dict(applied)
        faults = [
            EquipmentFault(f.equipment, f.kind, f.message, f.tags, resolved[k])
            for k, f in found.items()
            if k in resolved and resolved[k] < 1.0
        ]
        n = nrows(st)
        val, why = np.ones(n), np.full(n, "", dtype=object)
        rows = [self._row_of[t] for t in res["tag"]]
        val[rows] = res["residual"].to_numpy(float)
        why[rows] = res["residual_reason"].to_numpy(object)
        c["residual"], c["residual_reason"] = val, why
        c["physics"], c["physics_reason"] = np.ones(n), np.full(n, "", dtype=object)
        return c, faults


REAL_FLOW = ("pump", "real")  # verdicts where the heat balance confirms the metered flow


def _real_flow_steps(
    c: dict[str, np.ndarray],
    findings: list[cdu.FlowFinding],
    row_of: dict[str, int],
    cfg: QualityConfig,
) -> None:
    """A flow that jumped faster than its rate limit, where the heat balance confirms the new
    flow (a pump fault, or its recovery): the plant moved, not the sensor — scored as an
    equipment event."""
    for f in findings:
        r = row_of[f.flow_tag]
        if f.verdict not in REAL_FLOW or c["rate"][r] >= cfg.event_rate_floor:
            continue
        c["rate"][r] = cfg.event_rate_floor
        why = str(c["rate_reason"][r]).split(", faster than physics allows")[0]
        what = "pump fault" if f.verdict == "pump" else "flow change"
        c["rate_reason"][r] = (
            f"{why}, together with a {f.cdu} {what} the heat balance confirms: "
            "an equipment event, not the sensor"
        )


def _explain(
    findings: list[cdu.FlowFinding], row_of: dict[str, int]
) -> tuple[dict[tuple[str, str], Explanation], dict[tuple[str, str], EquipmentFault]]:
    """The CDU flow isolation as resolutions of the affinity residual: a pump fault blames
    no sensor (and is reported as an equipment fault), a true rise of the flow blames
    nothing, a meter fault blames the meter."""
    explained: dict[tuple[str, str], Explanation] = {}
    faults: dict[tuple[str, str], EquipmentFault] = {}
    for f in findings:
        key = (cdu.AFFINITY_RELATION, f.cdu)
        if f.verdict == "pump":
            explained[key] = None
            faults[key] = EquipmentFault(
                f.cdu, "cdu_pump_degradation", f.message(), (f.flow_tag, f.speed_tag)
            )
        elif f.verdict == "real":  # a true rise (e.g. the pump recovered): nobody to blame
            explained[key] = None
        elif f.verdict == "meter":
            explained[key] = ([row_of[f.flow_tag]], f.message())
    return explained, faults


def score(
    store: Store,
    site: Site,
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    tags: Sequence[str] | None = None,
    *,
    config: QualityConfig = DEFAULT_CONFIG,
    rules: tuple[PhysicsRule, ...] = DEFAULT_RULES,
    relations: tuple[Relation, ...] = DEFAULT_RELATIONS,
) -> QualityReport:
    """Score ``tags`` (default: every point of ``site``) over ``[now - window, now]`` from
    scratch (a cold :class:`IncrementalScorer`).

    Physics rules are evaluated on the whole site (a rule needs its partners) but
    only the requested tags are returned. Raises KeyError for a tag not in the site.
    """
    sc = IncrementalScorer(store, site, window, config=config, rules=rules, relations=relations)
    sc.refresh(now)
    return sc.report(now, tags)


def _reasons(vals: np.ndarray, texts: np.ndarray) -> tuple[list[list[str]], list[str]]:
    """Reasons of sub-scores below 1, worst first (ties: order of ALL_SUBSCORES)."""
    n = len(vals)
    all_reasons: list[list[str]] = [[] for _ in range(n)]
    worst = [""] * n
    for i in np.flatnonzero((vals < 1.0).any(axis=1)):  # only points that lost score
        order = np.argsort(vals[i], kind="stable")
        rs = [str(texts[i, j]) for j in order if vals[i, j] < 1.0 and texts[i, j]]
        all_reasons[i] = rs
        worst[i] = rs[0] if rs else ""
    return all_reasons, worst


def _setpoint_pairs(p: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point row, setpoint row, tolerance) for every measurement that shares its equipment
    and unit with a setpoint — the pairs :meth:`IncrementalScorer._at_setpoint` compares."""
    sp_mask = p["writable"].to_numpy(bool) | p["brick"].str.contains("Setpoint").to_numpy(bool)
    sp = p.loc[sp_mask, ["equipment", "unit"]].reset_index(names="j")
    cand = p.reset_index(names="i").merge(sp, on=["equipment", "unit"])
    cand = cand[~cand["writable"].to_numpy(bool)]
    tol = np.maximum(0.002 * cand["span"].fillna(1.0).to_numpy(float), 1e-6)
    return cand["i"].to_numpy(np.int64), cand["j"].to_numpy(np.int64), tol
