"""A scheduled ``run`` on the twin with short schedules: every job runs, is recorded, and
retention leaves roll-ups and Parquet that DuckDB reads back with the same counts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest
import yaml
from conftest import free_port, wait_until

from agent.api import find_api
from connectors.clock import utcnow
from connectors.lake import read_lake
from connectors.site import load_site
from connectors.store import Store

pytestmark = pytest.mark.slow

JOBS = {"cycle", "optimisation", "fdd", "report", "retention"}
TWIN_SITE = Path(__file__).parents[1] / "twin" / "site.yaml"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _site_file(tmp_path: Path) -> Path:
    data = yaml.safe_load(TWIN_SITE.read_text())
    data["schedule"] = {
        "cycle": {"every_s": 2},
        "optimisation": {"every_s": 4},
        "fdd": {"every_s": 4},
        "report": {"every_s": 4, "day": "today"},
        "retention": {"every_s": 4, "raw_days": 30 / 1440},  # raw kept 30 minutes
    }
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def _seed(db: Path, site_file: Path) -> int:
    """Ten minutes of history an hour old (older than the raw window) for every point."""
    site = load_site(site_file)
    with Store(db) as store:
        ids = store.register_site(site)
        start = np.datetime64(utcnow() - timedelta(minutes=60), "us")
        ts = start + (np.arange(600) * 1_000_000).astype("timedelta64[us]")
        n = 0
        for pid in ids.values():
            status = np.zeros(len(ts), np.uint8)
            status[::50] = 3
            n += store.append(ts, np.full(len(ts), pid), np.linspace(10, 20, len(ts)), status)
    return n


def test_scheduled_run_on_the_twin(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "site.duckdb"
    site_file = _site_file(tmp_path)
    seeded = _seed(db, site_file)
    env = {k: v for k, v in os.environ.items() if k != "FACILITY_AGENT_TOKEN"}
    cli = [sys.executable, "-m", "agent.cli"]
    twin = subprocess.Popen(
        # the run polls a Modbus-only copy of twin/site.yaml: no BACnet devices needed
        [*cli, "twin", "--port", str(port), "--no-bacnet", "--duration", "600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = None
    try:
        wait_until(lambda: _listening(port), 120, 0.2, "the twin")
        run = subprocess.Popen(
            [*cli, "run", "--site", str(site_file), "--device-port", str(port), "--db", str(db),
             "--duration", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "COLUMNS": "200"},
        )  # fmt: skip
        lines: list[str] = []
        assert run.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(run.stdout), daemon=True)  # type: ignore[union-attr,arg-type]
        reader.start()
        wait_until(
            lambda: any("FACILITY_AGENT_TOKEN=" in x for x in lines), 180, 0.2, "the admin token"
        )
        token = next(x for x in lines if "FACILITY_AGENT_TOKEN=" in x).split("=", 1)[1].strip()
        wait_until(lambda: find_api(db) is not None, 180, 0.2, "the site's API")
        c = httpx.Client(
            base_url=str(find_api(db)), headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        sched: dict[str, Any] = {}

        def all_ran() -> bool:
            sched.update(c.get("/schedule").json())
            last = sched["last"]
            return set(last) >= JOBS and all(last[j]["status"] == "done" for j in JOBS)

        wait_until(all_ran, 240, 0.5, "every job to have run")
        assert sched["running"] is True
        assert {j["job"] for j in sched["jobs"]} == JOBS
        assert all(j["next_run"] for j in sched["jobs"])
        reports = c.get("/reports").json()
        assert reports and reports[0]["url"].startswith("/reports/report-ai-data-hall-")
        page = c.get(reports[0]["url"])
        # energy, power, PUE, quality, faults, outcomes
        plots = page.text.count("data:image/png;base64,")
        assert page.status_code == 200 and plots == 6
        assert c.get("/reports/..%2Fsite.duckdb").status_code == 404
        c.close()
        run.send_signal(signal.SIGINT)
        assert run.wait(120) == 0, "".join(lines[-30:])
    finally:
        for p in (run, twin):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(60)

    with Store(db, read_only=True) as store:
        runs = store.query(
            "SELECT trigger, count(*) AS n FROM runs_latest WHERE trigger LIKE 'job:%' "
            "AND status = 'done' GROUP BY ALL"
        )
        assert {t.removeprefix("job:") for t in runs["trigger"]} == JOBS
        jr = store.query("SELECT job, duration_s, result FROM job_runs WHERE status = 'done'")
        assert (jr["duration_s"] >= 0).all()
        moved = sum(
            json.loads(r)["deleted"] for j, r in zip(jr["job"], jr["result"], strict=True)
            if j == "retention"
        )  # fmt: skip
        lake_files = store.query("SELECT path, n FROM lake_files")
        rolled = store.query("SELECT sum(n + n_bad) AS n, sum(n_bad) AS bad FROM readings_1m")
        assert (
            store.query(
                "SELECT count(*) AS n FROM readings WHERE ts < now()::TIMESTAMP - INTERVAL 40 MINUTE"
            )["n"][0]
            == 0
        )
    # the seeded hour-old history went to the lake; live readings stay raw
    assert moved == seeded == int(lake_files["n"].sum()) == int(rolled["n"][0])
    assert int(rolled["bad"][0]) == seeded // 50
    con = duckdb.connect()
    lake = tmp_path / "lake"
    assert read_lake(con, lake, "ai-data-hall").aggregate("count(*)").fetchall() == [(seeded,)]
    assert sorted(Path(p).name for p in lake_files["path"]) == sorted(
        f.name for f in lake.rglob("*.parquet")
    )
    assert list((tmp_path / "reports").glob("report-ai-data-hall-*.html"))

    # schedule list without a running site: the plan from the file, last runs from the db
    r = subprocess.run(
        [*cli, "schedule", "list", "--json", "--site", str(site_file), "--db", str(db)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["running"] is False and set(out["last"]) == JOBS
