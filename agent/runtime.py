"""Running the agent: one decision cycle (:func:`decide_once`) and the periodic loop.

Entry point for the eval suite and the demo (stable; H6 builds on it)::

    from agent.context import AgentContext
    from agent.runtime import decide_once

    ctx = AgentContext.build(
        site=site,                    # connectors.site.Site
        store=store,                  # connectors.store.Store (readings already in it)
        writer=RecordingWriter(site), # connectors.writer: records writes, applies nothing
        clock=clock,                  # ManualClock moved by the replay
        policies=None,                # None = the shipped library, keeping only the policies
                                      #   that apply to this site; or a list of LoadedPolicy
                                      #   (tools.policies.load_policies / policies_from_dicts)
        approvals="record",           # "record": an approval request is recorded, the graph
                                      #   does not pause ("interrupt" = durable human validation)
        checkpoint_path=None,         # None: in-memory (or none with "record"); a path: SQLite
        quality="auto",               # tools.quality.score over the decision's points (cached 30 s)
        whatif="auto",                # tools.whatif.check; None = no model (required → level 1)
    )
    result = await decide_once(ctx, trigger="eval")   # one observe→…→report cycle
    result.decisions   # list[agent.decision.Decision]: decision_id, policy_id, equipment,
                       #   fault_class, kind, severity, outcome, verdict (tools.gate.GateVerdict),
                       #   action (kind, changes), evidence, quality, prediction, explanation
    result.run_id, result.pending_approvals, result.actions, result.report, result.interrupted

``decide_once`` keeps policy state (hold timers, hysteresis, cool-downs) in
``ctx.engine`` between calls, so call it once per replay step with the clock
advanced. Every cycle writes ``runs`` / ``decisions`` / ``approvals`` /
``actions`` rows into the same store (see :mod:`agent.audit`). Operators answer
with :func:`answer_approval`; :func:`emergency_stop`, :func:`clear_estop`, :func:`set_autonomy`
(the ceiling only — it never clears an e-stop or auto-lock) and :func:`expire_approvals` are
the other controls.

:func:`run_forever` is the periodic loop of ``run`` and ``demo``: a decision cycle
every ``interval_s`` plus the heartbeat write to the twin's ``agent.heartbeat`` point
(the twin reverts its set points when it lapses). Before a cycle, :func:`recalibrate_if_due`
refits the plant model on the site's recent history when its interval has passed
(:class:`tools.calibration.ModelState`: adopted only when it beats the catalogue on held-out
data; every try is a row of ``model_calibrations``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agent import nodes
from agent.checkpoint import close_saver, memory_saver, open_saver, prune
from agent.context import AgentContext
from agent.decision import Answer, Decision, decisions_of
from agent.graph import compile_graph
from agent.state import CycleState, Trigger
from connectors.errors import FacilityError
from connectors.site import HEARTBEAT_TAG
from tools.actuation import ActionRow, Restore, VerifySpec, write_heartbeat
from tools.gate import ANSWERS, ApprovalState, GateControl
from tools.telemetry import latest_array

log = logging.getLogger(__name__)


@dataclass
class CycleResult:
    run_id: str
    decisions: list[Decision] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-plain (what the API returns)."""
        return {
            "run_id": self.run_id,
            "decisions": [d.as_json() for d in self.decisions],
            "actions": self.actions,
            "pending_approvals": self.pending_approvals,
            "report": self.report,
            "interrupted": self.interrupted,
        }


async def _graph(ctx: AgentContext) -> Any:
    if ctx._graph is None:
        if ctx.approvals == "record":
            ctx._graph = compile_graph(None)
        else:
            if ctx._saver is None:
                ctx._saver = (
                    await open_saver(ctx.checkpoint_path) if ctx.checkpoint_path else memory_saver()
                )
            ctx._graph = compile_graph(ctx._saver)
    return ctx._graph


async def close(ctx: AgentContext, close_writer: bool = False) -> None:
    """Release the checkpointer (the SQLite file stays) and, if asked, the writer's connections."""
    if ctx._saver is not None and not isinstance(ctx._saver, InMemorySaver):
        await close_saver(ctx._saver)
    ctx._saver = None
    ctx._graph = None
    closer = getattr(ctx.writer, "close", None) if close_writer else None
    if closer is not None:
        res = closer()
        if asyncio.iscoroutine(res):
            await res


def _config(ctx: AgentContext, run_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": run_id, "ctx": ctx}}


def _result(run_id: str, out: dict[str, Any]) -> CycleResult:
    ints = out.get("__interrupt__") or []
    pending = [a for i in ints for a in (getattr(i, "value", None) or {}).get("approvals", [])]
    return CycleResult(
        run_id=run_id,
        decisions=decisions_of(out.get("decisions", [])),
        actions=list(out.get("actions", [])),
        pending_approvals=pending,
        report=dict(out.get("report", {})),
        interrupted=bool(ints),
    )


def recalibrate_if_due(ctx: AgentContext) -> None:
    """The rolling calibration: refit the model on the last window of history when due."""
    model = ctx.state.model
    now = ctx.clock.now()
    if not model.enabled or not model.due(now):
        return
    try:
        cal = model.refit(ctx.store, ctx.site, now)
    except Exception as err:  # a failed fit must never stop the agent: the model in use stays
        log.warning("model calibration failed, the parameters in use stay: %s", err)
        return
    log.info("model calibration: %s", cal.summary().replace("\n", "; "))


async def decide_once(ctx: AgentContext, trigger: Trigger = "schedule") -> CycleResult:
    """One decision cycle; see the module docstring."""
    now = ctx.clock.now()
    run_id = f"run-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    graph = await _graph(ctx)
    state: CycleState = {"run_id": run_id, "trigger": trigger, "approvals_mode": ctx.approvals}
    out = await graph.ainvoke(state, _config(ctx, run_id))
    res = _result(run_id, out)
    if res.interrupted:
        ctx.audit.finish_run(run_id, ctx.clock.now(), "waiting_approval")
    return res


class ApprovalExpired(ValueError):
    """An answer came after the request's time to live: the request expired, nothing written."""


def _age_s(ctx: AgentContext, approval_id: str) -> float | None:
    """Seconds since the approval was requested (None: not pending)."""
    for p in ctx.audit.pending_approvals():
        if p["approval_id"] == approval_id:
            ts = p["ts"].to_pydatetime() if hasattr(p["ts"], "to_pydatetime") else p["ts"]
            return float((ctx.clock.now() - ts).total_seconds())
    return None


async def answer_approval(
    ctx: AgentContext, approval_id: str, state: ApprovalState, by_whom: str, why: str = ""
) -> CycleResult | None:
    """Approve / reject / cancel a pending approval and resume its paused run.

    Returns the resumed run's result, or None when no run waits for it (the answer is
    recorded either way). Raises KeyError for an unknown id, ValueError when it is not pending,
    :class:`ApprovalExpired` (a ValueError) when it is answered after ``ctx.approval_ttl_s``
    (default ``APPROVAL_TTL_S``, in the context's clock — plant time on a twin): it is
    then recorded expired and nothing is written. An approved action is written only after
    the whole gate judged it again on current data (:func:`agent.nodes.reevaluate`), on every
    route: the resumed graph run and :func:`execute_recorded` both carry it out through
    ``nodes.act``.
    """
    if state not in ANSWERS:
        raise ValueError(f"state must be approved, rejected, cancelled or expired, not {state!r}")
    a = ctx.audit.approval(approval_id)
    if a is None:
        raise KeyError(f"unknown approval {approval_id!r}")
    if a.state != "pending":
        raise ValueError(f"approval {approval_id} is already {a.state}")
    if state in ("approved", "rejected"):
        age = _age_s(ctx, approval_id)
        ttl = ctx.approval_ttl_s
        if age is not None and age > ttl:
            why_exp = f"answered {age:.0f} s after the request, limit {ttl:.0f} s"
            await answer_approval(ctx, approval_id, "expired", "agent", why_exp)
            raise ApprovalExpired(
                f"approval {approval_id} expired ({why_exp}); nothing written — the policy asks "
                "again on fresh data if its condition persists"
            )
    ctx.audit.approval_event(approval_id, a.decision_id, ctx.clock.now(), state, by_whom, why)
    d = ctx.audit.decision(a.decision_id)
    if d is None:
        return None
    run_id = d.run_id
    waiting = False
    if ctx.approvals == "interrupt":
        graph = await _graph(ctx)
        cfg = _config(ctx, run_id)
        waiting = bool((await graph.aget_state(cfg)).next)
    if not waiting:  # no paused run (an LLM proposal, or approvals="record"): carry it out here
        if state != "approved":
            return None
        return CycleResult(run_id=run_id, actions=await execute_recorded(ctx, a.decision_id))
    out = await graph.ainvoke(
        Command(resume={"approval_id": approval_id, "state": state, "by": by_whom, "why": why}), cfg
    )
    res = _result(run_id, out)
    if res.interrupted:
        ctx.audit.finish_run(run_id, ctx.clock.now(), "waiting_approval")
    return res


async def execute_recorded(ctx: AgentContext, decision_id: str) -> list[dict[str, Any]]:
    """Carry out an approved decision from its audit row (no paused graph run holds it)."""
    d = ctx.audit.decision(decision_id)
    if d is None:
        raise KeyError(f"unknown decision {decision_id!r}")
    if d.verdict is None:
        raise ValueError(f"decision {decision_id} has no gate verdict")
    a = ctx.audit.approval(d.approval_id) if d.approval_id else None
    d = replace(d, answer=Answer("approved", a.by_whom, a.why) if a else Answer("approved"))
    cfg: RunnableConfig = {"configurable": {"ctx": ctx}}
    out = await nodes.act({"run_id": d.run_id, "decisions": [d]}, cfg)
    return list(out.get("actions", []))


@dataclass(frozen=True)
class EstopResult:
    """What an emergency stop did: approvals cancelled, set points handed back (or not, and why)."""

    by: str
    cancelled: list[str]
    restores: list[Restore]

    @property
    def restored(self) -> list[Restore]:
        return [r for r in self.restores if r.ok]

    @property
    def not_restored(self) -> list[Restore]:
        return [r for r in self.restores if not r.ok]

    def as_json(self) -> dict[str, Any]:
        return {
            "estop": True,
            "by": self.by,
            "cancelled": self.cancelled,
            "restored": [r.as_dict() for r in self.restored],
            "not_restored": [r.as_dict() for r in self.not_restored],
        }


async def emergency_stop(ctx: AgentContext, by_whom: str, why: str = "") -> EstopResult:
    """Engage the emergency stop and hand the plant back, at once.

    The stop is recorded first (from then on the gate and the actuator refuse every write
    but the restore, and :func:`run_forever` stops the heartbeat so the plant's own control
    takes over at its lapse); every pending approval is cancelled; every set point the agent
    holds is restored to its pre-agent value from the journal (journaled, read back)."""
    c = ctx.control()
    why = why or "emergency stop"
    ctx.set_control(GateControl(c.site_ceiling, c.locked, c.lock_reason, True), by_whom, why)
    cancelled = []
    for p in ctx.audit.pending_approvals():
        await answer_approval(ctx, p["approval_id"], "cancelled", by_whom, why)
        cancelled.append(p["approval_id"])
    restores = await ctx.actuator.hand_back()
    for r in restores:
        if not r.ok:
            log.error("e-stop: %s NOT restored (agent value %s): %s", r.tag, r.agent_value, r.error)
    return EstopResult(by_whom, cancelled, restores)


def agent_values_in_force(ctx: AgentContext) -> list[dict[str, Any]]:
    """Set points the agent holds now (journal), per tag:
    ``{tag, value, before_agent, action_id, ts}`` — what an operator must know after an e-stop."""
    return [
        {
            "tag": t.tag,
            "value": t.agent_value,
            "before_agent": t.before_agent,
            "action_id": t.last.action_id,
            "ts": t.last.ts.isoformat(),
        }
        for t in ctx.audit.journal.takeovers()
    ]


def set_autonomy(ctx: AgentContext, level: int, by_whom: str, why: str = "") -> GateControl:
    """Set the site ceiling — only the ceiling: an e-stop or auto-lock stays (:func:`clear_estop`)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 3:
        raise ValueError("the autonomy level is 0, 1, 2 or 3")
    c = ctx.control()
    return ctx.set_control(
        replace(c, site_ceiling=level), by_whom, why or f"autonomy ceiling set to {level}"
    )


def clear_estop(ctx: AgentContext, by_whom: str, why: str = "") -> GateControl:
    """Clear the emergency stop and the auto-lock (an admin's act, audited); the ceiling stays.

    Nothing engaged: nothing recorded, the control returned as it is."""
    c = ctx.control()
    if not (c.estop or c.locked):
        return c
    ctx.autolock.times.clear()
    cleared = " and ".join(
        n for n, on in (("emergency stop", c.estop), ("auto-lock", c.locked)) if on
    )
    return ctx.set_control(
        GateControl(site_ceiling=c.site_ceiling), by_whom, why or f"{cleared} cleared"
    )


async def expire_approvals(ctx: AgentContext, max_age_s: float | None = None) -> list[str]:
    """Pending approvals older than ``max_age_s`` (default ``ctx.approval_ttl_s``) expire (their
    paused runs finish, nothing written)."""
    max_age_s = ctx.approval_ttl_s if max_age_s is None else max_age_s
    now = ctx.clock.now()
    out = []
    for p in ctx.audit.pending_approvals():
        ts = p["ts"].to_pydatetime() if hasattr(p["ts"], "to_pydatetime") else p["ts"]
        if (now - ts).total_seconds() > max_age_s:
            await answer_approval(
                ctx, p["approval_id"], "expired", "agent", f"no answer within {max_age_s:.0f} s"
            )
            out.append(p["approval_id"])
    return out


async def startup(ctx: AgentContext) -> list[dict[str, Any]]:
    """After a restart, lose nothing a crash interrupted:

    * actions left mid-way are reconciled (read back, never written twice); a landed one
      starts its verification like any other write, and its decision becomes executed or
      failed in the audit;
    * approvals recorded ``approved`` whose write never started are carried out through the
      same re-evaluation every approval goes through — or refused with the reason.

    Returns the reconciled journal rows and, per resumed approval, its outcome."""
    out = []
    for r in await ctx.actuator.reconcile():
        settle_reconciled(ctx, r)
        out.append(r.as_dict())
    return out + await resume_approved(ctx)


def settle_reconciled(ctx: AgentContext, r: ActionRow) -> None:
    """A write :meth:`~tools.actuation.Actuator.reconcile` settled: verify it, settle its decision."""
    if r.detail.get("by") in ("rollback", "estop") or not r.decision_id:
        return  # not a decision's own write (its restore has no decision outcome of its own)
    d = ctx.audit.decision(r.decision_id)
    if d is None:
        return
    landed = r.state == "done"
    if landed and d.verify is not None:
        vf = d.verify
        pred = nodes.predicted_value(d.prediction, vf.tag)
        snap = latest_array(ctx.store, ctx.site, r.ts, ctx.lookback)
        base = snap.get(ctx.site, vf.tag)
        baseline = None if base is None or base != base else float(base)
        spec = VerifySpec(vf.tag, vf.expect, vf.window_s, vf.tolerance, pred)
        ctx.actuator.arm_verification(r, spec, baseline)
    what = (
        f"{r.tag} = {r.written:.4g} (read back {r.read_back:.4g})"
        if landed and r.written is not None and r.read_back is not None
        else f"{r.tag}: {r.detail.get('reconciled', r.state)}"
    )
    verb = (
        "Written (settled after a restart)" if landed else "Not carried out (found after a restart)"
    )
    ctx.audit.record_decision(
        replace(d, done=True, executed=landed, explanation=f"{d.explanation} {verb}: {what}."),
        ctx.clock.now(),
    )


async def resume_approved(
    ctx: AgentContext, max_age_s: float | None = None
) -> list[dict[str, Any]]:
    """Approvals answered ``approved`` whose decision has no journaled write (a crash between
    the answer and the write): carry each out now (the gate judges it again on today's plant)
    or, when the request has expired (``max_age_s``, default ``ctx.approval_ttl_s``), refuse it
    with the reason — never drop it."""
    max_age_s = ctx.approval_ttl_s if max_age_s is None else max_age_s
    now = ctx.clock.now()
    out: list[dict[str, Any]] = []
    for a in ctx.audit.approved_unexecuted():
        d = ctx.audit.decision(a["decision_id"])
        if d is None or d.executed is not None:
            continue  # settled already (refused or written)
        age = (now - a["requested"]).total_seconds()
        if age > max_age_s:
            why = (
                f"approved by {a['by_whom']} but not written before a restart; the request is "
                f"{age:.0f} s old (expires after {max_age_s:.0f} s): not carried out"
            )
            ctx.audit.record_decision(
                replace(d, done=True, executed=False, explanation=f"{d.explanation} {why}."), now
            )
            out.append({"decision_id": d.decision_id, "error": why})
            continue
        try:
            rows = await execute_recorded(ctx, d.decision_id)
        except (FacilityError, ValueError, KeyError) as err:
            why = f"approved but not carried out after a restart: {err}"
            ctx.audit.record_decision(
                replace(d, done=True, executed=False, explanation=f"{d.explanation} {why}."), now
            )
            rows = [{"decision_id": d.decision_id, "error": why}]
        out += [{"resumed_approval": a["approval_id"], **r} for r in rows]
    return out


async def heartbeat_once(ctx: AgentContext, beat: int) -> int:
    """One heartbeat write to the twin's ``agent.heartbeat`` (none while e-stopped: the plant's
    own fallback then takes its set points back). Returns the next beat value."""
    if HEARTBEAT_TAG in ctx.site.points_by_tag and not ctx.control().estop:
        beat = (beat + 1) % 65536
        try:
            await write_heartbeat(ctx.site, ctx.writer, HEARTBEAT_TAG, float(beat))
        except FacilityError as err:
            log.warning("heartbeat write failed: %s", err)
    return beat


async def scheduled_cycle(
    ctx: AgentContext,
    on_result: Callable[[CycleResult], None] | None = None,
    approval_ttl_s: float | None = None,
    max_threads: int = 200,
) -> CycleResult:
    """One scheduled decision cycle: expire old approvals, decide, prune finished checkpoints."""
    await expire_approvals(ctx, approval_ttl_s)
    recalibrate_if_due(ctx)
    res = await decide_once(ctx, "schedule")
    if on_result is not None:
        on_result(res)
    if ctx._saver is not None:
        keep = {str(p.get("run_id")) for p in ctx.audit.pending_approvals()}
        await prune(ctx._saver, keep, max_threads)
    return res


async def run_forever(
    ctx: AgentContext,
    interval_s: float = 10.0,
    heartbeat_s: float = 5.0,
    stop: asyncio.Event | None = None,
    on_result: Callable[[CycleResult], None] | None = None,
    approval_ttl_s: float | None = None,
) -> None:
    """Periodic decision cycles plus the heartbeat to the twin; returns when ``stop`` is set."""
    stop = stop or asyncio.Event()
    await startup(ctx)
    beat = 0
    next_cycle = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        beat = await heartbeat_once(ctx, beat)
        if t >= next_cycle:
            next_cycle = t + interval_s
            try:
                await scheduled_cycle(ctx, on_result, approval_ttl_s)
            except FacilityError as err:
                log.error("decision cycle failed: %s", err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(heartbeat_s, interval_s))
