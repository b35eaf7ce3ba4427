"""``facility-agent quality``: table of scores, read-only open, clear message when the store is locked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _quality_synth import end_of, make_frame, make_site

from agent.cli import main
from agent.commands.quality import parse_window
from connectors.errors import ConfigError
from connectors.replay import replay_frame
from connectors.store import Store


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, str]:
    site = make_site()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site.model_dump(mode="json"), sort_keys=False))
    fr = make_frame(300)
    fr.loc[fr.index[-3], "chiller_1.power"] = 7.9e9
    db = tmp_path / "f.duckdb"
    with Store(db) as store:
        replay_frame(store, fr, site)
    return db, site_file, end_of(fr).isoformat()


def test_quality_table(files: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, site_file, at = files
    rc = main(["quality", "--db", str(db), "--site", str(site_file), "--at", at, "--window", "5m"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "chiller_1.power" in out and "above max" in out
    assert "weakest equipment: chiller_1" in out
    rc = main(
        [
            "quality",
            "--db",
            str(db),
            "--site",
            str(site_file),
            "--at",
            "latest",
            "--equipment",
            "gpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "gpu.it_power" in out and "chiller_1" not in out.split("weakest")[0]


def test_unknown_equipment_and_bad_window(
    files: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, site_file, _ = files
    assert main(["quality", "--db", str(db), "--site", str(site_file), "--equipment", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        parse_window("soon")
    assert parse_window("15m").total_seconds() == 900
    assert parse_window("90").total_seconds() == 90


def test_missing_db_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no such database file" in capsys.readouterr().err


def test_locked_store_says_so(
    files: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, site_file, _ = files
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from connectors.store import Store; s = Store({str(db)!r}); print('ready', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        rc = main(["quality", "--db", str(db), "--site", str(site_file)])
        err = capsys.readouterr().err
        assert rc == 2
        assert "locked by a running site process" in err
    finally:
        holder.communicate("\n", timeout=10)
