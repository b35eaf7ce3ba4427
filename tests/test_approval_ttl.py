"""An approval's time to live is the context's (``AgentContext.approval_ttl_s``), on every route:
the answer (``answer_approval``), the cycle's expiry sweep and the restart's resumption.

A rig whose plant runs faster than real time (the e-stop tests' child, ~200x) sets a longer
time to live so that a loaded machine's slow answer is not an expiry; the default stays 15 min.
"""

from __future__ import annotations

from pathlib import Path

from agent_harness import AgentOn, Hall
from test_agent_twin import cdu_policy, on_hall, until_decision

from agent.runtime import ApprovalExpired, answer_approval, close, expire_approvals
from tools.gate import APPROVAL_TTL_S
from twin.faults import Fault


def _fault() -> Fault:
    return Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)


def test_the_contexts_ttl_governs_expiry_and_answers(
    tmp_path: Path, port: int, agent_on: AgentOn
) -> None:
    async def body(hall: Hall) -> None:
        ctx = agent_on(hall, policies=cdu_policy(), checkpoint_path=tmp_path / "c.sqlite")
        assert ctx.approval_ttl_s == APPROVAL_TTL_S  # the default is unchanged
        ctx.approval_ttl_s = 4 * APPROVAL_TTL_S
        try:
            hall.twin.inject(_fault())
            d = (await until_decision(hall, ctx)).decisions[0]
            assert d.outcome == "approval_requested", d.explanation
            apr = d.approval_id
            assert apr is not None
            hall.run(APPROVAL_TTL_S + 120)  # past the default, within the context's
            assert await expire_approvals(ctx) == []
            await answer_approval(ctx, apr, "approved", "olga", "late but in time")
            a = ctx.audit.approval(apr)
            assert a is not None and a.state == "approved"
        finally:
            await close(ctx)

    on_hall(tmp_path, port, body)


def test_past_the_contexts_ttl_an_answer_expires(
    tmp_path: Path, port: int, agent_on: AgentOn
) -> None:
    async def body(hall: Hall) -> None:
        ctx = agent_on(hall, policies=cdu_policy(), checkpoint_path=tmp_path / "c.sqlite")
        ctx.approval_ttl_s = 300.0
        try:
            hall.twin.inject(_fault())
            d = (await until_decision(hall, ctx)).decisions[0]
            apr = d.approval_id
            assert apr is not None
            hall.run(400)  # within the default 15 min, past the context's 5
            try:
                await answer_approval(ctx, apr, "approved", "olga")
            except ApprovalExpired as err:
                assert "limit 300 s" in str(err), err
            else:
                raise AssertionError("an answer past the context's TTL was accepted")
            a = ctx.audit.approval(apr)
            assert a is not None and a.state == "expired"
        finally:
            await close(ctx)

    on_hall(tmp_path, port, body)
