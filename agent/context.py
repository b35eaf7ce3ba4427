"""Dependencies of a run — store, site, writer, clock, model, quality scorer — in one object.

Nodes receive it through ``config["configurable"]["ctx"]`` (:func:`get_ctx`), never
through globals: the eval suite builds one with a :class:`~connectors.clock.ManualClock`
and a RecordingWriter, the demo with the system clock and a Modbus writer.

Seams (each a plain callable, replaceable in tests and evals):

``quality(store, site, now, tags) -> QualityResult``  scores 0–1 and reasons per tag
                                                      (default: :mod:`tools.quality`'s
                                                      incremental scorer, no cache)
``whatif(site, values, changes) -> prediction``       perfmodel Prediction (default:
                                                      :func:`tools.whatif.check`)
``optimise(site, values, variables) -> (changes, prediction)``  efficiency policies
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.runnables import RunnableConfig

from agent.audit import Audit
from connectors.clock import Clock, SystemClock
from connectors.site import Site
from connectors.store import Store
from tools.actuation import Actuator, PointWriter
from tools.gate import AutoLock, GateControl
from tools.policies import LoadedPolicy, PolicyEngine, load_library
from tools.telemetry import Snapshot


@dataclass
class QualityResult:
    scores: dict[str, float]
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def decision(self, tags: Sequence[str]) -> tuple[float, list[str]]:
        """Weakest link over the tags a decision rests on; unknown tags count as 0."""
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
        return worst, why


QualityFn = Callable[[Store, Site, datetime, Sequence[str]], QualityResult]
WhatIfFn = Callable[[Site, Mapping[str, float], Sequence[tuple[str, float]]], Any]
OptimiseFn = Callable[
    [Site, Mapping[str, float], Sequence[str]], tuple[list[tuple[str, float]], Any]
]


def default_quality(window: timedelta = timedelta(minutes=15)) -> QualityFn:
    """tools.quality's incremental scorer adapted to :class:`QualityResult`.

    The scorer's per-point running state lives in this closure (one per context, built
    from the store's window at the first call — a start — then fed only the new rows);
    every call scores the data present at ``now``: nothing is cached across a start.
    """
    q = importlib.import_module("tools.quality")
    if not hasattr(q, "IncrementalScorer"):
        raise ModuleNotFoundError("tools.quality has no IncrementalScorer", name="tools.quality")
    held: dict[tuple[int, int], Any] = {}

    def run(store: Store, site: Site, now: datetime, tags: Sequence[str]) -> QualityResult:
        key = (id(store), id(site))
        sc = held.get(key)
        if sc is None:
            held.clear()
            sc = held[key] = q.IncrementalScorer(store, site, window)
        sc.refresh(now)
        df = sc.report(now, list(tags)).points
        scores = dict(zip(df["tag"], df["score"].astype(float), strict=True))
        reasons = {t: list(r) for t, r in zip(df["tag"], df["reasons"], strict=True)}
        return QualityResult(scores, reasons)

    return run


def freshness_quality(snapshot_of: Callable[[], Snapshot | None]) -> QualityFn:
    """A minimal scorer (fallback when tools.quality is absent): freshness against the poll interval."""

    def run(store: Store, site: Site, now: datetime, tags: Sequence[str]) -> QualityResult:
        snap = snapshot_of()
        scores: dict[str, float] = {}
        reasons: dict[str, list[str]] = {}
        for t in tags:
            if snap is None:
                scores[t] = 0.0
                continue
            age = float(snap.age_s[site.point_ids[t]])
            poll = site.point(t).poll_interval_s
            if not np.isfinite(age):
                scores[t], reasons[t] = 0.0, ["no good reading"]
            elif age <= 3 * poll + 2:
                scores[t] = 1.0
            else:
                scores[t] = max(0.0, 1.0 - age / (60 * poll + 60))
                reasons[t] = [f"stale: {age:.0f} s old"]
        return QualityResult(scores, reasons)

    return run


def default_whatif() -> WhatIfFn | None:
    """tools.whatif.check (H3): tag writes → Prediction."""
    try:
        w = importlib.import_module("tools.whatif")
    except ModuleNotFoundError:
        return None
    check, tag_change = getattr(w, "check", None), getattr(w, "TagChange", None)
    if check is None or tag_change is None:
        return None

    def run(site: Site, values: Mapping[str, float], changes: Sequence[tuple[str, float]]) -> Any:
        return check(site, values, [tag_change(t, float(v)) for t, v in changes])

    return run


#: policy ``variables`` → perfmodel PlantState fields the optimiser may move
OPTIMISER_FIELDS = {
    "chw_supply_setpoint": "chw_supply_setpoint_c",
    "cw_supply_setpoint": "cw_supply_setpoint_c",
    "tower_fan": "cw_supply_setpoint_c",
    "staging": "chillers_running",
    "cdu_supply_setpoint": "cdu_supply_setpoint_c",
    "chw_pump_speed": "chw_pump_speed_pct",
    "cw_pump_speed": "cw_pump_speed_pct",
    "crah_fan_speed": "crah_fan_speed_pct",
}


def field_changes_to_tags(
    site: Site, values: Mapping[str, float], field_changes: Mapping[str, float]
) -> list[tuple[str, float]]:
    """Map optimiser changes (PlantState fields) back to writes on the site's points."""
    out: list[tuple[str, float]] = []
    kinds: dict[str, list[str]] = {}
    for eq in site.equipment:
        kinds.setdefault(eq.kind.value, []).append(eq.id)
    for f, v in field_changes.items():
        if f == "chw_supply_setpoint_c":
            out += [(f"{c}.chw_supply_setpoint", v) for c in kinds.get("chiller", [])]
        elif f == "cw_supply_setpoint_c":
            out += [(f"{c}.cw_supply_setpoint", v) for c in kinds.get("cooling_tower", [])]
        elif f == "cdu_supply_setpoint_c":
            out += [(f"{c}.coolant_supply_setpoint", v) for c in kinds.get("cdu", [])]
        elif f in ("chw_pump_speed_pct", "cw_pump_speed_pct"):
            prefix = f.split("_pump")[0] + "_"
            out += [
                (f"{p}.speed_setpoint", v) for p in kinds.get("pump", []) if p.startswith(prefix)
            ]
        elif f == "crah_fan_speed_pct":
            out += [(f"{c}.fan_speed_setpoint", v) for c in kinds.get("crah", [])]
        elif f == "chillers_running":
            chillers = kinds.get("chiller", [])
            running = [c for c in chillers if values.get(f"{c}.running", 0.0) >= 0.5]
            idle = [
                c for c in chillers if c not in running and values.get(f"{c}.tripped", 0.0) < 0.5
            ]
            n = round(v) - len(running)
            if n > 0:
                out += [(f"{c}.enable", 1.0) for c in idle[:n]]
            elif n < 0:
                out += [(f"{c}.enable", 0.0) for c in running[n:]]
    return [(t, val) for t, val in out if t in site.points_by_tag and site.point(t).writable]


def default_optimise() -> OptimiseFn | None:
    """perfmodel's grid optimiser over the policy's variables, from tools.whatif's state."""
    try:
        w = importlib.import_module("tools.whatif")
        opt = importlib.import_module("perfmodel.optimise")
    except ModuleNotFoundError:
        return None
    if not hasattr(w, "state_from_values") or not hasattr(opt, "optimise"):
        return None

    def run(
        site: Site, values: Mapping[str, float], variables: Sequence[str]
    ) -> tuple[list[tuple[str, float]], Any]:
        state = w.state_from_values(site, values)
        state = getattr(state, "state", state)  # StateBuild wraps the PlantState
        grid = dict(opt.default_grid(state))
        free = {OPTIMISER_FIELDS[v] for v in variables if v in OPTIMISER_FIELDS}
        for k in list(grid):
            if k not in free:
                grid[k] = [float(getattr(state, k))]
        res = opt.optimise(state, grid)
        changes = {c.target: float(c.value) for c in res.changes}
        return field_changes_to_tags(site, values, changes), res.prediction

    return run


@dataclass
class CycleScratch:
    """Per-run inputs too big for the checkpointed state."""

    snapshot: Snapshot
    quality: QualityResult | None = None


@dataclass
class AgentContext:
    site: Site
    store: Store
    writer: PointWriter
    clock: Clock
    engine: PolicyEngine
    audit: Audit
    actuator: Actuator
    quality: QualityFn | None = None
    whatif: WhatIfFn | None = None
    optimise: OptimiseFn | None = None
    approvals: Literal["interrupt", "record"] = "interrupt"
    lookback: timedelta = timedelta(minutes=2)
    autolock: AutoLock = field(default_factory=AutoLock)
    llm: Any | None = None
    checkpoint_path: Path | None = None
    scratch: dict[str, CycleScratch] = field(default_factory=dict)
    _graph: Any = None
    _saver: Any = None
    _quality_cache: tuple[datetime, QualityResult] | None = None
    _last_snapshot: Snapshot | None = None

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
    ) -> AgentContext:
        clock = clock or SystemClock()
        if not all(t in store.tags for t in site.point_ids):
            store.register_site(site)
        audit = Audit(store)
        engine = (
            PolicyEngine(list(policies), site)
            if policies is not None
            else PolicyEngine(load_library(), site, strict=False)  # the library: what applies
        )
        ctx = cls(
            site=site,
            store=store,
            writer=writer,
            clock=clock,
            engine=engine,
            audit=audit,
            actuator=Actuator(site, writer, audit.journal, clock),
            approvals=approvals,
            llm=llm,
            checkpoint_path=Path(checkpoint_path) if checkpoint_path else None,
            autolock=autolock or AutoLock(),
        )
        if quality == "auto":
            try:
                ctx.quality = default_quality()
            except ModuleNotFoundError:
                ctx.quality = freshness_quality(lambda: ctx._last_snapshot)
        else:
            ctx.quality = quality
        ctx.whatif = default_whatif() if whatif == "auto" else whatif
        ctx.optimise = default_optimise() if optimise == "auto" else optimise
        ctx.autolock.seed(audit.autonomous_action_times(clock.now() - ctx.autolock.window))
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


def get_ctx(config: RunnableConfig) -> AgentContext:
    ctx = (config.get("configurable") or {}).get("ctx")
    if not isinstance(ctx, AgentContext):
        raise RuntimeError("the run's config lacks configurable.ctx (an AgentContext)")
    return ctx
