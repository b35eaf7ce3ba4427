"""Where the agent can gain on a Guideline 36 plant (issue 15), and that it may act there.

* A G36 BMS runs chilled water at 14 °C, beyond the catalogue chiller curves' 10 °C: every
  what-if there was "outside its validity range", which the gate caps at human validation,
  so the agent in full autonomy did nothing. Calibration on the site's own history at
  those temperatures, scored on held-out data within ASHRAE Guideline 14, makes the
  calibrated curves valid over the temperatures the data span — and no further.
* The optimiser never trades a feasible current state for a costlier one, even when the
  current state lies outside the curves' ranges (it used to pick the cheapest *valid*
  candidate: 10 °C chilled water on a plant running 14 °C, more power).
* The pump policy looks at the condenser-water pump too (G36 runs it at the running
  chillers' design flow; the chilled-water pump already sits near its minimum), and leaves
  the condenser-water set point to ``cw_reset`` (one writer per point and cycle).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from test_plant_model import _record

from connectors.store import Store
from perfmodel.chiller import valid_ranges
from perfmodel.optimise import default_grid, optimise
from perfmodel.plantcal import ChillerCorrection, PlantParameters
from perfmodel.state import PlantState
from perfmodel.whatif import Change, whatif_many
from tools.calibration import calibrate
from tools.policies.loader import load_library
from twin.sim import Twin

START = datetime(2026, 7, 20, 6, tzinfo=UTC)
HOURS = 4.0


def _g36_state() -> PlantState:
    """A G36 plant as the catalogue model sees it: 14 °C chilled water, 2 chillers."""
    return PlantState(
        chw_supply_setpoint_c=14.0,
        cw_supply_setpoint_c=28.0,
        outdoor_wetbulb_c=24.0,
        chillers_running=2.0,
        chw_pump_speed_pct=60.0,
        cw_pump_speed_pct=100.0,
        crah_fan_speed_pct=60.0,
    )


def test_the_catalogue_model_is_outside_its_range_on_a_g36_plant() -> None:
    s = _g36_state()
    assert s.chiller.eirft.x_max < 14.0
    assert not whatif_many(s, [[]]).at(0).valid


def test_a_validated_correction_widens_the_curves_to_the_data_and_no_further() -> None:
    s = _g36_state()
    corr = ChillerCorrection(d0=-0.05).validated_on((13.6, 14.2), (26.0, 29.5))
    cal = PlantParameters(chiller=corr).apply(s)
    assert whatif_many(cal, [[]]).at(0).valid
    assert valid_ranges(cal.chiller)[:2] == pytest.approx((4.44, 14.2))
    # the curves themselves are still evaluated inside their own ranges (as EnergyPlus)
    assert cal.chiller.eirft.x_max == s.chiller.eirft.x_max
    warmer = PlantParameters(chiller=corr).apply(
        PlantState(**{**s.__dict__, "chw_supply_setpoint_c": 15.0})
    )
    assert not whatif_many(warmer, [[]]).at(0).valid  # beyond the data: still extrapolation
    # persisted and read back (the site's model_calibrations table stores JSON)
    back = PlantParameters.from_dict(PlantParameters(chiller=corr).to_dict())
    assert back == PlantParameters(chiller=corr)
    assert "validated on CHW 13.6–14.2 °C" in back.describe()


def test_the_optimiser_never_trades_a_feasible_state_for_a_costlier_valid_one() -> None:
    s = _g36_state()
    now = whatif_many(s, [[]]).at(0)
    assert now.ok and not now.valid
    grid = {k: [float(getattr(s, k))] for k in default_grid(s)}
    grid["chw_supply_setpoint_c"] = [float(v) for v in np.arange(6.0, 10.01, 0.5)]
    res = optimise(s, grid)
    assert res.changes == [], res.changes  # every valid candidate (≤ 10 °C) costs more
    assert res.prediction.total_kw == pytest.approx(now.total_kw)


def test_the_default_grid_reaches_as_far_as_the_validated_curves() -> None:
    s = _g36_state()
    assert max(default_grid(s)["chw_supply_setpoint_c"]) == pytest.approx(10.0)
    corr = ChillerCorrection().validated_on((13.8, 14.1), (26.0, 29.0))
    cal = PlantParameters(chiller=corr).apply(s)
    assert max(default_grid(cal)["chw_supply_setpoint_c"]) == pytest.approx(14.0)
    assert min(default_grid(cal)["cw_pump_speed_pct"]) == 50.0  # the CW pump's minimum


def test_the_pump_policy_fires_on_the_condenser_pump_alone() -> None:
    pol = next(p for p in load_library() if p.policy.id == "pump_speed_optimisation")
    when = pol.policy.when
    assert when.mode == "any"
    points = {c.point for c in when.conditions}
    assert {"chw_pump_1.speed", "cw_pump_1.speed"} <= points
    # not the CW set point: cw_reset writes it in the same cycles, and a second write to it
    # within its shortest interval fails half-way through a decision (a partial write)
    assert set(pol.policy.then.variables) == {"chw_pump_speed", "cw_pump_speed"}


@pytest.fixture(scope="module")
def g36_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Twin]:
    """Four hours of the default (not-the-model) twin under its G36 BMS, in a store."""
    path = tmp_path_factory.mktemp("g36") / "site.duckdb"
    twin = Twin(seed=5, start=START, control="g36", weather="723170TYA")
    with Store(path) as store:
        _record(store, twin, store.register_site(twin.site), HOURS)
    return path, twin


def test_calibration_on_g36_history_validates_the_model_where_the_plant_runs(
    g36_history: tuple[Path, Twin],
) -> None:
    path, twin = g36_history
    end = (START + timedelta(hours=HOURS)).replace(tzinfo=None) + timedelta(seconds=1)
    with Store(path) as store:
        cal = calibrate(store, twin.site, end, timedelta(hours=HOURS))
    assert cal.adopted, cal.summary()
    held = {p.name: p for p in cal.parts}
    assert held["chiller kW"].adopted and held["chiller kW"].fitted.meets_guideline14_hourly()
    corr = cal.params.chiller
    assert corr is not None and corr.chw_range_c is not None
    assert corr.chw_range_c[1] >= 13.5  # the G36 plant ran its chilled water near 14 °C
    from tools.whatif import check

    v = twin.values()
    assert not check(twin.site, v, []).valid  # the catalogue: outside its range
    assert check(twin.site, v, [], cal.params).valid  # the site's calibrated model: inside


def test_on_a_calibrated_g36_plant_the_condenser_pump_slows_inside_the_towers_range() -> None:
    """G36 runs the condenser pump at the chillers' design flow; the optimiser slows it as
    far as the tower correlation stays valid (CoolTools water-flow ratio ≥ 0.75), no further."""
    s = PlantParameters(
        chiller=ChillerCorrection().validated_on((13.5, 14.2), (20.0, 30.0)),
        tower_air_flow_factor=0.85,
        chw_pump_flow_factor=0.93,
        cw_pump_flow_factor=1.06,
    ).apply(_g36_state())
    grid = dict(default_grid(s))
    for k in grid:
        if k not in ("cw_pump_speed_pct", "cw_supply_setpoint_c"):
            grid[k] = [float(getattr(s, k))]
    res = optimise(s, grid)
    speed = {c.target: c.value for c in res.changes}.get("cw_pump_speed_pct")
    assert speed is not None and 85.0 <= speed < 100.0, res.changes
    assert res.prediction.valid and res.prediction.ok
    assert res.saving_kw > 3.0
    assert res.prediction.after["tower_fr_water"] >= 0.75 - 1e-9
    slower = whatif_many(s, [[Change("cw_pump_speed_pct", speed - 10.0)]]).at(0)
    assert not slower.valid  # the next step down leaves the correlation's range


def test_a_tower_validated_on_winter_data_is_valid_there_and_only_there() -> None:
    """Sand Point in January: wet bulb −2 °C, the tower in free convection at an approach
    over 11 K — outside CoolTools' range, so no what-if was valid all day."""
    corr = ChillerCorrection().validated_on((13.8, 14.1), (8.0, 14.0))
    winter = PlantState(
        **{
            **_g36_state().__dict__,
            "outdoor_wetbulb_c": -2.4,
            "cw_supply_setpoint_c": 20.0,
            "chiller": PlantParameters(chiller=corr).apply(_g36_state()).chiller,
        }
    )
    before = whatif_many(winter, [[]]).at(0)
    assert not before.valid and any("tower" in r for r in before.invalid_reasons)
    ap = before.after["tower_approach_k"]
    params = PlantParameters(chiller=corr, tower_validated=((-3.6, 2.1), (ap - 2.0, ap + 2.0)))
    assert whatif_many(params.apply(winter), [[]]).at(0).valid
    colder = params.apply(PlantState(**{**winter.__dict__, "outdoor_wetbulb_c": -8.0}))
    assert not whatif_many(colder, [[]]).at(0).valid  # colder than any validated data
    back = PlantParameters.from_dict(params.to_dict())
    assert back == params and "tower validated on wet bulb -3.6–2.1 °C" in back.describe()
