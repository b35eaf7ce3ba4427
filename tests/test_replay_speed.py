"""How the replay speed is counted and shown: ``bench replay`` over the twin recordings and
the line ``facility-agent eval`` prints (speed targets are the benchmark's, not asserted here)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

from evals.benchmarks import replay as bench
from evals.commands.eval import SCENARIOS_DIR, replay_line


def _run(name: str, site: str, mode: str, sim: float, wall: float, cpu: float) -> SimpleNamespace:
    return SimpleNamespace(
        scenario=SimpleNamespace(site=site),
        result={"name": name, "mode": mode, "simulated_s": sim, "wall_s": wall, "cpu_s": cpu},
    )


def test_the_eval_line_names_the_slowest_twin_recording() -> None:
    runs = [
        _run("twin-a", "twin", "open_loop", 3600.0, 1.0, 0.8),  # 3,600×
        _run("twin-b", "twin", "open_loop", 3600.0, 2.0, 1.0),  # 1,800×: the slowest
        _run("chiller-x", "rp1043", "open_loop", 3600.0, 10.0, 9.0),  # not a twin recording
        _run("twin-day", "twin", "closed_loop", 86400.0, 100.0, 90.0),  # not a replay
    ]
    line = replay_line(runs)
    assert line is not None
    assert "2 twin recordings" in line and "slowest 1,800× (twin-b)" in line
    assert "CPU seconds 3,600×" in line and "NOT met" in line
    fast = replay_line([_run("twin-a", "twin", "open_loop", 3600.0, 1.0, 0.8)])
    assert fast is not None and fast.endswith("met") and "NOT" not in fast
    assert replay_line([runs[2]]) is None


def test_the_shipped_twin_recordings_are_the_default() -> None:
    names = {p.name for p in bench.twin_recordings()}
    assert {"twin-chiller-trip", "twin-utility-loss", "twin-sensor-stuck"} <= names
    assert "twin-day" not in names and not any(n.startswith("chiller-") for n in names)


@pytest.mark.parametrize("target", [1.0, 1e9])
def test_bench_counts_the_replay_loop_of_each_recording(target: float) -> None:
    args = argparse.Namespace(
        scenario=[SCENARIOS_DIR / "twin-chiller-trip"],
        repeat=1,
        target=target,
        hours=None,
        cycle="5m",
        rp1043=None,
        reference=None,
    )
    out = bench.run(args)
    r = out["scenarios"]["twin-chiller-trip"]
    assert r["simulated_s"] == pytest.approx(3600.0, rel=0.01) and r["cycles"] == 30
    assert r["replay_speedup"] == pytest.approx(r["simulated_s"] / r["wall_s"], rel=0.01)
    assert r["cpu_speedup"] > 0 and r["passed"]
    assert out["min_speedup"] == r["replay_speedup"] and out["min_scenario"] == "twin-chiller-trip"
    assert out["ok"] is (r["replay_speedup"] >= target)
    assert "ingest + quality + decide" in out["counted"]


def test_scenarios_dir_holds_the_recordings() -> None:
    assert (Path(SCENARIOS_DIR) / "twin-chiller-trip" / "telemetry.parquet").is_file()
