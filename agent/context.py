"""Dependencies of a run — store, site, writer, clock, model, quality scorer — in one object.

Nodes receive it through ``config["configurable"]["ctx"]`` (:func:`get_ctx`), never
through globals: the eval suite builds one with a :class:`~connectors.clock.ManualClock`
and a RecordingWriter, the demo with the system clock and a Modbus writer.

Seams (each a plain callable, replaceable in tests and evals):

``quality(store, site, now, tags) -> QualityResult``  scores 0–1 and reasons per tag
                                                      (default: :mod:`tools.quality`'s
                                                      incremental scorer, no cache)
``whatif(site, values, changes) -> prediction``       perfmodel Prediction (default:
                                                      :func:`tools.whatif.check` on the
                                                      site's calibrated parameters in use,
                                                      ``ctx.state.model``)
``optimise(site, values, variables) -> (changes, prediction)``  efficiency policies
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig

from agent.audit import Audit
from connectors.clock import Clock, SystemClock
from connectors.site import Site
from connectors.store import Store
from connectors.writer import PointWriter
from perfmodel.optimise import lever_grid as optimiser_grid
from perfmodel.optimise import optimise as optimise_plant
from perfmodel.plantcal import PlantParameters
from perfmodel.whatif import Prediction
from tools.actuation import Actuator
from tools.fdd import policy_file
from tools.gate import APPROVAL_TTL_S, AutoLock, GateControl
from tools.modelmap import OPTIMISER_FIELDS, field_changes_to_tags, write_range
from tools.policies import LoadedPolicy, PolicyEngine, load_library, load_policies
from tools.policies.faults import FaultLog
from tools.quality import IncrementalScorer
from tools.quality.report import EquipmentFault
from tools.site_state import SiteState
from tools.telemetry import Snapshot
from tools.whatif import TagChange, state_from_values
from tools.whatif import check as whatif_check


@dataclass
class QualityResult:
    scores: dict[str, float]
    reasons: dict[str, list[str]] = field(default_factory=dict)
    # equipment id → faults of the machine the residuals isolated (its sensors read true)
    faults: dict[str, list[EquipmentFault]] = field(default_factory=dict)

    def isolated(self) -> list[EquipmentFault]:
        """Every equipment fault the residuals isolated, in equipment order."""
        return [f for fs in self.faults.values() for f in fs]

    def decision(self, tags: Sequence[str]) -> tuple[float, list[str]]:
        """Weakest link over the tags a decision rests on; unknown tags count as 0. The
        reasons end with the equipment faults of the tags' equipment (they lower nothing:
        the sensors that show them are trusted)."""
        if not tags:
            return 1.0, []
        worst, why = 1.0, []
        for t in tags:
            s = self.scores.get(t, 0.0)
            if math.isnan(s):
                s = 0.0
            if s < worst - 1e-12:
                worst = s
            if s < 0.95:
                why += [f"{t}: {r}" for r in (self.reasons.get(t) or [f"score {s:.2f}"])]
        eqs = dict.fromkeys(t.split(".", 1)[0] for t in tags)
        why += [f"equipment fault: {f.message}" for e in eqs for f in self.faults.get(e, [])]
        return worst, why


QualityFn = Callable[[Store, Site, datetime, Sequence[str]], QualityResult]
WhatIfFn = Callable[[Site, Mapping[str, float], Sequence[tuple[str, float]]], Prediction]
OptimiseFn = Callable[
    [Site, Mapping[str, float], Sequence[str]], tuple[list[tuple[str, float]], Prediction]
]


def default_quality(window: timedelta = timedelta(minutes=15)) -> QualityFn:
    """tools.quality's incremental scorer adapted to :class:`QualityResult`.

    The scorer's per-point running state lives in this closure (one per context, built
    from the store's window at the first call — a start — then fed only the new rows);
    every call scores the data present at ``now``: nothing is cached across a start.
    """
    held: list[tuple[Store, Site, IncrementalScorer]] = []

    def run(store: Store, site: Site, now: datetime, tags: Sequence[str]) -> QualityResult:
        if not held or held[0][0] is not store or held[0][1] is not site:
            held[:] = [(store, site, IncrementalScorer(store, site, window))]
        sc = held[0][2]
        sc.refresh(now)
        rep = sc.report(now, list(tags))
        df = rep.points
        scores = dict(zip(df["tag"], df["score"].astype(float), strict=True))
        reasons = {t: list(r) for t, r in zip(df["tag"], df["reasons"], strict=True)}
        faults: dict[str, list[EquipmentFault]] = {}
        for f in rep.faults:
            faults.setdefault(f.equipment, []).append(f)
        return QualityResult(scores, reasons, faults)

    return run


ParamsFn = Callable[[], PlantParameters | None]


def default_whatif(params: ParamsFn = lambda: None) -> WhatIfFn:
    """:func:`tools.whatif.check`: tag writes → Prediction, on the parameters ``params()``
    gives at the moment of the call (the site's calibration in use; None = catalogue)."""

    def run(
        site: Site, values: Mapping[str, float], changes: Sequence[tuple[str, float]]
    ) -> Prediction:
        tags = [TagChange(t, float(v)) for t, v in changes]
        return whatif_check(site, values, tags, params())

    return run


def default_optimise(params: ParamsFn = lambda: None) -> OptimiseFn:
    """perfmodel's grid optimiser over the policy's variables, from tools.whatif's state
    (on the calibrated parameters ``params()`` gives)."""

    def run(
        site: Site, values: Mapping[str, float], variables: Sequence[str]
    ) -> tuple[list[tuple[str, float]], Prediction]:
        state = state_from_values(site, values, params())
        free = {OPTIMISER_FIELDS[v] for v in variables if v in OPTIMISER_FIELDS}
        grid = optimiser_grid(state, free)
        for k in free & grid.keys():  # candidates the points' write limits allow
            if (rng := write_range(site, k)) is not None:
                now = float(getattr(state, k))
                grid[k] = [x for x in grid[k] if rng[0] <= x <= rng[1] or x == now]
        res = optimise_plant(state, grid)
        changes = {c.target: float(c.value) for c in res.changes}
        return field_changes_to_tags(site, values, changes), res.prediction

    return run


@dataclass
class CycleScratch:
    """Per-run inputs too big for the checkpointed state."""

    snapshot: Snapshot
    quality: QualityResult | None = None


def default_policies(state: SiteState) -> list[LoadedPolicy]:
    """The shipped library, plus the chiller fault policies once the site has a chiller
    reference (:func:`tools.fdd.save_reference`)."""
    policies = load_library()
    if state.fdd.has_chiller_reference():
        policies += load_policies([policy_file("chiller_fdd")])
    return policies


@dataclass
class AgentContext:
    site: Site
    store: Store
    writer: PointWriter
    clock: Clock
    engine: PolicyEngine
    audit: Audit
    actuator: Actuator
    state: SiteState = field(default_factory=SiteState)
    quality: QualityFn | None = None
    whatif: WhatIfFn | None = None
    optimise: OptimiseFn | None = None
    approvals: Literal["interrupt", "record"] = "interrupt"
    lookback: timedelta = timedelta(minutes=2)
    autolock: AutoLock = field(default_factory=AutoLock)
    # how long an approval request may wait for its answer, in the context's clock (plant
    # time on a twin): answered later, it expires and nothing is written
    approval_ttl_s: float = APPROVAL_TTL_S
    llm: Any | None = None
    # faults raised and cleared (tools.policies.faults), after every evaluation; None: not kept
    faults: FaultLog | None = None
    checkpoint_path: Path | None = None
    scratch: dict[str, CycleScratch] = field(default_factory=dict)
    _graph: Any = None
    _saver: Any = None
    _quality_cache: tuple[datetime, QualityResult] | None = None

    @classmethod
    def build(
        cls,
        site: Site,
        store: Store,
        writer: PointWriter,
        clock: Clock | None = None,
        policies: Sequence[LoadedPolicy] | None = None,
        approvals: Literal["interrupt", "record"] = "interrupt",
        checkpoint_path: str | Path | None = None,
        quality: QualityFn | Literal["auto"] | None = "auto",
        whatif: WhatIfFn | Literal["auto"] | None = "auto",
        optimise: OptimiseFn | Literal["auto"] | None = "auto",
        llm: Any | None = None,
        autolock: AutoLock | None = None,
        site_state: SiteState | None = None,
    ) -> AgentContext:
        """``site_state``: the site's remembered state (default: loaded from ``store``)."""
        clock = clock or SystemClock()
        if not all(t in store.tags for t in site.point_ids):
            store.register_site(site)
        audit = Audit(store)
        state = site_state if site_state is not None else SiteState.load(store)
        registry = state.registry()
        if policies is not None:
            engine = PolicyEngine(list(policies), site, registry=registry, state=state.policies)
        else:  # the library: what applies to the site
            engine = PolicyEngine(
                default_policies(state), site, strict=False, registry=registry, state=state.policies
            )
        ctx = cls(
            site=site,
            store=store,
            writer=writer,
            clock=clock,
            engine=engine,
            audit=audit,
            actuator=Actuator(
                site,
                writer,
                audit.journal,
                clock,
                lambda: audit.control(site.autonomy_ceiling, fresh=True),
            ),
            approvals=approvals,
            llm=llm,
            checkpoint_path=Path(checkpoint_path) if checkpoint_path else None,
            autolock=autolock or AutoLock(),
            state=state,
            faults=FaultLog(engine, store),
        )
        ctx.quality = default_quality() if quality == "auto" else quality
        in_use: ParamsFn = lambda: ctx.state.model.params  # noqa: E731
        ctx.whatif = default_whatif(in_use) if whatif == "auto" else whatif
        ctx.optimise = default_optimise(in_use) if optimise == "auto" else optimise
        ctx.autolock.seed(audit.autonomous_actions(clock.now() - ctx.autolock.window))
        return ctx

    # ---- control settings -------------------------------------------------------------------
    def control(self) -> GateControl:
        return self.audit.control(self.site.autonomy_ceiling)

    def set_control(self, c: GateControl, by_whom: str, why: str = "") -> GateControl:
        return self.audit.set_control(c, self.clock.now(), by_whom, why)

    # ---- quality: scored on the data present at each call (the scorer is incremental) --------
    def quality_for(self, now: datetime, tags: Sequence[str]) -> QualityResult:
        """Scores of ``tags`` at ``now``. Reused only for the same instant (the last result is
        kept in ``_quality_cache`` for the eval's quality plot); never from before a start."""
        if self.quality is None:
            return QualityResult({t: 1.0 for t in tags})
        c = self._quality_cache
        if c is not None and c[0] == now and all(t in c[1].scores for t in tags):
            return c[1]
        res = self.quality(self.store, self.site, now, tags)
        self._quality_cache = (now, res)
        return res

    def invalidate_quality(self) -> None:
        self._quality_cache = None

    @property
    def last_quality(self) -> tuple[datetime, QualityResult] | None:
        """The newest quality result (its time and scores), None before the first score."""
        return self._quality_cache


def get_ctx(config: RunnableConfig) -> AgentContext:
    ctx = (config.get("configurable") or {}).get("ctx")
    if not isinstance(ctx, AgentContext):
        raise RuntimeError("the run's config lacks configurable.ctx (an AgentContext)")
    return ctx
