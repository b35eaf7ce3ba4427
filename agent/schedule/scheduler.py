"""APScheduler (3.x, asyncio) running a site's jobs, each run recorded.

The rules, the same for every job:

* **no overlap** — one instance of a job at a time (``max_instances=1``): a start that
  comes while the previous run still works is skipped and recorded ``skipped``;
* **misfire** — a start that comes late (the loop was busy, the machine asleep) by
  less than the job's grace still runs, once: several missed starts of one job are
  coalesced into one run (``coalesce=True``); later than the grace, it is recorded
  ``missed`` and the job waits for its next regular time;
* every run is a row in ``runs`` and ``job_runs`` (:mod:`agent.schedule.record`) with
  its duration and result; a job's exception is its ``failed`` result, never the
  scheduler's end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from agent.schedule.record import JobLog, JobRun
from connectors.clock import Clock

log = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class JobSpec:
    """One job: its name, when it runs (an APScheduler trigger), what it does, its grace."""

    name: str
    trigger: BaseTrigger
    fn: JobFn
    grace_s: float
    what: str = ""
    first_run: datetime | None = None  # an aware datetime: the first start (None: the trigger's)


class JobScheduler:
    """The jobs of one site process on the running asyncio loop."""

    def __init__(self, specs: list[JobSpec], joblog: JobLog, clock: Clock, tz: tzinfo) -> None:
        self.specs = {s.name: s for s in specs}
        self.joblog = joblog
        self.clock = clock
        self.tz = tz
        self.sched = AsyncIOScheduler(timezone=tz)
        self.running: set[asyncio.Task[Any]] = set()
        self.runs: list[JobRun] = []  # this process's runs, newest last (also in the store)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for s in self.specs.values():
            kw: dict[str, Any] = {}
            if s.first_run is not None:
                kw["next_run_time"] = s.first_run
            self.sched.add_job(
                self._runner(s),
                s.trigger,
                id=s.name,
                name=s.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, round(s.grace_s)),
                **kw,
            )
        self.sched.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.sched.start()

    async def stop(self, timeout_s: float = 60.0) -> None:
        """Stop starting jobs; wait for the running ones (cancelled after ``timeout_s``)."""
        if self.sched.running:
            self.sched.shutdown(wait=False)
        if self.running:
            _, pending = await asyncio.wait(set(self.running), timeout=timeout_s)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    # ---- runs ------------------------------------------------------------------------------
    def _runner(self, spec: JobSpec) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run_now(spec.name)

        run.__name__ = f"job_{spec.name}"
        return run

    async def run_now(self, name: str) -> JobRun:
        """Run a job at once (the scheduler's call, or a catch-up), recording it."""
        spec = self.specs[name]
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        started = self.clock.now()
        t0 = time.perf_counter()
        run_id = self.joblog.start(name, started)
        status = "failed"
        result: dict[str, Any] = {"error": "interrupted"}
        try:
            result = dict(await spec.fn())
            status = "done"
        except asyncio.CancelledError:
            result = {"error": "cancelled at shutdown"}
            raise
        except Exception as err:  # a job's failure is its result; the scheduler goes on
            log.exception("job %s failed", name)
            result = {"error": f"{type(err).__name__}: {err}"}
        finally:
            if task is not None:
                self.running.discard(task)
            result["elapsed_s"] = round(time.perf_counter() - t0, 3)
            rec = self.joblog.finish(run_id, name, started, self.clock.now(), status, result)
            self.runs.append(rec)
        return rec

    def _on_event(self, ev: JobEvent) -> None:
        name = ev.job_id
        if name not in self.specs:
            return
        if ev.code == EVENT_JOB_MISSED:
            status = "missed"
            why = {
                "scheduled": str(getattr(ev, "scheduled_run_time", "")),
                "rule": f"later than its grace of {self.specs[name].grace_s:g} s: skipped, "
                "the job waits for its next time",
            }
        else:
            status = "skipped"
            why = {"rule": "the previous run still works: jobs never overlap"}
        log.warning("job %s: %s (%s)", name, status, why["rule"])
        self.runs.append(self.joblog.event(name, self.clock.now(), status, why))

    # ---- what is planned -------------------------------------------------------------------
    def next_runs(self) -> list[dict[str, Any]]:
        """Per job: name, what, next start (site time, ISO), grace."""
        out = []
        for s in self.specs.values():
            job = self.sched.get_job(s.name) if self.sched.running else None
            nxt = job.next_run_time if job is not None else None
            out.append(
                {
                    "job": s.name,
                    "what": s.what,
                    "trigger": str(s.trigger),
                    "next_run": nxt.isoformat() if nxt is not None else None,
                    "grace_s": s.grace_s,
                }
            )
        return out
