"""``validate``, ``schema`` and ``docs/site.md``: site and policy files checked without polling,
the site file's JSON Schema from the models, its reference page current, the example site of a
real chiller valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from agent.cli import main
from connectors.site_schema import site_markdown, site_schema, undocumented
from tools.policies.loader import library_dir
from twin import default_site_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sites" / "trane-rthd-ch530.yaml"


def test_validate_accepts_the_twin_site_and_the_policy_library(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [str(default_site_path()), *map(str, sorted(library_dir().glob("*.yaml")))]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(files)
    assert "ok — site ai-data-hall: 21 equipment, 170 points" in out[0]
    assert all("policies, all apply to" in line for line in out[1:])


def test_validate_names_file_and_field_of_a_bad_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["equipment"][0]["points"][3]["source"]["address"] = 70000
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["validate", str(EXAMPLE), str(bad)]) == 2
    cap = capsys.readouterr()
    assert f"{EXAMPLE}: ok" in cap.out  # the good file is still reported
    err = cap.err.strip().splitlines()
    assert err == [
        "facility-agent: error: bad.yaml: equipment[0].points[3].source.address: "
        "Input should be less than or equal to 65535"
    ]


def test_validate_compiles_policies_against_the_site_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pol = tmp_path / "mine.yaml"
    pol.write_text(
        "policies:\n"
        "  - id: warm_chw\n"
        "    description: chilled water warm\n"
        "    severity: high\n"
        "    kind: protection\n"
        "    scope: {kind: chiller}\n"
        "    when: {all: [{point: chw_supply_temp, op: '>', value: 12}]}\n"
        "    then: {action: notify, message: chilled water is warm}\n"
    )
    assert main(["validate", str(EXAMPLE), str(pol)]) == 0
    assert f"{pol}: ok — 1 policies, all apply to {EXAMPLE}" in capsys.readouterr().out
    pol.write_text(pol.read_text().replace("chw_supply_temp", "chw_supply_tmp"))
    assert main(["validate", str(EXAMPLE), str(pol)]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml" in err and "chw_supply_tmp" in err


def test_the_example_chiller_site_follows_the_published_trane_map() -> None:
    """Trane BAS-SVX08D-E4 Table 7 (RTHD, CH530): offsets and the PIC's temperature format."""
    from connectors.site import load_site

    site = load_site(EXAMPLE)
    p = site.point("chiller_1.chw_supply_temp")  # 30005, offset 4
    assert (p.source.table.value, p.source.address) == ("input", 4)
    assert (p.source.scale, p.source.offset) == (0.1, -45)  # T = data / 10 - 45
    sp = site.point("chiller_1.chw_supply_setpoint")  # 40002, offset 1, writable
    assert (sp.source.table.value, sp.source.address) == ("holding", 1) and sp.writable
    assert site.point("chiller_1.running").source.table.value == "discrete"
    assert site.point("chiller_1.enable").source.table.value == "coil"


def test_schema_is_the_models_and_accepts_real_site_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads(json.dumps(site_schema()))
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for f in (default_site_path(), EXAMPLE):  # both use `layout:` shorthands or scale/offset
        errors = list(v.iter_errors(yaml.safe_load(Path(f).read_text())))
        assert errors == [], f"{f}: {errors[0].message}"
    bad = yaml.safe_load(EXAMPLE.read_text())
    bad["equipment"][0]["points"][0]["source"]["table"] = "holdings"
    assert list(v.iter_errors(bad)), "a wrong table name must not pass the schema"


def test_every_site_field_is_documented_and_docs_site_md_is_current() -> None:
    assert undocumented() == []
    doc = (ROOT / "docs" / "site.md").read_text()
    assert doc == site_markdown(), (
        "docs/site.md is stale: facility-agent schema --markdown > docs/site.md"
    )
    for field in ("`device_id`", "`layout`", "`max_step`", "`noise_rel`", "`autonomy_ceiling`"):
        assert field in doc


def test_the_systemd_unit_runs_a_command_line_the_cli_accepts() -> None:
    import configparser
    import shlex

    from agent.cli import build_parser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "facility-agent.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/facility-agent") and argv[1] == "run"
    args = build_parser().parse_args(argv[1:])
    assert args.port == 8750 and args.log_json is True
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert str(args.db).startswith(unit["Service"]["ReadWritePaths"])
