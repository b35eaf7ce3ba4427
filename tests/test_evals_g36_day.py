"""A shortened real-weather day (the first 2 h of twin-day-summer, agent every 5 min): the
closed-loop result reports its saving against both native controls (legacy and G36)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.runner import run_scenario
from evals.scenario import Clock, dump_scenario, load_scenario

SHIPPED = Path(__file__).resolve().parents[1] / "evals" / "scenarios"


@pytest.mark.slow
def test_shortened_summer_day_reports_saving_against_both_baselines(tmp_path: Path) -> None:
    scn, _ = load_scenario(SHIPPED / "twin-day-summer")
    short = scn.model_copy(
        update={
            "source": scn.source.model_copy(update={"duration": 7200.0}),
            "clock": Clock(cycle=300.0, sample=60.0),
        }
    )
    folder = dump_scenario(short, tmp_path / "summer-2h").parent
    run = run_scenario(folder, tmp_path / "work")
    r = run.result
    assert r["native_control"] == "g36" and r["weather"] == "723170TYA"
    assert set(r["cooling_energy_saving_vs"]) == {"g36", "legacy"}
    b = r["baseline_runs"]
    # the G36 baseline is the fair one: it uses less cooling energy than legacy
    assert b["g36"]["cooling_kwh"] < b["legacy"]["cooling_kwh"]
    assert r["cooling_energy_saving_vs"]["legacy"] > r["cooling_energy_saving_vs"]["g36"]
    assert r["cooling_energy_saving"] == r["cooling_energy_saving_vs"]["g36"]  # the primary
    assert r["envelope_violation_minutes"] == 0 and r["throttle_minutes"] == 0
    assert b["g36"]["envelope_minutes"] == 0 and b["legacy"]["envelope_minutes"] == 0
