"""``facility-agent run`` as a service, all real processes: the twin on Modbus TCP, the site
process on a fixed API port, and the CLI in its own processes. The banner says what runs;
``/metrics`` parses with prometheus_client's own parser; the read-only commands (``quality``,
``whatif``, ``decide --dry-run``, ``audit``, ``record``) work while the site runs, through its
API, with the output they give on the file once it has stopped; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from bacnet_harness import free_udp_run
from conftest import free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

from connectors.store import Store

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "agent.cli"]
BASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("FACILITY_AGENT_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL")
}


@dataclass
class Service:
    db: Path
    api_port: int
    twin: subprocess.Popen[bytes]
    run: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr_file: Path | None = None
    twin_port: int = 0  # the twin's Modbus TCP port
    bacnet_port: int = 0  # first UDP port of the twin's BACnet devices

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def token(self) -> str:
        for line in self.stdout:
            if "export FACILITY_AGENT_TOKEN=" in line:
                return line.split("=", 1)[1].strip()
        raise AssertionError(f"no token in the output: {self.stdout}")

    def cli(self, *argv: str, token: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**BASE_ENV, **({"FACILITY_AGENT_TOKEN": self.token} if token else {})}
        return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300, env=env)

    def metrics(self) -> dict[str, list[tuple[str, dict[str, str], float]]]:
        r = httpx.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        return {
            f.name: [(s.name, s.labels, s.value) for s in f.samples]
            for f in text_string_to_metric_families(r.text)
        }


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("service")
    twin_port, api_port, bacnet_port = free_port(), free_port(), free_udp_run(5)
    twin = subprocess.Popen(
        [*CLI, "twin", "--port", str(twin_port), "--bacnet-port", str(bacnet_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BASE_ENV,
    )  # fmt: skip
    try:
        wait_until(lambda: _port_open(twin_port), timeout=120, interval=0.2, what="the twin")
        err = tmp / "run.stderr"
        run = subprocess.Popen(
            [*CLI, "run", "--device-port", str(twin_port), "--bacnet-port", str(bacnet_port),
             "--db", str(tmp / "site.duckdb"), "--port", str(api_port), "--interval", "5", "-v"],
            stdout=subprocess.PIPE, stderr=err.open("w"), text=True, env=BASE_ENV,
        )  # fmt: skip
        svc = Service(tmp / "site.duckdb", api_port, twin, run, stderr_file=err)
        svc.twin_port, svc.bacnet_port = twin_port, bacnet_port

        def read() -> None:
            assert run.stdout is not None
            for line in run.stdout:
                svc.stdout.append(line.rstrip("\n"))

        threading.Thread(target=read, daemon=True).start()
        wait_until(
            lambda: any(x.startswith("  stop") for x in svc.stdout) or run.poll() is not None,
            timeout=180, interval=0.2, what="the banner",
        )  # fmt: skip
        assert run.poll() is None, err.read_text()

        def ran_a_cycle() -> bool:
            m = svc.metrics()
            runs = [v for n, lab, v in m["facility_agent_job_runs"] if lab.get("job") == "schedule"]
            return sum(runs) >= 2

        wait_until(ran_a_cycle, timeout=180, interval=1.0, what="two decision cycles")
        yield svc
    finally:
        for p in (locals().get("run"), twin):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_run_prints_a_banner(service: Service) -> None:
    text = "\n".join(service.stdout)
    assert "site ai-data-hall: 21 equipment, 170 points on 21 devices" in text
    b = service.bacnet_port  # the default site: CRAHs and CDU over BACnet, the rest Modbus
    assert (
        f"  ingest     polling 16 Modbus TCP devices at 127.0.0.1:{service.twin_port}, "
        f"5 BACnet/IP devices at 127.0.0.1:{b}–{b + 4}"
    ) in text
    assert f"API        http://127.0.0.1:{service.api_port}" in text
    assert "autonomy   ceiling 2 (human validation)" in text
    assert "LLM        none" in text
    assert "schedule   decision cycle every 5 s" in text
    assert "console" in text and "database" in text


def test_metrics_parse_with_prometheus_clients_own_parser(service: Service) -> None:
    r = httpx.get(f"{service.url}/metrics", timeout=60)
    assert r.status_code == 401  # a viewer's token at least, like every route but /health
    m = service.metrics()
    counts = [v for n, lab, v in m["facility_agent_poll_latency_seconds"] if n.endswith("_count")]
    assert len(counts) == 21 and all(c > 0 for c in counts)
    infs = [v for n, lab, v in m["facility_agent_poll_latency_seconds"] if lab.get("le") == "+Inf"]
    assert infs == counts
    up = m["facility_agent_device_up"]
    assert len(up) == 21 and all(v == 1.0 for *_, v in up)
    (ratio,) = [v for *_, v in m["facility_agent_good_readings_ratio"]]
    assert 0.9 <= ratio <= 1.0
    q = {lab["equipment"]: v for _, lab, v in m["facility_agent_quality_score"]}
    assert {"chiller_1", "gpu", "ups_1"} <= q.keys() and all(0.0 <= v <= 1.0 for v in q.values())
    assert "facility_agent_decisions" in m and "facility_agent_writes" in m
    for name, want in (("pending_approvals", 0.0), ("estop", 0.0), ("autonomy_ceiling", 2.0)):
        assert [v for *_, v in m[f"facility_agent_{name}"]] == [want]
    (pue,) = [v for *_, v in m["facility_agent_pue"]]
    (it,) = [v for *_, v in m["facility_agent_it_power_kw"]]
    assert 1.0 < pue < 3.0 and 100.0 < it < 1500.0
    runs = {
        (lab["job"], lab["status"]): v
        for n, lab, v in m["facility_agent_job_runs"]
        if n.endswith("_total")
    }
    assert runs[("schedule", "done")] >= 2
    dur = {
        n: v for n, lab, v in m["facility_agent_job_duration_seconds"] if lab["job"] == "schedule"
    }
    assert dur["facility_agent_job_duration_seconds_count"] >= 2
    assert dur["facility_agent_job_duration_seconds_sum"] > 0


def test_read_commands_run_through_the_api_as_on_the_file_and_sigterm_stops_cleanly(
    service: Service, tmp_path: Path
) -> None:
    db = str(service.db)
    at = (datetime.now(UTC) - timedelta(seconds=20)).replace(tzinfo=None).isoformat()

    def reads(tag: str) -> dict[str, subprocess.CompletedProcess[str]]:
        out = {
            "quality": service.cli("quality", "--db", db, "--json", "--at", at, "--window", "5m"),
            "quality_table": service.cli("quality", "--db", db, "--at", at, "--equipment", "chiller_1"),
            "whatif": service.cli("whatif", "--db", db, "--set", "chw_supply_setpoint=+1"),
            "dry_run": service.cli("decide", "--dry-run", "--json", "--db", db),
            "audit": service.cli("audit", "--db", db, "--table", "runs", "--json", "--limit", "10000"),
            "record": service.cli("record", "--db", db, "--duration", "2m", "--out", str(tmp_path / tag)),
        }  # fmt: skip
        for name, p in out.items():
            assert p.returncode == 0, f"{tag} {name}: {p.stderr}"
            assert "locked" not in p.stderr and "Traceback" not in p.stderr
        return out

    live = reads("live")
    assert service.run.poll() is None  # all of that with the site running
    runs_live = json.loads(live["audit"].stdout)
    assert runs_live and not [r for r in runs_live if r["trigger"] == "cli"]  # dry run: no run

    service.run.send_signal(signal.SIGTERM)
    assert service.run.wait(120) == 0
    wait_until(lambda: service.stderr_file is not None and "run: stopped" in service.stderr_file.read_text(),
               timeout=30, what="the stop line")  # fmt: skip
    err = service.stderr_file.read_text() if service.stderr_file else ""
    assert "run: stopped (SIGTERM)" in err and "database checkpointed" in err
    assert "Traceback" not in err
    assert not Path(f"{db}.api.json").exists()
    with Store(db, read_only=True) as store:  # flushed, checkpointed, openable
        newest = pd.Timestamp(store.query("SELECT max(ts) AS t FROM readings")["t"].iloc[0])
    assert newest > pd.Timestamp(at)

    offline = reads("offline")
    # the same output through the API and on the file
    assert json.loads(offline["quality"].stdout) == json.loads(live["quality"].stdout)
    assert offline["quality_table"].stdout == live["quality_table"].stdout
    assert json.loads(offline["dry_run"].stdout).keys() == json.loads(live["dry_run"].stdout).keys()
    runs_off = json.loads(offline["audit"].stdout)
    assert {r["run_id"] for r in runs_live} <= {r["run_id"] for r in runs_off}
    for p in (live["whatif"], offline["whatif"]):
        assert f"What-if from latest readings in {db}" in p.stdout.replace("\n", " ") or (
            "latest readings in" in p.stdout
        )
    tags = [
        set(pd.read_parquet(tmp_path / t / "telemetry.parquet").columns)
        for t in ("live", "offline")
    ]
    assert tags[0] == tags[1] and len(tags[0]) > 100
    time.sleep(0)  # nothing waits on time here: every wait above is on observable state
