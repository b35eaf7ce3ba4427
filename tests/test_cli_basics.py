"""The command line an integrator can live with: --version, help on every option and no
developer text in it, JSON output, exit codes that mean something, no traceback when the
reader of a pipe goes away, no empty database created by a typo, full audit texts, logs."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from agent.audit import Audit
from agent.cli import build_parser, main, version
from connectors.store import Store

CLI = [sys.executable, "-m", "agent.cli"]
ENV = {k: v for k, v in os.environ.items() if k != "FACILITY_AGENT_TOKEN"}


def _parsers(
    p: argparse.ArgumentParser, path: str = "facility-agent"
) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(path, p)]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                out += _parsers(sp, f"{path} {name}")
    return out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0
    assert capsys.readouterr().out.strip() == f"facility-agent {version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version())


def test_every_option_of_every_command_has_help_and_no_developer_text() -> None:
    missing, dev = [], []
    for path, p in _parsers(build_parser()):
        for a in p._actions:
            if isinstance(a, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (a.help or "").strip():
                missing.append(f"{path} {'/'.join(a.option_strings) or a.dest}")
        text = p.format_help()
        for word in (
            "H6",
            "TODO",
            "FIXME",
            "pytest",
            "tests/",
            "``",
            ":func:",
            ":mod:",
            "CONTRACTS",
        ):
            if word in text:
                dev.append(f"{path}: {word!r}")
    assert missing == [], f"options without help: {missing}"
    assert dev == [], f"developer text in --help: {dev}"


def test_autonomy_alone_shows_the_state_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()
    assert main(["autonomy", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "site ceiling: 2 (human validation)" in out and "emergency stop: no" in out
    assert main(["autonomy", "--db", str(db), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["site_ceiling"] == 2 and got["estop"] is False and got["locked"] is False
    assert main(["autonomy", "show", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == got


@pytest.mark.parametrize(
    "argv",
    [
        ["audit"],
        ["quality"],
        ["autonomy"],
        ["decide", "--once"],
        ["decide", "--dry-run"],
        ["whatif", "--set", "chw_supply_setpoint=+1"],
        ["record", "--duration", "1m", "--out", "scn"],
        ["estop"],
        ["approve", "apr-1"],
        ["user", "list"],
    ],
)
def test_a_database_that_does_not_exist_is_named_not_created(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "typo.duckdb"
    assert main([*argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(db) in err[0] and "no such database" in err[0]
    assert not db.exists()


def test_whatif_without_db_starts_from_the_design_state_even_beside_a_database(
    tmp_path: Path,
) -> None:
    Store(tmp_path / "facility.duckdb").close()  # the old default, present in the cwd
    proc = subprocess.run(
        [*CLI, "whatif", "--json", "--set", "chw_supply_setpoint=+1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # the twin's own site maps onto the model
    assert json.loads(proc.stdout)["ok"] is True


def test_whatif_warns_when_the_site_does_not_map_onto_the_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = Path(__file__).resolve().parents[1] / "examples" / "sites" / "trane-rthd-ch530.yaml"
    rc = main(["whatif", "--site", str(site), "--json", "--set", "chw_supply_setpoint=+1"])
    assert rc in (0, 1)  # 1: a constraint broken (a one-chiller site has no N+1)
    cap = capsys.readouterr()
    assert json.loads(cap.out)["changes"][0]["target"] == "chw_supply_setpoint_c"
    err = cap.err
    assert "warning: site plant-room-rthd feeds" in err
    assert "design data hall" in err and "gpu_demand_kw" in err


def test_ingest_with_no_good_reading_exits_non_zero(tmp_path: Path) -> None:
    from conftest import free_port

    site = {
        "name": "dead",
        "equipment": [{"id": "eq", "kind": "other", "points": [
            {"name": "t", "unit": "degC", "poll_interval_s": 0.2,
             "source": {"port": free_port(), "table": "input", "address": 0,
                        "data_type": "float32"}}]}],
    }  # fmt: skip
    f = tmp_path / "dead.yaml"
    f.write_text(yaml.safe_dump(site))
    proc = subprocess.run(
        [*CLI, "ingest", "--site", str(f), "--db", str(tmp_path / "d.duckdb"), "--duration", "1"],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert "0 good of" in proc.stderr and "no good reading" in proc.stderr


def _audit_db(db: Path, rows: list[tuple[str, str]]) -> None:
    """A store whose decisions table holds ``rows`` of (decision_id, explanation)."""
    with Store(db) as store:
        Audit(store)
        for i, (dec, text) in enumerate(rows):
            store.execute(
                "INSERT INTO decisions (decision_id, run_id, ts, policy_id, outcome, "
                "effective_level, level_set_by, explanation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [dec, "run-1", datetime(2026, 12, 2, 9, 0, i % 60), "utility_loss",
                 "approval_requested", 2, "site", text],
            )  # fmt: skip


@pytest.mark.parametrize("fmt", [["--json"], []])
def test_output_to_a_reader_that_has_gone_ends_quietly(tmp_path: Path, fmt: list[str]) -> None:
    """``facility-agent audit | head -1`` once head has left: no BrokenPipeError traceback,
    exit 141 (what a shell reports for a process whose reader left), for JSON and tables."""
    db = tmp_path / "a.duckdb"
    _audit_db(db, [(f"dec-{i}", "x" * 400) for i in range(20)])
    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first line
    try:
        proc = subprocess.run(
            [*CLI, "audit", "--db", str(db), *fmt],
            stdout=w, stderr=subprocess.PIPE, env=ENV, timeout=120,
        )  # fmt: skip
    finally:
        os.close(w)
    err = proc.stderr.decode()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and err == ""


def test_audit_shows_full_texts_and_json(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    long = "Utility lost, UPS on battery. " * 20 + "Outcome: waiting (apr-72ab4aa63843)."
    assert len(long) > 400
    _audit_db(db, [("dec-1", long)])
    proc = subprocess.run(
        [*CLI, "audit", "--db", str(db)], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert proc.returncode == 0, proc.stderr
    assert "apr-72ab4aa63843" in proc.stdout  # the end of the text, folded, never cut
    proc = subprocess.run(
        [*CLI, "audit", "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    rows = json.loads(proc.stdout)
    assert [r["explanation"] for r in rows] == [long]


def test_log_json_puts_structured_lines_on_stderr(tmp_path: Path) -> None:
    from conftest import free_port

    site = {
        "name": "dead",
        "equipment": [{"id": "eq", "kind": "other", "points": [
            {"name": "t", "unit": "degC", "poll_interval_s": 0.2,
             "source": {"port": free_port(), "table": "input", "address": 0,
                        "data_type": "float32"}}]}],
    }  # fmt: skip
    f = tmp_path / "dead.yaml"
    f.write_text(yaml.safe_dump(site))
    argv = ["ingest", "--site", str(f), "--db", str(tmp_path / "d.duckdb"), "--duration", "1"]
    proc = subprocess.run(
        [*CLI, *argv, "--log-json", "-v"], capture_output=True, text=True, timeout=120, env=ENV
    )
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    down = [x for x in lines if "is down" in x["msg"]]
    assert down and down[0]["level"] == "warning" and down[0]["logger"] == "connectors.modbus"
    assert all({"ts", "level", "logger", "msg"} <= x.keys() for x in lines)
