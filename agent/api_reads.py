"""Read-only routes of the site API, for the CLI's read commands while a site runs and for
monitoring. The site process owns the DuckDB file; these let ``quality``, ``whatif``,
``record`` and ``decide --dry-run`` give, through the API, the output they give on the file.

=========================================  ========  ======================================
endpoint                                   role      query
=========================================  ========  ======================================
``GET /metrics``                           viewer    Prometheus text (:mod:`agent.metrics`)
``GET /quality/report``                    viewer    window=15m, at=ISO|latest, equipment=…
``GET /latest``                            viewer    newest good value per point
``GET /readings``                          viewer    seconds=N: good readings, Parquet
``POST /decide/dry-run``                   viewer    what a cycle would decide; nothing recorded
``GET /faults``                            viewer    open=true, since=ISO, limit=N: faults
                                                     raised and cleared (:mod:`agent.faults`)
=========================================  ========  ======================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Response

from agent import metrics, reads
from agent.auth import require
from agent.context import AgentContext
from agent.users import Principal, Role
from connectors.errors import FacilityError

if TYPE_CHECKING:
    from connectors.ingest import Ingestor

Viewer = Annotated[Principal, require(Role.VIEWER)]


def install(
    app: FastAPI,
    ctx: AgentContext,
    ingestor: Callable[[], Ingestor | None] = lambda: None,
    version: str = "",
) -> None:
    """Add the routes of the module docstring to ``app``."""
    collector = metrics.SiteCollector(ctx, ingestor, version)

    @app.get("/metrics")
    async def prometheus(who: Viewer) -> Response:
        return Response(metrics.render(collector), media_type=metrics.CONTENT_TYPE)

    @app.get("/quality/report")
    async def quality_report(
        who: Viewer,
        window: str = "15m",
        at: str | None = None,
        equipment: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        try:
            return reads.quality_report(ctx.store, ctx.site, window, at, equipment)
        except FacilityError as err:
            raise HTTPException(422, str(err)) from None

    @app.get("/latest")
    async def latest(who: Viewer) -> dict[str, float]:
        return reads.latest_values(ctx.store)

    @app.get("/calibration")
    async def calibration(who: Viewer) -> dict[str, Any]:
        """The model parameters in use (``whatif``'s header while the site runs)."""
        from tools.calibration import in_use

        u = in_use(ctx.store)
        return {
            "params": u.params.to_dict(),
            "fitted_at": u.fitted_at.isoformat() if u.fitted_at else None,
            "window": [t.isoformat() for t in u.window] if u.window else None,
            "metrics": u.metrics,
        }

    @app.get("/readings")
    async def readings(
        who: Viewer, seconds: Annotated[float, Query(gt=0, le=31 * 86400)]
    ) -> Response:
        try:
            df = reads.good_readings(ctx.store, seconds)
        except FacilityError as err:
            raise HTTPException(422, str(err)) from None
        return Response(reads.to_parquet(df), media_type="application/vnd.apache.parquet")

    @app.get("/faults")
    async def fault_rows(
        who: Viewer,
        open: bool = False,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> list[dict[str, Any]]:
        from agent.faults import fault_list

        try:
            t = datetime.fromisoformat(since) if since else None
        except ValueError:
            raise HTTPException(422, f"since: {since!r} is not an ISO time") from None
        if t is not None and t.tzinfo is not None:  # the store keeps naive UTC
            t = t.astimezone(UTC).replace(tzinfo=None)
        return fault_list(ctx.store, t, open, limit)

    @app.post("/decide/dry-run")
    async def dry_run(who: Viewer) -> list[dict[str, Any]]:
        from agent.dryrun import as_json, dry_run

        return as_json(await dry_run(ctx))
