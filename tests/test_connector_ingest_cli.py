"""``facility-agent ingest`` end to end: a served site polled into a DuckDB file by the CLI."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import wait_until

from agent.cli import main
from connectors.site import parse_site
from connectors.store import Store
from twin.server import SiteServer


def _site_data(port: int) -> dict[str, Any]:
    pts = [
        {"name": f"t{i}", "unit": "degC", "poll_interval_s": 0.1,
         "source": {"port": port, "device_id": 1 + i % 2, "table": "input", "address": 2 * i,
                    "data_type": "float32"}}
        for i in range(6)
    ]  # fmt: skip
    return {"name": "cli", "equipment": [{"id": "eq", "kind": "other", "points": pts}]}


@pytest.fixture
def served(port: int, tmp_path: Path) -> Iterator[tuple[Path, SiteServer]]:
    data = _site_data(port)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(data))
    server = SiteServer(parse_site(data))
    server.set_many({f"eq.t{i}": 20.0 + i for i in range(6)})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield site_file, server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", "ingest", *args]


def test_ingest_runs_for_duration_and_stores(
    served: tuple[Path, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site_file, _ = served
    db = tmp_path / "f.duckdb"
    rc = main(["ingest", "--site", str(site_file), "--db", str(db), "--duration", "1.0",
               "--progress-every", "0.3"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert any("devices up 2 down 0" in ln for ln in lines[:-1]), err  # progress lines
    assert lines[-1].startswith("ingest: ") and "2 devices" in lines[-1]
    with Store(db, read_only=True) as store:
        assert store.latest_values() == {f"eq.t{i}": 20.0 + i for i in range(6)}
        assert store.row_count() >= 6 * 3  # ~10 polls a second for 1 s


def test_ingest_stops_cleanly_on_ctrl_c(served: tuple[Path, SiteServer], tmp_path: Path) -> None:
    site_file, _ = served
    db = tmp_path / "f.duckdb"
    proc = subprocess.Popen(
        _cli("--site", str(site_file), "--db", str(db), "--progress-every", "0.2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # wait for the first progress line: the ingest is running
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "points/s" in first and "devices up 2 down 0" in first, first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("ingest: ")
    wait_until(lambda: db.exists(), 5, what="database file")
    with Store(db, read_only=True) as store:
        assert len(store.latest_values()) == 6


def test_ingest_reaches_a_site_on_another_port_with_device_port(
    served: tuple[Path, SiteServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The site file names one port, the devices answer on another (a twin started
    with --port): --device-port points every source there."""
    site_file, server = served
    (served_port,) = server.ports
    moved = yaml.safe_load(site_file.read_text())
    for p in moved["equipment"][0]["points"]:
        p["source"]["port"] = 1  # nothing listens there
    other = tmp_path / "moved.yaml"
    other.write_text(yaml.safe_dump(moved))
    db = tmp_path / "f.duckdb"
    rc = main(["ingest", "--site", str(other), "--device-port", str(served_port),
               "--db", str(db), "--duration", "0.6"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with Store(db, read_only=True) as store:
        assert store.latest_values() == {f"eq.t{i}": 20.0 + i for i in range(6)}
