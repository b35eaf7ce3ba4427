"""Issue 11: the quality scope of a write, non-finite proposals, the chat model's limits.

(c) a stuck ``chiller_1.chw_supply_temp`` at autonomy 3 → ``chw_reset`` capped below 3,
    the verdict naming the stuck tag, nothing written (finding 4);
(e) one model reply with 5 proposals → 3 pending, 2 refused and audited, the model told;
    a malformed tool call (bad JSON) from a scripted model and from the real ChatOpenAI
    client against a fake OpenAI-compatible server → refused, audited, answered;
non-finite values: refused on the LLM path and on the policy path (what-if optional).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from agent_harness import AgentOn, Hall
from langchain_core.messages import AIMessage, ToolMessage
from test_agent_llm import SEEN, FakeOpenAI, ScriptedChat, blocked, fake_openai, final

from agent import nodes
from agent.decision import Action, Change, new_decision
from agent.llm import MAX_PROPOSALS, chat, chat_model_from_env
from agent.runtime import decide_once, set_autonomy
from agent.state import CycleState
from tools import gate
from tools.policies import load_library
from tools.scope import equipment_sensors, whatif_inputs, write_scope
from twin.faults import Fault

GPU_CAP = "gpu.power_cap"
STUCK = "chiller_1.chw_supply_temp"


# ---- scope -----------------------------------------------------------------------------------
def test_write_scope_holds_the_written_equipments_sensors_and_the_whatif_inputs() -> None:
    site = Hall().site
    scope = write_scope(
        site, ["gpu.gpu_temp_max", "plant.pue"], ["chiller_1.chw_supply_setpoint"], True
    )
    assert scope[:2] == ("gpu.gpu_temp_max", "plant.pue")
    assert STUCK in scope and "chiller_1.chw_supply_setpoint" not in equipment_sensors(
        site, "chiller_1.chw_supply_setpoint"
    )
    assert set(whatif_inputs(site)) <= set(scope) and "gpu.it_power" in scope
    assert write_scope(site, ["gpu.gpu_temp_max"], [], True) == ("gpu.gpu_temp_max",)


def test_c_stuck_chw_sensor_caps_chw_reset_below_3_naming_it(agent_on: AgentOn) -> None:
    async def main() -> Any:
        hall = Hall()
        hall.run(900)
        ctx = agent_on(hall, policies=load_library(["efficiency"]), approvals="record")
        set_autonomy(ctx, 3, "admin")
        before = hall.twin.values()["chiller_1.chw_supply_setpoint"]
        hall.twin.inject(Fault(kind="stuck", target=STUCK, start_s=0))
        for _ in range(60):
            hall.run(20)
            for d in (await decide_once(ctx, "eval")).decisions:
                if d.policy_id == "chw_reset":
                    return d, before, hall.twin.values()["chiller_1.chw_supply_setpoint"], ctx
        raise AssertionError("chw_reset never fired")

    d, before, after, ctx = asyncio.run(main())
    assert d.verdict is not None and d.level < 3 and d.outcome != "executed", d.explanation
    assert "quality" in d.verdict.set_by
    why = d.verdict.reasons["quality"]
    assert f"weakest point {STUCK}" in why and "stuck" in why, why
    assert d.quality.reasons[0].startswith(f"weakest point {STUCK}")
    assert (
        after == before
        and [r for r in ctx.audit.journal.latest() if r.decision_id == d.decision_id] == []
    )


# ---- the write-time verdict only ever comes out lower ---------------------------------------
def _verdict(level: int, **caps: int) -> gate.GateVerdict:
    control = gate.GateControl(site_ceiling=caps.get("site", 3))
    return gate.evaluate(
        "d",
        control=control,
        policy_ceiling=caps.get("policy", 3),
        quality=caps.get("quality", 3),
        whatif=caps.get("whatif", 3),
        writes=True,
    )


def test_at_write_time_never_raises_a_level() -> None:
    stored = _verdict(2, policy=2)
    assert gate.at_write_time(stored, _verdict(3)).level == 2  # consent is not authority
    low = gate.at_write_time(stored, _verdict(0, site=0))
    assert low.level == 0 and low.set_by == ("site",) and low.outcome == "blocked"
    assert "at write time: site ceiling 0" in low.reasons["site"]
    with pytest.raises(gate.WriteRejected, match="site ceiling 0"):
        gate.authorize(
            low,
            [gate.AuthorizedChange(GPU_CAP, 90.0)],
            control=gate.GateControl(site_ceiling=0),
            now=datetime(2026, 1, 1),
            approval=gate.Approval("a", "d", "approved", "olga"),
        )


# ---- non-finite ------------------------------------------------------------------------------
def test_whatif_level_of_a_refused_proposal_is_0_whatever_the_requirement() -> None:
    for req in ("required", "optional", "none"):
        lvl, why = gate.whatif_level(
            None, req, "NonFiniteValue", refused="non-finite value x = nan"
        )  # type: ignore[arg-type]
        assert lvl == 0 and "non-finite" in why


def test_nonfinite_policy_change_is_rejected_by_the_gate(tmp_path: Path, agent_on: AgentOn) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "n.duckdb")
        hall.run(60)
        ctx = agent_on(hall, policies=[], approvals="record")
        set_autonomy(ctx, 3, "admin")
        now = ctx.clock.now()
        cfg: Any = {"configurable": {"ctx": ctx}}
        for value in (math.nan, math.inf):
            d = new_decision(
                run_id="run-nan",
                ts=now,
                policy_id="p",
                description="a policy computing a broken value",
                kind="protection",
                severity="high",
                action=Action("write_setpoint", (Change(GPU_CAP, value, 100.0),), "x"),
                whatif_req="optional",
            )
            st: CycleState = {"run_id": "run-nan", "now": now.isoformat(), "decisions": [d]}
            st["decisions"] = (await nodes.whatif(st, cfg))["decisions"]
            out = (await nodes.gate_node(st, cfg))["decisions"][0]
            assert out.level == 0 and out.outcome == "rejected_by_gate", out.explanation
            assert "non-finite" in out.explanation
            row = ctx.audit.decision(out.decision_id)
            assert row is not None and row.outcome == "rejected_by_gate"
            with pytest.raises(gate.WriteRejected, match="non-finite"):
                gate.authorize(
                    replace(out.verdict, level=3),  # type: ignore[arg-type]
                    [gate.AuthorizedChange(GPU_CAP, value)],
                    control=gate.GateControl(3),
                    now=now,
                )
        assert hall.writer.writes == []

    asyncio.run(main())


# ---- the chat model's limits -----------------------------------------------------------------
def _many(calls: list[dict[str, Any]], invalid: list[dict[str, Any]] | None = None) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=calls,
        invalid_tool_calls=invalid or [],
        usage_metadata={"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
    )


def test_e_one_reply_with_5_proposals_makes_3_requests_and_2_refusals(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "e.duckdb")
        hall.run(900)
        ctx = agent_on(hall, policies=[])
        calls = [
            {
                "name": "propose_action",
                "args": {"tag": GPU_CAP, "value": v, "reason": "r"},
                "id": f"p{i}",
            }
            for i, v in enumerate((95.0, 92.0, 90.0, 88.0, 85.0))
        ]
        nan_call = {
            "name": "propose_action",
            "args": {"tag": GPU_CAP, "value": math.nan},
            "id": "pn",
        }
        bad = {
            "name": "propose_action",
            "args": '{"tag": "gpu.power_cap", "value": 10',
            "id": "pb",
            "error": "Function propose_action arguments are not valid JSON",
            "type": "invalid_tool_call",
        }
        model = ScriptedChat(responses=[_many([nan_call, *calls], [bad]), final("Asked.")])
        SEEN.clear()
        res = await chat(ctx, "cap the GPUs in five steps", model)
        assert len(res.proposals) == MAX_PROPOSALS == 3
        assert all(p["outcome"] == "approval_requested" for p in res.proposals)
        assert len(ctx.audit.pending_approvals()) == 3
        why = [r["error"] for r in res.refused]
        assert sum("at most 3 proposals" in w for w in why) == 2, why
        assert sum("non-finite" in w for w in why) == 1, why
        assert sum("malformed tool call" in w for w in why) == 1, why
        assert len(blocked(ctx, res.run_id)) == 4  # every refusal audited
        told = [m for m in SEEN[-1] if isinstance(m, ToolMessage)]
        by_id = {m.tool_call_id: str(m.content) for m in told}
        assert "at most 3 proposals" in by_id["p3"] and "at most 3 proposals" in by_id["p4"]
        assert "malformed tool call" in by_id["pb"] and "non-finite" in by_id["pn"]
        assert hall.writer.writes == [] and hall.twin.values()[GPU_CAP] == 100.0

    asyncio.run(main())


class _MalformedOpenAI(FakeOpenAI):
    """First reply: a tool call whose arguments are broken JSON; then a plain answer."""

    requests: ClassVar[list[dict[str, Any]]] = []
    call = ("call_bad", "propose_action", '{"tag": "gpu.power_cap", "value": ')
    answer = "Sorry, my call was malformed."


def test_malformed_tool_call_over_http_is_refused_audited_and_answered(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    with fake_openai(_MalformedOpenAI) as env:

        async def main() -> None:
            hall = Hall(tmp_path / "m.duckdb")
            hall.run(30)
            ctx = agent_on(hall, policies=[], llm=chat_model_from_env(env))
            res = await chat(ctx, "cap the GPUs")
            assert res.text == "Sorry, my call was malformed."
            assert [r["name"] for r in res.refused] == ["propose_action"]
            assert "malformed tool call" in res.refused[0]["error"]
            rows = blocked(ctx, res.run_id)
            assert len(rows) == 1 and "malformed" in rows[0]["explanation"]
            tool = [m for m in _MalformedOpenAI.requests[-1]["messages"] if m["role"] == "tool"]
            assert tool and tool[0]["tool_call_id"] == "call_bad"
            assert "malformed tool call" in tool[0]["content"]
            assert ctx.audit.pending_approvals() == [] and hall.writer.writes == []

        asyncio.run(main())
