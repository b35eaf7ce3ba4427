"""scenario.yaml validation: a bad file is a ScenarioConfigError naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import ScenarioConfigError
from evals.scenario import ParquetSource, TwinSource, load_scenario, parse_scenario

GOOD = """
name: demo
site: twin
source: {kind: twin, duration: 2h, faults: [{kind: chiller_trip, target: chiller_1, start_s: 10m}]}
clock: {cycle: 1m}
expect:
  faults: [{fault_class: chiller_trip, within: 15m}]
  envelope_minutes_max: 0
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scenario.yaml").write_text(text)
    return tmp_path


def test_good_scenario_parses_durations(tmp_path: Path) -> None:
    scn, folder = load_scenario(_write(tmp_path, GOOD))
    assert folder == tmp_path
    assert isinstance(scn.source, TwinSource) and scn.closed_loop
    assert scn.source.duration == 7200.0 and scn.source.faults[0].start_s == 600.0
    assert scn.clock.cycle == 60.0
    assert scn.expect.faults[0].within == 900.0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("within: 15m", "within: soon"), "expect.faults[0].within"),
        (GOOD.replace("envelope_minutes_max: 0", "envelope_minutes: 0"), "expect.envelope_minutes"),
        (GOOD.replace("cycle: 1m", "cycle: -5"), "clock.cycle"),
        (GOOD.replace("site: twin", "site: rp1043"), "site"),
        (GOOD.replace("kind: twin,", "kind: modbus,"), "source"),
        (GOOD + "detectors: [magic]\n", "detectors[0]"),
        (GOOD.replace("name: demo", "name: 'has space'"), "name"),
        (GOOD + "ahu: {settings: {fan_hot: 1.0}}\n", "ahu.settings"),
        (GOOD + "ahu: {grade: perfect}\n", "ahu.grade"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ScenarioConfigError) as err:
        load_scenario(_write(tmp_path, text))
    msg = str(err.value)
    assert "scenario.yaml" in msg and where in msg, msg


def test_missing_telemetry_file_is_named(tmp_path: Path) -> None:
    text = "name: x\nsite: rp1043\nsource: {kind: parquet, file: data.parquet}\n"
    with pytest.raises(ScenarioConfigError, match=r"source\.file: data\.parquet not found"):
        load_scenario(_write(tmp_path, text))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioConfigError, match=r"scenario.yaml: line \d+: invalid YAML"):
        load_scenario(_write(tmp_path, "name: x\nsource: [unclosed\n"))


def test_missing_folder() -> None:
    with pytest.raises(ScenarioConfigError, match="cannot read"):
        load_scenario("/nonexistent/scenario-folder")


def test_parquet_is_the_default_source_kind() -> None:
    scn = parse_scenario(
        {"name": "x", "site": "lbnl", "source": {"kind": "parquet", "truth": "fault"}}
    )
    assert isinstance(scn.source, ParquetSource) and scn.source.file == "telemetry.parquet"
    assert not scn.closed_loop
    with pytest.raises(ScenarioConfigError, match="expected a mapping"):
        parse_scenario(["not", "a", "mapping"])


def test_ahu_settings_reach_the_detector_configuration(tmp_path: Path) -> None:
    from tools.fdd.ahu import G36_DEFAULTS, LAB_GRADE

    scn, _ = load_scenario(
        _write(tmp_path, GOOD + "ahu: {grade: lab, settings: {fan_heat: 1.1}}\n")
    )
    assert scn.ahu.config().fan_heat == 1.1 and scn.ahu.config().eps_sat == LAB_GRADE.eps_sat
    assert scn.ahu.config("field").eps_sat == G36_DEFAULTS.eps_sat
    plain, _ = load_scenario(_write(tmp_path, GOOD))
    assert plain.ahu.config() == G36_DEFAULTS
