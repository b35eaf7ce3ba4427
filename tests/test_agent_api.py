"""The site process's API and the commands that go through it (or open the file when none runs)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import httpx
from agent_harness import AgentOn, Hall
from test_agent_twin import cdu_policy, until_decision

from agent.api import find_api, serve, state_file
from agent.cli import main as cli
from agent.runtime import close
from twin.faults import Fault


def run_cli(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli(list(argv))
    return code, buf.getvalue()


def test_api_and_cli_through_running_site(tmp_path: Path, agent_on: AgentOn) -> None:
    db = tmp_path / "site.duckdb"

    async def main() -> None:
        hall = Hall(db)
        hall.run(900)
        ctx = agent_on(
            hall,
            policies=cdu_policy(),
            checkpoint_path=tmp_path / "c.sqlite",
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(ctx, db, stop=stop))
        try:
            for _ in range(200):
                if state_file(db).exists():
                    break
                await asyncio.sleep(0.02)
            url = await asyncio.to_thread(find_api, db)
            assert url is not None
            hall.twin.inject(
                Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
            )
            res = await until_decision(hall, ctx)
            apr = res.decisions[0].approval_id
            async with httpx.AsyncClient(base_url=url) as c:
                pend = (await c.get("/approvals")).json()
                assert [p["approval_id"] for p in pend] == [apr]
                assert (
                    await c.post("/approvals/nope/approve", json={"by": "x"})
                ).status_code == 404
            code, out = await asyncio.to_thread(
                run_cli, "approve", apr, "--db", str(db), "--by", "ana"
            )
            assert code == 0 and "approved" in out
            assert hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 25.0
            code, out = await asyncio.to_thread(run_cli, "approve", apr, "--db", str(db))
            assert code == 2  # already approved: a one-line error, no traceback
            code, out = await asyncio.to_thread(
                run_cli, "autonomy", "set", "1", "--db", str(db), "--by", "admin"
            )
            assert code == 0 and ctx.control().site_ceiling == 1
            code, out = await asyncio.to_thread(
                run_cli, "audit", "--db", str(db), "--since", "2026-06-01T00:00"
            )
            assert code == 0 and "gpu_hot" in out
            code, out = await asyncio.to_thread(run_cli, "estop", "--db", str(db), "--by", "lead")
            assert code == 0 and ctx.control().estop
            async with httpx.AsyncClient(base_url=url) as c:
                assert (await c.get("/autonomy")).json()["estop"] is True
                assert (await c.post("/decide")).status_code == 200
                chat = (await c.post("/chat", json={"message": "status?"})).json()
                assert "No language model" in chat["text"]
        finally:
            stop.set()
            await task
            await close(ctx)
            hall.store.close()
        assert not state_file(db).exists()

    asyncio.run(main())

    # no site process: the commands open the file directly
    code, out = run_cli("autonomy", "show", "--db", str(db))
    assert code == 0 and "ENGAGED" in out
    code, out = run_cli("audit", "--db", str(db), "--table", "actions")
    assert code == 0 and "cdu_1.coolant_supply_setpoint" in out
    code, out = run_cli("decide", "--once", "--db", str(db))
    assert code == 0 and ("Decisions" in out or "no policy fired" in out)
