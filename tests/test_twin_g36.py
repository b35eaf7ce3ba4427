"""The twin's Guideline 36 BMS mode: requests from valves, the plant reset, precedence of
the agent's writes, and a fair baseline that beats the legacy one without leaving the envelope."""

from __future__ import annotations

import pytest

from twin import g36
from twin.g36 import CoilRequests, plant_reset_setpoints, zone_requests
from twin.sim import Twin


def test_a_coil_requests_while_its_valve_is_nearly_open_with_hysteresis() -> None:
    c = CoilRequests()
    assert c.step(0.0, 0.90, 10.0) == 0
    assert c.step(0.0, 0.96, 10.0) == 1
    assert c.step(0.0, 0.90, 10.0) == 1  # until the valve falls under 85 %
    assert c.step(0.0, 0.84, 10.0) == 0


def test_a_coil_whose_supply_stays_over_setpoint_sends_two_or_three_requests() -> None:
    c = CoilRequests()
    counts = [c.step(3.5, 0.5, 10.0) for _ in range(13)]
    assert counts[:11] == [0] * 11  # not yet 2 min over
    assert counts[-1] == 3
    c2 = CoilRequests()
    assert [c2.step(2.5, 0.5, 60.0) for _ in range(2)] == [0, 2]


def test_zone_requests_grow_with_the_rack_inlet_over_its_setpoint() -> None:
    assert [zone_requests(t) for t in (23.0, 24.6, 26.5, 27.5)] == [0, 1, 2, 3]


def test_plant_reset_raises_dp_first_then_lowers_the_supply_temperature() -> None:
    assert plant_reset_setpoints(0.0, 0.6) == pytest.approx((g36.CHWST_MAX_C, 0.6))
    assert plant_reset_setpoints(0.5, 0.6) == pytest.approx((g36.CHWST_MAX_C, 1.0))
    assert plant_reset_setpoints(0.75, 0.6) == pytest.approx((10.5, 1.0))
    assert plant_reset_setpoints(1.0, 0.6) == pytest.approx((g36.CHWST_MIN_C, 1.0))


def test_unknown_control_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="control must be one of"):
        Twin(seed=1, control="pid")  # type: ignore[arg-type]


def _run(twin: Twin, seconds: int) -> tuple[float, float]:
    """Cooling kWh and the hottest rack inlet over ``seconds`` in one-minute steps."""
    kwh, hottest = 0.0, 0.0
    for _ in range(seconds // 60):
        twin.step(60.0)
        v = twin.true_values()
        kwh += v["plant.cooling_power"] / 60.0
        hottest = max(hottest, *(v[f"crah_{i}.rack_inlet_temp"] for i in (1, 2, 3, 4)))
    return kwh, hottest


def test_g36_resets_what_legacy_holds_fixed_and_serves_the_values_it_uses() -> None:
    legacy, fair = Twin(seed=1), Twin(seed=1, control="g36")
    kwh_l, hot_l = _run(legacy, 7200)
    kwh_g, hot_g = _run(fair, 7200)
    v = fair.true_values()
    assert v["chiller_1.chw_supply_setpoint"] > 7.5  # reset up from design
    assert v["chw_pump_1.speed_setpoint"] < 100.0  # variable flow
    assert v["crah_1.fan_speed_setpoint"] < 80.0
    assert v["ct_1.cw_supply_setpoint"] == pytest.approx(
        min(max(fair.plant.wb + g36.TOWER_APPROACH_K, g36.CWST_MIN_C), g36.CWST_MAX_C), abs=0.2
    )
    lv = legacy.true_values()
    assert lv["chiller_1.chw_supply_setpoint"] == 7.0 and lv["chw_pump_1.speed_setpoint"] == 100.0
    assert kwh_g < 0.9 * kwh_l  # a real baseline, not a strawman
    assert hot_g <= 27.0 and hot_l <= 27.0  # both inside the thermal envelope


def test_an_agent_write_takes_precedence_over_the_reset_until_it_reverts() -> None:
    twin = Twin(seed=1, control="g36", heartbeat_timeout_s=120.0)
    twin.step(3600.0)
    own = twin.true_values()["chw_pump_1.speed_setpoint"]
    twin.write("agent.heartbeat", 1.0)
    twin.write("chw_pump_1.speed_setpoint", 90.0)
    twin.step(60.0)
    assert twin.true_values()["chw_pump_1.speed_setpoint"] == 90.0
    assert twin.control.active.get("chw_pump_1.speed_setpoint") is None
    twin.step(600.0)  # no heartbeat: the write reverts, the BMS's reset applies again
    back = twin.true_values()["chw_pump_1.speed_setpoint"]
    assert back != 90.0 and back == pytest.approx(own, abs=10.0)


def test_twin_command_selects_the_control_mode_and_the_weather() -> None:
    import argparse

    from agent.commands import twin as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        ["twin", "--control", "g36", "--weather", "723170TYA", "--start", "2026-07-20"]
    )
    twin = cmd.build_twin(args)
    assert twin.control.mode == "g36" and twin.weather is not None
    assert twin.now.month == 7 and twin.now.day == 20
    with pytest.raises(SystemExit):
        parser.parse_args(["twin", "--control", "pid"])


def test_g36_fans_never_supply_less_air_than_the_racks_draw() -> None:
    """Finding: a fan reset on rack-inlet requests alone trimmed the CRAHs to 40 % — under
    the racks' airflow, held only by recirculation — a state the agent's model rightly
    calls infeasible (crah_airflow_min), so no single-variable optimisation could start
    from it. The containment-pressure floor keeps the baseline where a real data hall runs."""
    from datetime import UTC, datetime

    from perfmodel.whatif import whatif_many
    from tools.whatif import state_from_values

    twin = Twin(seed=1, control="g36", weather="723170TYA", start=datetime(2026, 7, 20, tzinfo=UTC))
    for _ in range(6):
        twin.step(600.0)
        fan = twin.true_values()["crah_1.fan_speed_setpoint"] / 100.0
        assert fan >= g36.containment_floor(twin.plant) - 0.01
    now = whatif_many(state_from_values(twin.site, twin.values()), [[]]).at(0)
    airflow = next(c for c in now.constraints if c.name == "crah_airflow_min")
    assert airflow.ok, airflow


def test_a_write_reads_back_at_once_over_the_bms_s_own_value() -> None:
    """Finding: the served set point kept the G36 value until the next step, so the agent's
    first write to each chiller read back 14 ≠ 13 and its decision was blocked (counted as
    unsafe writes on the summer and shoulder days)."""
    twin = Twin(seed=1, control="g36")
    twin.step(3600.0)
    assert twin.values()["chiller_1.chw_supply_setpoint"] == pytest.approx(14.0)
    twin.write("chiller_1.chw_supply_setpoint", 13.0)
    assert twin.values()["chiller_1.chw_supply_setpoint"] == pytest.approx(13.0)
    assert twin.true_values()["chiller_1.chw_supply_setpoint"] == 13.0
