"""The graph's nodes: small async functions ``(state, config) -> update``.

observe → assess_quality → evaluate_policies → whatif → gate → recommend → act
→ [wait_for_approval → act] → verify → report. Each reads its dependencies from
``config["configurable"]["ctx"]`` (:class:`agent.context.AgentContext`) and writes
its own audit rows; the wiring is in :mod:`agent.graph`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from agent.context import AgentContext, CycleScratch, QualityResult, get_ctx
from agent.decision import (
    Answer,
    Change,
    Decision,
    Outcome,
    PredictionRecord,
    QualityRecord,
    decisions_of,
    from_trigger,
    new_id,
)
from agent.state import CycleState
from agent.summary import summarise
from connectors.errors import FacilityError, NonFiniteValue, WriteFailed, WriteRejected
from tools import gate
from tools.actuation import VerifySpec, override_tag
from tools.modelmap import model_output_for
from tools.policies import Observation, Trigger
from tools.policies.engine import ProposedAction, ValuesView
from tools.scope import write_scope
from tools.telemetry import latest_array

log = logging.getLogger(__name__)


def _now(state: CycleState) -> datetime:
    return datetime.fromisoformat(state["now"])


def _scratch(ctx: AgentContext, state: CycleState) -> CycleScratch:
    s = ctx.scratch.get(state["run_id"])
    if s is None:  # resumed in a new process: observe again (read-only)
        now = ctx.clock.now()
        s = CycleScratch(latest_array(ctx.store, ctx.site, now, ctx.lookback))
        ctx.scratch[state["run_id"]] = s
    return s


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


# ---- observe / quality / policies --------------------------------------------------------------
async def observe(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    now = ctx.clock.now()
    snap = latest_array(ctx.store, ctx.site, now, ctx.lookback)
    ctx.scratch[state["run_id"]] = CycleScratch(snap)
    ctx.audit.start_run(state["run_id"], state.get("trigger", "schedule"), now)
    return {"now": now.isoformat(), "n_values": int(np.isfinite(snap.values).sum())}


async def assess_quality(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    tags = ctx.engine.referenced_tags
    try:
        s.quality = ctx.quality_for(_now(state), tags)
    except Exception as err:  # a broken scorer must not stop the loop: trust nothing instead
        log.error("quality scorer failed: %s: %s", type(err).__name__, err)
        why = [f"quality scorer failed ({type(err).__name__}): nothing can be trusted"]
        s.quality = QualityResult(dict.fromkeys(tags, 0.0), dict.fromkeys(tags, why))
        return {"notes": [why[0]]}
    return {}


async def evaluate_policies(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    now = _now(state)
    qarr = None
    if s.quality is not None:
        qarr = np.full(len(ctx.site.point_ids), np.nan)
        ids = ctx.site.point_ids
        for t, v in s.quality.scores.items():
            i = ids.get(t)
            if i is not None:
                qarr[i] = v

    def history(tags: Sequence[str], seconds: float) -> pd.DataFrame:
        df = ctx.store.window(
            list(tags), now - timedelta(seconds=seconds), now + timedelta(microseconds=1)
        )
        return df[df["status"] == 0].drop(columns="status")

    ctx.engine.suppressed = ctx.audit.pending_instance_keys()  # one open request per instance
    triggers = ctx.engine.evaluate(Observation(now, s.snapshot.values, qarr, history))
    if ctx.faults is not None and ctx.faults.engine is ctx.engine:
        q = s.quality
        if q is not None:  # the sensors that judge an open isolated fault's absence, scored too
            q = s.quality = _scored(ctx, now, q, ctx.faults.judging_tags(ctx.site.point_ids))
        isolated = q.isolated() if q is not None else []
        scores = q.scores if q is not None else None
        for ev in ctx.faults.update(now, isolated, scores):  # raised / cleared rows in `faults`
            log.info("fault %s %s: %s", ev.instance_key, ev.event, ev.fault_id)
    return {"decisions": [_decision(ctx, state, t, s) for t in triggers]}


def _decision(ctx: AgentContext, state: CycleState, t: Trigger, s: CycleScratch) -> Decision:
    score, reasons = s.quality.decision(t.rests_on) if s.quality is not None else (1.0, [])
    return from_trigger(
        t,
        run_id=state["run_id"],
        ts=_now(state),
        quality=QualityRecord(round(score, 4), tuple(reasons[:10])),
        verify_tag=ctx.engine.verify_tag(t.instance),
    )


# ---- what-if ------------------------------------------------------------------------------------
def _values_view(ctx: AgentContext, s: CycleScratch) -> dict[str, float]:
    return {
        k: v
        for k, v in ValuesView(ctx.site.point_ids, s.snapshot.values).items()
        if not math.isnan(v)
    }


async def whatif(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    view: dict[str, float] | None = None
    out = []
    for d in decisions_of(state.get("decisions", [])):
        if not d.action.writes or d.whatif_req == "none":
            bad = gate.nonfinite((c.tag, c.value) for c in d.action.changes)
            lvl, why = gate.whatif_level(None, "none", refused=bad)
            out.append(replace(d, prediction=None, whatif_level=lvl, whatif_reason=why))
            continue
        if view is None:
            view = _values_view(ctx, s)
        out.append(_predict(ctx, d, view))
    return {"decisions": out}


def _predict(
    ctx: AgentContext, d: Decision, view: Mapping[str, float], optimise: bool = True
) -> Decision:
    """Ask the performance model (or, for an ``optimise`` action when ``optimise``, the
    optimiser) about the decision's changes. A NaN or infinite value is refused (level 0)."""
    act = d.action
    pred, err, bad = None, None, gate.nonfinite((c.tag, c.value) for c in act.changes)
    try:
        if bad is not None:
            pass
        elif act.kind == "optimise" and optimise:
            if ctx.optimise is None:
                err = "no optimiser"
            else:
                changes, pred = ctx.optimise(ctx.site, view, act.variables)
                act = replace(act, changes=tuple(Change(t, v, view.get(t)) for t, v in changes))
                bad = gate.nonfinite(changes)
        elif ctx.whatif is None:
            err = "no performance model"
        else:
            pred = ctx.whatif(ctx.site, view, [(c.tag, c.value) for c in act.changes])
    except NonFiniteValue as e:
        pred, bad = None, str(e)
    except (FacilityError, ValueError, ArithmeticError, KeyError, TypeError) as e:
        pred, err = None, f"{type(e).__name__}: {e}"
    if bad is not None:
        pred = None
    record = PredictionRecord.of(pred) if pred is not None else None
    lvl, why = gate.whatif_level(
        record, d.whatif_req, err, refused=bad, toward_safety=_toward_safety(ctx, act, view)
    )
    if act.kind == "optimise" and optimise and pred is not None and not act.changes:
        why = "optimiser: no better set points"
    return replace(d, action=act, prediction=record, whatif_level=lvl, whatif_reason=why)


def _toward_safety(ctx: AgentContext, act: ProposedAction, view: Mapping[str, float]) -> bool:
    """Every change moves its point in its declared ``safe_direction`` (from the value now)."""
    if not act.changes:
        return False
    for c in act.changes:
        p = ctx.site.points_by_tag.get(c.tag)
        lim = p[1].write if p is not None else None
        if lim is None or not lim.toward_safety(view.get(c.tag, c.previous), c.value):
            return False
    return True


def predicted_value(prediction: PredictionRecord | None, tag: str) -> float | None:
    """What the what-if predicted for ``tag`` after the change (None when it says nothing)."""
    key = model_output_for(tag)
    if prediction is None or key is None:
        return None
    return prediction.output(key)


# ---- gate ---------------------------------------------------------------------------------------
def _scope(ctx: AgentContext, d: Decision) -> tuple[str, ...]:
    """The points the decision rests on (:func:`tools.scope.write_scope`); the what-if's
    inputs count when a model is there to read them."""
    written = [c.tag for c in d.action.changes]
    model = ctx.optimise if d.action.kind == "optimise" else ctx.whatif
    return write_scope(ctx.site, d.rests_on, written, d.whatif_req != "none" and model is not None)


def _scored(
    ctx: AgentContext, now: datetime, have: QualityResult | None, tags: set[str]
) -> QualityResult:
    """``have`` widened to ``tags`` (scored at ``now``); a failing scorer trusts nothing new."""
    if have is not None and tags <= have.scores.keys():
        return have
    old = have or QualityResult({})
    try:
        new = ctx.quality_for(now, sorted(tags | old.scores.keys()))
    except Exception as err:  # a broken scorer must not stop the loop: trust nothing instead
        log.error("quality scorer failed: %s: %s", type(err).__name__, err)
        why = [f"quality scorer failed ({type(err).__name__}): nothing can be trusted"]
        new = QualityResult(dict.fromkeys(tags, 0.0), dict.fromkeys(tags, why))
    return QualityResult(
        {**old.scores, **new.scores}, {**old.reasons, **new.reasons}, {**old.faults, **new.faults}
    )


def quality_record(q: QualityResult, scope: Sequence[str]) -> QualityRecord:
    """The weakest point of ``scope`` decides; the record names it first (tag and reasons)."""
    score, reasons = q.decision(scope)
    if not scope or score >= 0.95:
        return QualityRecord(round(score, 4), tuple(reasons[:10]))

    def of(t: str) -> float:
        v = q.scores.get(t, 0.0)
        return 0.0 if math.isnan(v) else v

    weakest = min(scope, key=of)
    mine = [r for r in reasons if r.startswith(f"{weakest}: ")]
    rest = [r for r in reasons if not r.startswith(f"{weakest}: ")]
    head = f"weakest point {weakest} ({of(weakest):.2f})"
    return QualityRecord(round(score, 4), tuple([head, *mine, *rest][:10]))


def judge(
    ctx: AgentContext, snapshot: CycleScratch, d: Decision, control: gate.GateControl
) -> gate.GateVerdict:
    """The whole gate on one decision: control, policy ceiling, data quality of its scope,
    what-if level (already in ``d``), operator override on its targets."""
    changes = d.action.changes
    q = d.quality
    ql = gate.quality_level(q.score, ctx.site.quality, d.min_quality)
    held = [c.tag for c in changes if _override_on(ctx, snapshot, c.tag)]
    reasons = {
        "quality": f"data quality {q.score:.2f} allows level {ql}"
        + (f" ({'; '.join(q.reasons[:3])})" if q.reasons else ""),
        "whatif": d.whatif_reason,
    }
    if held:
        reasons["override"] = (
            f"operator override holds {', '.join(held)}: respected, nothing written"
        )
    return gate.evaluate(
        d.decision_id,
        control=control,
        policy_ceiling=d.policy_ceiling,
        quality=ql,
        whatif=d.whatif_level,
        writes=bool(changes),
        notify_only=d.action.kind in ("alarm", "notify"),
        override=bool(held),
        reasons=reasons,
    )


async def gate_node(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    now = _now(state)
    control = ctx.control()
    decisions = decisions_of(state.get("decisions", []))
    scopes = {d.decision_id: _scope(ctx, d) for d in decisions if d.action.changes}
    if scopes:  # the quality scope of a write: widen the scores to every point it rests on
        s.quality = _scored(ctx, now, s.quality, {t for sc in scopes.values() for t in sc})
    out = []
    with ctx.audit.batch():  # the cycle's decisions and approval requests: one commit
        for d in decisions:
            if d.decision_id in scopes and s.quality is not None:
                d = replace(d, quality=quality_record(s.quality, scopes[d.decision_id]))
            v = judge(ctx, s, d, control)
            approval_id = new_id("apr") if v.outcome == "approval_requested" else None
            d = replace(d, verdict=v, approval_id=approval_id)
            d = replace(d, explanation=explain(d))
            if approval_id is not None:
                ctx.audit.approval_event(approval_id, d.decision_id, now, "pending")
            ctx.audit.record_decision(d, now)
            out.append(d)
    return {"decisions": out}


def _override_on(ctx: AgentContext, s: CycleScratch, tag: str) -> bool:
    ov = override_tag(tag)
    i = ctx.site.point_ids.get(ov)
    return i is not None and bool(s.snapshot.values[i] >= 0.5)


_ROUTE_TEXT: dict[Outcome, str] = {
    "executed": "carrying it out now (full autonomy)",
    "approval_requested": "waiting for an operator to approve",
    "recommended": "recommendation for a person to carry out",
    "alarm": "alarm raised",
    "blocked": "blocked",
    "rejected_by_gate": "rejected: the what-if predicts a broken constraint",
}


def explain(d: Decision) -> str:
    """The decision in operator language (deterministic; the LLM may rephrase, never decide)."""
    if d.verdict is None:
        raise ValueError(f"decision {d.decision_id} has no verdict to explain")
    act = d.action
    ev = "; ".join(
        f"{e.tag or e.ref} = {e.value:.4g}" if e.value is not None else f"{e.ref} missing"
        for e in d.evidence[:4]
    )
    what = (
        ", ".join(
            f"{c.tag} → {c.value:.4g}"
            + (f" (now {c.previous:.4g})" if c.previous is not None else "")
            for c in act.changes
        )
        or act.message
        or act.kind
    )
    v = d.verdict
    why = "; ".join(v.reasons[f] for f in v.set_by if v.reasons.get(f))
    route = _ROUTE_TEXT[v.outcome]
    if v.outcome == "approval_requested":
        route += f" ({d.approval_id})"
    return (
        f"{d.description}{' on ' + d.equipment if d.equipment else ''}. "
        f"Evidence: {ev}. Proposed: {what}. Level {v.level} ({gate.LEVEL_NAMES[v.level]}), set by "
        f"{'/'.join(v.set_by)}: {why}. Outcome: {route}."
    )


# ---- recommend / approval / act -----------------------------------------------------------------
async def recommend(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    """Recommendations and alarms are already in the audit; collect them for the report."""
    notes = [
        f"{d.route}: {d.policy_id}{'@' + d.equipment if d.equipment else ''}"
        for d in decisions_of(state.get("decisions", []))
        if d.route in ("recommended", "alarm", "blocked", "rejected_by_gate")
    ]
    return {"notes": notes}


def _answered(
    ctx: AgentContext, decisions: list[Decision]
) -> tuple[list[Decision], list[Decision]]:
    """(the decisions with answers the approvals table holds filled in, those still unanswered)."""
    out, pending = [], []
    for d in decisions:
        if d.awaiting_answer and d.approval_id is not None:
            a = ctx.audit.approval(d.approval_id)
            if a is not None and a.state != "pending":
                d = replace(d, answer=Answer(a.state, a.by_whom, a.why))
            else:
                pending.append(d)
        out.append(d)
    return out, pending


async def wait_for_approval(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    """Pause (durably, via interrupt) until every approval of this run is answered.

    Answers are recorded in the ``approvals`` table (by the API or CLI) and the run is
    resumed with ``Command(resume={"approval_id": ..., "state": "approved"|"rejected"|
    "cancelled", "by": ..., "why": ...})``; the table is the source of truth.
    """
    ctx = get_ctx(config)
    decisions = decisions_of(state.get("decisions", []))
    while True:
        decisions, pending = _answered(ctx, decisions)
        if not pending:
            break
        value = interrupt(
            {
                "run_id": state["run_id"],
                "approvals": [
                    {
                        "approval_id": d.approval_id,
                        "decision_id": d.decision_id,
                        "policy_id": d.policy_id,
                        "action": d.as_json()["action"],
                        "explanation": d.explanation,
                    }
                    for d in pending
                ],
            }
        )
        if isinstance(value, dict) and value.get("approval_id"):
            a = ctx.audit.approval(str(value["approval_id"]))
            answer = value.get("state")
            if a is not None and a.state == "pending" and answer in gate.ANSWERS:
                ctx.audit.approval_event(
                    a.approval_id,
                    a.decision_id,
                    ctx.clock.now(),
                    answer,
                    str(value.get("by", "")),
                    str(value.get("why", "")),
                )
    return {"decisions": decisions, "waited": True}


def _ready(d: Decision) -> bool:
    """Carried out now: full autonomy, or human validation with an approval."""
    if d.done or d.verdict is None:
        return False
    approved = d.answer is not None and d.answer.state == "approved"
    return d.route == "executed" or (d.route == "approval_requested" and approved)


async def act(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    decisions: list[Decision] = []
    actions: list[dict[str, Any]] = []
    for d in decisions_of(state.get("decisions", [])):
        if not _ready(d):
            decisions.append(d)
            continue
        d = replace(d, done=True)
        if ctx.audit.journal.for_decision(d.decision_id):
            decisions.append(d)  # already attempted (a resumed run): reconcile settles it
            continue
        d, rows = await _carry_out(ctx, d)
        decisions.append(d)
        actions += rows
    return {"decisions": decisions, "actions": actions}


async def _carry_out(ctx: AgentContext, d: Decision) -> tuple[Decision, list[dict[str, Any]]]:
    """Authorise (the gate) and write (the actuator) one decision's changes; audit the result."""
    now = ctx.clock.now()
    approval = ctx.audit.approval(d.approval_id) if d.approval_id else None
    changes = [gate.AuthorizedChange(c.tag, float(c.value), c.previous) for c in d.action.changes]
    verify = None
    baseline = None
    if d.verify is not None:
        vf = d.verify
        verify = VerifySpec(
            vf.tag, vf.expect, vf.window_s, vf.tolerance, predicted_value(d.prediction, vf.tag)
        )
    snap = CycleScratch(latest_array(ctx.store, ctx.site, now, ctx.lookback))
    if verify is not None:
        baseline = _num(snap.snapshot.get(ctx.site, verify.tag))
    control = ctx.control()
    verdict, recheck = reevaluate(ctx, d, now, snap, control)
    d = replace(d, recheck=recheck)
    try:
        auth = gate.authorize(verdict, changes, control=control, now=now, approval=approval)
        rows = await ctx.actuator.execute(auth, verify, baseline)
    except (WriteRejected, WriteFailed) as err:
        said = d.recheck.removeprefix("re-evaluated at write time: ") in str(err)
        extra = f" ({d.recheck})" if d.recheck and not said else ""
        d = replace(d, executed=False, explanation=f"{d.explanation} Not carried out: {err}{extra}")
        ctx.audit.record_decision(d, now)
        return d, [{"decision_id": d.decision_id, "error": str(err)}]
    by = approval.by_whom if approval else "agent"
    text = (
        f"{d.explanation} Written: "
        + ", ".join(
            f"{r.tag} = {r.written:.4g} (read back {r.read_back:.4g})"
            for r in rows
            if r.written is not None and r.read_back is not None
        )
        + f" — authorised by {by}."
    )
    d = replace(d, executed=True, explanation=text)
    ctx.audit.record_decision(d, now)
    if auth.level >= 3 and ctx.autolock.record(now, d.policy_id):
        c = ctx.control()
        reason = ctx.autolock.reason(d.policy_id) or "too many autonomous actions"
        ctx.set_control(
            gate.GateControl(c.site_ceiling, True, reason, c.estop), "auto-lock", reason
        )
    return d, [r.as_dict() for r in rows]


def reevaluate(
    ctx: AgentContext, d: Decision, now: datetime, snap: CycleScratch, control: gate.GateControl
) -> tuple[gate.GateVerdict, str]:
    """Approval is consent, never authority: the whole gate again, on current data, at the
    moment of writing — the control now (ceiling, e-stop, auto-lock), operator overrides,
    the data quality of the write's scope and a fresh what-if of the same changes.

    Returns the verdict to authorise with (the stored one, only ever lowered —
    :func:`tools.gate.at_write_time`) and, when it came out lower, why."""
    v = d.verdict
    if v is None:
        raise ValueError(f"decision {d.decision_id} has no verdict")
    scope = _scope(ctx, d)
    snap.quality = _scored(ctx, now, None, set(scope))
    fresh = replace(d, quality=quality_record(snap.quality, scope))
    if d.action.writes and d.whatif_req != "none":
        fresh = _predict(ctx, fresh, _values_view(ctx, snap), optimise=False)
    else:
        bad = gate.nonfinite((c.tag, c.value) for c in d.action.changes)
        lvl, why = gate.whatif_level(None, "none", refused=bad)
        fresh = replace(fresh, whatif_level=lvl, whatif_reason=why)
    final = gate.at_write_time(v, judge(ctx, snap, fresh, control))
    if final.level >= v.level:
        return final, ""
    return final, f"re-evaluated at write time: {gate.why_level(final)}"


async def verify(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    due = [
        r
        for r in ctx.audit.journal.latest()
        if r.state == "done" and (r.detail.get("verify") or {}).get("status") == "pending"
    ]
    if not due:
        return {"verifications": []}
    snap = latest_array(ctx.store, ctx.site, ctx.clock.now(), ctx.lookback)
    tags = {r.detail["verify"]["tag"] for r in due}
    rows = await ctx.actuator.check_verifications(snap.as_dict(ctx.site, sorted(tags)))
    return {"verifications": [r.as_dict() for r in rows]}


async def report(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    now = ctx.clock.now()
    decisions = decisions_of(state.get("decisions", []))
    by: dict[str, int] = {}
    for d in decisions:
        o: str = d.outcome
        if d.route == "approval_requested" and d.answer is not None and d.executed is None:
            o = d.answer.state
        by[o] = by.get(o, 0) + 1
    rolled = [v for v in state.get("verifications", []) if v["state"] == "rolled_back"]
    rep: dict[str, Any] = {
        "run_id": state["run_id"],
        "decisions": len(decisions),
        "by_outcome": by,
        "rolled_back": [r["action_id"] for r in rolled],
    }
    tin = tout = 0
    if ctx.llm is not None and decisions:
        try:
            rep["summary"], tin, tout = await summarise(ctx.llm, decisions)
        except Exception as err:  # an external service: without it the cycle stays deterministic
            rep["summary_error"] = f"{type(err).__name__}: {err}"
    ctx.audit.finish_run(state["run_id"], now, "done", tin, tout)
    ctx.scratch.pop(state["run_id"], None)
    return {"report": rep}


# ---- routing ------------------------------------------------------------------------------------
def after_act(state: CycleState) -> str:
    if state.get("waited") or state.get("approvals_mode", "interrupt") != "interrupt":
        return "verify"
    pending = [d for d in decisions_of(state.get("decisions", [])) if d.awaiting_answer]
    return "wait_for_approval" if pending else "verify"
