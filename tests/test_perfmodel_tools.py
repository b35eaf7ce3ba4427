"""tools/whatif: twin site readings → PlantState → Prediction, and the whatif CLI."""

from __future__ import annotations

import json

import pytest

from agent.cli import main
from connectors.site import load_site
from perfmodel.whatif import PlantState
from tools.whatif import TagChange, build_state, check, check_many, state_from_values
from twin import default_site_path


@pytest.fixture(scope="module")
def site():  # type: ignore[no-untyped-def]
    return load_site(default_site_path())


VALUES = {
    "gpu.it_power": 850.0,
    "gpu.power_cap": 100.0,
    "chiller_1.running": 1.0,
    "chiller_2.running": 1.0,
    "chiller_3.running": 0.0,
    "chiller_3.tripped": 1.0,
    "chiller_1.chw_supply_setpoint": 8.0,
    "chiller_2.chw_supply_setpoint": 8.0,
    "ct_1.cw_supply_setpoint": 28.0,
    "chw_pump_1.speed": 90.0,
    "chw_pump_1.running": 1.0,
    "cw_pump_1.speed": 100.0,
    "weather.outdoor_temp": 32.0,
    "weather.outdoor_rh": 50.0,
    "crah_1.fan_running": 1.0,
    "crah_2.fan_running": 1.0,
    "crah_3.fan_running": 1.0,
    "crah_4.fan_running": 0.0,
    "cdu_1.coolant_supply_setpoint": 32.0,
}


def test_state_from_values(site) -> None:  # type: ignore[no-untyped-def]
    s = state_from_values(site, VALUES)
    assert s.gpu_demand_kw == 850.0 and s.gpu_power_cap_kw == float("inf")
    assert (s.chillers_running, s.chillers_available, s.chillers_installed) == (2.0, 2.0, 3.0)
    assert s.chw_supply_setpoint_c == 8.0 and s.cw_supply_setpoint_c == 28.0
    assert s.chw_pump_speed_pct == 90.0 and s.crah_running == 3.0
    assert s.chiller_capacity_kw == 700.0 and s.tx_rated_kva == 2500.0  # from the nameplates
    assert s.cdu_supply_setpoint_c == 32.0
    assert "gpu.training_util" not in build_state(site, VALUES).missing


def test_no_readings_gives_design_state(site) -> None:  # type: ignore[no-untyped-def]
    s = state_from_values(site, {})
    assert s.chillers_running == PlantState().chillers_running
    assert s.crah_running == PlantState().crah_running


def test_check_tag_changes(site) -> None:  # type: ignore[no-untyped-def]
    p = check(
        site, VALUES, [TagChange("ct_1.cw_supply_setpoint", 26.0), TagChange("gpu.power_cap", 80.0)]
    )
    assert p.after["it_kw"] == pytest.approx(800.0)
    assert p.delta_kw < 0
    # one chiller tripped: N+1 redundancy is gone whatever we do
    assert not p.constraint("cooling_redundancy_n_plus_1").ok
    stop = check(site, VALUES, [TagChange("chiller_2.enable", 0.0)])
    assert stop.state.chillers_running == 1.0
    assert not stop.constraint("chiller_max_load").ok
    crah = check(site, VALUES, [TagChange("crah_1.supply_air_setpoint", 25.0)])
    assert crah.after["supply_air_c"] == pytest.approx(22.0 + 3.0 / 3.0)
    many = check_many(site, VALUES, [[TagChange("chiller_1.chw_supply_setpoint", 9.0)], []])
    assert many[0].delta_kw < 0 and many[1].delta_kw == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(KeyError, match="no handle"):
        check(site, VALUES, [TagChange("leak_1.leak_detected", 1.0)])


def test_whatif_cli_json(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    rc = main(["whatif", "--set", "chw_supply_setpoint=+1", "--json"])  # the design state
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0
    assert d["after"]["chw_supply_c"] == pytest.approx(d["before"]["chw_supply_c"] + 1.0)
    assert d["ok"] is True and d["delta_kw"] < 0


def test_whatif_cli_table_and_violation(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    rc = main(["whatif", "--set", "chillers_running=1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "VIOLATED" in out and "chiller_max_load" in out
    assert main(["whatif", "--set", "chw_supply_setpoint"]) == 2
    # a --db that does not exist is named, not taken for the design state
    assert (
        main(["whatif", "--set", "chw_supply_setpoint=+1", "--db", str(tmp_path / "x.duckdb")]) == 2
    )
    assert not (tmp_path / "x.duckdb").exists()


def test_enable_of_a_running_chiller_changes_nothing(site) -> None:  # type: ignore[no-untyped-def]
    same = check(site, VALUES, [TagChange("chiller_1.enable", 1.0)])
    assert same.state.chillers_running == 2.0 and same.delta_kw == pytest.approx(0.0, abs=1e-9)
    v = dict(VALUES, **{"chiller_3.tripped": 0.0})
    more = check(site, v, [TagChange("chiller_3.enable", 1.0)])
    assert more.state.chillers_running == 3.0


def test_crah_write_uses_the_units_own_setpoint(site) -> None:  # type: ignore[no-untyped-def]
    v = dict(VALUES)
    v.update({f"crah_{i}.supply_air_setpoint": 20.0 for i in (1, 2, 3)})
    v["crah_1.supply_air_setpoint"] = 17.0  # average of the three running: 19.0
    p = check(site, v, [TagChange("crah_1.supply_air_setpoint", 20.0)])
    # crah_1 goes 17 → 20: the average of three rises by 1 K
    assert p.state.crah_supply_air_setpoint_c == pytest.approx(20.0)
