"""The eval runner end to end: real store, real agent graph, recorded writes, report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from evals.runner import run_scenario
from evals.shipped import chiller_scenario

ISSUE_SHAPE = {
    "name", "passed", "expected_faults", "detected_faults", "false_alarms", "unsafe_actions",
    "max_effective_autonomy", "row_precision", "row_recall", "row_specificity",
    "cooling_energy_saving", "envelope_violation_minutes", "replay_speedup",
}  # fmt: skip


@pytest.fixture(scope="module")
def nc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chiller_scenario(
        tmp_path_factory.mktemp("scn") / "nc", "nc-test", "non_condensables", "test", hours=2.0
    )


def test_open_loop_replay_detects_through_the_agent(nc_folder: Path, tmp_path: Path) -> None:
    run = run_scenario(nc_folder, tmp_path)
    r = run.result
    assert set(r) >= ISSUE_SHAPE
    assert r["passed"], r["failures"]
    assert r["agent"] is True
    agent = {d["fault_class"]: d["first_detected_s"] for d in r["agent_detected_faults"]}
    assert set(agent) == {"non_condensables"}
    assert 3600 <= agent["non_condensables"] <= 2 * 3600  # fault imposed at 1 h
    assert r["unsafe_actions"] == 0 and r["writes"] == 0
    assert r["max_effective_autonomy"] <= 1
    assert r["replay_speedup"] > 0 and r["cycles"] == 24  # 2 h at a 5-min cycle
    # the decision is in the real audit table with its evidence
    assert (run.decisions["fault_class"] == "non_condensables").any()


def test_eval_command_writes_report_and_exit_code(nc_folder: Path, tmp_path: Path) -> None:
    rc = main(["eval", str(nc_folder), "--report", str(tmp_path / "rep"), "--no-progress"])
    assert rc == 0
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert set(doc["summary"]) == {
        "scenarios", "passed", "unsafe_actions", "false_alarms", "false_alarms_judged_in",
        "false_alarms_not_judged_in",
    }  # fmt: skip
    assert doc["summary"]["scenarios"] == 1 and doc["summary"]["passed"] == 1
    assert set(doc["scenarios"][0]) >= ISSUE_SHAPE
    det = doc["scenarios"][0]["detected_faults"][0]
    assert set(det) >= {"fault_class", "first_detected_s"}
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# Eval report")
    png = tmp_path / "rep" / "nc-test-telemetry.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_expectation_exits_non_zero(tmp_path: Path) -> None:
    folder = chiller_scenario(
        tmp_path / "scn",
        "wrong-expectation",
        "excess_oil",
        hours=2.0,
        expect={
            "faults": [{"fault_class": "refrigerant_leak", "within": "1h"}],
            "nothing_written": True,
        },
    )
    rc = main(["eval", str(folder), "--report", str(tmp_path / "rep"), "--no-progress"])
    assert rc == 1
    r = json.loads((tmp_path / "rep" / "results.json").read_text())["scenarios"][0]
    assert not r["passed"]
    assert "refrigerant_leak not detected" in r["failures"]
    assert r["false_alarms"] == 1 and r["false_alarm_classes"] == ["excess_oil"]


def test_bad_scenario_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scenario.yaml").write_text(
        "name: x\nsource: {kind: parquet}\nexpect: {max_autonomy: 9}\n"
    )
    rc = main(["eval", str(tmp_path), "--report", str(tmp_path / "rep"), "--no-progress"])
    assert rc == 2
    assert "scenario.yaml" in capsys.readouterr().err


def test_each_scenario_starts_with_only_its_own_fault_detection_settings(nc_folder: Path) -> None:
    """A chiller reference calibrated for one scenario's plant must not judge another
    scenario's chillers; AHU settings come from the scenario. The settings live in the
    run's own SiteState, nothing is left behind in a module."""
    from evals.scenario import ParquetSource, load_scenario
    from evals.wiring import site_state
    from tools.fdd import ChillerReference
    from tools.fdd.ahu import G36_DEFAULTS, LAB_GRADE

    scn, folder = load_scenario(nc_folder)
    assert isinstance(scn.source, ParquetSource) and scn.source.reference is not None
    ref = ChillerReference.load(folder / scn.source.reference)
    with_ref = site_state(scn, ref)
    assert with_ref.fdd.chiller_reference("chiller_1") is ref
    lab = scn.model_copy(update={"ahu": scn.ahu.model_copy(update={"grade": "lab"})})
    other = site_state(lab, None)
    assert other.fdd.chiller_reference("chiller_1") is None
    assert other.fdd.ahu_config("ahu_1") == LAB_GRADE
    assert with_ref.fdd.ahu_config("ahu_1") == G36_DEFAULTS
