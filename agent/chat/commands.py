"""Plain chat commands: the chat without a language model (and the approvals with one).

:func:`parse` turns a message into a :class:`Cmd` (pure; ``None`` when it is not a
command). :func:`run` carries one out against the site's context and returns a
:class:`Reply`. Commands::

    help                      this list
    status                    autonomy ceiling, e-stop, auto-lock, pending approvals, last decision
    pending                   pending approvals
    why DECISION_ID           a decision's outcome, level and explanation (an approval id works too)
    explain TAG               latest value, 15-minute statistics and data quality of a point
    what if TAG +1 | = 8      the what-if model's prediction as a fixed-width table; nothing written
    propose TAG +1 | = 8      a proposal through the same what-if and gate as the chat model's
    approve ID | reject ID    answer an approval (operator role; the gate decides again at write time)
    approve that              the last proposal of this conversation, after a "yes"
    yes | no                  confirm or drop the approval asked for

Approving goes through :func:`agent.runtime.answer_approval`, exactly the path of
``POST /approvals/{id}/approve``: the role is checked here, the gate re-evaluated at write time.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.context import AgentContext
from agent.users import Principal, Role
from tools import telemetry
from tools.prediction import PredictionRecord
from tools.telemetry import latest_array

Verb = Literal[
    "help", "status", "pending", "why", "explain", "whatif", "propose", "answer", "confirm"
]

HELP = """Commands (plain text, no language model needed):
  status                  autonomy, e-stop, pending approvals, last decision
  pending                 approvals waiting for an operator
  why DECISION_ID         why a decision came out as it did
  explain TAG             a point's latest value, statistics and data quality
  what if TAG +1          predict a change (or: what if TAG = 8); nothing is written
  propose TAG = 8         ask for a change: what-if and gate decide (at most an approval request)
  approve ID | reject ID  answer an approval (the gate decides again at write time)
  approve that            the last proposal of this conversation (asks to confirm: yes / no)
  help                    this list"""

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_CHANGE = re.compile(
    rf"^(?P<tag>[A-Za-z0-9_.:-]+)\s*(?:(?P<eq>=|to)\s*(?P<abs>{_NUM})|(?P<rel>[-+]\s*{_NUM}))$"
)
_ID = r"[A-Za-z0-9_.:-]+"


@dataclass(frozen=True)
class Cmd:
    verb: Verb
    arg: str = ""  # id, tag, "that", "yes"/"no"
    value: float | None = None  # the change's value (absolute, or the step when ``relative``)
    relative: bool = False
    state: Literal["approved", "rejected"] | None = None  # for "answer"


@dataclass
class Reply:
    text: str
    proposals: list[dict[str, Any]] = field(default_factory=list)
    confirm: dict[str, Any] | None = None  # the approval awaiting "yes" (None: nothing asked)


def parse(message: str) -> Cmd | None:
    """A command, or None (free text: the language model's, or "not understood")."""
    text = " ".join(message.strip().rstrip("?!. ").split())
    low = text.lower()
    if low in ("help", "?", "commands", "") or low.startswith("help "):
        return Cmd("help")
    if low in ("status", "state", "how is the site", "site status"):
        return Cmd("status")
    if low in ("pending", "approvals", "pending approvals"):
        return Cmd("pending")
    if low in ("yes", "y", "confirm", "ok", "yes please", "no", "n", "cancel"):
        return Cmd("confirm", "yes" if low in ("yes", "y", "confirm", "ok", "yes please") else "no")
    m = re.fullmatch(rf"(approve|reject)\s+({_ID})", text, re.IGNORECASE)
    if m:
        state: Literal["approved", "rejected"] = (
            "approved" if m.group(1).lower() == "approve" else "rejected"
        )
        arg = m.group(2)
        return Cmd("answer", "that" if arg.lower() in ("that", "it", "this") else arg, state=state)
    m = re.fullmatch(rf"why\s+({_ID})", text, re.IGNORECASE)
    if m:
        return Cmd("why", m.group(1))
    m = re.fullmatch(r"explain\s+([A-Za-z0-9_.:-]+)", text, re.IGNORECASE)
    if m:
        return Cmd("explain", m.group(1))
    m = re.fullmatch(r"(what\s*-?\s*if|propose|set)\s+(.+)", text, re.IGNORECASE)
    if m:
        c = _CHANGE.match(m.group(2).strip())
        if c is None:
            return None
        verb: Verb = "propose" if m.group(1).lower() in ("propose", "set") else "whatif"
        if c.group("abs") is not None:
            return Cmd(verb, c.group("tag"), float(c.group("abs")))
        return Cmd(verb, c.group("tag"), float(c.group("rel").replace(" ", "")), relative=True)
    return None


# ---- the fixed-width what-if table -----------------------------------------------------------
def _g(x: float | None) -> str:
    """A set point as people write it (``90``, ``27.5``), ``-`` when unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{x:g}"


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


ALWAYS = ("facility_kw", "pue")  # metrics the table always shows


def _moved(b: float | None, a: float | None) -> bool:
    return b is None or a is None or abs(a - b) > 5e-4


def whatif_table(rec: PredictionRecord, full: bool = False) -> str:
    """Constraints (their margins) and key outputs: before, after, delta, in fixed-width text.

    Without ``full``: the violated constraints, what moved, and facility power and PUE; one
    last line counts the rows left out (unchanged)."""
    rows: list[tuple[str, float | None, float | None]] = []
    hidden = 0
    for c in rec.constraints:
        unit = f" {c.unit}" if c.unit and c.unit != "-" else ""
        if full or not c.ok or _moved(c.margin_before, c.margin):
            rows.append(
                (f"{c.name} margin{unit}{'' if c.ok else ' VIOLATED'}", c.margin_before, c.margin)
            )
        else:
            hidden += 1
    for k, after in (rec.after or {}).items():
        before = (rec.before or {}).get(k)
        if full or k in ALWAYS or _moved(before, after):
            rows.append((k, before, after))
        else:
            hidden += 1
    width = max([len("constraint/metric"), *(len(r[0]) for r in rows)])
    lines = [f"{'constraint/metric':<{width}}  {'before':>10}  {'after':>10}  {'delta':>10}"]
    lines.append("-" * len(lines[0]))
    for name, b, a in rows:
        d = None if a is None or b is None else a - b
        lines.append(f"{name:<{width}}  {_fmt(b):>10}  {_fmt(a):>10}  {_fmt(d, True):>10}")
    if hidden:
        lines.append(f"({hidden} other constraints and metrics unchanged)")
    return "\n".join(lines)


# ---- running a command -----------------------------------------------------------------------
def _target(ctx: AgentContext, cmd: Cmd) -> tuple[float, float | None]:
    """(absolute value, current value) of a change command; ValueError names what is wrong."""
    if cmd.arg not in ctx.site.points_by_tag:
        raise ValueError(
            f"unknown point {cmd.arg!r} (explain TAG lists one; tags are equipment.point)"
        )
    snap = latest_array(ctx.store, ctx.site, ctx.clock.now(), ctx.lookback)
    now = snap.get(ctx.site, cmd.arg)
    cur = None if math.isnan(now) else float(now)
    assert cmd.value is not None
    if not cmd.relative:
        return cmd.value, cur
    if cur is None:
        raise ValueError(f"{cmd.arg} has no recent reading: give an absolute value (= X)")
    return cur + cmd.value, cur


def _whatif(ctx: AgentContext, cmd: Cmd) -> Reply:
    if ctx.whatif is None:
        return Reply("No performance model is configured: what-if is not available.")
    try:
        value, cur = _target(ctx, cmd)
    except ValueError as err:
        return Reply(str(err))
    snap = latest_array(ctx.store, ctx.site, ctx.clock.now(), ctx.lookback)
    vals = {t: v for t, v in snap.as_dict(ctx.site, list(ctx.site.point_ids)).items() if v == v}
    try:
        pred = ctx.whatif(ctx.site, vals, [(cmd.arg, value)])
    except (ValueError, KeyError, ArithmeticError) as err:
        return Reply(f"what-if {cmd.arg} = {value:g}: {err}")
    rec = PredictionRecord.of(pred)
    head = f"What if {cmd.arg} = {_g(value)} (now {_g(cur)}): nothing is written."
    bad = [c.name for c in rec.constraints if not c.ok]
    tail = f"Violated: {', '.join(bad)}." if bad else "All constraints hold."
    if not rec.valid:
        tail += " The model extrapolates: " + "; ".join(rec.invalid_reasons)
    return Reply(f"{head}\n{whatif_table(rec)}\n{tail}")


async def _propose(ctx: AgentContext, cmd: Cmd, run_id: str, who: Principal) -> Reply:
    from agent import llm  # the chat tool's own path: what-if, then the gate (ceiling 2)

    try:
        value, cur = _target(ctx, cmd)
    except ValueError as err:
        return Reply(str(err))
    out = await llm.propose(ctx, run_id, cmd.arg, value, f"asked in chat by {who.name}")
    if out.get("refused"):
        return Reply(f"Refused: {out['error']}")
    prop = {"tag": cmd.arg, "from": cur, "to": value, **out}
    text = f"Proposal {out['decision_id']}: {cmd.arg} {_g(cur)} → {_g(value)}: {out['outcome']} (level {out['level']})."
    if out.get("approval_id"):
        text += f" Approval {out['approval_id']} is pending: say 'approve that' to approve it."
    return Reply(f"{text}\n{out['explanation']}", proposals=[prop])


def _status(ctx: AgentContext) -> str:
    c = ctx.control()
    pend = ctx.audit.pending_approvals()
    lines = [
        f"Site {ctx.site.name}: autonomy ceiling {c.site_ceiling}"
        + (", E-STOP in force" if c.estop else ", no e-stop")
        + (f", AUTO-LOCKED ({c.lock_reason})" if c.locked else ""),
        f"{len(pend)} pending approval(s)" + (": say 'pending'" if pend else ""),
    ]
    df = ctx.audit.decisions(limit=1)
    if len(df):
        r = df.iloc[0]
        lines.append(
            f"Last decision {r['decision_id']} ({r['policy_id']}, {str(r['ts'])[:19]}): "
            f"{r['outcome']} at level {r['effective_level']}"
        )
    else:
        lines.append("No decision yet.")
    return "\n".join(lines)


def _pending(ctx: AgentContext) -> str:
    pend = ctx.audit.pending_approvals()
    if not pend:
        return "No approval is pending."
    lines = [f"{len(pend)} pending approval(s):"]
    for p in pend:
        lines.append(
            f"  {p['approval_id']}  {str(p['ts'])[:19]}  {p['policy_id']}: "
            f"{str(p.get('explanation') or '')[:160]}"
        )
    lines.append("Answer with: approve ID | reject ID")
    return "\n".join(lines)


def _why(ctx: AgentContext, ident: str) -> str:
    a = ctx.audit.approval(ident)
    d = ctx.audit.decision(a.decision_id if a else ident)
    if d is None:
        return f"No decision {ident!r} (ids look like dec-…; 'pending' lists approvals)."
    by = ", ".join(d.verdict.set_by) if d.verdict else "-"
    out = f"Decision {d.decision_id} ({d.policy_id}): {d.outcome}"
    out += f" at level {d.level} (set by {by})" if d.verdict else ""
    if d.approval_id:
        ap = ctx.audit.approval(d.approval_id)
        out += f"; approval {d.approval_id} {ap.state if ap else '?'}"
    return f"{out}.\n{d.explanation}"


def _explain(ctx: AgentContext, tag: str) -> str:
    if tag not in ctx.site.points_by_tag:
        return f"Unknown point {tag!r}: tags are equipment.point, e.g. gpu.gpu_temp_max."
    now = ctx.clock.now()
    eq, p = ctx.site.points_by_tag[tag]
    v = telemetry.latest_values(ctx.store, ctx.site, [tag], now)["values"][tag]
    w = telemetry.window_stats(ctx.store, ctx.site, tag, now, 15.0)
    q = ctx.quality_for(now, [tag])
    score = q.scores.get(tag)
    unit = f" {p.unit}" if p.unit else ""
    age = f", {v['age_s']:.0f} s old" if v.get("age_s") is not None else ""
    lines = [
        f"{tag} ({eq.id}{', writable' if p.write is not None else ''}): "
        f"{_fmt(v.get('value'))}{unit}{age}",
        f"last 15 min: min {_fmt(w.get('min'))}, mean {_fmt(w.get('mean'))}, "
        f"max {_fmt(w.get('max'))} ({w.get('n', 0)} good, {w.get('n_bad', 0)} bad readings)",
        f"data quality {_fmt(score)}"
        + (": " + "; ".join(q.reasons.get(tag, [])) if q.reasons.get(tag) else ""),
    ]
    return "\n".join(lines)


async def answer(
    ctx: AgentContext,
    approval_id: str,
    state: Literal["approved", "rejected"],
    who: Principal,
    lock: asyncio.Lock,
) -> str:
    """The same path as ``POST /approvals/{id}/approve|reject``: role, then the runtime."""
    from agent import runtime

    if not who.may(Role.OPERATOR):
        return f"{who.name} is {who.role.label}: answering an approval needs the operator role."
    async with lock:
        try:
            res = await runtime.answer_approval(ctx, approval_id, state, who.name, "in chat")
        except KeyError:
            return f"No approval {approval_id!r} ('pending' lists them)."
        except ValueError as err:
            return f"Not done: {err}"
    verb = "Approved" if state == "approved" else "Rejected"
    text = f"{verb} {approval_id} as {who.name}."
    for a in res.actions if res else []:
        if a.get("error"):
            text += f" The gate refused the write at write time: {a['error']}"
        elif a.get("state"):
            text += f" {a.get('tag', '')} written {_g(a.get('written'))}: {a['state']}."
    if state == "approved" and not (res and res.actions):
        text += " Nothing was written."
    return text


def _last_approval(proposals: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for p in reversed(proposals):
        if p.get("approval_id"):
            return p
    return None


async def run(
    ctx: AgentContext,
    cmd: Cmd,
    *,
    who: Principal,
    run_id: str,
    proposals: Sequence[dict[str, Any]],
    confirm: dict[str, Any] | None,
    lock: asyncio.Lock,
) -> Reply:
    """Carry out ``cmd``; ``proposals`` / ``confirm`` are the conversation's."""
    if cmd.verb == "help":
        return Reply(HELP)
    if cmd.verb == "status":
        return Reply(_status(ctx))
    if cmd.verb == "pending":
        return Reply(_pending(ctx))
    if cmd.verb == "why":
        return Reply(_why(ctx, cmd.arg))
    if cmd.verb == "explain":
        return Reply(_explain(ctx, cmd.arg))
    if cmd.verb == "whatif":
        return _whatif(ctx, cmd)
    if cmd.verb == "propose":
        return await _propose(ctx, cmd, run_id, who)
    if cmd.verb == "confirm":
        if confirm is None:
            return Reply("Nothing to confirm.")
        if cmd.arg != "yes":
            return Reply(f"Not answered: {confirm['approval_id']} stays pending.")
        return Reply(await answer(ctx, confirm["approval_id"], confirm["state"], who, lock))
    assert cmd.verb == "answer" and cmd.state is not None
    if cmd.arg != "that":
        return Reply(await answer(ctx, cmd.arg, cmd.state, who, lock))
    last = _last_approval(proposals)
    if last is None:
        what = (
            "No proposal of this conversation awaits an answer"
            if proposals
            else "There is no proposal in this conversation"
        )
        return Reply(f"{what}: say approve ID ('pending' lists them).")
    verb = "Approve" if cmd.state == "approved" else "Reject"
    what = f"{last.get('tag')} {_g(last.get('from'))} → {_g(last.get('to'))}"
    return Reply(
        f"{verb} {last['approval_id']} ({what}, decision {last.get('decision_id')})? Answer yes or no.",
        confirm={"approval_id": last["approval_id"], "state": cmd.state},
    )
