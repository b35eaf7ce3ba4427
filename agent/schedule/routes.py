"""HTTP routes of the schedule: the daily reports and the jobs' next starts.

``GET /reports`` lists the reports (newest first), ``GET /reports/{name}`` serves one
page (self-contained HTML), ``POST /reports?date=YYYY-MM-DD`` (operator) makes one now,
``GET /schedule`` gives each job's next start and last run.
Viewer role and above. :func:`router` is included by :func:`agent.api.make_app`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from agent.auth import require
from agent.context import AgentContext
from agent.schedule.record import JobLog
from agent.users import Principal, Role
from connectors.schedule_config import site_folder

Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]

REPORT_NAME = re.compile(r"^report-[A-Za-z0-9_-]+-(\d{4}-\d{2}-\d{2})\.html$")


def list_reports(folder: Path) -> list[dict[str, Any]]:
    out = []
    if folder.is_dir():
        for f in folder.iterdir():
            m = REPORT_NAME.match(f.name)
            if m and f.is_file():
                st = f.stat()
                out.append(
                    {
                        "name": f.name,
                        "date": m.group(1),
                        "bytes": st.st_size,
                        "modified": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                        "url": f"/reports/{f.name}",
                    }
                )
    return sorted(out, key=lambda r: (r["date"], r["name"]), reverse=True)


def router(ctx: AgentContext) -> APIRouter:
    r = APIRouter()

    def folder() -> Path:
        return site_folder(ctx.site.schedule.report.dir, ctx.store.path)

    @r.get("/reports")
    async def reports(who: Viewer) -> list[dict[str, Any]]:
        return list_reports(folder())

    @r.get("/reports/{name}", response_class=HTMLResponse)
    async def report(name: str, who: Viewer) -> HTMLResponse:
        if not REPORT_NAME.match(name):
            raise HTTPException(404, f"no report {name!r}")
        f = folder() / name
        if not f.is_file():
            raise HTTPException(404, f"no report {name!r}")
        return HTMLResponse(f.read_text(encoding="utf-8"))

    @r.post("/reports")
    async def make(who: Operator, date: str) -> dict[str, Any]:
        """Make the report of a site-local day now (``?date=YYYY-MM-DD``)."""
        import asyncio

        from agent.schedule.report import make_report

        try:
            day = datetime.strptime(date, "%Y-%m-%d").date()
        except ValueError:
            raise HTTPException(422, f"date {date!r}: expected YYYY-MM-DD") from None
        path = await asyncio.to_thread(make_report, ctx.store, ctx.site, day, folder())
        return {"name": path.name, "file": str(path), "url": f"/reports/{path.name}"}

    @r.get("/schedule")
    async def schedule(who: Viewer) -> dict[str, Any]:
        from agent.schedule.service import live_scheduler, planned

        s = live_scheduler(ctx)
        jobs = s.next_runs() if s is not None else planned(ctx.site.schedule)
        return {"running": s is not None, "jobs": jobs, "last": JobLog(ctx.audit).last()}

    return r
