"""The site process's API through its front door: real uvicorn on loopback, real tokens.

One site (the twin as a plant, its DuckDB file, the agent, the API on a free port)
serves the whole module from a background thread; the tests talk HTTP to it and
run the CLI against it, with the tokens of three users of the site's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from agent_harness import Hall
from conftest import wait_until
from site_harness import NAMES, Running, running_site
from test_agent_twin import cdu_policy, until_decision

from agent.api import find_api
from agent.cli import main as cli
from agent.context import AgentContext
from agent.runtime import close
from tools.gate import GateControl
from twin.faults import Fault

T = TypeVar("T")


def run_cli(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli(list(argv))
    return code, buf.getvalue()


Site = Running


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("api")

    def build(hall: Hall) -> AgentContext:
        return AgentContext.build(
            hall.site,
            hall.store,
            hall.writer,
            hall.clock,
            policies=cdu_policy(),
            checkpoint_path=tmp / "c.sqlite",
        )

    with running_site(tmp / "site.duckdb", build) as r:
        yield r


# (method, path, json body, role needed) — every endpoint but /health
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/me", None, "viewer"),
    ("GET", "/decisions", None, "viewer"),
    ("GET", "/approvals", None, "viewer"),
    ("GET", "/autonomy", None, "viewer"),
    ("GET", "/audit", None, "viewer"),
    ("POST", "/approvals/apr-none/approve", {"why": ""}, "operator"),
    ("POST", "/approvals/apr-none/reject", {"why": ""}, "operator"),
    ("POST", "/estop", {"why": ""}, "operator"),
    ("POST", "/chat", {"message": "status?"}, "operator"),
    ("POST", "/decide", None, "operator"),
    ("POST", "/autonomy", {"level": 2}, "admin"),
    ("POST", "/estop/clear", {}, "admin"),
    ("GET", "/users", None, "admin"),
    ("POST", "/users", {"name": "x", "role": "viewer"}, "admin"),
    ("DELETE", "/users/nobody", None, "admin"),
]
ORDER = ["viewer", "operator", "admin"]


def test_every_endpoint_but_health_needs_a_token_and_the_role(site: Site) -> None:
    with site.client() as anon:
        h = anon.get("/health")
        assert h.status_code == 200 and h.json()["ok"] is True
    for method, path, body, needed in ENDPOINTS:
        for tok in (None, "not-a-token"):
            with site.client(token=tok) as c:
                r = c.request(method, path, json=body)
            assert r.status_code == 401, (method, path, tok, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"] == "unauthorized"
        for role in ORDER[: ORDER.index(needed)]:
            with site.client(role) as c:
                r = c.request(method, path, json=body)
            assert r.status_code == 403, (method, path, role, r.text)
            assert r.json()["error"] == "forbidden" and NAMES[role] in r.json()["detail"]
    # allowed: the reads answer; the answers to an unknown approval pass auth and find nothing
    for method, path, _, needed in ENDPOINTS:
        if method == "GET":
            with site.client(needed) as c:
                assert c.get(path).status_code == 200, path
    with site.client("operator") as c:
        assert c.post("/approvals/apr-none/approve", json={}).status_code == 404
        assert c.get("/me").json() == {"name": "olga", "role": "operator"}
    with site.client("admin") as c:
        r = c.delete("/users/nobody")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert c.post("/users", json={"name": "a b", "role": "viewer"}).status_code == 422
        assert c.post("/users", json={"name": "vic", "role": "admin"}).status_code == 409
        assert c.post("/users", json={"name": "eve", "role": "root"}).status_code == 422


def test_viewer_cannot_approve_and_the_approver_is_the_tokens_user(site: Site) -> None:
    site.do(lambda: site.hall.twin.inject(
        Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
    ))  # fmt: skip
    res = site.on_loop(until_decision(site.hall, site.ctx))
    apr = res.decisions[0].approval_id
    with site.client("viewer") as v:
        r = v.post(f"/approvals/{apr}/approve", json={"why": "looks fine"})
        assert r.status_code == 403
        assert [p["approval_id"] for p in v.get("/approvals").json()] == [apr]  # still pending
    assert site.do(lambda: site.hall.twin.values()["cdu_1.coolant_supply_setpoint"]) != 25.0
    with site.client("operator") as o:
        r = o.post(f"/approvals/{apr}/approve", json={"by": "mallory", "why": "ok"})
        assert r.status_code == 200, r.text
        assert r.json()["by"] == "olga"
        assert o.post(f"/approvals/{apr}/approve", json={}).status_code == 409
        rows = o.get("/audit", params={"table": "approvals"}).json()
    assert site.do(lambda: site.hall.twin.values()["cdu_1.coolant_supply_setpoint"]) == 25.0
    mine = [r for r in rows if r["approval_id"] == apr and r["state"] == "approved"]
    assert [r["by_whom"] for r in mine] == ["olga"]
    assert not any(r["by_whom"] == "mallory" for r in rows)
    # an e-stop hands the set point the agent wrote back, and says so
    with site.client("operator") as o, site.client("admin") as a:
        r = o.post("/estop", json={}).json()
        assert [(v["tag"], v["agent_value"], v["restored"]) for v in r["restored"]] == [
            ("cdu_1.coolant_supply_setpoint", 25.0, 27.0)
        ]
        assert r["not_restored"] == [] and r["in_force"] == []
        assert site.do(lambda: site.hall.twin.values()["cdu_1.coolant_supply_setpoint"]) == 27.0
        assert a.post("/estop/clear", json={}).json()["cleared"] is True


def test_the_ceiling_never_clears_an_estop_or_auto_lock(site: Site) -> None:
    with site.client("operator") as o, site.client("admin") as a:
        assert o.post("/estop", json={"by": "someone-else"}).json()["by"] == "olga"
        r = a.post("/autonomy", json={"level": 3, "why": "raise it"})
        assert r.status_code == 200 and r.json()["site_ceiling"] == 3 and r.json()["estop"] is True
        assert a.get("/autonomy").json()["estop"] is True
        assert o.post("/estop/clear", json={}).status_code == 403
        assert a.get("/autonomy").json()["estop"] is True
        c = a.post("/estop/clear", json={"why": "checked the plant"}).json()
        assert c["cleared"] is True and c["estop"] is False and c["site_ceiling"] == 3
        assert a.post("/estop/clear", json={}).json()["cleared"] is False
        # the auto-lock is the same: the ceiling leaves it, estop clear releases it
        site.do(
            lambda: site.ctx.set_control(GateControl(3, True, "6 writes in 10 min"), "auto-lock")
        )
        assert a.post("/autonomy", json={"level": 2}).json()["locked"] is True
        assert a.post("/estop/clear", json={}).json()["locked"] is False
    trail = site.do(
        lambda: site.ctx.store.query("SELECT by_whom, estop, locked FROM autonomy ORDER BY rowid")
    )  # the manual clock stands still: the rows' order is their insertion order
    who = [(r.by_whom, r.estop, r.locked) for r in trail.itertuples()]
    assert who[-6:] == [
        ("olga", True, False),
        ("root", True, False),  # ceiling 3, e-stop kept
        ("root", False, False),  # cleared by the admin
        ("auto-lock", False, True),
        ("root", False, True),  # ceiling 2, lock kept
        ("root", False, False),
    ]
    assert site.do(lambda: site.ctx.control()) == GateControl(2, False, "", False)


def test_input_is_checked_at_the_edge(site: Site) -> None:
    with site.client("admin") as a:
        r = a.get("/autonomy", headers={"Host": "evil.example"})
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        assert a.get("/autonomy", headers={"Host": "localhost:1234"}).status_code == 200
        for bad in ({"level": True}, {"level": 1.0}, {"level": "1"}, {"level": 4}, {"level": -1}):
            r = a.post("/autonomy", json=bad)
            assert r.status_code == 422, bad
            assert r.json()["error"] == "invalid_request" and "level" in r.json()["detail"]
        for raw in (b'{"level": NaN}', b'{"level": 1, "x": Infinity}', b'{"level": 1e999}', b"{"):
            r = a.post("/autonomy", content=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, raw
            assert set(r.json()) == {"error", "detail"}
        assert a.get("/autonomy").json()["site_ceiling"] == 2  # none of that changed it
        for q in ({"limit": -1}, {"limit": 0}, {"limit": "x"}):
            r = a.get("/decisions", params=q)
            assert r.status_code == 422 and r.json()["error"] == "invalid_request", q
        assert a.get("/audit", params={"table": "users"}).status_code == 422
        assert a.get("/audit", params={"since": "yesterday"}).status_code == 422
        assert a.get("/nowhere").json() == {"error": "not_found", "detail": "Not Found"}
    with site.client("operator") as o:
        big = {"message": "x" * (20 * 1024 * 1024)}
        r = o.post("/chat", json=big)
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what streams in
            yield b'{"message": "'
            for _ in range(100):
                yield b"y" * 1024
            yield b'"}'

        r = o.post("/chat", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert o.post("/chat", json={"message": ""}).status_code == 422


def test_cli_sends_the_token_and_manages_users(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(site.db)
    monkeypatch.delenv("FACILITY_AGENT_TOKEN", raising=False)
    code, out = run_cli("autonomy", "--db", db)
    err = capsys.readouterr().err
    assert code == 3 and "FACILITY_AGENT_TOKEN" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", "wrong")
    code, _ = run_cli("autonomy", "--db", db)
    assert code == 3 and "401" in capsys.readouterr().err
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["viewer"])
    code, out = run_cli("autonomy", "--db", db)
    assert code == 0 and "site ceiling" in out
    code, _ = run_cli("autonomy", "set", "1", "--db", db)
    assert code == 3 and "needs the admin role" in capsys.readouterr().err
    code, _ = run_cli("user", "add", "ana", "--role", "operator", "--db", db)
    assert code == 3

    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["admin"])
    code, out = run_cli("user", "add", "ana", "--role", "operator", "--db", db)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert len(token) >= 43 and " " not in token
    code, out = run_cli("user", "list", "--db", db)
    assert code == 0 and "ana" in out and "operator" in out
    with site.client(token=token) as c:
        assert c.get("/me").json() == {"name": "ana", "role": "operator"}
    code, _ = run_cli("user", "add", "ana", "--role", "viewer", "--db", db)
    assert code == 2  # exists
    code, out = run_cli("autonomy", "set", "1", "--db", db, "--why", "night shift")
    assert code == 0 and "site ceiling: 1" in out
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", token)
    code, out = run_cli("estop", "--db", db)
    assert code == 0 and "by ana" in out
    code, _ = run_cli("estop", "clear", "--db", db)
    assert code == 3
    code, out = run_cli("audit", "--db", db, "--table", "autonomy")
    assert code == 0 and "ana" in out
    code, out = run_cli("audit", "--db", db, "--since", "2026-06-01T00:00")
    assert code == 0 and "Audit — decisions" in out
    with site.client("viewer") as v:
        since = {"table": "autonomy", "since": "2026-06-01T02:00:00+02:00"}
        assert v.get("/audit", params=since).json()
    code, out = run_cli("decide", "--once", "--db", db)
    assert code == 0
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["admin"])
    code, out = run_cli("estop", "clear", "--db", db)
    assert code == 0 and "cleared by root" in out
    code, _ = run_cli("user", "remove", "ana", "--db", db)
    assert code == 0
    with site.client(token=token) as c:
        assert c.get("/me").status_code == 401
    code, _ = run_cli("user", "remove", "root", "--db", db)
    assert code == 2 and "last admin" in capsys.readouterr().err
    assert site.do(lambda: site.ctx.control()).site_ceiling == 1


def test_cli_on_the_file_acts_as_the_local_user(tmp_path: Path) -> None:
    import getpass

    db = str(tmp_path / "site.duckdb")
    local = f"local:{getpass.getuser()}"
    code, out = run_cli("user", "add", "ana", "--role", "admin", "--db", db)
    assert code == 0 and len(out.strip().splitlines()[-1]) >= 43
    code, out = run_cli("estop", "--db", db)
    assert code == 0 and f"by {local}" in out
    code, out = run_cli("autonomy", "set", "3", "--db", db)
    assert code == 0 and "emergency stop: ENGAGED" in out
    code, out = run_cli("estop", "clear", "--db", db)
    assert code == 0 and f"cleared by {local}" in out and "emergency stop: no" in out
    code, out = run_cli("audit", "--db", db, "--table", "autonomy")
    assert code == 0 and local in out
    code, out = run_cli("user", "list", "--db", db)
    assert code == 0 and "ana" in out and local in out


def test_run_creates_the_first_admin_and_prints_its_token(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    db = tmp_path / "site.duckdb"
    env = {k: v for k, v in os.environ.items() if k != "FACILITY_AGENT_TOKEN"}
    argv = [sys.executable, "-m", "agent.cli", "run", "--no-ingest", "--db", str(db)]
    proc = subprocess.Popen(
        [*argv, "--interval", "3600", "--duration", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**env, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "export FACILITY_AGENT_TOKEN=" in line:
                break
        token = lines[-1].split("=", 1)[1].strip()
        assert any("created the admin user 'admin'" in x for x in lines), lines
        wait_until(lambda: find_api(db) is not None, 60, 0.2, "the site's API")
        url = find_api(db)
        with httpx.Client(base_url=str(url)) as c:
            assert c.get("/autonomy").status_code == 401
            me = c.get("/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me == {"name": "admin", "role": "admin"}
        cmd = [*argv[:3], "autonomy", "--db", str(db)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 3 and "Traceback" not in r.stderr
        r = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env={**env, "FACILITY_AGENT_TOKEN": token},
            timeout=120,
        )
        assert r.returncode == 0 and "site ceiling" in r.stdout
    finally:
        proc.terminate()
        proc.wait(60)
    # a second start finds the admin: no new token
    proc2 = subprocess.run(
        [*argv, "--interval", "3600", "--duration", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc2.returncode == 0 and "FACILITY_AGENT_TOKEN=" not in proc2.stdout


def test_no_heartbeat_while_e_stopped(tmp_path: Path) -> None:
    from agent.runtime import HEARTBEAT_TAG, clear_estop, emergency_stop, run_forever

    async def main() -> None:
        hall = Hall(tmp_path / "site.duckdb")
        ctx = AgentContext.build(hall.site, hall.store, hall.writer, hall.clock, policies=[])
        beats = lambda: sum(t == HEARTBEAT_TAG for t, _ in hall.writer.writes)  # noqa: E731
        runs = lambda: len(ctx.store.query("SELECT DISTINCT run_id FROM runs"))  # noqa: E731

        async def until(pred: Callable[[], bool], what: str) -> None:
            for _ in range(1000):
                if pred():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"timed out waiting for {what}")

        stop = asyncio.Event()
        loop = asyncio.create_task(run_forever(ctx, interval_s=0.02, heartbeat_s=0.02, stop=stop))
        try:
            await until(lambda: beats() >= 2, "heartbeats")
            await emergency_stop(ctx, "olga")
            n, r0 = beats(), runs()
            await until(lambda: runs() >= r0 + 3, "three cycles under e-stop")
            assert beats() <= n + 1  # at most the one already under way
            clear_estop(ctx, "root")
            n = beats()
            await until(lambda: beats() > n + 1, "heartbeats again after the clear")
        finally:
            stop.set()
            await loop
            await close(ctx)
            hall.store.close()

    asyncio.run(main())
