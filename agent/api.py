"""The running site's local HTTP API (FastAPI on 127.0.0.1): the one way into a live site.

One process owns the DuckDB file; CLI commands (`approve`, `reject`, `autonomy`,
`estop`, `audit`, `chat`, `decide`, `user`) talk to that process through this API
and open the file directly only when no site process is running (DESIGN.md "Store").
Discovery: the serving process writes ``<db>.api.json`` (host, port, pid) next to
the database and removes it on exit; :func:`find_api` checks it answers.

Every endpoint but ``GET /health`` needs ``Authorization: Bearer TOKEN`` or the operators'
console session cookie with its CSRF token (:mod:`agent.auth`, :mod:`agent.web.session`);
the console's pages live on the same port (:mod:`agent.web`); the acting user recorded in the audit is the token's user, never
a name from the body. Roles (JSON bodies; unknown fields such as ``by`` are ignored):

=========================================  ========  ==========================
endpoint                                   role      body / query
=========================================  ========  ==========================
``GET /health``                            —
``GET /me``                                viewer
``GET /decisions?limit=``                  viewer    1 ≤ limit ≤ 1000
``GET /approvals``                         viewer
``GET /autonomy``                          viewer
``GET /audit?table=&since=&limit=``        viewer
``GET /quality?equipment=``                viewer
``GET /metrics``, ``GET /quality/report``,  viewer    read-only routes of :mod:`agent.api_reads`
``GET /latest``, ``GET /readings``,
``POST /decide/dry-run``
``POST /approvals/{id}/approve|reject``    operator  {why}
``POST /estop``                            operator  {why}
``GET /chat``                              viewer    → {mode, model}
``POST /chat``                             operator  {message, conversation}
``POST /decide``                           operator
``POST /autonomy``                         admin     {level: 0..3, why} — the ceiling only
``POST /estop/clear``                      admin     {why} — clears e-stop and auto-lock
``GET /users``, ``POST /users``            admin     {name, role}
``DELETE /users/{name}``                   admin
=========================================  ========  ==========================

Before any route (:mod:`agent.http_guard`): a trusted Host header, a body of at most
64 KiB, finite numbers only; every error is ``{"error": ..., "detail": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from agent import api_reads, runtime
from agent.auth import Authenticator, require
from agent.chat import routes as chat_routes
from agent.context import AgentContext
from agent.http_guard import LOOPBACK_HOSTS, MAX_BODY, EdgeGuard, install_error_handlers
from agent.schedule import routes as schedule_routes
from agent.users import Principal, Role, Users, check_name
from connectors.errors import FacilityError
from tools.gate import ApprovalState

if TYPE_CHECKING:
    from connectors.ingest import Ingestor

AUDIT_TABLES = Literal["decisions", "approvals", "actions", "runs", "autonomy"]


class Body(BaseModel):
    """Strict JSON: no coercion (``true`` is not a level), finite numbers, unknown fields ignored."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


class Answer(Body):
    why: StrictStr = Field("", max_length=2000)


class AutonomyIn(Body):
    level: StrictInt = Field(ge=0, le=3)
    why: StrictStr = Field("", max_length=2000)


class UserIn(Body):
    name: StrictStr = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin"]


Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]


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


def make_app(
    ctx: AgentContext,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
    max_body: int = MAX_BODY,
    ingestor: Ingestor | None = None,
) -> FastAPI:
    """``ingestor``: the process's own poller set, for ``/metrics`` (None: no ingest here)."""
    app = FastAPI(title="facility-agent", version="0.1")
    app.state.auth = Authenticator(Users(ctx.store))
    app.add_middleware(EdgeGuard, allowed_hosts=tuple(allowed_hosts), max_body=max_body)
    install_error_handlers(app)
    app.include_router(schedule_routes.router(ctx))  # /reports, /schedule
    lock = asyncio.Lock()  # one decision / approval at a time
    app.state.lock = lock
    app.include_router(chat_routes.router(ctx, lock))  # GET/POST /chat (agent/chat/routes.py)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "site": ctx.site.name, "pid": os.getpid()}

    @app.get("/me")
    async def me(who: Viewer) -> dict[str, Any]:
        return {"name": who.name, "role": who.role.label}

    @app.get("/decisions")
    async def decisions(
        who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> list[dict[str, Any]]:
        return records(ctx.audit.decisions(limit=limit))

    @app.get("/quality")
    async def quality(who: Viewer, equipment: str | None = None) -> list[dict[str, Any]]:
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
    async def approvals(who: Viewer) -> list[dict[str, Any]]:
        return records(pd.DataFrame(ctx.audit.pending_approvals()))

    async def _answer(
        approval_id: str, state: ApprovalState, who: Principal, why: str
    ) -> dict[str, Any]:
        async with lock:
            try:
                res = await runtime.answer_approval(ctx, approval_id, state, who.name, why)
            except KeyError as err:
                raise HTTPException(404, str(err).strip("'\"")) from None
            except ValueError as err:
                raise HTTPException(409, answered(approval_id, str(err))) from None
        return {
            "approval_id": approval_id,
            "state": state,
            "by": who.name,
            "actions": res.actions if res else [],
            "report": res.report if res else {},
        }

    def answered(approval_id: str, message: str) -> dict[str, Any]:
        """The approval's real state (and its decision's outcome) for an answer that came late."""
        a = ctx.audit.approval(approval_id)
        d = ctx.audit.decision(a.decision_id) if a else None
        return {
            "message": message,
            "approval_id": approval_id,
            "state": a.state if a else None,
            "by": a.by_whom if a else None,
            "outcome": d.outcome if d and d.verdict else None,
            "explanation": d.explanation if d else None,
        }

    @app.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: str, a: Answer, who: Operator) -> dict[str, Any]:
        return await _answer(approval_id, "approved", who, a.why)

    @app.post("/approvals/{approval_id}/reject")
    async def reject(approval_id: str, a: Answer, who: Operator) -> dict[str, Any]:
        return await _answer(approval_id, "rejected", who, a.why)

    @app.get("/autonomy")
    async def autonomy(who: Viewer) -> dict[str, Any]:
        return asdict(ctx.control())

    @app.post("/autonomy")
    async def set_autonomy(a: AutonomyIn, who: Admin) -> dict[str, Any]:
        return asdict(runtime.set_autonomy(ctx, a.level, who.name, a.why))

    @app.post("/estop")
    async def estop(a: Answer, who: Operator) -> dict[str, Any]:
        async with lock:
            res = await runtime.emergency_stop(ctx, who.name, a.why)
        return {**res.as_json(), "in_force": runtime.agent_values_in_force(ctx)}

    @app.post("/estop/clear")
    async def estop_clear(a: Answer, who: Admin) -> dict[str, Any]:
        before = ctx.control()
        after = runtime.clear_estop(ctx, who.name, a.why)
        return {**asdict(after), "cleared": before != after, "by": who.name}

    @app.get("/audit")
    async def audit(
        who: Viewer,
        table: AUDIT_TABLES = "decisions",
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> list[dict[str, Any]]:
        if since is not None and since.tzinfo is not None:  # the store keeps naive UTC
            since = since.astimezone(UTC).replace(tzinfo=None)
        return records(ctx.audit.table(table, since, limit))

    @app.post("/decide")
    async def decide(who: Operator) -> dict[str, Any]:
        async with lock:
            res = await runtime.decide_once(ctx, "cli")
        return res.as_json()

    api_reads.install(app, ctx, lambda: ingestor, _version())  # /metrics and the CLI's reads
    users: Users = app.state.auth.users

    @app.get("/users")
    async def list_users(who: Admin) -> list[dict[str, Any]]:
        return [
            {
                "name": u.name,
                "role": u.role.label,
                "created": u.created.isoformat(),
                "by": u.by_whom,
            }
            for u in users.list()
        ]

    @app.post("/users")
    async def add_user(u: UserIn, who: Admin) -> dict[str, Any]:
        try:
            check_name(u.name)
        except FacilityError as err:
            raise HTTPException(422, str(err)) from None
        try:
            token = users.add(u.name, Role.parse(u.role), who.name)
        except FacilityError as err:
            raise HTTPException(409, str(err)) from None
        return {"name": u.name, "role": u.role, "token": token}

    @app.delete("/users/{name}")
    async def remove_user(name: str, who: Admin) -> dict[str, Any]:
        try:
            gone = users.remove(name, who.name)
        except FacilityError as err:
            raise HTTPException(409 if users.get(name) else 404, str(err)) from None
        return {"removed": gone.name, "role": gone.role.label}

    from agent.web import install as install_console  # the console: pages on the same port

    install_console(app, ctx)
    return app


def _version() -> str:
    try:
        return importlib.metadata.version("facility-agent")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


def state_file(db: str | Path) -> Path:
    return Path(f"{db}.api.json")


async def serve(
    ctx: AgentContext,
    db: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    stop: asyncio.Event | None = None,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
    ingestor: Ingestor | None = None,
    on_started: Callable[[str, FastAPI], None] | None = None,
) -> None:
    """Serve the API until ``stop`` is set; advertise it in ``<db>.api.json`` meanwhile.

    ``allowed_hosts``: the Host header values accepted (DNS-rebinding guard); ``ingestor``:
    the process's pollers, for ``/metrics``; ``on_started(url, app)`` is called once it listens."""
    app = make_app(ctx, allowed_hosts, ingestor=ingestor)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
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
    if on_started is not None:
        on_started(f"http://{bound[0]}:{bound[1]}", app)
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
