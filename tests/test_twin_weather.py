"""Real weather: the TMY3 files shipped inside pvlib, read by the project's own loader."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from connectors.errors import ScenarioConfigError
from evals.scenario import parse_scenario
from twin.sim import Twin
from twin.weather import WeatherError, load_tmy3, load_weather, parse_tmy3, tmy3_text


def test_greensboro_typical_year_parses_with_psychrolib_wet_bulb() -> None:
    y = load_tmy3("723170TYA")
    assert len(y.t_db) == 8760 and "GREENSBORO" in y.name
    assert y.t_db[0] == pytest.approx(10.0) and y.rh[0] == pytest.approx(77.0)  # first row
    assert np.all(y.wb <= y.t_db + 1e-6)
    july, january = y.t_db[4344:5088].mean(), y.t_db[:744].mean()
    assert july > january + 15.0


def test_sand_point_is_colder_than_greensboro() -> None:
    assert load_tmy3("703165TY").wb.mean() < load_tmy3("723170TYA").wb.mean() - 5.0


def test_a_day_reads_the_hourly_rows_and_interpolates_between_them() -> None:
    y = load_tmy3("723170TYA")
    wx = load_weather("723170TYA", 7, 20)
    row = (31 + 28 + 31 + 30 + 31 + 30 + 19) * 24  # 20 July 01:00 is the row after this many
    t1, _, wb1 = wx(3600.0)
    assert t1 == pytest.approx(y.t_db[row]) and wb1 == pytest.approx(y.wb[row])
    t_mid = wx(1.5 * 3600.0)[0]
    assert t_mid == pytest.approx(0.5 * (y.t_db[row] + y.t_db[row + 1]))
    assert wx(-3 * 3600.0)[0] == pytest.approx(y.t_db[row - 4])  # the warm-up hours before


def test_unknown_station_and_bad_rows_are_clear_errors() -> None:
    with pytest.raises(WeatherError, match="not one of"):
        tmy3_text("999999TY")
    text = tmy3_text("723170TYA").splitlines()
    text[5] = text[5].replace(",10.0,", ",x,", 1) if ",10.0," in text[5] else "bad"
    with pytest.raises(WeatherError, match="row"):
        parse_tmy3("\n".join(text), "723170TYA")


def test_the_twin_follows_the_station_s_weather() -> None:
    start = datetime(2026, 1, 9, tzinfo=UTC)
    twin = Twin(seed=1, weather="703165TY", start=start)
    wx = load_weather("703165TY", 1, 9)
    twin.step(5 * 3600.0)
    assert twin.plant.t_db == pytest.approx(wx(twin.elapsed_s - 10.0)[0], abs=0.2)
    assert twin.plant.wb < 5.0  # an Alaskan January, not the synthetic summer


def test_a_scenario_naming_an_unknown_station_is_refused_naming_the_field() -> None:
    with pytest.raises(ScenarioConfigError, match=r"source.*weather"):
        parse_scenario(
            {"name": "x", "source": {"kind": "twin", "weather": "NOWHERE"}}, "scenario.yaml"
        )
