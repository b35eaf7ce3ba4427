"""The console's routes: pages, their live fragments, and the buttons' POSTs.

=====================================  ========  ==========================================
route                                  role      what
=====================================  ========  ==========================================
``GET /login``, ``POST /login``        —         sign in with a token (form field ``token``)
``POST /logout``                       viewer    end the session
``GET /``                              viewer    overview (``/ui/overview`` refreshes it)
``GET /ui/trends``                     viewer    trends (``/ui/trends/data`` JSON for uPlot)
``GET /ui/approvals``                  viewer    approvals (``/ui/approvals/list`` refreshes)
``POST /ui/approvals/{id}/approve``    operator  answer; returns the card with the result
``POST /ui/approvals/{id}/reject``     operator
``GET /ui/decisions``                  viewer    decisions and audit, filtered
``GET /ui/controls``                   viewer    e-stop, autonomy ceiling
``POST /ui/estop``                     operator  emergency stop
``POST /ui/estop/clear``               admin     clear e-stop and auto-lock
``POST /ui/autonomy``                  admin     form field ``level`` 0..3
``GET /ui/chat``                       operator  the chat panel (it posts to ``/chat``)
=====================================  ========  ==========================================

A page asked for without a session goes to ``/login``. POSTs from the page carry the
session's CSRF token in ``X-CSRF-Token`` (set on ``<body hx-headers>``); the role
checks are the API's own (:func:`agent.auth.require`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from agent import runtime
from agent.auth import bearer, require
from agent.context import AgentContext
from agent.users import Principal, Role
from agent.web import data, present
from agent.web.session import COOKIE, Sessions, current, session_source
from tools.gate import LEVEL_NAMES

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["fmt"] = present.fmt
templates.env.globals["LEVELS"] = LEVEL_NAMES


def _clock(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


templates.env.filters["clock"] = _clock


class SignIn(Exception):
    """A page was asked for without a (valid) session: go to the sign-in page."""


def page(role: Role = Role.VIEWER) -> Any:
    """Like :func:`agent.auth.require`, but a missing or ended session sends the browser to
    ``/login`` instead of a JSON 401."""
    dep = require(role)

    async def who(request: Request) -> Principal:
        try:
            principal: Principal = await dep.dependency(request)
        except HTTPException as err:
            if err.status_code == 401:
                raise SignIn from None
            raise
        return principal

    return Depends(who)


Viewer = Annotated[Principal, page(Role.VIEWER)]
OperatorPage = Annotated[Principal, page(Role.OPERATOR)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]


async def form(request: Request) -> dict[str, str]:
    """A url-encoded form body (no multipart): first value per field."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def install(app: FastAPI, ctx: AgentContext) -> None:
    """Add the console to the API app (its lock ``app.state.lock`` serialises answers)."""
    app.state.sessions = Sessions()
    app.state.auth.sources = (bearer, session_source)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    quality = data.QualityCache()
    lock: asyncio.Lock = getattr(app.state, "lock", None) or asyncio.Lock()

    def render(
        request: Request, name: str, who: Principal | None, status: int = 200, **kw: Any
    ) -> HTMLResponse:
        s = current(request)
        context = {
            "who": who,
            "csrf": s.csrf if s else "",
            "site": ctx.site.name,
            "may_operate": who is not None and who.may(Role.OPERATOR),
            "may_admin": who is not None and who.may(Role.ADMIN),
            **kw,
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    @app.exception_handler(SignIn)
    async def to_login(request: Request, exc: SignIn) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    # ---- sign in / out ------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, error="")

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise HTTPException(403, f"sign-in from another site ({origin}) refused")
        token = (await form(request)).get("token", "").strip()
        opened = app.state.sessions.open(token, app.state.auth.users) if token else None
        if opened is None:
            return render(
                request,
                "login.html",
                None,
                401,
                error="That token is not valid (unknown or removed user).",
            )
        s, _ = opened
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, s.sid, httponly=True, samesite="strict", path="/")
        return resp

    @app.post("/logout")
    async def logout(request: Request, who: Viewer) -> Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            app.state.sessions.close(sid)
        resp = Response(status_code=204, headers={"HX-Redirect": "/login"})
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    # ---- overview -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def overview_page(request: Request, who: Viewer) -> HTMLResponse:
        return render(
            request, "overview.html", who, tab="overview", o=data.overview(ctx, quality.get(ctx))
        )

    @app.get("/ui/overview", response_class=HTMLResponse)
    async def overview_fragment(request: Request, who: Viewer) -> HTMLResponse:
        return render(request, "_overview.html", who, o=data.overview(ctx, quality.get(ctx)))

    # ---- trends -------------------------------------------------------------------------------
    @app.get("/ui/trends", response_class=HTMLResponse)
    async def trends_page(
        request: Request,
        who: Viewer,
        tags: str = "plant.it_power,plant.cooling_power",
        span: str = "1h",
    ) -> HTMLResponse:
        chosen = [t.strip() for t in tags.split(",") if t.strip()]
        return render(
            request, "trends.html", who, tab="trends", tags=chosen, span=span,
            spans=list(data.SPANS), all_tags=sorted(ctx.site.points_by_tag),
        )  # fmt: skip

    @app.get("/ui/trends/data")
    async def trends_data(who: Viewer, tags: str = "", span: str = "1h") -> JSONResponse:
        chosen = [t.strip() for t in tags.split(",") if t.strip()][:8]
        return JSONResponse(data.trend(ctx, chosen, span))

    # ---- approvals ----------------------------------------------------------------------------
    @app.get("/ui/approvals", response_class=HTMLResponse)
    async def approvals_page(request: Request, who: Viewer) -> HTMLResponse:
        return render(request, "approvals.html", who, tab="approvals", a=data.approvals(ctx))

    @app.get("/ui/approvals/list", response_class=HTMLResponse)
    async def approvals_list(request: Request, who: Viewer) -> HTMLResponse:
        return render(request, "_approvals.html", who, a=data.approvals(ctx))

    async def answer(
        request: Request, approval_id: str, state: str, who: Principal
    ) -> HTMLResponse:
        why = (await form(request)).get("why", "")[:2000]
        message = ""
        async with lock:
            try:
                await runtime.answer_approval(ctx, approval_id, state, who.name, why)  # type: ignore[arg-type]
            except KeyError:
                raise HTTPException(404, f"unknown approval {approval_id!r}") from None
            except ValueError as err:  # answered already, or expired: say so, show its state
                message = str(err)
        card = data.approval_card(ctx, approval_id, message)
        return render(request, "_card.html", who, c=card)

    @app.post("/ui/approvals/{approval_id}/approve", response_class=HTMLResponse)
    async def approve(request: Request, approval_id: str, who: Operator) -> HTMLResponse:
        return await answer(request, approval_id, "approved", who)

    @app.post("/ui/approvals/{approval_id}/reject", response_class=HTMLResponse)
    async def reject(request: Request, approval_id: str, who: Operator) -> HTMLResponse:
        return await answer(request, approval_id, "rejected", who)

    # ---- decisions and audit ------------------------------------------------------------------
    @app.get("/ui/decisions", response_class=HTMLResponse)
    async def decisions_page(
        request: Request,
        who: Viewer,
        equipment: str = "",
        policy: str = "",
        outcome: str = "",
        hours: float = 24.0,
    ) -> HTMLResponse:
        hours = min(max(hours, 0.01), 24.0 * 366)
        since = ctx.clock.now() - timedelta(hours=hours)
        rows = data.decisions(
            ctx, equipment=equipment or None, policy=policy or None, outcome=outcome or None,
            since=since, limit=500,
        )  # fmt: skip
        audit = ctx.audit.table("approvals", since, 200).to_dict("records")
        autonomy = ctx.audit.table("autonomy", since, 200).to_dict("records")
        return render(
            request, "decisions.html", who, tab="decisions", rows=rows,
            f={"equipment": equipment, "policy": policy, "outcome": outcome, "hours": hours},
            choices=data.filter_choices(ctx), approvals_audit=audit, autonomy_audit=autonomy,
        )  # fmt: skip

    # ---- controls -----------------------------------------------------------------------------
    def controls(request: Request, who: Principal, message: str = "") -> HTMLResponse:
        return render(request, "_controls.html", who, c=data.control(ctx), message=message)

    @app.get("/ui/controls", response_class=HTMLResponse)
    async def controls_page(request: Request, who: Viewer) -> HTMLResponse:
        return render(
            request, "controls.html", who, tab="controls", c=data.control(ctx), message=""
        )

    @app.post("/ui/estop", response_class=HTMLResponse)
    async def estop(request: Request, who: Operator) -> HTMLResponse:
        why = (await form(request)).get("why", "")[:2000] or "e-stop from the console"
        async with lock:
            res = await runtime.emergency_stop(ctx, who.name, why)
        restored = ", ".join(
            f"{r.tag} {present.fmt(r.agent_value)} → {present.fmt(r.restored)} "
            f"(read back {present.fmt(r.read_back)})"
            for r in res.restored
        )
        refused = ", ".join(f"{r.tag}: {r.error}" for r in res.not_restored)
        msg = (
            f"Emergency stop engaged by {who.name}. Approvals cancelled: {len(res.cancelled)}. "
            f"Set points handed back: {restored or 'none held'}."
            + (f" NOT restored: {refused}." if refused else "")
        )
        return controls(request, who, msg)

    @app.post("/ui/estop/clear", response_class=HTMLResponse)
    async def estop_clear(request: Request, who: Admin) -> HTMLResponse:
        runtime.clear_estop(ctx, who.name, "cleared from the console")
        return controls(request, who, f"Cleared by {who.name}.")

    @app.post("/ui/autonomy", response_class=HTMLResponse)
    async def autonomy(request: Request, who: Admin) -> HTMLResponse:
        raw = (await form(request)).get("level", "")
        if raw not in ("0", "1", "2", "3"):
            raise HTTPException(422, "level: 0, 1, 2 or 3")
        runtime.set_autonomy(ctx, int(raw), who.name, "set from the console")
        return controls(request, who, f"Autonomy ceiling set to {raw} by {who.name}.")

    # ---- chat ---------------------------------------------------------------------------------
    @app.get("/ui/chat", response_class=HTMLResponse)
    async def chat_page(request: Request, who: OperatorPage) -> HTMLResponse:
        return render(request, "chat.html", who, tab="chat")

    @app.get("/ui/now")
    async def now(who: Viewer) -> dict[str, str]:
        return {"utc": datetime.now(UTC).isoformat()}
