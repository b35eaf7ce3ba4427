"""What-if: vectorised equals scalar, constraints and validity behave, optimiser is safe and saves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfmodel.optimise import optimise
from perfmodel.whatif import CONSTRAINT_NAMES, Change, PlantState, steady_state, whatif, whatif_many


def test_no_change_is_the_baseline() -> None:
    p = whatif(PlantState())
    assert p.delta_kw == pytest.approx(0.0, abs=1e-9)
    assert p.ok and p.valid
    assert [c.name for c in p.constraints] == list(CONSTRAINT_NAMES)


def test_plant_energy_balance() -> None:
    o = steady_state(PlantState())
    # facility = IT + cooling + electrical losses
    losses = o["pdu_loss_kw"] + o["ups_loss_kw"] + o["tx_loss_kw"]
    assert o["facility_kw"] == pytest.approx(o["it_kw"] + o["cooling_kw"] + losses, rel=1e-12)
    # chilled-water load carried by the water: Q = ρ·V·c_p·ΔT
    q = o["chw_flow_ls"] * 0.997 * 4.180 * o["chw_delta_t_k"]
    assert q == pytest.approx(o["chw_load_kw"], rel=1e-9)
    # condenser: heat rejected = load + compressor power
    q_cond = o["cw_flow_ls"] * 0.997 * 4.180 * o["tower_range_k"]
    assert q_cond == pytest.approx(o["chw_load_kw"] + o["chiller_kw"], rel=1e-9)


def test_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(1)
    state = PlantState(outdoor_drybulb_c=33.0, outdoor_rh_pct=55.0)
    batch = []
    for _ in range(25):
        batch.append(
            [
                Change("chw_supply_setpoint_c", float(rng.uniform(6, 11))),
                Change("cw_supply_setpoint_c", float(rng.uniform(22, 32))),
                Change("chillers_running", float(rng.integers(1, 4))),
                Change("chw_pump_speed_pct", float(rng.uniform(50, 100))),
                Change("gpu_power_cap_kw", float(rng.uniform(600, 1100))),
                Change("crah_fan_speed_pct", float(rng.uniform(40, 100))),
            ]
        )
    many = whatif_many(state, batch)
    for i, chg in enumerate(batch):
        one = whatif(state, chg)
        row = many.at(i)
        for k, v in one.after.items():
            assert row.after[k] == pytest.approx(v, rel=1e-9, abs=1e-9, nan_ok=True), k
        assert [c.ok for c in row.constraints] == [c.ok for c in one.constraints]
        assert row.valid == one.valid
    # the column (grid) form gives the same rows
    cols = {c.target: [chg[j].value for chg in batch] for j, c in enumerate(batch[0])}
    grid = whatif_many(state, cols)
    np.testing.assert_allclose(grid.total_kw, many.total_kw, rtol=1e-12)


def test_relative_change_and_aliases() -> None:
    s = PlantState()
    p = whatif(s, [Change("chw_supply_setpoint_c", 1.0, relative=True)])
    assert p.after["chw_supply_c"] == pytest.approx(s.chw_supply_setpoint_c + 1.0)
    assert p.delta_kw < 0  # warmer chilled water: chillers work less
    with pytest.raises(KeyError, match="unknown what-if target"):
        whatif(s, [Change("no_such_knob", 1.0)])


def test_power_cap_costs_throughput_and_saves_power() -> None:
    p = whatif(PlantState(gpu_demand_kw=950.0), [Change("gpu_power_cap_kw", 800.0)])
    assert p.after["it_kw"] == pytest.approx(800.0)
    assert 0 < p.after["throughput_loss_pct"] < 20
    assert p.delta_kw < -150


def test_constraints_catch_unsafe_changes() -> None:
    s = PlantState()
    hot = whatif(s, [Change("crah_supply_air_setpoint_c", 27.5)])
    assert not hot.constraint("rack_inlet_max_recommended").ok
    one = whatif(s, [Change("chillers_running", 1.0)])  # ~1000 kW on one 700 kW chiller
    assert not one.constraint("chiller_max_load").ok
    gpu = whatif(s, [Change("cdu_pump_speed_pct", 25.0)])
    assert gpu.after["gpu_die_c"] > s.gpu_throttle_c
    assert not gpu.constraint("gpu_die_temp").ok
    tripped = whatif(PlantState(chillers_available=2.0))
    assert (
        not tripped.constraint("cooling_redundancy_n_plus_1").ok
        or tripped.after["chw_load_kw"] <= 0
    )
    for c in hot.constraints:
        assert c.ok == (c.margin >= -1e-9)


def test_validity_flag_when_outside_curves() -> None:
    p = whatif(PlantState(), [Change("chw_supply_setpoint_c", 14.0)])
    assert not p.valid
    assert any("chiller curves" in r for r in p.invalid_reasons)
    hot_day = whatif(PlantState(outdoor_wetbulb_c=29.0))
    assert not hot_day.valid and any("tower" in r for r in hot_day.invalid_reasons)


def test_to_dict_is_json_ready() -> None:
    import json

    d = whatif(PlantState(), [Change("chw_supply_setpoint_c", 8.0)]).to_dict()
    s = json.dumps(d)
    assert '"constraints"' in s and d["delta_kw"] < 0


def legacy_state(db: float, rh: float, wb: float) -> PlantState:
    """The legacy plant: 7 °C CHW, 29 °C CW, constant-speed pumps."""
    return PlantState(
        outdoor_drybulb_c=db,
        outdoor_rh_pct=rh,
        outdoor_wetbulb_c=wb,
        chw_supply_setpoint_c=7.0,
        cw_supply_setpoint_c=29.0,
        chw_pump_speed_pct=100.0,
        cw_pump_speed_pct=100.0,
    )


@pytest.mark.parametrize(
    "weather",
    [(30.0, 40.0, math.nan), (35.0, 50.0, math.nan), (18.0, 60.0, math.nan), (32.0, 45.0, 24.0)],
)
def test_optimiser_is_safe_and_beats_legacy_setpoints(weather: tuple[float, float, float]) -> None:
    db, rh, wb = weather
    legacy = legacy_state(db, rh, wb)
    res = optimise(legacy)
    assert res.prediction.ok and res.prediction.valid
    # re-check the answer independently of the batch it came from
    again = whatif(legacy, res.changes)
    assert again.ok and again.total_kw == pytest.approx(res.prediction.total_kw, rel=1e-12)
    base = whatif(legacy)
    assert res.prediction.total_kw < base.total_kw - 5.0
    assert res.feasible <= res.candidates


def test_optimiser_never_returns_a_violating_answer() -> None:
    # an impossible plant: one chiller available for the whole load
    s = PlantState(chillers_available=1.0, chillers_running=1.0)
    res = optimise(s)
    assert res.changes == [] and res.feasible == 0
    assert not res.prediction.ok  # the current state is reported as it is
    # a feasible grid with one unsafe corner: the corner is never chosen
    grid = {"crah_supply_air_setpoint_c": [22.0, 26.9, 30.0], "chw_supply_setpoint_c": [7.0, 9.0]}
    r = optimise(PlantState(), grid)
    assert r.prediction.ok
    assert r.prediction.state.crah_supply_air_setpoint_c != 30.0


def test_inherited_violations_are_told_apart_from_new_ones() -> None:
    broken = PlantState(chw_pump_speed_pct=0.0)  # the CHW pump has stopped
    assert not whatif(broken).ok
    fix = whatif(broken, [Change("chw_pump_speed_pct", 60.0)])
    assert fix.ok
    unrelated = whatif(broken, [Change("chw_supply_setpoint_c", 9.0)])
    assert not unrelated.ok and unrelated.worsened == []
    worse = whatif(PlantState(), [Change("chillers_running", 1.0)])
    assert [c.name for c in worse.worsened] == ["chiller_max_load"]
    batch = whatif_many(PlantState(), [[Change("chillers_running", 1.0)], []])
    assert batch.worsens[0].any() and not batch.worsens[1].any()


def test_short_of_chiller_capacity_warms_the_chilled_water() -> None:
    p = whatif(PlantState(), [Change("chillers_running", 1.0)])
    o = p.after
    # the unmet load warms the CHW by Q_unmet / (ρ·V·c_p)
    rise = o["chw_unmet_kw"] / (o["chw_flow_ls"] * 0.997 * 4.180)
    assert o["chw_unmet_kw"] > 0
    assert o["chw_supply_c"] == pytest.approx(7.0 + rise, rel=1e-9)
    assert o["chw_supply_c"] > p.before["chw_supply_c"]
    assert whatif(PlantState()).after["chw_unmet_kw"] == 0.0


def test_default_grid_is_a_mapping_the_agent_can_restrict() -> None:
    from perfmodel.optimise import default_grid, fixed_fan_grid

    s = PlantState()
    grid = dict(default_grid(s))
    for k in list(grid):
        if k != "chw_supply_setpoint_c":
            grid[k] = [float(getattr(s, k))]
    r = optimise(s, grid)
    assert [c.target for c in r.changes] == ["chw_supply_setpoint_c"]
    both = optimise(s, [default_grid(s), fixed_fan_grid(s)])
    assert both.prediction.ok and both.prediction.total_kw <= optimise(s).prediction.total_kw
