"""E-stop hands the plant back, and nothing is lost across a crash — tried from outside.

The site process (``estop_site_child.py``: API + decision cycles + heartbeat) runs as a
real subprocess; the plant it writes is served over Modbus TCP by this process, behind a
small proxy that can HOLD a request (or its reply) so a SIGKILL lands inside a write. The
tests talk HTTP with real tokens, run the CLI, and read the plant's registers over Modbus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from agent_harness import polled_every

from agent.api import state_file
from connectors.site import HEARTBEAT_TAG, Site, with_port
from connectors.writer import ModbusPointWriter
from twin.server import SiteServer
from twin.sim import Twin, TwinRunner, default_site

HERE = Path(__file__).resolve().parent
SETPOINT = "cdu_1.coolant_supply_setpoint"
WRITES = (5, 6, 15, 16)


async def until(pred: Callable[[], Awaitable[bool]], what: str, timeout: float = 180.0) -> None:
    """Wait on observable state (never a bare sleep); fail naming ``what``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def _frame(r: asyncio.StreamReader) -> bytes:
    head = await r.readexactly(7)  # MBAP: transaction, protocol, length, unit
    return head + await r.readexactly(int.from_bytes(head[4:6], "big") - 1)


class HoldingProxy:
    """Modbus TCP proxy on loopback that forwards to the plant; ``hold`` decides, per request
    frame, to hold the ``"request"`` (never forwarded while held) or its ``"reply"`` (the
    write lands, the writer never hears back) until :meth:`release`."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.hold: Callable[[bytes], str | None] = lambda f: None
        self.held: list[bytes] = []
        self._go = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def release(self) -> None:
        self.hold = lambda f: None
        self._go.set()

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()

    async def _conn(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            while True:
                req = await _frame(cr)
                how = self.hold(req)
                if how == "request":
                    self.held.append(req)
                    await self._go.wait()
                uw.write(req)
                await uw.drain()
                resp = await _frame(ur)
                if how == "reply":
                    self.held.append(req)
                    await self._go.wait()
                cw.write(resp)
                await cw.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (uw, cw):
                with contextlib.suppress(Exception):
                    w.close()


def fc(frame: bytes) -> int:
    return frame[7]


def writes_to(site: Site, tag: str) -> Callable[[bytes], bool]:
    src = site.point(tag).source
    return lambda f: (
        fc(f) in WRITES and f[6] == src.device_id and int.from_bytes(f[8:10], "big") == src.address
    )


class SiteProcess:
    """One run of the site process; ``kill`` is SIGKILL."""

    def __init__(self, proc: asyncio.subprocess.Process, db: Path) -> None:
        self.proc, self.db = proc, db
        self.url = ""

    @classmethod
    async def start(
        cls, tmp: Path, plant_port: int, ceiling: int, *flags: str
    ) -> tuple[SiteProcess, list[str]]:
        db = tmp / "site.duckdb"
        err = open(tmp / "child.err", "a")  # noqa: SIM115 — closed with the process
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "estop_site_child.py"),
            str(db),
            str(tmp / "ckpt.sqlite"),
            str(plant_port),
            str(ceiling),
            *flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            cwd=HERE.parent,
        )
        sp, tokens = cls(proc, db), []
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 180)).decode().split()
            assert line, (tmp / "child.err").read_text()[-3000:]
            if line[0] == "TOKENS":
                tokens = line[1:]
            if line[0] == "READY":
                break
        info = json.loads(state_file(db).read_text())
        sp.url = f"http://{info['host']}:{info['port']}"
        return sp, tokens

    def client(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    async def kill(self) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()


@contextlib.asynccontextmanager
async def plant(port: int) -> AsyncIterator[tuple[Site, HoldingProxy, ModbusPointWriter]]:
    """The plant on ``port`` (registers as the twin starts), its proxy, and a Modbus reader."""
    site = polled_every(default_site(), 10.0)
    served = with_port(site, port)
    server = SiteServer(served)
    await server.start()
    TwinRunner(Twin(site), server).push()
    proxy = HoldingProxy(port)
    await proxy.start()
    reader = ModbusPointWriter(served)
    try:
        yield site, proxy, reader
    finally:
        await reader.close()
        await proxy.close()
        await server.stop()


async def cli(db: Path, token: str, *argv: str) -> tuple[int, str]:
    env = {**os.environ, "FACILITY_AGENT_TOKEN": token, "COLUMNS": "200"}
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", *argv, "--db", str(db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        cwd=HERE.parent,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(p.communicate(), 180)
    return int(p.returncode or 0), out.decode()


def detail(a: dict[str, Any]) -> dict[str, Any]:
    d = a["detail"]
    return dict(json.loads(d) if isinstance(d, str) else d or {})


async def rows(c: httpx.AsyncClient, table: str) -> list[dict[str, Any]]:
    r = await c.get("/audit", params={"table": table, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json())


def test_estop_restores_the_pre_agent_value_and_stops_the_heartbeat(
    tmp_path: Path, port: int
) -> None:
    async def main() -> None:
        async with plant(port) as (_site, proxy, plc):
            before = await plc.read(SETPOINT)
            sp, (op, admin) = await SiteProcess.start(tmp_path, proxy.port, 3, "--first", "--fault")
            try:
                beat = await plc.read(HEARTBEAT_TAG)
                await until(
                    lambda: _changed(plc, HEARTBEAT_TAG, beat), "the heartbeat on the plant"
                )
                await until(lambda: _changed(plc, SETPOINT, before), "the agent's level-3 write")
                code, out = await cli(sp.db, op, "estop", "--why", "test")
                assert code == 0, out
                # the register is back to its pre-agent value, read over Modbus
                assert await plc.read(SETPOINT) == before
                assert f"{SETPOINT}: " in out and f"→ {before}" in out, out
                assert "NOT RESTORED" not in out and "still at the agent's value" not in out
                async with sp.client(op) as c:
                    acts = await rows(c, "actions")
                    restore = [
                        a for a in acts if detail(a).get("estop_restore") and a["state"] == "done"
                    ]
                    assert [(a["tag"], a["written"], a["read_back"]) for a in restore] == [
                        (SETPOINT, before, before)
                    ]
                    # decision cycles go on: the heartbeat does not, nothing else is written
                    n = len(await rows(c, "runs"))
                    beat = await plc.read(HEARTBEAT_TAG)  # at most one was under way
                    await until(lambda: _more(c, "runs", n + 1), "a cycle after the e-stop")
                    beat = await plc.read(HEARTBEAT_TAG)
                    n = len(await rows(c, "runs"))
                    await until(lambda: _more(c, "runs", n + 3), "three cycles under e-stop")
                    assert await plc.read(HEARTBEAT_TAG) == beat
                    assert await plc.read(SETPOINT) == before
                    assert _writes(await rows(c, "actions")) == _writes(acts)  # none started
                    assert (await c.get("/approvals")).json() == []
                code, out = await cli(sp.db, admin, "estop", "clear")
                assert code == 0 and "cleared by root" in out, out
                await until(lambda: _changed(plc, HEARTBEAT_TAG, beat), "the heartbeat again")
            finally:
                await sp.kill()

    asyncio.run(main())


def _writes(acts: list[dict[str, Any]]) -> int:
    return sum(a["state"] == "executing" for a in acts)


async def _changed(plc: ModbusPointWriter, tag: str, was: float) -> bool:
    return await plc.read(tag) != was


async def _more(c: httpx.AsyncClient, table: str, n: int) -> bool:
    return len(await rows(c, table)) >= n


async def _pending(sp: SiteProcess, op: str) -> dict[str, Any]:
    async with sp.client(op) as c:
        got: list[dict[str, Any]] = []

        async def any_pending() -> bool:
            got[:] = (await c.get("/approvals")).json()
            return bool(got)

        await until(any_pending, "an approval request")
        return got[0]


async def _approve_and_kill(
    sp: SiteProcess, proxy: HoldingProxy, op: str, apr: str, hold: Callable[[bytes], str | None]
) -> None:
    """Approve over the API and SIGKILL the site once the proxy holds what ``hold`` picks."""
    proxy.hold = hold
    async with sp.client(op) as c:
        answer = asyncio.create_task(c.post(f"/approvals/{apr}/approve", json={"why": "go"}))

        async def held() -> bool:
            return bool(proxy.held)

        await until(held, "the approved write reaching the proxy")
        await sp.kill()
        with contextlib.suppress(httpx.HTTPError):
            await answer
    proxy.release()


async def _settled(c: httpx.AsyncClient, decision_id: str) -> dict[str, Any]:
    """The decision once it is carried out or refused (no longer waiting for its approval)."""
    got: dict[str, Any] = {}

    async def done() -> bool:
        r = await c.get("/decisions", params={"limit": 1000})
        got.update(next(d for d in r.json() if d["decision_id"] == decision_id))
        return got["outcome"] != "approval_requested"

    await until(done, f"decision {decision_id} settled")
    return got


async def _crash_in_approval(
    tmp: Path, proxy: HoldingProxy, hold: Callable[[bytes], str | None]
) -> tuple[SiteProcess, str, dict[str, Any]]:
    """Start the site (ceiling 2), approve its request, SIGKILL it once the proxy holds what
    ``hold`` picks, restart it; returns the new process, the operator's token, the approval."""
    sp, (op, _) = await SiteProcess.start(tmp, proxy.port, 2, "--first", "--fault")
    try:
        p = await _pending(sp, op)
        await _approve_and_kill(sp, proxy, op, p["approval_id"], hold)
    finally:
        await sp.kill()
    sp, _ = await SiteProcess.start(tmp, proxy.port, 2, "--fault", "--later")
    return sp, op, p


def test_an_approval_killed_before_its_write_is_carried_out_after_restart(
    tmp_path: Path, port: int
) -> None:
    async def main() -> None:
        async with plant(port) as (_site, proxy, plc):
            before = await plc.read(SETPOINT)
            # the approval is recorded, then the actuator's first read is held: SIGKILL
            sp, op, p = await _crash_in_approval(tmp_path, proxy, hold_reads)
            try:
                async with sp.client(op) as c:
                    got = await _settled(c, p["decision_id"])
                    # carried out after the gate judged it again — or refused, saying why
                    if got["outcome"] == "executed":
                        assert await plc.read(SETPOINT) == before - 2.0
                    else:
                        assert "Not carried out: " in got["explanation"], got
                        assert await plc.read(SETPOINT) == before
                    # approving again answers with the approval's real state
                    r = await c.post(f"/approvals/{p['approval_id']}/approve", json={})
                    body = r.json()
                    assert r.status_code == 409
                    assert body["state"] == "approved" and body["outcome"] == got["outcome"], body
            finally:
                await sp.kill()

    asyncio.run(main())


def hold_reads(frame: bytes) -> str | None:
    return "request" if fc(frame) in (1, 2, 3, 4) else None


def test_a_write_killed_while_executing_is_reconciled_and_verified(
    tmp_path: Path, port: int
) -> None:
    async def main() -> None:
        async with plant(port) as (site, proxy, plc):
            before = await plc.read(SETPOINT)
            is_write = writes_to(site, SETPOINT)
            # the write lands on the plant; its reply is held: SIGKILL while `executing`
            sp, op, p = await _crash_in_approval(
                tmp_path, proxy, lambda f: "reply" if is_write(f) else None
            )
            try:
                assert await plc.read(SETPOINT) == before - 2.0
                async with sp.client(op) as c:
                    d = await _settled(c, p["decision_id"])
                    assert d["outcome"] == "executed", d
                    mine = [
                        a for a in await rows(c, "actions") if a["decision_id"] == d["decision_id"]
                    ]
                    landed = [a for a in mine if detail(a).get("reconciled") == "write landed"]
                    assert landed and landed[0]["state"] == "done"
                    armed = [detail(a).get("verify", {}).get("status") for a in mine]
                    assert "pending" in armed, mine  # its verification runs like any other
                    assert [a["state"] for a in mine].count("executing") == 1  # never twice
            finally:
                await sp.kill()

    asyncio.run(main())
