"""The decision record: one typed object from a trigger (or an LLM proposal) to the audit.

A :class:`Decision` is frozen; each step of the graph returns an updated copy
(``dataclasses.replace``), so mypy checks every field along the path. The same
record is what the graph state holds (and LangGraph's checkpointer stores), what
the audit writes and what the runtime reads back:

* :func:`new_decision` — the one constructor; :func:`from_trigger` (policies),
  :func:`llm_proposal` and :func:`refused_call` (the chat model) build on it;
* :meth:`Decision.as_json` / :func:`decision_from_json` — the stored form, both ways;
  :func:`decision_from_json` also reads the older dict shape (checkpoints and audit rows
  written before this record existed) — see :func:`migrate`.

These are pydantic dataclasses: a checkpoint that comes back as plain lists and dicts
is validated into the same types again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter
from pydantic.dataclasses import dataclass

from tools import gate
from tools.actuation import new_id
from tools.gate import ApprovalState, GateVerdict, Outcome, WhatIfRequirement
from tools.policies import Change, Trigger
from tools.policies import ProposedAction as Action
from tools.policies.model import PolicyKind, Severity
from tools.prediction import ConstraintRecord, PredictionRecord

__all__ = [
    "Action",
    "Answer",
    "Change",
    "ConstraintRecord",
    "Decision",
    "DecisionKind",
    "Evidence",
    "Outcome",
    "PredictionRecord",
    "QualityRecord",
    "Refusal",
    "VerifyRecord",
    "decision_from_json",
    "decisions_of",
    "from_trigger",
    "llm_proposal",
    "migrate",
    "new_decision",
    "new_id",
    "refused_call",
]

DecisionKind = PolicyKind | Literal["llm_proposal"]
"""A policy's kind, or a proposal of the chat model."""

_CFG = ConfigDict(extra="ignore")


@dataclass(frozen=True, config=_CFG)
class Evidence:
    """One condition of the policy as it was evaluated (``value`` None: missing)."""

    ref: str
    tag: str | None
    value: float | None
    op: str
    threshold: float | tuple[float, float] | None
    holds: bool


@dataclass(frozen=True, config=_CFG)
class QualityRecord:
    """Data quality of the points the decision rests on (weakest link) and why."""

    score: float = 1.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, config=_CFG)
class VerifyRecord:
    """How to check the write worked: ``tag`` should move ``expect`` within ``window_s``."""

    tag: str
    expect: Literal["decrease", "increase"]
    window_s: float
    tolerance: float


@dataclass(frozen=True, config=_CFG)
class Answer:
    """An operator's answer to the decision's approval request."""

    state: ApprovalState
    by: str = ""
    why: str = ""


@dataclass(frozen=True, config=_CFG)
class Refusal:
    """A chat-model tool call refused before any judgement (unknown tool, bad arguments)."""

    tool: str
    args: str
    why: str


@dataclass(frozen=True, config=_CFG)
class Decision:
    """One decision; fields are filled step by step (what-if, gate, approval, act)."""

    decision_id: str
    run_id: str
    ts: datetime
    policy_id: str
    description: str
    kind: DecisionKind
    severity: Severity
    action: Action
    instance_key: str = ""
    equipment: str | None = None
    fault_class: str | None = None
    evidence: tuple[Evidence, ...] = ()
    rests_on: tuple[str, ...] = ()
    quality: QualityRecord = QualityRecord()
    policy_ceiling: int = 3
    min_quality: float = 0.0
    whatif_req: WhatIfRequirement = "optional"
    verify: VerifyRecord | None = None
    # the what-if step
    prediction: PredictionRecord | None = None
    whatif_level: int = 3
    whatif_reason: str = ""
    # the gate
    verdict: GateVerdict | None = None
    approval_id: str | None = None
    explanation: str = ""
    # after the gate
    answer: Answer | None = None
    done: bool = False
    executed: bool | None = None
    recheck: str = ""
    refusal: Refusal | None = None

    @property
    def route(self) -> Outcome:
        """Where the gate sent it (before anything was carried out)."""
        if self.verdict is None:
            raise ValueError(f"decision {self.decision_id} has not been through the gate")
        return self.verdict.outcome

    @property
    def outcome(self) -> Outcome:
        """What became of it: executed / blocked once carried out (or not), else the route."""
        if self.executed is not None:
            return "executed" if self.executed else "blocked"
        return self.route

    @property
    def level(self) -> int:
        return self.verdict.level if self.verdict is not None else 0

    @property
    def awaiting_answer(self) -> bool:
        return self.route == "approval_requested" and self.answer is None

    def as_json(self) -> dict[str, Any]:
        """The JSON-plain form (what the audit stores and the API returns), with ``outcome``."""
        out: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        if self.prediction is not None:
            out["prediction"] = self.prediction.as_json()
        if self.verdict is not None:
            out["outcome"] = self.outcome
        return out


_ADAPTER: TypeAdapter[Decision] = TypeAdapter(Decision)


# ---- construction ---------------------------------------------------------------------------
def new_decision(
    *,
    run_id: str,
    ts: datetime,
    policy_id: str,
    description: str,
    kind: DecisionKind,
    severity: Severity,
    action: Action,
    instance_key: str = "",
    equipment: str | None = None,
    fault_class: str | None = None,
    evidence: Sequence[Evidence] = (),
    rests_on: Sequence[str] = (),
    quality: QualityRecord | None = None,
    policy_ceiling: int = 3,
    min_quality: float = 0.0,
    whatif_req: WhatIfRequirement = "optional",
    verify: VerifyRecord | None = None,
) -> Decision:
    """The one constructor: a fresh decision id, nothing judged yet."""
    return Decision(
        decision_id=new_id("dec"),
        run_id=run_id,
        ts=ts,
        policy_id=policy_id,
        description=description,
        kind=kind,
        severity=severity,
        action=action,
        instance_key=instance_key,
        equipment=equipment,
        fault_class=fault_class,
        evidence=tuple(evidence),
        rests_on=tuple(rests_on),
        quality=quality or QualityRecord(),
        policy_ceiling=policy_ceiling,
        min_quality=min_quality,
        whatif_req=whatif_req,
        verify=verify,
    )


def from_trigger(
    t: Trigger,
    *,
    run_id: str,
    ts: datetime,
    quality: QualityRecord,
    verify_tag: str | None,
) -> Decision:
    """A fired policy instance as a decision."""
    p = t.policy
    verify = None
    if p.verify is not None and verify_tag is not None:
        verify = VerifyRecord(verify_tag, p.verify.expect, p.verify.window_s, p.verify.tolerance)
    return new_decision(
        run_id=run_id,
        ts=ts,
        policy_id=p.id,
        description=p.description,
        kind=p.kind,
        severity=p.severity,
        action=t.action,
        instance_key=t.key,
        equipment=t.equipment,
        fault_class=p.fault_class,
        evidence=[
            Evidence(
                e.ref,
                e.tag,
                e.value if math.isfinite(e.value) else None,
                e.op,
                e.threshold,
                e.holds,
            )
            for e in t.evidence
        ],
        rests_on=t.rests_on,
        quality=quality,
        policy_ceiling=p.ceiling,
        min_quality=p.min_quality,
        whatif_req=p.whatif,
        verify=verify,
    )


def _from_llm(
    run_id: str,
    ts: datetime,
    description: str,
    severity: Severity,
    action: Action,
    quality: QualityRecord | None = None,
    ceiling: int = 0,
    min_quality: float = 0.0,
) -> Decision:
    """The chat model's decisions: each rests on the points it would write."""
    tags = [c.tag for c in action.changes]
    return new_decision(
        run_id=run_id,
        ts=ts,
        policy_id="llm",
        description=description,
        kind="llm_proposal",
        severity=severity,
        action=action,
        instance_key="llm",
        equipment=tags[0].split(".", 1)[0] if tags else None,
        rests_on=tags,
        quality=quality,
        policy_ceiling=ceiling,
        min_quality=min_quality,
        whatif_req="required",
    )


def llm_proposal(
    *,
    run_id: str,
    ts: datetime,
    change: Change,
    reason: str,
    quality: QualityRecord,
    ceiling: int,
    min_quality: float = 0.8,
) -> Decision:
    """A write proposed by the chat model: judged like a policy's, what-if required."""
    return _from_llm(
        run_id,
        ts,
        f"LLM proposal: {reason or 'no reason given'}",
        "medium",
        Action("write_setpoint", (change,), reason),
        quality,
        ceiling,
        min_quality,
    )


def refused_call(*, run_id: str, ts: datetime, tool: str, args: Any, why: str) -> Decision:
    """A refused chat-model tool call: a blocked decision, nothing written."""
    text = json.dumps(args, default=str)
    call = f"{tool}({text[:300]})"
    d = _from_llm(run_id, ts, f"Refused LLM tool call {tool}", "high", Action("notify", (), call))
    return replace(
        d,
        verdict=gate.refused(d.decision_id, why),
        refusal=Refusal(tool, text, why),
        explanation=f"Refused LLM tool call {call}: {why}. Nothing was written.",
    )


# ---- stored form, and the older dict shape --------------------------------------------------
_DERIVED = ("outcome", "effective_level", "level_set_by", "extra_evidence", "conditions")


def migrate(d: Mapping[str, Any]) -> dict[str, Any]:
    """An old decision dict (checkpoint state or audit row) → this record's JSON shape.

    The old shape: ``verdict`` a dict with ``level_name`` (or empty), ``prediction`` a
    ``Prediction.to_dict``, a refused LLM call with ``action {kind: llm_tool_call, tool,
    args}``, ``effective_level`` / ``level_set_by`` / ``extra_evidence {refused}``, and
    ``outcome`` stored beside the verdict (now derived from it).
    """
    out = {k: v for k, v in d.items() if k not in _DERIVED and v is not None}
    if "evidence" not in out and isinstance(d.get("conditions"), list):
        out["evidence"] = d["conditions"]
    act = dict(d.get("action") or {})
    extra = d.get("extra_evidence") or {}
    why = str(extra.get("refused") or d.get("refused") or "")
    if act.get("kind") == "llm_tool_call" and "tool" in act:  # now: a notice + its Refusal
        tool, args = str(act.pop("tool")), json.dumps(act.pop("args", {}), default=str)
        act.update(kind="notify", message=f"{tool}({args[:300]})")
        out["refusal"] = {"tool": tool, "args": args, "why": why}
        out.setdefault("description", f"Refused LLM tool call {tool}")
        if not d.get("verdict"):
            out["verdict"] = gate.refused(str(d["decision_id"]), why)
    act.setdefault("changes", [])
    out["action"] = act
    v = d.get("verdict")
    if isinstance(v, Mapping):
        if v:
            out["verdict"] = {k: x for k, x in v.items() if k != "level_name"}
        elif "verdict" not in out or out["verdict"] == v:
            out.pop("verdict", None)
    if d.get("answer") and "state" not in d["answer"]:
        out.pop("answer")
    q = d.get("quality")
    if isinstance(q, Mapping) and q.get("score") is None:
        out.pop("quality")
    for key, default in (("policy_id", "?"), ("description", ""), ("severity", "medium")):
        if not out.get(key):
            out[key] = default
    out.setdefault("kind", "protection")
    out.setdefault("run_id", "")
    return out


def decision_from_json(d: Mapping[str, Any] | Decision) -> Decision:
    """A decision from its stored JSON (new or old shape); a Decision passes through."""
    if isinstance(d, Decision):
        return d
    return _ADAPTER.validate_python(migrate(d))


def decisions_of(items: Sequence[Mapping[str, Any] | Decision]) -> list[Decision]:
    """The graph state's decisions, whatever shape an older checkpoint stored them in."""
    return [decision_from_json(d) for d in items]
