"""The graph's state: small, JSON-plain, checkpointed at every step.

Big inputs (the value vector of every point, the quality report) stay out of
the state — they live in the run's scratch in :class:`agent.context.AgentContext`
— so a checkpoint is a few kilobytes even on a 10,000-point site. Everything
needed after a restart (the decisions with their evidence, proposed changes,
verdicts, approval ids) is here.

A decision (``Decision``) is a plain dict so that it checkpoints and audits as is.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

Decision = dict[str, Any]
"""Keys: decision_id, run_id, ts, policy_id, instance_key, equipment, fault_class, severity, kind,
action {kind, changes [{tag, value, previous}], message, variables}, evidence [...], rests_on [...],
quality {score, reasons}, policy_ceiling, min_quality, whatif_req, prediction {...} | None,
whatif_level, whatif_reason, verdict {level, set_by, caps, reasons, outcome}, outcome,
approval_id, answer {approved, by, why}, executed, explanation, verify {tag, expect, window_s, tolerance}."""

Trigger = Literal["schedule", "chat", "eval", "cli"]


class CycleState(TypedDict, total=False):
    run_id: str
    trigger: str
    approvals_mode: str
    now: str
    n_values: int
    decisions: list[Decision]
    waited: bool
    actions: Annotated[list[dict[str, Any]], operator.add]
    verifications: list[dict[str, Any]]
    notes: Annotated[list[str], operator.add]
    report: dict[str, Any]
