"""The actuator's side of an e-stop: it checks the control state at write time, restores
only journaled previous values, and a rollback never writes a free value."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from agent_harness import Hall

from connectors.errors import WriteRejected
from tools import gate
from tools.actuation import Actuator, Journal, VerifySpec
from tools.gate import AuthorizedChange, GateControl

SP = "cdu_1.coolant_supply_setpoint"  # write limits 20–40, max_step 2, min_interval 60 s
NOW = datetime(2026, 1, 1)


def _verify() -> VerifySpec:
    return VerifySpec("cdu_1.coolant_supply_temp", "decrease", 180.0, 0.1)


def _auth(value: float, decision: str) -> gate.Authorization:
    ctl = GateControl(site_ceiling=3)
    v = gate.evaluate(decision, control=ctl, policy_ceiling=3, quality=3, whatif=3, writes=True)
    return gate.authorize(v, [AuthorizedChange(SP, value)], control=ctl, now=NOW)


class Switch:
    """The site's control state as the actuator reads it at each write."""

    def __init__(self) -> None:
        self.c = GateControl(site_ceiling=3)

    def __call__(self) -> GateControl:
        return self.c


def test_estop_restores_the_earliest_previous_and_refuses_everything_else(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "a.duckdb")
        ctl = Switch()
        act = Actuator(hall.site, hall.writer, Journal(hall.store), hall.clock, ctl)
        await act.execute(_auth(25.0, "d1"))
        hall.run(60)
        await act.execute(_auth(23.0, "d2"), _verify(), 30.0)
        assert hall.twin.values()[SP] == 23.0
        [held] = act.journal.takeovers()
        assert (held.tag, held.agent_value, held.before_agent) == (SP, 23.0, 27.0)
        late = _auth(21.0, "d3")  # minted before the stop: the actuator still refuses it
        ctl.c = replace(ctl.c, estop=True)
        with pytest.raises(WriteRejected, match="emergency stop"):
            await act.execute(late)
        [r] = await act.hand_back()
        assert (r.tag, r.agent_value, r.restored, r.read_back, r.ok) == (SP, 23.0, 27.0, 27.0, True)
        assert hall.twin.values()[SP] == 27.0  # no max-step, no min-interval for the hand-back
        assert act.journal.takeovers() == []  # handed back: nothing held
        # the verification of a value that is gone is closed, not judged (nor rolled back)
        [d2] = [x for x in act.journal.latest() if x.decision_id == "d2"]
        assert (d2.state, d2.detail["verify"]["status"]) == ("done", "closed")
        hall.run(600)
        assert await act.check_verifications({"cdu_1.coolant_supply_temp": 99.0}) == []
        # a rollback is an ordinary write's undo: refused while e-stopped
        first = next(x for x in act.journal.latest() if x.decision_id == "d1")
        with pytest.raises(WriteRejected, match="emergency stop"):
            gate.authorize_rollback(first, NOW, control=ctl.c)
        # after the clear, the next write takes the point over anew
        ctl.c = GateControl(site_ceiling=3)
        hall.run(60)
        await act.execute(_auth(26.0, "d4"))
        [again] = act.journal.takeovers()
        assert (again.agent_value, again.before_agent) == (26.0, 27.0)

    asyncio.run(main())


def test_a_rollback_writes_only_a_known_previous_inside_the_limits(tmp_path: Path) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "b.duckdb")
        act = Actuator(hall.site, hall.writer, Journal(hall.store), hall.clock)
        [row] = await act.execute(_auth(25.0, "d1"))
        ctl = GateControl(site_ceiling=3)
        for unknown in (None, math.nan, math.inf):
            with pytest.raises(WriteRejected, match="unknown"):
                gate.authorize_rollback(replace(row, previous=unknown), NOW, control=ctl)
        with pytest.raises(WriteRejected, match="needs the emergency stop"):
            gate.authorize_rollback(row, NOW, control=ctl, estop_restore=True)
        outside = gate.authorize_rollback(replace(row, previous=45.0), NOW, control=ctl)
        with pytest.raises(WriteRejected, match="outside the write limits"):
            await act.execute(outside)  # never clamped into some other value
        assert hall.twin.values()[SP] == 25.0
        back = await act.execute(gate.authorize_rollback(row, NOW, control=ctl))
        assert back[0].written == 27.0 and hall.twin.values()[SP] == 27.0

    asyncio.run(main())
