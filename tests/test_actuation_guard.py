"""Guarded actuation: limits, step, interval, read-back, the journal, and crash reconciliation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from agent_harness import Hall

from connectors.errors import WriteRejected
from tools import gate
from tools.actuation import ActionRow, Actuator, Journal, judge, write_heartbeat
from tools.gate import AuthorizedChange, GateControl

SP = "cdu_1.coolant_supply_setpoint"  # write limits 20–40, max_step 2, min_interval 60 s


def _auth(value: float, decision: str = "d1", tag: str = SP) -> gate.Authorization:
    ctl = GateControl(site_ceiling=3)
    v = gate.evaluate(decision, control=ctl, policy_ceiling=3, quality=3, whatif=3, writes=True)
    return gate.authorize(v, [AuthorizedChange(tag, value)], control=ctl, now=datetime(2026, 1, 1))


def test_clamp_step_interval_and_journal(tmp_path: Path) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "a.duckdb")
        act = Actuator(hall.site, hall.writer, Journal(hall.store), hall.clock)
        rows = await act.execute(_auth(10.0))  # below write min 20 and 17 K below now
        r = rows[0]
        assert (r.requested, r.clamped, r.previous, r.read_back, r.state) == (
            10.0,
            25.0,
            27.0,
            25.0,
            "done",
        )
        assert hall.twin.values()[SP] == 25.0
        with pytest.raises(WriteRejected, match="shortest interval"):
            await act.execute(_auth(24.0, "d2"))
        assert hall.twin.values()[SP] == 25.0
        hall.run(60)
        assert (await act.execute(_auth(24.0, "d3")))[0].written == 24.0
        with pytest.raises(WriteRejected, match="not a writable point"):
            await act.execute(_auth(50.0, "d4", "gpu.gpu_temp_max"))
        failed = [x for x in act.journal.latest() if x.state == "failed"]
        assert len(failed) == 2 and all("error" in x.detail for x in failed)
        with pytest.raises(WriteRejected):
            await act.execute("not an authorization")  # type: ignore[arg-type]

    asyncio.run(main())


def test_reconcile_reads_back_and_never_writes_twice(tmp_path: Path) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "b.duckdb")
        journal = Journal(hall.store)
        now = hall.clock.now()
        # crash 1: the write landed (the plant shows it) but 'done' was never journaled
        hall.twin.write(SP, 25.0)
        journal.append(
            ActionRow("act-landed", "d1", now, SP, 25.0, 25.0, 27.0, 25.0, None, "executing", {})
        )
        # crash 2: journaled 'executing', the write never reached the device
        journal.append(
            ActionRow(
                "act-lost",
                "d2",
                now,
                "gpu.power_cap",
                90.0,
                90.0,
                100.0,
                90.0,
                None,
                "executing",
                {},
            )
        )
        # crash 3: approved, never executing
        journal.append(
            ActionRow(
                "act-early",
                "d3",
                now,
                "ct_1.cw_supply_setpoint",
                28.0,
                28.0,
                29.0,
                None,
                None,
                "approved",
                {},
            )
        )
        hall.writer.writes.clear()
        out = await Actuator(hall.site, hall.writer, journal, hall.clock).reconcile()
        states = {r.action_id: r.state for r in out}
        assert states == {"act-landed": "done", "act-lost": "failed", "act-early": "failed"}
        assert hall.writer.writes == []  # nothing written on recovery
        assert hall.twin.values()["gpu.power_cap"] == 100.0
        assert (
            await Actuator(hall.site, hall.writer, journal, hall.clock).reconcile() == []
        )  # settled

    asyncio.run(main())


def test_heartbeat_only_to_agent_points(tmp_path: Path) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "c.duckdb")
        await write_heartbeat(hall.site, hall.writer, "agent.heartbeat", 7.0)
        assert hall.twin.values()["agent.heartbeat"] == 7.0
        with pytest.raises(WriteRejected):
            await write_heartbeat(hall.site, hall.writer, SP, 20.0)

    asyncio.run(main())


def test_judge() -> None:
    assert judge(27.0, 25.0, "decrease", 0.1) == "ok"
    assert judge(27.0, 29.0, "decrease", 0.1) == "wrong_way"
    assert judge(27.0, 27.05, "decrease", 0.1) == "ok"
    assert judge(27.0, 25.0, "increase", 0.1) == "wrong_way"
    assert judge(float("nan"), 25.0, "increase", 0.1) == "no_data"
    assert timedelta(seconds=1)  # keep the import honest


def test_a_move_toward_safety_is_not_paced(tmp_path: Path) -> None:
    """The CDU pump's write limits declare up its safe direction: a protection restoring full
    speed is held to min/max only — neither the 20 % step nor the 60 s interval slows it —
    while a move down stays paced (found: at its 60 % floor during a utility loss, the pump
    needed two writes a minute apart to reach full speed, and the GPUs throttled)."""
    pump = "cdu_1.pump_speed_setpoint"  # write 60–100, max_step 20, min_interval 60 s, up

    async def main() -> None:
        hall = Hall(tmp_path / "s.duckdb")
        act = Actuator(hall.site, hall.writer, Journal(hall.store), hall.clock)
        assert hall.site.point(pump).write.safe_direction == "up"  # type: ignore[union-attr]
        down = (await act.execute(_auth(40.0, "d1", pump)))[0]
        assert (down.previous, down.written) == (100.0, 80.0)  # clamped: one 20 % step
        hall.run(60)
        assert (await act.execute(_auth(60.0, "d2", pump)))[0].written == 60.0
        hall.run(5)
        up = (await act.execute(_auth(100.0, "d3", pump)))[0]  # 5 s later, +40 %
        assert (up.previous, up.written, up.read_back, up.state) == (60.0, 100.0, 100.0, "done")
        with pytest.raises(WriteRejected, match="shortest interval"):
            await act.execute(_auth(80.0, "d4", pump))  # down again at once: paced
        assert hall.twin.values()[pump] == 100.0

    asyncio.run(main())
