"""The typed decision: its stored forms both ways, LangGraph's checkpointer, and the older dict
shape (checkpoints and audit rows written before the record existed) still loading."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_harness import AgentOn, Hall
from test_agent_twin import cdu_policy, until_decision

from agent.audit import Audit
from agent.checkpoint import memory_saver, serializer
from agent.decision import Change as PolicyChange
from agent.decision import Decision, QualityRecord, decision_from_json, llm_proposal, migrate
from agent.runtime import _graph, answer_approval, close
from connectors.store import Store
from tools import gate
from tools.gate import GateControl
from tools.prediction import ConstraintRecord, PredictionRecord
from twin.faults import Fault

T0 = datetime(2026, 3, 1, 12, 0)

#: A decision as ``agent/nodes.py`` built it before the typed record (main at 93ed778).
OLD_STATE_DICT: dict[str, Any] = {
    "decision_id": "dec-old1",
    "run_id": "run-old",
    "ts": "2026-03-01T12:00:00",
    "policy_id": "gpu_hot",
    "description": "Hottest GPU above 80 °C",
    "instance_key": "gpu_hot",
    "equipment": None,
    "fault_class": None,
    "severity": "high",
    "kind": "protection",
    "action": {
        "kind": "write_setpoint",
        "changes": [{"tag": "cdu_1.coolant_supply_setpoint", "value": 25.0, "previous": 27.0}],
        "message": "",
        "variables": [],
    },
    "evidence": [
        {
            "ref": "gpu.gpu_temp_max",
            "tag": "gpu.gpu_temp_max",
            "value": 83.1,
            "op": ">",
            "threshold": 80.0,
            "holds": True,
        }
    ],
    "rests_on": ["gpu.gpu_temp_max"],
    "quality": {"score": 0.97, "reasons": []},
    "policy_ceiling": 3,
    "min_quality": 0.5,
    "whatif_req": "required",
    "verify": {
        "tag": "cdu_1.coolant_supply_temp",
        "expect": "decrease",
        "window_s": 180.0,
        "tolerance": 0.1,
    },
    "prediction": {
        "changes": [{"target": "cdu_supply_setpoint_c", "value": 25.0, "relative": False}],
        "total_kw": 1500.0,
        "delta_kw": 3.2,
        "pue": 1.2,
        "delta_pue": 0.002,
        "cooling_kw": 250.0,
        "ok": True,
        "worsened": [],
        "valid": True,
        "invalid_reasons": [],
        "before": {"facility_kw": 1496.8, "cdu_supply_c": 27.2},
        "after": {"facility_kw": 1500.0, "cdu_supply_c": 25.2},
        "constraints": [
            {
                "name": "gpu_die_temp",
                "value": 79.0,
                "limit": 85.0,
                "margin": 6.0,
                "margin_before": 2.0,
                "ok": True,
                "unit": "degC",
            }
        ],
    },
    "whatif_level": 3,
    "whatif_reason": "what-if: all constraints hold",
    "verdict": {
        "decision_id": "dec-old1",
        "level": 2,
        "level_name": "human validation",
        "set_by": ["site"],
        "caps": {"site": 2, "policy": 3, "quality": 3, "whatif": 3, "override": 3},
        "reasons": {"site": "site ceiling 2 (human validation)"},
        "writes": True,
        "outcome": "approval_requested",
    },
    "outcome": "approval_requested",
    "approval_id": "apr-old1",
    "explanation": "Hottest GPU above 80 °C. … Outcome: waiting for an operator to approve.",
    "answer": {"state": "approved", "by": "ana", "why": "go"},
}


def test_an_old_state_dict_migrates_to_the_typed_record() -> None:
    d = decision_from_json(OLD_STATE_DICT)
    assert d.ts == T0 and d.kind == "protection" and d.severity == "high"
    assert d.action.changes == (PolicyChange("cdu_1.coolant_supply_setpoint", 25.0, 27.0),)
    assert d.evidence[0].value == 83.1 and d.rests_on == ("gpu.gpu_temp_max",)
    assert d.verify is not None and d.verify.window_s == 180.0
    assert d.verdict is not None and d.verdict.set_by == ("site",) and d.verdict.level == 2
    assert d.route == "approval_requested" and d.outcome == "approval_requested"
    assert d.answer is not None and (d.answer.state, d.answer.by) == ("approved", "ana")
    p = d.prediction
    assert p is not None and p.delta_kw == 3.2 and p.output("cdu_supply_c") == 25.2
    assert p.constraints[0].margin_before == 2.0
    assert gate.whatif_level(p, "required")[0] == 3
    assert "outcome" not in migrate(OLD_STATE_DICT)  # derived from the verdict now


def test_json_and_checkpoint_forms_round_trip() -> None:
    d = llm_proposal(
        run_id="r",
        ts=T0,
        change=PolicyChange("gpu.power_cap", 90.0, 100.0),
        reason="test",
        quality=QualityRecord(0.9, ("gpu.power: stale",)),
        ceiling=2,
    )
    v = gate.evaluate(
        d.decision_id,
        control=GateControl(),
        policy_ceiling=2,
        quality=2,
        whatif=3,
        writes=True,
    )
    pred = PredictionRecord(
        (ConstraintRecord("ups_load", True, 900.0, 1000.0, 100.0, "kW", 80.0),),
        {"facility_kw": 1000.0},
        {"facility_kw": 990.0},
    )
    d = replace(d, verdict=v, prediction=pred, approval_id="apr-1")
    assert decision_from_json(json.loads(json.dumps(d.as_json()))) == d
    serde = serializer()
    back = serde.loads_typed(serde.dumps_typed({"decisions": [d]}))["decisions"][0]
    assert isinstance(back, Decision) and back == d
    assert isinstance(back.verdict.set_by, tuple)  # type: ignore[union-attr]
    assert memory_saver().serde is not None


def test_old_audit_rows_read_back_typed(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.duckdb")
    audit = Audit(store)
    old = OLD_STATE_DICT
    v = dict(old["verdict"])
    store.execute(  # a policy decision as record_decision wrote it on main
        "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            "dec-old1", "run-old", T0, "gpu_hot", None, "high", "protection",
            "approval_requested", 2, "site", json.dumps(old["action"]),
            json.dumps({"conditions": old["evidence"], "quality": old["quality"],
                        "rests_on": old["rests_on"], "instance_key": "gpu_hot", "verdict": v,
                        "equipment": None}),
            json.dumps(old["prediction"]), old["explanation"],
        ],
    )  # fmt: skip
    audit.approval_event("apr-old1", "dec-old1", T0, "pending")
    store.execute(  # a refused LLM tool call as llm.refuse wrote it on main
        "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            "dec-old2", "chat-1", T0, "llm", None, "high", "llm_proposal", "blocked", 0,
            "llm_refused",
            json.dumps({"kind": "llm_tool_call", "tool": "write_point", "args": {"v": 1}}),
            json.dumps({"conditions": [], "quality": None, "rests_on": None, "instance_key": None,
                        "verdict": {}, "equipment": None, "refused": "no tool 'write_point'"}),
            None, "Refused LLM tool call write_point: no tool. Nothing was written.",
        ],
    )  # fmt: skip
    d = audit.decision("dec-old1")
    assert d is not None and d.approval_id == "apr-old1"  # found in the approvals table
    assert d.route == "approval_requested" and d.quality.score == 0.97
    assert d.action.changes[0].value == 25.0 and d.evidence[0].ref == "gpu.gpu_temp_max"
    r = audit.decision("dec-old2")
    assert r is not None and r.outcome == "blocked" and r.level == 0
    assert r.refusal is not None and r.refusal.tool == "write_point"
    assert r.refusal.why == "no tool 'write_point'"
    audit.record_decision(r, T0)  # and it is written back in the new shape
    again = audit.decision("dec-old2")
    assert again == r
    store.close()


def test_an_old_checkpoint_with_dict_decisions_resumes(
    tmp_path: Path, port: int, agent_on: AgentOn
) -> None:
    """A paused run whose checkpoint holds the old dict shape is approved and carried out."""

    async def main() -> None:
        hall = Hall(tmp_path / "c.duckdb")
        hall.run(900)
        await hall.start(port)
        ctx = agent_on(hall, policies=cdu_policy(), checkpoint_path=tmp_path / "c.sqlite")
        try:
            hall.twin.inject(
                Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
            )
            res = await until_decision(hall, ctx)
            d = res.decisions[0]
            assert d.route == "approval_requested" and res.interrupted
            graph = await _graph(ctx)
            cfg: Any = {"configurable": {"thread_id": res.run_id, "ctx": ctx}}
            await graph.aupdate_state(cfg, {"decisions": [_old_shape(d)]}, as_node="act")
            stored = (await graph.aget_state(cfg)).values["decisions"]
            assert isinstance(stored[0], dict)  # the checkpoint now holds the old shape
            out = await answer_approval(ctx, d.approval_id or "", "approved", "ana")
            assert out is not None and not out.interrupted
            assert hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 25.0
            assert [x.outcome for x in out.decisions] == ["executed"]
        finally:
            await close(ctx)
            await hall.stop()

    asyncio.run(main())


def _old_shape(d: Decision) -> dict[str, Any]:
    """``d`` as the pre-typed nodes kept it in the graph state."""
    j = d.as_json()
    for k in ("answer", "done", "executed", "recheck", "refusal"):
        j.pop(k)
    assert d.verdict is not None
    j["verdict"] = {**j["verdict"], "level_name": d.verdict.level_name}
    return j
