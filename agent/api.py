"""The running site's local HTTP API (FastAPI on 127.0.0.1): the one way into a live site.

One process owns the DuckDB file; CLI commands (`approve`, `reject`, `autonomy`,
`estop`, `audit`, `chat`, `decide`) talk to that process through this API and open
the file directly only when no site process is running (DESIGN.md "Store").
Discovery: the serving process writes ``<db>.api.json`` (host, port, pid) next to
the database and removes it on exit; :func:`find_api` checks it answers.

Endpoints (JSON): ``GET /health``, ``GET /decisions?limit=``, ``GET /approvals``,
``POST /approvals/{id}/approve|reject`` {by, why}, ``GET|POST /autonomy`` {level, by, why},
``POST /estop`` {by, why}, ``GET /audit?table=&since=&limit=``, ``POST /chat`` {message},
``POST /decide``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from agent import llm, runtime
from agent.context import AgentContext


class Answer(BaseModel):
    by: str = "operator"
    why: str = ""


class AutonomyIn(BaseModel):
    level: int
    by: str = "admin"
    why: str = ""


class ChatIn(BaseModel):
    message: str


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in df.to_dict("records"):
        clean: dict[str, Any] = {}
        for k, v in r.items():
            if v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
                v = None
            elif isinstance(v, pd.Timestamp | datetime):
                v = v.isoformat()
            clean[str(k)] = v
        out.append(clean)
    return out


def make_app(ctx: AgentContext) -> FastAPI:
    app = FastAPI(title="facility-agent", version="0.1")
    lock = asyncio.Lock()  # one decision / approval at a time

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "site": ctx.site.name, "pid": os.getpid()}

    @app.get("/decisions")
    async def decisions(limit: int = 50) -> list[dict[str, Any]]:
        return records(ctx.audit.decisions(limit=limit))

    @app.get("/quality")
    async def quality(equipment: str | None = None) -> list[dict[str, Any]]:
        """Score, level and reasons (worst first) of every point — or one equipment's — now."""
        tags = [t for t, (eq, _) in ctx.site.points_by_tag.items() if equipment in (None, eq.id)]
        res = ctx.quality_for(ctx.clock.now(), tags)
        level = ctx.site.quality.level
        return [
            {
                "tag": t,
                "score": round(res.scores.get(t, 0.0), 4),
                "level": level(res.scores.get(t, 0.0)),
                "reasons": res.reasons.get(t, []),
            }
            for t in tags
        ]

    @app.get("/approvals")
    async def approvals() -> list[dict[str, Any]]:
        return records(pd.DataFrame(ctx.audit.pending_approvals()))

    async def _answer(approval_id: str, state: str, a: Answer) -> dict[str, Any]:
        async with lock:
            try:
                res = await runtime.answer_approval(ctx, approval_id, state, a.by, a.why)
            except KeyError as err:
                raise HTTPException(404, str(err)) from None
            except ValueError as err:
                raise HTTPException(409, str(err)) from None
        return {
            "approval_id": approval_id,
            "state": state,
            "actions": res.actions if res else [],
            "report": res.report if res else {},
        }

    @app.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: str, a: Answer) -> dict[str, Any]:
        return await _answer(approval_id, "approved", a)

    @app.post("/approvals/{approval_id}/reject")
    async def reject(approval_id: str, a: Answer) -> dict[str, Any]:
        return await _answer(approval_id, "rejected", a)

    @app.get("/autonomy")
    async def autonomy() -> dict[str, Any]:
        return asdict(ctx.control())

    @app.post("/autonomy")
    async def set_autonomy(a: AutonomyIn) -> dict[str, Any]:
        try:
            return asdict(runtime.set_autonomy(ctx, a.level, a.by, a.why))
        except ValueError as err:
            raise HTTPException(422, str(err)) from None

    @app.post("/estop")
    async def estop(a: Answer) -> dict[str, Any]:
        async with lock:
            cancelled = await runtime.emergency_stop(ctx, a.by, a.why)
        return {"estop": True, "cancelled": cancelled}

    @app.get("/audit")
    async def audit(
        table: str = "decisions", since: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        try:
            t = datetime.fromisoformat(since) if since else None
            return records(ctx.audit.table(table, t, limit))
        except (KeyError, ValueError) as err:
            raise HTTPException(422, str(err)) from None

    @app.post("/chat")
    async def chat(c: ChatIn) -> dict[str, Any]:
        res = await llm.chat(ctx, c.message)
        return asdict(res)

    @app.post("/decide")
    async def decide() -> dict[str, Any]:
        async with lock:
            res = await runtime.decide_once(ctx, "cli")
        return asdict(res)

    return app


def state_file(db: str | Path) -> Path:
    return Path(f"{db}.api.json")


async def serve(
    ctx: AgentContext,
    db: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the API until ``stop`` is set; advertise it in ``<db>.api.json`` meanwhile."""
    config = uvicorn.Config(
        make_app(ctx), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    sf = state_file(db)
    sf.write_text(json.dumps({"host": bound[0], "port": bound[1], "pid": os.getpid()}))
    try:
        if stop is not None:
            await stop.wait()
            server.should_exit = True
        await task
    finally:
        with contextlib.suppress(FileNotFoundError):
            sf.unlink()


def find_api(db: str | Path) -> str | None:
    """Base URL of the running site process for ``db``, or None when none answers."""
    sf = state_file(db)
    try:
        info = json.loads(sf.read_text())
        url = f"http://{info['host']}:{info['port']}"
        r = httpx.get(f"{url}/health", timeout=2.0)
        return url if r.status_code == 200 else None
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
