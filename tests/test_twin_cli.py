"""`facility-agent twin` and `facility-agent demo` start, serve, and stop cleanly."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import pytest
from bacnet_harness import free_udp_run
from rich.console import Console

from agent.cli import build_parser, main
from agent.commands.demo import run_demo
from connectors.store import Store


def test_twin_command_serves_and_stops(port: int) -> None:
    rc = main(["twin", "--port", str(port), "--bacnet-port", str(free_udp_run(5)),
               "--duration", "0.5", "--speed", "10", "--fault", "chiller_trip:chiller_1:0"])  # fmt: skip
    assert rc == 0


def test_twin_command_rejects_a_bad_fault() -> None:
    assert main(["twin", "--fault", "chiller_trip:chiller_9"]) == 2


def test_demo_polls_the_twin_into_duckdb_and_shows_it(port: int, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    args = build_parser().parse_args(
        [
            "demo",
            "--port",
            str(port),
            "--bacnet-port",
            str(free_udp_run(5)),
            "--duration",
            "3",
            "--db",
            str(db),
            "--fault",
            "comm_loss:ct_1:0",
        ]
    )
    out = io.StringIO()
    rc = asyncio.run(run_demo(args, Console(file=out, width=120, force_terminal=False)))
    assert rc == 0
    text = out.getvalue()
    assert "IT power" in text and "PUE" in text and "comm_loss-1" in text
    # both protocols: the CRAHs and the CDU over BACnet/IP, the rest over Modbus TCP
    assert "(Modbus TCP 16, BACnet/IP 5)" in text, text
    assert "BACnet/IP" in text.split("Rack inlet (CRAH 1)")[1].splitlines()[0]
    assert "Modbus TCP" in text.split("PUE")[1].splitlines()[0]
    with Store(db, read_only=True) as store:
        latest = store.latest(["plant.it_power", "ct_1.fan_speed"])
    rows = {r.tag: r for r in latest.itertuples()}
    assert 400.0 < rows["plant.it_power"].value < 1200.0 and rows["plant.it_power"].status == "ok"
    assert rows["ct_1.fan_speed"].status != "ok"  # the silent device is a status, not a value


def test_twin_command_names_a_taken_port(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        argv = ["twin", "--port", str(port), "--bacnet-port", str(free_udp_run(5))]
        assert main([*argv, "--duration", "0.2"]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_twin_command_loads_a_scenario(
    port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("faults:\n  - {kind: leak, target: leak_1, start_s: 0, magnitude: 2}\n")
    argv = ["twin", "--port", str(port), "--bacnet-port", str(free_udp_run(5))]
    assert main([*argv, "--duration", "0.2", "--scenario", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - {kind: leak, target: nowhere}\n")
    assert main(["twin", "--port", str(port), "--scenario", str(bad)]) == 2
    assert "nowhere" in capsys.readouterr().err
