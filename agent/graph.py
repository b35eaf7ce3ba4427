"""The decision graph (LangGraph ``StateGraph``); the wiring is grouped at the bottom.

    observe → assess_quality → evaluate_policies → whatif → gate → recommend → act
        act ─┬─ (approvals pending) → wait_for_approval (interrupt) → act
             └─ verify → report → END

``act`` runs first for level-3 decisions (autonomy does not wait for a person),
then again after the approvals of the run are answered. Human validation pauses
the run with ``interrupt()``; with a checkpointer (:mod:`agent.checkpoint`) the
pause survives a restart and resumes with ``Command(resume=...)``.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from agent import nodes
from agent.state import CycleState


def build_graph() -> StateGraph[Any]:
    g: StateGraph[Any] = StateGraph(CycleState)
    g.add_node("observe", nodes.observe)
    g.add_node("assess_quality", nodes.assess_quality)
    g.add_node("evaluate_policies", nodes.evaluate_policies)
    g.add_node("whatif", nodes.whatif)
    g.add_node("gate", nodes.gate_node)
    g.add_node("recommend", nodes.recommend)
    g.add_node("act", nodes.act)
    g.add_node("wait_for_approval", nodes.wait_for_approval)
    g.add_node("verify", nodes.verify)
    g.add_node("report", nodes.report)

    g.add_edge(START, "observe")
    g.add_edge("observe", "assess_quality")
    g.add_edge("assess_quality", "evaluate_policies")
    g.add_edge("evaluate_policies", "whatif")
    g.add_edge("whatif", "gate")
    g.add_edge("gate", "recommend")
    g.add_edge("recommend", "act")
    g.add_conditional_edges("act", nodes.after_act, ["wait_for_approval", "verify"])
    g.add_edge("wait_for_approval", "act")
    g.add_edge("verify", "report")
    g.add_edge("report", END)
    return g


def compile_graph(checkpointer: Any | None = None) -> Any:
    return build_graph().compile(checkpointer=checkpointer)
