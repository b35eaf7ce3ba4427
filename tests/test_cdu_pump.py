"""The CDU pump as a lever (issue 15): a writable speed set point on the twin's CDU, over
Modbus and BACnet; G36's constant-ΔT CDU pump control; and the agent's optimiser lowering
the pump only while the GPUs keep their throttle margin, and raising it when the load rises.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from agent_harness import Hall, agent_on, on_hall
from bacnet_harness import bacnet_plant, until
from test_twin_heartbeat import _served, _until

from agent.runtime import decide_once, heartbeat_once, set_autonomy
from connectors.site import with_port
from connectors.site_writer import SiteWriter
from perfmodel.liquid import CP_WATER, RHO_WATER
from tools.modelmap import OPTIMISER_FIELDS, setpoint_for
from tools.policies.loader import load_library
from tools.whatif import TagChange, changes_from_tags, state_from_values
from twin import g36
from twin.faults import Fault
from twin.sim import Twin, default_site

SP = "cdu_1.pump_speed_setpoint"
SPEED = "cdu_1.pump_speed"


# ---- the point ---------------------------------------------------------------------------------


def test_the_cdu_pump_speed_is_a_writable_set_point_with_a_safe_minimum() -> None:
    site = default_site()
    p = site.point(SP)
    assert p.writable and p.write is not None
    assert (p.write.min, p.write.max) == (60.0, 100.0)
    assert p.write.max_step is not None and p.write.min_interval_s is not None
    # the model has a handle on it: a write moves cdu_pump_speed_pct, the optimiser may move it
    assert setpoint_for(site.equipment_by_id("cdu_1"), "pump_speed_setpoint") is not None
    assert OPTIMISER_FIELDS["cdu_pump_speed"] == "cdu_pump_speed_pct"
    state = state_from_values(site, {SPEED: 100.0})
    (chg,) = changes_from_tags(site, state, [TagChange(SP, 70.0)])
    assert (chg.target, chg.value) == ("cdu_pump_speed_pct", 70.0)


def test_a_pump_speed_write_over_modbus_drives_the_pump_and_reads_back(port: int) -> None:
    async def main() -> None:
        twin = Twin(with_port(default_site(), port), seed=1)
        async with _served(twin, port, speed=20.0) as (_, _, cl):
            assert await cl.read(SP) == 100.0  # legacy: full speed
            await cl.write("agent.heartbeat", 1)
            await cl.write(SP, 70.0)
            assert await cl.read(SP) == 70.0
            await _until(lambda: abs(twin.values()[SPEED] - 70.0) < 1.0, 60, "pump at 70 %")
            v = twin.true_values()
            assert v["cdu_1.coolant_flow"] == pytest.approx(0.7 * 24.0, rel=0.03)
            assert v["cdu_1.pump_power"] < 0.5 * 16.5  # affinity laws: ~6 kW
            await cl.write(SP, 30.0)  # under the write minimum: clamped, as a BMS does
            assert await cl.read(SP) == 60.0

    asyncio.run(main())


def test_a_pump_speed_write_over_bacnet_reaches_the_twin_and_reads_back() -> None:
    async def main() -> None:
        async with bacnet_plant(("cdu_1",)) as plant:
            assert plant.site.point(SP).source.object == "analog-value,1"  # type: ignore[union-attr]
            writer = SiteWriter(plant.site)
            try:
                res = await writer.write(SP, 75.0)
                assert res.verified, res  # read back from the device
                assert plant.bacnet.slots(SP)[13] == 75.0  # the agent's priority
                await until(lambda: plant.twin.values()[SP] == 75.0, "the twin takes it")
                plant.twin.step(60.0)
                plant.runner.push()
                assert await writer.read(SP) == 75.0
                assert await writer.read(SPEED) == pytest.approx(75.0, abs=1.0)
            finally:
                await writer.close()

    asyncio.run(main())


# ---- G36: constant ΔT at design ------------------------------------------------------------------


def test_g36_runs_the_cdu_pump_at_constant_design_delta_t_and_legacy_at_full_speed() -> None:
    legacy, fair = Twin(seed=1), Twin(seed=1, control="g36")
    for t in (legacy, fair):
        for _ in range(30):
            t.step(60.0)
    vl, vg = legacy.values(), fair.true_values()
    assert vl[SPEED] == pytest.approx(100.0)
    c = fair.plant.cfg
    design_dt = c.liquid_fraction * c.gpu_rated_kw / (RHO_WATER * CP_WATER / 1e6 * c.cdu_flow_ls)
    assert design_dt == pytest.approx(8.0, abs=0.05)
    heat = vg["cdu_1.heat_load"] + vg["cdu_1.pump_power"]
    expect = 100.0 * heat / (RHO_WATER * CP_WATER / 1e6 * design_dt) / c.cdu_flow_ls
    assert 60.0 <= expect < 95.0  # the twin's part load: the pump slows
    assert vg[SP] == pytest.approx(expect, abs=1.0)  # served: the value G36 uses
    assert vg[SPEED] == pytest.approx(expect, abs=1.5)
    rise = vg["cdu_1.coolant_return_temp"] - vg["cdu_1.coolant_supply_temp"]
    assert rise == pytest.approx(design_dt, abs=0.4)
    assert vg["cdu_1.pump_power"] < 0.7 * vl["cdu_1.pump_power"]
    assert vg["gpu.gpu_temp_max"] < c.throttle_temp_c - 15.0  # safe by construction
    # the rated load takes the design flow; the minimum speed holds at light load
    fair.plant.q_liquid = c.liquid_fraction * c.gpu_rated_kw
    assert g36.cdu_pump_speed(fair.plant) == 1.0
    fair.plant.q_liquid = 100.0
    assert g36.cdu_pump_speed(fair.plant) == g36.CDU_PUMP_MIN


def test_an_agent_write_takes_precedence_over_g36s_cdu_pump_speed() -> None:
    t = Twin(seed=1, control="g36")
    t.step(60.0)
    t.write("agent.heartbeat", 1)
    t.write(SP, 62.0)
    for _ in range(3):
        t.step(10.0)
    assert t.values()[SP] == 62.0
    assert t.true_values()[SPEED] == pytest.approx(62.0, abs=1.0)


# ---- the agent's lever ---------------------------------------------------------------------------


def _optimise(values: dict[str, float]) -> tuple[list[tuple[str, float]], float]:
    from agent.context import default_optimise

    changes, pred = default_optimise()(default_site(), values, ["cdu_pump_speed"])
    assert pred.ok
    return changes, pred.after["gpu_die_c"]


def _at(speed: float) -> dict[str, float]:
    """Readings of a healthy CDU pump at ``speed`` %: set point, speed and the flow it gives."""
    return {SP: speed, SPEED: speed, "cdu_1.coolant_flow": 24.0 * speed / 100.0}


def _plant_values() -> dict[str, float]:
    """A legacy-run twin (7 °C chilled water, inside the catalogue curves' range: the
    what-if is valid without a calibration) with its CDU pump at 100 %."""
    t = Twin(seed=1)
    for _ in range(20):
        t.step(60.0)
    return t.true_values()


def test_the_agent_lowers_the_cdu_pump_only_as_far_as_the_throttle_margin_allows() -> None:
    v = _plant_values()
    changes, die = _optimise(v)
    assert [t for t, _ in changes] == [SP]
    speed = changes[0][1]
    assert 60.0 <= speed < v[SPEED] - 5.0
    assert die <= 85.0 - 10.0  # the model's throttle margin
    # already at the floor the GPUs allow: nothing cheaper is safe, nothing is written
    hot = {**v, **_at(speed), "gpu.it_power": 1000.0}
    again, die_hot = _optimise(hot)
    assert all(val >= speed for _, val in again) and die_hot <= 75.0


def test_the_agent_raises_the_cdu_pump_when_the_gpu_load_rises() -> None:
    v = {**_plant_values(), **_at(60.0)}
    low, _ = _optimise(v)
    assert low == []  # at light load 60 % keeps the margin
    loaded = {**v, "gpu.it_power": 1000.0}  # the cluster at its rated power
    up, die = _optimise(loaded)
    assert [t for t, _ in up] == [SP] and up[0][1] > 60.0
    assert die <= 75.0


def test_a_pump_that_delivers_less_than_its_speed_says_is_not_slowed() -> None:
    from agent.context import default_optimise

    v = _plant_values()
    worn = {**v, "cdu_1.coolant_flow": 0.35 * v["cdu_1.coolant_flow"]}  # clogged strainer
    state = state_from_values(default_site(), worn)
    assert state.cdu_flow_factor == pytest.approx(0.35, abs=0.02)
    changes, pred = default_optimise()(default_site(), worn, ["cdu_pump_speed"])
    assert changes == []  # healthy, the same readings gave 60 % (above)
    assert pred.after["gpu_die_c"] > v["gpu.gpu_temp_max"]  # and the model sees the dies hotter


def test_a_policy_asks_the_optimiser_for_the_cdu_pump() -> None:
    pol = next(p for p in load_library() if p.policy.id == "cdu_pump_optimisation")
    assert pol.policy.then.variables == ["cdu_pump_speed"]
    assert pol.policy.whatif == "required"


# ---- a written chiller enable is a start command (the "enable=1 had no effect" note) --------------


def test_a_written_chiller_enable_starts_the_chiller_and_staging_keeps_it() -> None:
    t = Twin(seed=1, control="g36")
    for _ in range(10):
        t.step(60.0)
    assert t.values()["chiller_3.running"] == 0.0  # staging runs two
    t.write("agent.heartbeat", 1)
    t.write("chiller_3.enable", 1)  # was a no-op: 1 only meant "available to staging"
    for k in range(25):  # past staging's 15 min stage-down delay
        t.step(60.0)
        t.write("agent.heartbeat", k + 2)
    v = t.values()
    assert [v[f"chiller_{i}.running"] for i in (1, 2, 3)] == [1.0, 1.0, 1.0]
    t.write("chiller_3.enable", 0)  # a written 0 locks it out
    for k in range(3):
        t.step(60.0)
        t.write("agent.heartbeat", k + 40)
    assert t.values()["chiller_3.running"] == 0.0


# ---- a loss of cooling: full speed at once (the reverted merge's twin-day-faults) ---------------


def test_a_utility_loss_runs_the_slowed_cdu_pump_to_full_speed_in_one_write_over_modbus(
    tmp_path: Path, port: int
) -> None:
    """With the pump held at its 60 % floor, twin-day-faults' 5-minute utility loss throttled
    the GPUs for 10 minutes: the agent never raised the pump. Through the front door — the
    twin served over Modbus, the shipped policies, autonomy 3 — the agent now runs it to full
    speed in the first cycle that sees the UPS on battery, in one write read back over Modbus
    (up is the pump's safe direction: not paced), authorised at level 3 although the outage
    leaves constraints the pump cannot cure broken; and its optimisation leaves it alone."""

    async def body(hall: Hall) -> None:
        ctx = agent_on(hall)
        set_autonomy(ctx, 3, "admin")
        beat = await heartbeat_once(ctx, 0)  # the agent's writes hold while it beats
        await hall.writer.write(SP, 60.0)  # where the agent's optimiser leaves it
        for _ in range(4):
            hall.run(30)
            beat = await heartbeat_once(ctx, beat)
        assert hall.twin.true_values()[SPEED] == pytest.approx(60.0, abs=1.0)
        hall.twin.inject(Fault(kind="utility_loss", target="ups_1", start_s=0))
        full = None
        for _ in range(12):
            hall.run(10)
            beat = await heartbeat_once(ctx, beat)
            res = await decide_once(ctx)
            full = next((d for d in res.decisions if d.policy_id == "cdu_pump_full_speed"), full)
            if full is not None:
                break
        assert full is not None, "no cdu_pump_full_speed decision in two minutes on battery"
        assert full.outcome == "executed", full.explanation
        assert full.verdict is not None and full.verdict.level == 3
        assert "toward safety" in full.verdict.reasons["whatif"]
        assert await hall.writer.read(SP) == 100.0  # served by the twin's Modbus server
        rows = [r for r in ctx.audit.journal.latest() if r.tag == SP and r.state == "done"]
        assert [(r.previous, r.written) for r in rows] == [(60.0, 100.0)]  # one write
        for _ in range(6):  # still on battery: the optimiser does not slow it again
            hall.run(10)
            beat = await heartbeat_once(ctx, beat)
            res = await decide_once(ctx)
            assert all(d.policy_id != "cdu_pump_optimisation" for d in res.decisions)
        assert await hall.writer.read(SP) == 100.0

    on_hall(tmp_path / "loss.duckdb", port, body)
