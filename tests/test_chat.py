"""Issue 13: conversations with the agent — plain commands without a model, the scripted model
with one; the history in the site's SQLite checkpointer; "approve that" asks, "yes" approves
through the runtime (role checked, gate re-evaluated)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentOn, Hall
from langchain_core.messages import AIMessage, HumanMessage
from test_agent_llm import SEEN, ScriptedChat, call, final

from agent.chat import commands
from agent.chat.commands import Cmd, parse, whatif_table
from agent.chat.conversation import Chats, check_id
from agent.context import AgentContext
from agent.runtime import close
from agent.users import Principal, Role
from tools.prediction import ConstraintRecord, PredictionRecord

GPU_CAP = "gpu.power_cap"
OLGA = Principal("olga", Role.OPERATOR)
VIC = Principal("vic", Role.VIEWER)


# ---- parsing and the table (pure) ------------------------------------------------------------
def test_parse_the_plain_commands() -> None:
    assert parse("status?") == Cmd("status")
    assert parse("  HELP ") == Cmd("help")
    assert parse("pending") == Cmd("pending")
    assert parse("why dec-123") == Cmd("why", "dec-123")
    assert parse("explain gpu.gpu_temp_max") == Cmd("explain", "gpu.gpu_temp_max")
    assert parse("what if gpu.power_cap +1") == Cmd("whatif", GPU_CAP, 1.0, relative=True)
    assert parse("What if gpu.power_cap - 2.5") == Cmd("whatif", GPU_CAP, -2.5, relative=True)
    assert parse("what if cdu_1.coolant_supply_setpoint = 8") == Cmd(
        "whatif", "cdu_1.coolant_supply_setpoint", 8.0
    )
    assert parse("whatif gpu.power_cap=90") == Cmd("whatif", GPU_CAP, 90.0)
    assert parse("propose gpu.power_cap = 90") == Cmd("propose", GPU_CAP, 90.0)
    assert parse("approve apr-1") == Cmd("answer", "apr-1", state="approved")
    assert parse("Reject that") == Cmd("answer", "that", state="rejected")
    assert parse("yes") == Cmd("confirm", "yes") and parse("no") == Cmd("confirm", "no")
    assert parse("what if gpu.power_cap") is None  # no value: not a command
    assert parse("how hot are the GPUs") is None


def test_whatif_table_is_fixed_width_before_after_delta() -> None:
    rec = PredictionRecord(
        constraints=(
            ConstraintRecord("gpu_die_max", True, 80.0, 85.0, 5.0, "C", 7.0),
            ConstraintRecord("chiller_max_load", False, 1.1, 1.0, -0.1, "", 0.2),
        ),
        before={"facility_kw": 1000.0, "pue": 1.3},
        after={"facility_kw": 990.5, "pue": 1.29},
    )
    lines = whatif_table(rec, full=True).splitlines()
    assert lines[0].split() == ["constraint/metric", "before", "after", "delta"]
    assert len({len(x) for x in lines}) == 1  # every line the same width
    row = {x.split()[0]: x.split()[-3:] for x in lines[2:]}
    assert row["facility_kw"] == ["1000.000", "990.500", "-9.500"]
    assert row["gpu_die_max"] == ["7.000", "5.000", "-2.000"]
    assert any("chiller_max_load margin VIOLATED" in x for x in lines)
    # the short form: what moved or broke, facility power and PUE; the rest counted
    still = PredictionRecord(
        constraints=(
            *rec.constraints,
            ConstraintRecord("ups_load", True, 100.0, 800.0, 700.0, "kW", 700.0),
        ),
        before={"facility_kw": 1000.0, "pue": 1.3, "it_kw": 700.0},
        after={"facility_kw": 1000.0, "pue": 1.3, "it_kw": 700.0},
    )
    short = whatif_table(still).splitlines()
    names = [x.split()[0] for x in short[2:-1]]
    assert names == ["gpu_die_max", "chiller_max_load", "facility_kw", "pue"], short
    assert short[-1] == "(2 other constraints and metrics unchanged)"


def test_conversation_ids_are_checked() -> None:
    assert check_id("conv-1") == "conv-1"
    for bad in ("", "../x", "a" * 81, "a b", "-x"):
        with pytest.raises(ValueError, match="conversation"):
            check_id(bad)


# ---- conversations on the twin ---------------------------------------------------------------
def _ctx(hall: Hall, agent_on: AgentOn, ckpt: Path, llm: Any = None) -> AgentContext:
    return agent_on(hall, policies=[], approvals="record", checkpoint_path=ckpt, llm=llm)


def test_commands_conversation_remembers_its_proposal_and_approve_that_confirms(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    ckpt = tmp_path / "c.ckpt.sqlite"

    async def main() -> None:
        hall = Hall(tmp_path / "c.duckdb")
        hall.run(900)
        ctx = _ctx(hall, agent_on, ckpt)
        chats = Chats(ctx)
        assert chats.mode == "commands"
        r1 = await chats.turn("propose gpu.power_cap = 90", None, OLGA)
        conv = r1.conversation
        assert r1.mode == "commands" and conv.startswith("conv-")
        (prop,) = r1.proposals
        assert prop["tag"] == GPU_CAP and prop["to"] == 90.0 and prop["from"] == 100.0
        assert prop["outcome"] == "approval_requested" and prop["level"] <= 2
        # another conversation has no proposal: "approve that" there refers to nothing
        other = await chats.turn("approve that", None, OLGA)
        assert other.conversation != conv and "no proposal in this conversation" in other.text
        r2 = await chats.turn("approve that", conv, OLGA)
        assert prop["approval_id"] in r2.text and "yes or no" in r2.text
        assert ctx.audit.approval(prop["approval_id"]).state == "pending"  # type: ignore[union-attr]
        assert hall.twin.values()[GPU_CAP] == 100.0  # asked, not done
        r3 = await chats.turn("yes", conv, OLGA)
        assert f"Approved {prop['approval_id']} as olga" in r3.text, r3.text
        a = ctx.audit.approval(prop["approval_id"])
        assert a is not None and a.state == "approved" and a.by_whom == "olga"
        assert hall.twin.values()[GPU_CAP] == 90.0  # written by the runtime's guarded path
        again = await chats.turn("yes", conv, OLGA)
        assert again.text == "Nothing to confirm."  # a confirmation holds for one message
        await close(ctx)

        # the conversation is in the SQLite checkpointer: a new context (a restart) reads it
        ctx2 = _ctx(hall, agent_on, ckpt)
        st = await Chats(ctx2).state(conv)
        texts = [m.content for m in st["messages"]]
        assert texts[0] == "propose gpu.power_cap = 90" and texts[2:4] == [
            "approve that",
            r2.text,
        ]
        assert len(texts) == 8 and [p["approval_id"] for p in st["proposals"]] == [
            prop["approval_id"]
        ]
        await close(ctx2)

    asyncio.run(main())


def test_commands_answer_status_pending_why_explain_whatif(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "s.duckdb")
        hall.run(900)
        ctx = _ctx(hall, agent_on, tmp_path / "s.ckpt.sqlite")
        chats = Chats(ctx)
        conv = "ops-1"
        help_ = await chats.turn("help", conv, OLGA)
        assert "what if TAG +1" in help_.text and "approve that" in help_.text
        st = await chats.turn("status", conv, OLGA)
        assert "autonomy ceiling 2" in st.text and "0 pending" in st.text
        assert (await chats.turn("pending", conv, OLGA)).text == "No approval is pending."
        ex = await chats.turn("explain gpu.gpu_temp_max", conv, OLGA)
        assert ex.text.startswith("gpu.gpu_temp_max (gpu") and "data quality" in ex.text
        wi = await chats.turn("what if cdu_1.coolant_supply_setpoint +1", conv, OLGA)
        lines = wi.text.splitlines()
        assert "nothing is written" in lines[0]
        assert lines[1].split() == ["constraint/metric", "before", "after", "delta"]
        assert any(x.startswith("facility_kw") for x in lines)
        assert hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 27.0
        p = (await chats.turn("propose gpu.power_cap -10", conv, OLGA)).proposals[0]
        pend = await chats.turn("pending", conv, OLGA)
        assert p["approval_id"] in pend.text
        why = await chats.turn(f"why {p['decision_id']}", conv, OLGA)
        assert why.text.startswith(f"Decision {p['decision_id']} (llm): approval_requested")
        assert "set by" in why.text and "pending" in why.text
        nope = await chats.turn("make it colder", conv, OLGA)
        assert "Not a command" in nope.text and "help" in nope.text
        unknown = await chats.turn("explain nope.nothing", conv, OLGA)
        assert "Unknown point 'nope.nothing'" in unknown.text
        await close(ctx)

    asyncio.run(main())


def test_a_viewer_cannot_approve_from_chat(tmp_path: Path, agent_on: AgentOn) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "v.duckdb")
        hall.run(900)
        ctx = _ctx(hall, agent_on, tmp_path / "v.ckpt.sqlite")
        chats = Chats(ctx)
        prop = (await chats.turn("propose gpu.power_cap = 90", "v", OLGA)).proposals[0]
        out = await commands.answer(ctx, prop["approval_id"], "approved", VIC, asyncio.Lock())
        assert "needs the operator role" in out
        assert ctx.audit.approval(prop["approval_id"]).state == "pending"  # type: ignore[union-attr]
        assert hall.twin.values()[GPU_CAP] == 100.0
        await close(ctx)

    asyncio.run(main())


def test_scripted_model_conversation_has_memory_and_approve_that_never_reaches_it(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "m.duckdb")
        hall.run(900)
        model = ScriptedChat(
            responses=[
                call("propose_action", {"tag": GPU_CAP, "value": 90, "reason": "hot"}, 1),
                final("I asked for gpu.power_cap = 90; an operator must approve."),
                final("You asked me to cap the GPUs at 90 %."),
            ]
        )
        ctx = _ctx(hall, agent_on, tmp_path / "m.ckpt.sqlite", llm=model)
        chats = Chats(ctx)
        assert chats.mode == "llm"
        SEEN.clear()
        r1 = await chats.turn("Cap the GPUs at 90 please", None, OLGA)
        conv = r1.conversation
        (prop,) = r1.proposals
        assert prop["outcome"] == "approval_requested" and prop["tag"] == GPU_CAP
        r2 = await chats.turn("what did I ask you?", conv, OLGA)
        assert r2.text == "You asked me to cap the GPUs at 90 %."
        shown = SEEN[-1]  # the model's view on the second message: the first one is in it
        humans = [m.content for m in shown if isinstance(m, HumanMessage)]
        assert humans == ["Cap the GPUs at 90 please", "what did I ask you?"]
        assert any(
            isinstance(m, AIMessage) and "an operator must approve" in str(m.content) for m in shown
        )
        n_calls = len(SEEN)
        st = await chats.turn("status", conv, OLGA)  # a plain command: answered by the command
        assert "1 pending approval(s)" in st.text and st.mode == "llm"
        r3 = await chats.turn("approve that", conv, OLGA)
        assert prop["approval_id"] in r3.text and "yes or no" in r3.text
        r4 = await chats.turn("yes", conv, OLGA)
        assert f"Approved {prop['approval_id']} as olga" in r4.text
        assert len(SEEN) == n_calls  # status and the approval: the commands, not the model
        assert hall.twin.values()[GPU_CAP] == 90.0
        await close(ctx)

    asyncio.run(main())


def test_a_model_that_never_stops_calling_tools_is_cut_after_max_rounds(
    tmp_path: Path, agent_on: AgentOn
) -> None:
    from agent.llm import MAX_ROUNDS, chat

    async def main() -> None:
        hall = Hall(tmp_path / "r.duckdb")
        hall.run(60)
        ctx = agent_on(hall, policies=[], approvals="record")
        model = ScriptedChat(
            responses=[call("latest_values", {"tags": [GPU_CAP]}, i) for i in range(20)]
        )
        SEEN.clear()
        res = await chat(ctx, "loop forever", model)
        assert len(SEEN) <= MAX_ROUNDS, len(SEEN)
        run = ctx.store.query("SELECT status FROM runs_latest WHERE run_id = ?", [res.run_id])
        assert run["status"][0] == "max_rounds"
        assert "more steps" in res.text or res.text == ""

    asyncio.run(main())


def test_a_long_conversation_keeps_its_newest_messages(
    tmp_path: Path, agent_on: AgentOn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.chat import conversation

    monkeypatch.setattr(conversation, "KEEP_MESSAGES", 6)

    async def main() -> None:
        hall = Hall(tmp_path / "k.duckdb")
        hall.run(60)
        ctx = _ctx(hall, agent_on, tmp_path / "k.ckpt.sqlite")
        chats = Chats(ctx)
        for i in range(5):
            await chats.turn(f"why dec-{i}", "long", OLGA)
        msgs = (await chats.state("long"))["messages"]
        assert [m.content for m in msgs][::2] == ["why dec-2", "why dec-3", "why dec-4"]
        await close(ctx)

    asyncio.run(main())
