"""The graph's nodes: small async functions ``(state, config) -> update``.

observe → assess_quality → evaluate_policies → whatif → gate → recommend → act
→ [wait_for_approval → act] → verify → report. Each reads its dependencies from
``config["configurable"]["ctx"]`` (:class:`agent.context.AgentContext`) and writes
its own audit rows; the wiring is in :mod:`agent.graph`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from agent.context import AgentContext, CycleScratch, QualityResult, get_ctx
from agent.state import CycleState, Decision
from connectors.errors import FacilityError, WriteFailed, WriteRejected
from tools import gate
from tools.actuation import VerifySpec, new_id, override_tag
from tools.modelmap import model_output_for
from tools.policies import Observation, Trigger
from tools.policies.engine import ValuesView
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
    ctx._last_snapshot = snap
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
    return {"decisions": [_decision(ctx, state, t, s) for t in triggers]}


def _decision(ctx: AgentContext, state: CycleState, t: Trigger, s: CycleScratch) -> Decision:
    p = t.policy
    score, reasons = s.quality.decision(t.rests_on) if s.quality is not None else (1.0, [])
    verify = None
    vtag = ctx.engine.verify_tag(t.instance)
    if p.verify is not None and vtag is not None:
        verify = {
            "tag": vtag,
            "expect": p.verify.expect,
            "window_s": p.verify.window_s,
            "tolerance": p.verify.tolerance,
        }
    return {
        "decision_id": new_id("dec"),
        "run_id": state["run_id"],
        "ts": state["now"],
        "policy_id": p.id,
        "description": p.description,
        "instance_key": t.key,
        "equipment": t.equipment,
        "fault_class": p.fault_class,
        "severity": p.severity,
        "kind": p.kind,
        "action": t.action.as_dict(),
        "evidence": [e.as_dict() for e in t.evidence],
        "rests_on": list(t.rests_on),
        "quality": {"score": round(score, 4), "reasons": reasons[:10]},
        "policy_ceiling": p.ceiling,
        "min_quality": p.min_quality,
        "whatif_req": p.whatif,
        "verify": verify,
    }


# ---- what-if ------------------------------------------------------------------------------------
def _prediction_dict(pred: Any) -> dict[str, Any]:
    to_dict = getattr(pred, "to_dict", None)
    if callable(to_dict):
        d = to_dict()
        return d if isinstance(d, dict) else {"value": d}
    return {
        "valid": bool(getattr(pred, "valid", True)),
        "constraints": [
            list(c) if isinstance(c, tuple | list) else str(c)
            for c in getattr(pred, "constraints", [])
        ],
    }


async def whatif(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    out = []
    view: dict[str, float] | None = None
    for d in state.get("decisions", []):
        d = dict(d)
        act = d["action"]
        writes = bool(act["changes"]) or act["kind"] == "optimise"
        if not writes or d["whatif_req"] == "none":
            lvl, why = gate.whatif_level(None, "none")
            d.update(prediction=None, whatif_level=lvl, whatif_reason=why)
            out.append(d)
            continue
        if view is None:
            view = {
                k: v
                for k, v in ValuesView(ctx.site.point_ids, s.snapshot.values).items()
                if not math.isnan(v)
            }
        pred, err = None, None
        try:
            if act["kind"] == "optimise":
                if ctx.optimise is None:
                    err = "no optimiser"
                else:
                    changes, pred = ctx.optimise(ctx.site, view, act["variables"])
                    act = {
                        **act,
                        "changes": [
                            {"tag": t, "value": v, "previous": view.get(t)} for t, v in changes
                        ],
                    }
                    d["action"] = act
            elif ctx.whatif is None:
                err = "no performance model"
            else:
                pred = ctx.whatif(ctx.site, view, [(c["tag"], c["value"]) for c in act["changes"]])
        except (FacilityError, ValueError, ArithmeticError, KeyError, TypeError) as e:
            pred, err = None, f"{type(e).__name__}: {e}"
        lvl, why = gate.whatif_level(pred, d["whatif_req"], err)
        if act["kind"] == "optimise" and pred is not None and not act["changes"]:
            why = "optimiser: no better set points"
        d.update(
            prediction=_prediction_dict(pred) if pred is not None else None,
            whatif_level=lvl,
            whatif_reason=why,
        )
        out.append(d)
    return {"decisions": out}


def predicted_value(prediction: dict[str, Any] | None, tag: str) -> float | None:
    """What the what-if predicted for ``tag`` after the change (None when it says nothing)."""
    if not prediction:
        return None
    key = model_output_for(tag)
    after = prediction.get("after") or {}
    v = after.get(key) if key else None
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


# ---- gate ---------------------------------------------------------------------------------------
def _verdict_obj(d: Decision) -> gate.GateVerdict:
    v = d["verdict"]
    return gate.GateVerdict(
        d["decision_id"],
        int(v["level"]),
        tuple(v["set_by"]),
        dict(v["caps"]),
        dict(v["reasons"]),
        bool(v["writes"]),
        v["outcome"],
    )


async def gate_node(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    s = _scratch(ctx, state)
    now = _now(state)
    control = ctx.control()
    out = []
    for d in state.get("decisions", []):
        d = dict(d)
        act = d["action"]
        changes = act["changes"]
        ql = gate.quality_level(d["quality"]["score"], ctx.site.quality, d["min_quality"])
        held = [c["tag"] for c in changes if _override_on(ctx, s, c["tag"])]
        reasons = {
            "quality": f"data quality {d['quality']['score']:.2f} allows level {ql}"
            + (f" ({'; '.join(d['quality']['reasons'][:3])})" if d["quality"]["reasons"] else ""),
            "whatif": d.get("whatif_reason", ""),
        }
        if held:
            reasons["override"] = (
                f"operator override holds {', '.join(held)}: respected, nothing written"
            )
        v = gate.evaluate(
            d["decision_id"],
            control=control,
            policy_ceiling=d["policy_ceiling"],
            quality=ql,
            whatif=int(d.get("whatif_level", 3)),
            writes=bool(changes),
            notify_only=act["kind"] in ("alarm", "notify"),
            override=bool(held),
            reasons=reasons,
        )
        d["verdict"] = v.as_dict()
        d["outcome"] = v.outcome
        if v.outcome == "approval_requested":
            d["approval_id"] = new_id("apr")
            ctx.audit.approval_event(d["approval_id"], d["decision_id"], now, "pending")
        d["explanation"] = explain(d)
        ctx.audit.record_decision(d, now)
        out.append(d)
    return {"decisions": out}


def _override_on(ctx: AgentContext, s: CycleScratch, tag: str) -> bool:
    ov = override_tag(tag)
    i = ctx.site.point_ids.get(ov)
    return i is not None and bool(s.snapshot.values[i] >= 0.5)


def explain(d: Decision) -> str:
    """The decision in operator language (deterministic; the LLM may rephrase, never decide)."""
    act = d["action"]
    ev = "; ".join(
        f"{e['tag'] or e['ref']} = {e['value']:.4g}"
        if e["value"] is not None
        else f"{e['ref']} missing"
        for e in d["evidence"][:4]
    )
    what = (
        ", ".join(
            f"{c['tag']} → {c['value']:.4g}"
            + (f" (now {c['previous']:.4g})" if c.get("previous") is not None else "")
            for c in act["changes"]
        )
        or act.get("message")
        or act["kind"]
    )
    v = d["verdict"]
    lvl = v["level"]
    why = "; ".join(v["reasons"].get(f, f) for f in v["set_by"] if v["reasons"].get(f))
    route = {
        "executed": "carrying it out now (full autonomy)",
        "approval_requested": f"waiting for an operator to approve ({d.get('approval_id')})",
        "recommended": "recommendation for a person to carry out",
        "alarm": "alarm raised",
        "blocked": "blocked",
        "rejected_by_gate": "rejected: the what-if predicts a broken constraint",
    }[v["outcome"]]
    return (
        f"{d['description']}{' on ' + d['equipment'] if d.get('equipment') else ''}. "
        f"Evidence: {ev}. Proposed: {what}. Level {lvl} ({gate.LEVEL_NAMES[lvl]}), set by "
        f"{'/'.join(v['set_by'])}: {why}. Outcome: {route}."
    )


# ---- recommend / approval / act -----------------------------------------------------------------
async def recommend(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    """Recommendations and alarms are already in the audit; collect them for the report."""
    notes = [
        f"{d['outcome']}: {d['policy_id']}{'@' + d['equipment'] if d.get('equipment') else ''}"
        for d in state.get("decisions", [])
        if d["outcome"] in ("recommended", "alarm", "blocked", "rejected_by_gate")
    ]
    return {"notes": notes}


def _unanswered(ctx: AgentContext, decisions: list[Decision]) -> list[Decision]:
    out = []
    for d in decisions:
        if d["outcome"] != "approval_requested" or d.get("answer"):
            continue
        a = ctx.audit.approval(d["approval_id"])
        if a is not None and a.state != "pending":
            d["answer"] = {"state": a.state, "by": a.by_whom, "why": a.why}
            continue
        out.append(d)
    return out


async def wait_for_approval(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    """Pause (durably, via interrupt) until every approval of this run is answered.

    Answers are recorded in the ``approvals`` table (by the API or CLI) and the run is
    resumed with ``Command(resume={"approval_id": ..., "state": "approved"|"rejected"|
    "cancelled", "by": ..., "why": ...})``; the table is the source of truth.
    """
    ctx = get_ctx(config)
    decisions = [dict(d) for d in state.get("decisions", [])]
    while True:
        pending = _unanswered(ctx, decisions)
        if not pending:
            break
        value = interrupt(
            {
                "run_id": state["run_id"],
                "approvals": [
                    {
                        "approval_id": d["approval_id"],
                        "decision_id": d["decision_id"],
                        "policy_id": d["policy_id"],
                        "action": d["action"],
                        "explanation": d["explanation"],
                    }
                    for d in pending
                ],
            }
        )
        if isinstance(value, dict) and value.get("approval_id"):
            a = ctx.audit.approval(str(value["approval_id"]))
            if (
                a is not None
                and a.state == "pending"
                and value.get("state") in ("approved", "rejected", "cancelled", "expired")
            ):
                ctx.audit.approval_event(
                    a.approval_id,
                    a.decision_id,
                    ctx.clock.now(),
                    str(value["state"]),
                    str(value.get("by", "")),
                    str(value.get("why", "")),
                )
    return {"decisions": decisions, "waited": True}


async def act(state: CycleState, config: RunnableConfig) -> dict[str, Any]:
    ctx = get_ctx(config)
    decisions = [dict(d) for d in state.get("decisions", [])]
    actions: list[dict[str, Any]] = []
    for d in decisions:
        ready = d["outcome"] == "executed" or (
            d["outcome"] == "approval_requested"
            and (d.get("answer") or {}).get("state") == "approved"
        )
        if not ready or d.get("done"):
            continue
        d["done"] = True
        if ctx.audit.journal.for_decision(d["decision_id"]):
            continue  # already attempted (a resumed run): reconcile settles it, never write twice
        now = ctx.clock.now()
        approval = ctx.audit.approval(d["approval_id"]) if d.get("approval_id") else None
        changes = [
            gate.AuthorizedChange(c["tag"], float(c["value"]), c.get("previous"))
            for c in d["action"]["changes"]
        ]
        verify = None
        baseline = None
        if d.get("verify"):
            vf = d["verify"]
            verify = VerifySpec(
                vf["tag"],
                vf["expect"],
                float(vf["window_s"]),
                float(vf["tolerance"]),
                predicted_value(d.get("prediction"), vf["tag"]),
            )
            snap = latest_array(ctx.store, ctx.site, now, ctx.lookback)
            baseline = _num(snap.get(ctx.site, vf["tag"]))
        try:
            auth = gate.authorize(
                _recheck(ctx, d, now), changes, control=ctx.control(), now=now, approval=approval
            )
            rows = await ctx.actuator.execute(auth, verify, baseline)
        except (WriteRejected, WriteFailed) as err:
            d["executed"] = False
            extra = f" ({d['recheck']})" if d.get("recheck") else ""
            d["explanation"] = f"{d['explanation']} Not carried out: {err}{extra}"
            ctx.audit.record_decision(d, now, outcome="blocked", explanation=d["explanation"])
            actions.append({"decision_id": d["decision_id"], "error": str(err)})
            continue
        d["executed"] = True
        by = approval.by_whom if approval else "agent"
        text = (
            f"{d['explanation']} Written: "
            + ", ".join(
                f"{r.tag} = {r.written:.4g} (read back {r.read_back:.4g})"
                for r in rows
                if r.written is not None and r.read_back is not None
            )
            + f" — authorised by {by}."
        )
        ctx.audit.record_decision(d, now, outcome="executed", explanation=text)
        actions += [r.as_dict() for r in rows]
        if auth.level >= 3 and ctx.autolock.record(now):
            c = ctx.control()
            reason = f"more than {ctx.autolock.max_actions} autonomous actions within {ctx.autolock.window}"
            ctx.set_control(
                gate.GateControl(c.site_ceiling, True, reason, c.estop), "auto-lock", reason
            )
    return {"decisions": decisions, "actions": actions}


def _recheck(ctx: AgentContext, d: Decision, now: datetime) -> gate.GateVerdict:
    """An approval may come long after the decision: the data quality must still allow it."""
    v = _verdict_obj(d)
    if not d.get("approval_id") or not d.get("rests_on"):
        return v
    q = ctx.quality_for(now, d["rests_on"])
    score, why = q.decision(d["rests_on"])
    ql = gate.quality_level(score, ctx.site.quality, float(d.get("min_quality") or 0.0))
    if ql >= v.level:
        return v
    reason = f"at approval time the data quality is {score:.2f} (level {ql}): {'; '.join(why[:2])}"
    d["recheck"] = reason
    return gate.downgrade(v, "quality", ql, reason)


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
    by: dict[str, int] = {}
    for d in state.get("decisions", []):
        o = "executed" if d.get("executed") else d["outcome"]
        if d["outcome"] == "approval_requested" and d.get("answer"):
            o = "executed" if d.get("executed") else d["answer"]["state"]
        by[o] = by.get(o, 0) + 1
    rolled = [v for v in state.get("verifications", []) if v["state"] == "rolled_back"]
    rep: dict[str, Any] = {
        "run_id": state["run_id"],
        "decisions": len(state.get("decisions", [])),
        "by_outcome": by,
        "rolled_back": [r["action_id"] for r in rolled],
    }
    tin = tout = 0
    if ctx.llm is not None and state.get("decisions"):
        from agent.llm import summarise

        try:
            rep["summary"], tin, tout = await summarise(ctx.llm, list(state["decisions"]))
        except Exception as err:  # an external service: without it the cycle stays deterministic
            rep["summary_error"] = f"{type(err).__name__}: {err}"
    ctx.audit.finish_run(state["run_id"], now, "done", tin, tout)
    ctx.scratch.pop(state["run_id"], None)
    return {"report": rep}


# ---- routing ------------------------------------------------------------------------------------
def after_act(state: CycleState) -> str:
    if state.get("waited") or state.get("approvals_mode", "interrupt") != "interrupt":
        return "verify"
    pending = [
        d
        for d in state.get("decisions", [])
        if d["outcome"] == "approval_requested" and not d.get("answer")
    ]
    return "wait_for_approval" if pending else "verify"
