"""``run``'s scheduled life: start-up reconciliation, the jobs, the heartbeat, a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import runtime
from agent.context import AgentContext
from agent.schedule.jobs import SiteJobs, plan
from agent.schedule.record import JobLog
from agent.schedule.scheduler import JobScheduler
from connectors.schedule_config import ScheduleConfig

log = logging.getLogger(__name__)

_live: dict[int, JobScheduler] = {}  # id(ctx) → the scheduler running its jobs


def live_scheduler(ctx: AgentContext) -> JobScheduler | None:
    """The scheduler running ``ctx``'s jobs in this process (None: none runs)."""
    return _live.get(id(ctx))


def planned(config: ScheduleConfig, interval_s: float | None = None) -> list[dict[str, Any]]:
    """Next start of each job from the site file alone (no process running)."""
    now = datetime.now(UTC)
    out = []
    for p in plan(config, interval_s):
        nxt = p.next_run(now)
        out.append(
            {
                "job": p.name,
                "what": p.what,
                "trigger": str(p.trigger),
                "next_run": nxt.astimezone(config.tz).isoformat() if nxt is not None else None,
                "grace_s": p.grace_s,
            }
        )
    return out


async def run_scheduled(
    ctx: AgentContext,
    db: str | Path,
    stop: asyncio.Event,
    *,
    interval_s: float | None = None,
    on_result: Callable[[runtime.CycleResult], None] | None = None,
    heartbeat_s: float = 5.0,
    started: Callable[[JobScheduler], None] | None = None,
) -> None:
    """Run the site's jobs (and the heartbeat) until ``stop`` is set; running jobs finish."""
    await runtime.startup(ctx)
    jobs = SiteJobs(ctx, db, ctx.site.schedule, interval_s, on_result)
    now = ctx.clock.now()
    sched = JobScheduler(jobs.specs(now), JobLog(ctx.audit), ctx.clock, ctx.site.schedule.tz)
    sched.start()
    _live[id(ctx)] = sched
    catch_up = None
    if jobs.report_due(now):
        log.info("report of the day before is missing: made now (catch-up rule)")
        catch_up = asyncio.create_task(sched.run_now("report"))
    if started is not None:
        started(sched)
    beat = 0
    try:
        while not stop.is_set():
            beat = await runtime.heartbeat_once(ctx, beat)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=heartbeat_s)
    finally:
        _live.pop(id(ctx), None)
        if catch_up is not None:
            await asyncio.wait({catch_up}, timeout=60)
        await sched.stop()
