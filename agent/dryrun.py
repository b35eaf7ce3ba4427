"""``decide --dry-run``: what a decision cycle would decide now, with nothing recorded or written.

The same steps as a real cycle (observe, data quality, policies, what-if, the whole gate and
its explanation) on the live store, but on a copy of the policy engine's timers (a dry run
never starts a hold, a cool-down or a suppression of the site's own cycles), no audit row,
no approval request, no write. The decisions carry the verdict a real cycle would reach at
this instant; their outcome says what it would do.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from typing import Any

import numpy as np
from langchain_core.runnables import RunnableConfig

from agent import nodes
from agent.context import AgentContext, CycleScratch
from agent.decision import Decision, decisions_of
from agent.state import CycleState
from tools.policies.engine import PolicyEngine
from tools.policies.state import PolicyState
from tools.telemetry import latest_array


def _engine_copy(engine: PolicyEngine) -> PolicyEngine:
    """The engine with its own timers and memory-only firing state (shares the compiled policies)."""
    e = copy.copy(engine)
    for k, v in vars(engine).items():
        if isinstance(v, np.ndarray | set | dict):
            setattr(e, k, v.copy())
    e.state = PolicyState(dict(engine.state.last_fired), None)
    return e


async def dry_run(ctx: AgentContext) -> list[Decision]:
    """The decisions a cycle would make now (see the module docstring)."""
    shadow = replace(ctx, engine=_engine_copy(ctx.engine), scratch={}, faults=None)
    now = ctx.clock.now()
    run_id = f"dry-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    shadow.scratch[run_id] = CycleScratch(latest_array(ctx.store, ctx.site, now, ctx.lookback))
    state: CycleState = {
        "run_id": run_id,
        "trigger": "cli",
        "approvals_mode": "record",
        "now": now.isoformat(),
    }
    cfg: RunnableConfig = {"configurable": {"ctx": shadow}}
    await nodes.assess_quality(state, cfg)
    state["decisions"] = (await nodes.evaluate_policies(state, cfg))["decisions"]
    state["decisions"] = (await nodes.whatif(state, cfg))["decisions"]
    return _judged(shadow, state, decisions_of(state["decisions"]))


def _judged(ctx: AgentContext, state: CycleState, decisions: list[Decision]) -> list[Decision]:
    """The gate's verdict and explanation per decision, as ``nodes.gate_node`` — unrecorded."""
    s = ctx.scratch[state["run_id"]]
    now = nodes._now(state)
    control = ctx.control()
    scopes = {d.decision_id: nodes._scope(ctx, d) for d in decisions if d.action.changes}
    if scopes:
        s.quality = nodes._scored(ctx, now, s.quality, {t for sc in scopes.values() for t in sc})
    out = []
    for d in decisions:
        if d.decision_id in scopes and s.quality is not None:
            d = replace(d, quality=nodes.quality_record(s.quality, scopes[d.decision_id]))
        v = nodes.judge(ctx, s, d, control)
        d = replace(
            d,
            verdict=v,
            approval_id="(dry run: none requested)" if v.outcome == "approval_requested" else None,
        )
        out.append(replace(d, explanation=nodes.explain(d)))
    return out


def as_json(decisions: list[Decision]) -> list[dict[str, Any]]:
    return [d.as_json() for d in decisions]
