"""A pending approval survives killing the process: a real subprocess is SIGKILLed, the SQLite
checkpoint and the DuckDB file are reopened here, and approving resumes the paused run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent_harness import AgentOn, Hall
from test_agent_twin import cdu_policy

from agent.checkpoint import open_saver, threads
from agent.runtime import answer_approval, close

HERE = Path(__file__).resolve().parent


def test_pending_approval_survives_kill_and_restart(
    tmp_path: Path, port: int, agent_on: AgentOn
) -> None:
    db, ckpt = tmp_path / "site.duckdb", tmp_path / "ckpt.sqlite"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "agent_restart_child.py"), str(db), str(ckpt)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()  # blocks until the child reports (or dies)
        assert line and line[0] == "PENDING", child.stderr.read() if child.stderr else line
        approval_id, run_id = line[1], line[2]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    async def resume() -> None:
        saver = await open_saver(ckpt)
        assert run_id in await threads(saver)  # the paused run is on disk
        await saver.conn.close()
        hall = Hall(db)  # reopens the DuckDB file the child was killed with
        hall.run(600)  # this process's plant and clock move on
        await hall.start(port)  # writes go over Modbus to this process's twin
        ctx = agent_on(
            hall,
            policies=cdu_policy(),
            checkpoint_path=ckpt,
        )
        try:
            pend = ctx.audit.pending_approvals()
            assert [p["approval_id"] for p in pend] == [approval_id]
            out = await answer_approval(ctx, approval_id, "approved", "ana", "after restart")
            assert out is not None and out.run_id == run_id and not out.interrupted
            done = [a for a in out.actions if a.get("state") == "done"]
            assert [a["tag"] for a in done] == ["cdu_1.coolant_supply_setpoint"]
            assert hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 25.0
            assert ctx.audit.pending_approvals() == []
        finally:
            await close(ctx)
            await hall.stop()

    asyncio.run(resume())
