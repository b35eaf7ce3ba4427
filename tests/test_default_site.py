"""The default site of the agent's commands uses both protocols, as the twin serves it: the
CRAHs and the CDU over BACnet/IP, everything else over Modbus TCP.

The pure part (which source each point gets, ``--device-port`` / ``--bacnet-port``, the
words the banner and ``ingest`` print) is checked in-process; then, as an outsider, a
``facility-agent twin`` process on free ports and ``facility-agent ingest`` on the default
site: good CRAH, CDU and chiller readings in the store, and with nothing listening on the
BACnet ports the CRAH and CDU rows carry a failure status while the chillers stay good —
so those readings did come over BACnet, and a missing BACnet device is a status, not a crash.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bacnet_harness import free_udp_run
from conftest import free_port, wait_until

from agent.banner import Banner
from agent.commands._common import default_site, site_from_args
from connectors.errors import SiteConfigError
from connectors.site import (
    BacnetSource,
    ModbusSource,
    Site,
    endpoints,
    load_site,
    protocol_summary,
    with_bacnet_port,
)
from connectors.status import Status
from connectors.store import Store
from twin import default_site_path
from twin.bacnet_map import BACNET_BASE_INSTANCE, BACNET_BASE_PORT, BACNET_EQUIPMENT

CLI = [sys.executable, "-m", "agent.cli"]
ENV = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
BACNET = set(BACNET_EQUIPMENT)


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"site": None, "device_port": None, "bacnet_port": None, **kw})


def _protocols(site: Site) -> dict[str, set[str]]:
    """Equipment id → the protocols its points are read over."""
    out: dict[str, set[str]] = {}
    for eq, p in site.iter_points():
        out.setdefault(eq.id, set()).add(p.source.protocol)
    return out


# ---- which equipment is on which protocol ------------------------------------------------------


def test_the_default_site_puts_crahs_and_cdu_on_bacnet_and_the_rest_on_modbus() -> None:
    site = site_from_args(_args())
    protocols = _protocols(site)
    assert {e for e, ps in protocols.items() if ps == {"bacnet"}} == BACNET
    assert {e for e, ps in protocols.items() if ps == {"modbus"}} == set(protocols) - BACNET
    assert len(site.point_ids) == len(load_site(default_site_path()).point_ids) == 170
    devices = site.bacnet_devices()
    assert sorted((k.port, k.device_id) for k in devices) == [
        (BACNET_BASE_PORT + n, BACNET_BASE_INSTANCE + n) for n in range(5)
    ]
    # the BACnet devices are where `facility-agent twin` serves them: crah_1 is the first
    (crah,) = [k for k, pts in devices.items() if pts[0][0].startswith("crah_1.")]
    assert crah.port == BACNET_BASE_PORT
    assert {k.port for k in site.devices()} == {5020} and len(site.devices()) == 16
    assert default_site() is default_site()  # built once per process


def test_the_twin_file_itself_stays_the_modbus_only_map() -> None:
    site = site_from_args(_args(site=default_site_path()))
    assert all(isinstance(p.source, ModbusSource) for _, p in site.iter_points())
    assert len(site.devices()) == 21 and not site.bacnet_devices()


def test_device_port_moves_only_modbus_and_bacnet_port_only_bacnet() -> None:
    base = site_from_args(_args())
    moved = site_from_args(_args(device_port=6021, bacnet_port=40100))
    assert {k.port for k in moved.devices()} == {6021}
    assert sorted(k.port for k in moved.bacnet_devices()) == list(range(40100, 40105))
    for (_, a), (_, b) in zip(base.iter_points(), moved.iter_points(), strict=True):
        assert type(a.source) is type(b.source)
        if isinstance(a.source, BacnetSource) and isinstance(b.source, BacnetSource):
            assert (a.source.object, a.source.device) == (b.source.object, b.source.device)
            assert b.source.port - a.source.port == 40100 - BACNET_BASE_PORT
    only_modbus = site_from_args(_args(device_port=6021))
    assert only_modbus.bacnet_devices().keys() == base.bacnet_devices().keys()


def test_bacnet_port_keeps_gaps_and_refuses_ports_past_65535() -> None:
    site = site_from_args(_args())
    gappy = with_bacnet_port(site, 100)  # 100..104
    assert sorted(k.port for k in gappy.bacnet_devices()) == [100, 101, 102, 103, 104]
    with pytest.raises(SiteConfigError, match="65535"):
        with_bacnet_port(site, 65533)
    modbus_only = load_site(default_site_path())
    assert with_bacnet_port(modbus_only, 40000) is modbus_only


def test_the_summary_names_both_protocols_and_where() -> None:
    site = site_from_args(_args(device_port=5031, bacnet_port=47900))
    assert protocol_summary(site) == (
        "16 Modbus TCP devices at 127.0.0.1:5031, 5 BACnet/IP devices at 127.0.0.1:47900–47904"
    )
    assert protocol_summary(load_site(default_site_path())) == (
        "21 Modbus TCP devices at 127.0.0.1:5020"
    )
    keys = [*site.bacnet_devices(), *site.devices()]
    assert endpoints(keys, most=1) == "127.0.0.1:5031 …"


def test_the_run_banner_names_both_protocols() -> None:
    site = site_from_args(_args())
    banner = Banner(
        site=site, db="f.duckdb", api_url="http://127.0.0.1:1", routes=["/console"], ceiling=2,
        schedules=[], ingest=True, llm="none",
    )  # fmt: skip
    lines = banner.lines()
    assert "170 points on 21 devices" in lines[0]
    (ingest,) = [x for x in lines if x.startswith("  ingest")]
    assert "16 Modbus TCP devices at 127.0.0.1:5020" in ingest
    assert "5 BACnet/IP devices at 127.0.0.1:47810–47814" in ingest
    d = banner.as_dict()
    assert (d["devices"], d["modbus_devices"], d["bacnet_devices"]) == (21, 16, 5)


def test_help_texts_name_the_mixed_default() -> None:
    for cmd in ("run", "ingest", "quality", "whatif", "decide", "calibrate site", "fdd learn"):
        out = subprocess.run(
            [*CLI, *cmd.split(), "--help"], capture_output=True, text=True, timeout=120, env=ENV
        )
        assert out.returncode == 0, out.stderr
        text = " ".join(out.stdout.split())
        assert "CRAHs and the CDU on BACnet/IP" in text, cmd
        assert "--site twin/site.yaml is the same plant all on Modbus" in text, cmd


# ---- as an outsider: a twin process and `facility-agent ingest` ----------------------------------


@dataclass
class TwinProcess:
    modbus_port: int
    bacnet_port: int
    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def twin() -> Iterator[TwinProcess]:
    port, bport = free_port(), free_udp_run(5)
    proc = subprocess.Popen(
        [*CLI, "twin", "--port", str(port), "--bacnet-port", str(bport), "--speed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )  # fmt: skip
    t = TwinProcess(port, bport, proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t.out.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_until(
            lambda: any("Ctrl-C to stop" in x for x in t.out) or proc.poll() is not None,
            timeout=180, interval=0.2, what="the twin's start line",
        )  # fmt: skip
        assert proc.poll() is None, "\n".join(t.out)
        assert f"BACnet/IP 127.0.0.1:{bport}–{bport + 4}" in "\n".join(t.out)
        yield t
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ingest(db: Path, port: int, bport: int, seconds: float) -> subprocess.CompletedProcess[str]:
    argv = ["ingest", "--device-port", str(port), "--bacnet-port", str(bport),
            "--db", str(db), "--duration", str(seconds)]  # fmt: skip
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300, env=ENV)


def _by_equipment(db: Path) -> dict[str, dict[int, int]]:
    """equipment → {status: rows}."""
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT p.equipment, r.status, count(*) AS n FROM readings r JOIN points p USING "
            "(point_id) GROUP BY ALL"
        )
    out: dict[str, dict[int, int]] = {}
    for eq, status, n in rows.itertuples(index=False):
        out.setdefault(str(eq), {})[int(status)] = int(n)
    return out


def _good_values(db: Path, tag: str) -> list[float]:
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT r.value FROM readings r JOIN points p USING (point_id) "
            "WHERE p.tag = ? AND r.status = 0 AND r.value IS NOT NULL",
            [tag],
        )
    return [float(v) for v in rows["value"]]


@pytest.mark.slow
def test_ingest_on_the_default_site_stores_bacnet_and_modbus_readings(
    twin: TwinProcess, tmp_path: Path
) -> None:
    db = tmp_path / "mixed.duckdb"
    r = _ingest(db, twin.modbus_port, twin.bacnet_port, 8)
    assert r.returncode == 0, r.stderr
    b = twin.bacnet_port
    assert (
        "21 devices, " in r.stderr
        and f"16 Modbus TCP devices at 127.0.0.1:{twin.modbus_port}, "
        f"5 BACnet/IP devices at 127.0.0.1:{b}–{b + 4}"
        in r.stderr
    ), r.stderr
    got = _by_equipment(db)
    for eq in [*BACNET_EQUIPMENT, "chiller_1", "chiller_2", "ups_1"]:
        assert got[eq].get(Status.OK, 0) > 0 and set(got[eq]) == {Status.OK}, (eq, got[eq])
    # plausible values, not zeros: rack inlets of an air-cooled hall, a CDU's coolant, a CHW loop
    for tag, lo, hi in (
        ("crah_1.rack_inlet_temp", 15.0, 40.0),
        ("cdu_1.coolant_supply_temp", 15.0, 50.0),
        ("chiller_1.chw_supply_temp", 3.0, 20.0),
    ):
        vals = _good_values(db, tag)
        assert vals and all(lo <= v <= hi for v in vals), (tag, vals[:5])


@pytest.mark.slow
def test_without_bacnet_devices_their_rows_carry_a_failure_status_and_modbus_stays_good(
    twin: TwinProcess, tmp_path: Path
) -> None:
    """What `run`/`ingest` on the default site do against a twin started with --no-bacnet:
    nothing answers on the BACnet ports (here: free ports nobody serves)."""
    db = tmp_path / "no-bacnet.duckdb"
    r = _ingest(db, twin.modbus_port, free_udp_run(5), 8)
    assert r.returncode == 0, r.stderr  # some good readings: a dead device is not a crash
    assert "Traceback" not in r.stderr
    got = _by_equipment(db)
    for eq in BACNET_EQUIPMENT:
        failed = {Status.TIMEOUT, Status.NOT_CONNECTED}
        assert got[eq] and set(got[eq]) <= failed, (eq, got[eq])
    for eq in ("chiller_1", "ct_1", "ups_1"):
        assert set(got[eq]) == {Status.OK}, (eq, got[eq])
