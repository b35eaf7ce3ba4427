"""The graph's state: small, checkpointed at every step.

Big inputs (the value vector of every point, the quality report) stay out of
the state — they live in the run's scratch in :class:`agent.context.AgentContext`
— so a checkpoint is a few kilobytes even on a 10,000-point site. Everything
needed after a restart (the decisions with their evidence, proposed changes,
verdicts, approval ids) is here.

Decisions are typed records (:class:`agent.decision.Decision`); LangGraph's
checkpointer stores them (:mod:`agent.checkpoint` allows exactly these types), and
nodes read them through :func:`agent.decision.decisions_of`, which also migrates the
plain dicts an older checkpoint holds.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from agent.decision import Decision

Trigger = Literal["schedule", "chat", "eval", "cli"]
ApprovalsMode = Literal["interrupt", "record"]


class CycleState(TypedDict, total=False):
    run_id: str
    trigger: Trigger
    approvals_mode: ApprovalsMode
    now: str
    n_values: int
    decisions: list[Decision]
    waited: bool
    actions: Annotated[list[dict[str, Any]], operator.add]
    verifications: list[dict[str, Any]]
    notes: Annotated[list[str], operator.add]
    report: dict[str, Any]
