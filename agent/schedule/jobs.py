"""The jobs of ``run``, from the site file's ``schedule:`` block.

=============  =======================================================  ======================
job            what it does                                             default
=============  =======================================================  ======================
cycle          a decision cycle over protection and alarm policies      every 10 s
optimisation   a decision cycle over efficiency policies (proposals     every 15 min
               go through the autonomy gate like any other)
fdd            a decision cycle over fault-detection policies           hourly
report         the daily report of the previous site-local day          06:00 site time
retention      raw readings → Parquet lake (verified) → 1-minute        02:30 site time
               roll-ups, raw deleted; checkpoints of finished threads
               pruned
=============  =======================================================  ======================

Policy timers (hold, hysteresis, cool-down) advance at every cycle for every policy;
a policy fires only in the job of its kind. A sweep that is disabled gives its
policies back to the cycle. The decision jobs and retention share one lock, so two
decision runs never interleave on the one context.

Catch-up rule at start: when today's report time has passed and the report of the day
before is not on disk, the report runs once at start (a process that was down at 06:00
still delivers it). Retention needs no catch-up: the next pass moves everything older
than the cut-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agent import runtime
from agent.context import AgentContext
from agent.schedule.report import make_report, report_path
from agent.schedule.scheduler import JobFn, JobSpec
from connectors.lake import retain
from connectors.schedule_config import DailyJob, IntervalJob, ScheduleConfig, site_folder

log = logging.getLogger(__name__)

ALL_KINDS = frozenset({"protection", "alarm", "efficiency", "fault"})


@dataclass
class SiteJobs:
    """What the jobs act on: the agent's context, its database file, the schedule."""

    ctx: AgentContext
    db: str | Path
    config: ScheduleConfig
    interval_s: float | None = None  # `run --interval N`: overrides the cycle's every_s
    on_result: Callable[[runtime.CycleResult], None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def reports_dir(self) -> Path:
        return site_folder(self.config.report.dir, self.db)

    @property
    def lake_dir(self) -> Path:
        return site_folder(self.config.retention.lake, self.db)

    def cycle_kinds(self) -> frozenset[str]:
        kinds = set(ALL_KINDS)
        if self.config.optimisation.enabled:
            kinds.discard("efficiency")
        if self.config.fdd.enabled:
            kinds.discard("fault")
        return frozenset(kinds)

    # ---- the jobs --------------------------------------------------------------------------
    async def _decide(self, kinds: frozenset[str]) -> dict[str, Any]:
        async with self.lock:
            self.ctx.engine.kinds = kinds
            try:
                res = await runtime.scheduled_cycle(
                    self.ctx,
                    self.on_result,
                    max_threads=self.config.retention.checkpoint_threads,
                )
            finally:
                self.ctx.engine.kinds = None
        return {
            "decision_run": res.run_id,
            "kinds": sorted(kinds),
            "decisions": len(res.decisions),
            "outcomes": sorted({d.outcome for d in res.decisions}),
        }

    async def cycle(self) -> dict[str, Any]:
        return await self._decide(self.cycle_kinds())

    async def optimisation(self) -> dict[str, Any]:
        return await self._decide(frozenset({"efficiency"}))

    async def fdd(self) -> dict[str, Any]:
        return await self._decide(frozenset({"fault"}))

    def report_day(self, now_utc: datetime) -> datetime:
        """The site-local day a report made at ``now_utc`` covers: the day before (or today,
        with ``report.day: today``)."""
        local = now_utc.replace(tzinfo=_UTC).astimezone(self.config.tz)
        back = 1 if self.config.report.day == "yesterday" else 0
        return datetime.combine(local.date() - timedelta(days=back), datetime.min.time())

    async def report(self) -> dict[str, Any]:
        day = self.report_day(self.ctx.clock.now()).date()
        path = await asyncio.to_thread(
            make_report, self.ctx.store, self.ctx.site, day, self.reports_dir
        )
        return {"date": day.isoformat(), "file": str(path), "bytes": path.stat().st_size}

    async def retention(self) -> dict[str, Any]:
        r = self.config.retention
        now = self.ctx.clock.now()
        res = await asyncio.to_thread(
            retain,
            self.ctx.store,
            self.lake_dir,
            self.ctx.site.name,
            now,
            timedelta(days=r.raw_days),
        )
        out: dict[str, Any] = res.as_json()
        out["checkpoints"] = await self.prune_checkpoints(r.checkpoint_threads)
        try:
            self.ctx.store.execute("CHECKPOINT")  # the WAL into the file, freed blocks reused
        except Exception as err:  # another transaction open: the next pass checkpoints
            out["checkpoint_error"] = str(err)
        return out

    async def prune_checkpoints(self, keep_threads: int) -> dict[str, Any]:
        """Delete finished decision threads beyond the newest ``keep_threads`` and compact."""
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        from agent.checkpoint import prune

        saver = self.ctx._saver
        if saver is None:
            return {"pruned": 0}
        async with self.lock:  # no decision run writes a checkpoint meanwhile
            keep = {str(p.get("run_id")) for p in self.ctx.audit.pending_approvals()}
            n = await prune(saver, keep, keep_threads)
            if isinstance(saver, AsyncSqliteSaver):
                await saver.conn.commit()
                await saver.conn.execute("VACUUM")
        return {"pruned": n, "kept_max": keep_threads}

    # ---- as scheduler jobs -----------------------------------------------------------------
    def specs(self, now_utc: datetime | None = None) -> list[JobSpec]:
        fns: dict[str, JobFn] = {
            "cycle": self.cycle,
            "optimisation": self.optimisation,
            "fdd": self.fdd,
            "report": self.report,
            "retention": self.retention,
        }
        return [
            JobSpec(p.name, p.trigger, fns[p.name], p.grace_s, p.what, p.first_run)
            for p in plan(self.config, self.interval_s, now_utc)
        ]

    def report_due(self, now_utc: datetime) -> bool:
        """The catch-up rule: today's report time passed and yesterday's report is missing."""
        if not self.config.report.enabled or self.config.report.every_s is not None:
            return False
        local = now_utc.replace(tzinfo=_UTC).astimezone(self.config.tz)
        if local.time() < self.config.report.time:
            return False
        day = self.report_day(now_utc).date()
        return not report_path(self.reports_dir, self.ctx.site.name, day).exists()


@dataclass(frozen=True)
class Planned:
    """A job as the schedule plans it (no function: what ``schedule list`` shows)."""

    name: str
    trigger: BaseTrigger
    grace_s: float
    what: str
    first_run: datetime | None

    def next_run(self, now: datetime) -> datetime | None:
        """The next start as planned from ``now``; None for an interval job not yet started
        (it starts with ``run``, then every N seconds)."""
        if self.first_run is not None:
            return self.first_run
        if isinstance(self.trigger, IntervalTrigger):
            return None
        nxt: datetime | None = self.trigger.get_next_fire_time(None, now)
        return nxt


def plan(
    c: ScheduleConfig, interval_s: float | None = None, now_utc: datetime | None = None
) -> list[Planned]:
    """The enabled jobs of a schedule with their triggers (``interval_s``: ``run --interval``)."""
    tz = c.tz
    out: list[Planned] = []

    def every(name: str, job: IntervalJob | DailyJob, what: str, secs: float) -> None:
        grace = job.misfire_grace_s or min(c.misfire_grace_s, secs)
        trig = IntervalTrigger(seconds=secs, timezone=tz)
        out.append(Planned(name, trig, grace, what, _soon(now_utc)))

    def daily(name: str, job: DailyJob, what: str) -> None:
        if job.every_s is not None:
            every(name, job, what, job.every_s)
            return
        t = job.time
        trig = CronTrigger(hour=t.hour, minute=t.minute, timezone=tz)
        out.append(Planned(name, trig, job.misfire_grace_s or c.misfire_grace_s, what, None))

    if c.cycle.enabled:
        cyc = interval_s if interval_s is not None else c.cycle.every_s
        every("cycle", c.cycle, "decision cycle (protection, alarm policies)", cyc)
    if c.optimisation.enabled:
        what = "optimisation sweep (efficiency policies)"
        every("optimisation", c.optimisation, what, c.optimisation.every_s)
    if c.fdd.enabled:
        every("fdd", c.fdd, "fault-detection sweep (fault policies)", c.fdd.every_s)
    if c.report.enabled:
        daily("report", c.report, f"report of {c.report.day} (site time)")
    if c.retention.enabled:
        what = f"raw older than {c.retention.raw_days:g} d → Parquet lake → 1-min roll-ups"
        daily("retention", c.retention, what)
    return out


def _soon(now_utc: datetime | None) -> datetime | None:
    """Interval jobs start right away (then every N s), not one period after the start."""
    if now_utc is None:
        return None
    return now_utc.replace(tzinfo=_UTC) + timedelta(seconds=1)
