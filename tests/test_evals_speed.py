"""What makes ``make eval`` fast must not change what it scores.

* the closed loop's twin samples reach the store in batches: the same rows as one append
  per sample;
* ``eval --jobs N`` runs scenarios in worker processes: the same results, in the same order;
* the LBNL replays (made fast by the quality scorer's cell grid, tests/test_quality_grid.py)
  score as before: on the whole files every field of results.json but the timings equals
  main's last ``make eval`` (70b475d: SZCAV recall 0.628 / specificity 0.976, MZVAV-2-2
  0.836 / 1.000); two days of each file are pinned here so that a later speed-up is checked
  in minutes, not in the 12–20 minutes a file took.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.cli import main
from connectors.clock import ManualClock
from connectors.status import Status
from connectors.store import Store
from evals.closed_loop import _Recorder
from evals.commands.eval import SCENARIOS_DIR
from evals.importers import import_lbnl
from evals.runner import run_scenario
from twin.faults import Fault
from twin.sim import Twin


def _readings(store: Store) -> pd.DataFrame:
    return store.query(
        "SELECT ts, point_id, value, status FROM readings ORDER BY ts, point_id"
    ).reset_index(drop=True)


def test_batched_twin_samples_are_the_rows_of_one_append_per_sample(tmp_path: Path) -> None:
    a_twin, b_twin = Twin(seed=5), Twin(seed=5)
    for t in (a_twin, b_twin):  # a silent device: NOT_CONNECTED rows must survive batching
        t.inject(Fault(kind="comm_loss", target="chiller_2", start_s=30, duration_s=60))
    with Store(tmp_path / "a.duckdb") as a, Store(tmp_path / "b.duckdb") as b:
        ids_a, ids_b = a.register_site(a_twin.site), b.register_site(b_twin.site)
        assert ids_a == ids_b
        tags = list(ids_a)
        id_arr = np.array([ids_a[t] for t in tags], dtype=np.int32)
        clock_a, clock_b = ManualClock(a_twin.now.replace(tzinfo=None)), ManualClock()
        rec = _Recorder(b, tags, id_arr)
        for i in range(12):
            a_twin.step(15.0)
            b_twin.step(15.0)
            clock_a.set(a_twin.now.replace(tzinfo=None))
            clock_b.set(b_twin.now.replace(tzinfo=None))
            # the per-sample append the closed loop made before batching
            vals, down = a_twin.values(), a_twin.unavailable()
            v = np.array([vals.get(t, math.nan) for t in tags], dtype=float)
            st = np.array(
                [
                    Status.NOT_CONNECTED
                    if t in down
                    else (Status.DECODE_ERROR if math.isnan(x) else Status.OK)
                    for t, x in zip(tags, v, strict=True)
                ],
                dtype=np.uint8,
            )
            v[st != Status.OK] = np.nan
            a.append(np.full(len(tags), np.datetime64(clock_a.now(), "us")), id_arr, v, st)
            rec.sample(b_twin, clock_b)
            if i % 5 == 4:
                rec.flush()
        rec.flush()
        rec.flush()  # nothing left: no duplicate rows
        ra, rb = _readings(a), _readings(b)
    assert len(ra) == 12 * len(tags)
    assert (ra["status"] == Status.NOT_CONNECTED).any()
    pd.testing.assert_frame_equal(ra, rb)


def _copy(name: str, dst: Path) -> Path:
    out = dst / name
    shutil.copytree(SCENARIOS_DIR / name, out)
    return out


def test_jobs_give_the_serial_results_in_the_serial_order(tmp_path: Path) -> None:
    folders = [str(_copy(n, tmp_path)) for n in ("twin-injection", "twin-comm-loss")]
    docs = []
    for jobs in ("1", "2"):
        rep = tmp_path / f"rep{jobs}"
        rc = main(["eval", *folders, "--report", str(rep), "--no-progress", "--jobs", jobs])
        assert rc == 0
        docs.append(json.loads((rep / "results.json").read_text()))
    timing = {"wall_s", "cpu_s", "replay_speedup", "scenario_wall_s"}
    serial, parallel = (
        [{k: v for k, v in r.items() if k not in timing} for r in d["scenarios"]] for d in docs
    )
    assert [r["name"] for r in serial] == ["twin-injection", "twin-comm-loss"]
    assert parallel == serial
    for d in docs:
        assert all(r["scenario_wall_s"] > 0 for r in d["scenarios"])
    assert "| wall s |" in (tmp_path / "rep2" / "report.md").read_text()


def test_jobs_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "--suite", "--fast", "--report", str(tmp_path), "--jobs", "0"])
    assert rc != 0
    assert "--jobs must be at least 1, not 0" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


#: two days of each LBNL file (one faulted, one fault-free) as the replay scores them since
#: the speed-up (whole files: identical to main's): row scores of both tolerance sets, TPR/FPR
#: with and without the latch, and the agent's own detections (class, first hour)
LBNL_BEFORE: dict[str, dict[str, Any]] = {
    "SZCAV": {
        "days": (13, 2),
        "rows": {"faulted_rows": 1440, "flagged_rows": 1255, "precision": 0.9721,
                 "recall": 0.8472, "rows": 2880, "specificity": 0.9757},
        "latched": {"row_tpr": 0.847, "row_fpr": 0.024, "day_tpr": 1.0, "day_fpr": 1.0},
        "unlatched": {"row_tpr": 0.094, "row_fpr": 0.0, "day_tpr": 1.0, "day_fpr": 0.0},
        "agent": [("ahu_fc14", 14400.0), ("ahu_fc7", 25200.0), ("ahu_fc5", 54000.0)],
    },
    "MZVAV-2-2": {
        "days": (12, 2),
        "rows": {"faulted_rows": 1440, "flagged_rows": 1396, "precision": 1.0,
                 "recall": 0.9694, "rows": 2880, "specificity": 1.0},
        "latched": {"row_tpr": 0.969, "row_fpr": 0.0, "day_tpr": 1.0, "day_fpr": 0.0},
        "unlatched": {"row_tpr": 0.929, "row_fpr": 0.0, "day_tpr": 1.0, "day_fpr": 0.0},
        "agent": [("ahu_fc14", 3600.0), ("ahu_fc5", 25200.0), ("ahu_fc6", 25200.0),
                  ("ahu_fc7", 28800.0)],
    },
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LBNL_BEFORE))
def test_lbnl_replay_scores_two_days_as_before_the_speed_up(
    name: str, datasets: Path, tmp_path: Path
) -> None:
    want = LBNL_BEFORE[name]
    folder = import_lbnl(datasets / "lbnl" / f"{name}.csv", tmp_path / name)
    frame = pd.read_parquet(folder / "telemetry.parquet")
    days = pd.Index(frame.index.normalize().unique())
    first, n = want["days"]
    frame[frame.index.normalize().isin(days[first : first + n])].to_parquet(
        folder / "telemetry.parquet", compression="zstd"
    )
    r = run_scenario(folder, tmp_path / "db").result
    for det in ("ahu", "ahu_lab"):
        assert r[f"{det}_rows"] == want["rows"]
    rates = r["ahu_lab_tpr_fpr"]
    for latch in ("latched", "unlatched"):
        assert {k: rates[latch][k] for k in want[latch]} == want[latch], latch
    agent = [(d["fault_class"], d["first_detected_s"]) for d in r["agent_detected_faults"]]
    assert agent == want["agent"]


def test_a_bad_scenario_file_in_a_worker_is_the_same_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _copy("twin-injection", tmp_path)
    yaml_path = bad / "scenario.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "  file: telemetry.parquet\n", "  file: telemetry.parquet\n  truth: nope\n"
        )
    )
    good = _copy("twin-comm-loss", tmp_path)
    rc = main(["eval", str(bad), str(good), "--report", str(tmp_path / "r"), "--no-progress",
               "--jobs", "2"])  # fmt: skip
    assert rc == 2
    assert "twin-injection/scenario.yaml: source.truth: no column 'nope'" in capsys.readouterr().err
