"""The scheduler's rules with APScheduler's real scheduler: no overlap, misfire, every run a row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from agent.audit import Audit
from agent.schedule.record import JobLog
from agent.schedule.scheduler import JobScheduler, JobSpec
from connectors.clock import SystemClock
from connectors.store import Store

TIMEOUT = 60.0  # generous: the machine is shared


async def _until(pred: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + TIMEOUT
    while not pred():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _sched(tmp_path: Path, *specs: JobSpec) -> tuple[JobScheduler, Store]:
    store = Store(tmp_path / "s.duckdb")
    return JobScheduler(list(specs), JobLog(Audit(store)), SystemClock(), UTC), store


def _statuses(s: JobScheduler, job: str) -> list[str]:
    return [r.status for r in s.runs if r.job == job]


def test_a_job_never_overlaps_itself_and_the_skipped_start_is_recorded(tmp_path: Path) -> None:
    calls = 0
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        entered.set()
        await release.wait()
        return {"calls": calls}

    async def main() -> tuple[JobScheduler, Store]:
        s, store = _sched(tmp_path, JobSpec("slow", IntervalTrigger(seconds=1), slow, grace_s=30))
        s.start()
        try:
            await asyncio.wait_for(entered.wait(), TIMEOUT)
            await _until(lambda: "skipped" in _statuses(s, "slow"), "a skipped start")
            assert calls == 1  # the start that came while it worked did not run
            release.set()
            await _until(lambda: "done" in _statuses(s, "slow"), "the run to finish")
        finally:
            await s.stop()
        return s, store

    _, store = asyncio.run(main())
    rows = store.query(
        "SELECT trigger, status, finished >= started AS ordered FROM runs_latest ORDER BY started"
    )
    assert set(rows["trigger"]) == {"job:slow"}
    assert {"skipped", "done"} <= set(rows["status"]) and rows["ordered"].all()
    done = store.query("SELECT duration_s, result FROM job_runs WHERE status = 'done'")
    assert len(done) >= 1 and done["duration_s"][0] >= 0 and '"calls": 1' in done["result"][0]


def test_missed_starts_within_the_grace_run_once(tmp_path: Path) -> None:
    calls = 0

    async def job() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {}

    async def main() -> JobScheduler:
        # due every 30 s since 2 minutes ago: four starts missed, all within the grace
        first = datetime.now(UTC) - timedelta(minutes=2)
        spec = JobSpec("j", IntervalTrigger(seconds=30), job, grace_s=600, first_run=first)
        s, _ = _sched(tmp_path, spec)
        s.start()
        try:
            await _until(lambda: "done" in _statuses(s, "j"), "the late run")
            nxt = s.sched.get_job("j").next_run_time
        finally:
            await s.stop()
        assert nxt > datetime.now(UTC)  # back on its regular times
        return s

    s = asyncio.run(main())
    assert calls == 1 and _statuses(s, "j") == ["done"]  # coalesced: once, not four times


def test_a_start_later_than_the_grace_is_recorded_missed_and_not_run(tmp_path: Path) -> None:
    calls = 0

    async def job() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {}

    async def main() -> tuple[JobScheduler, Store]:
        first = datetime.now(UTC) - timedelta(seconds=30)
        spec = JobSpec("late", IntervalTrigger(hours=1), job, grace_s=5, first_run=first)
        s, store = _sched(tmp_path, spec)
        s.start()
        try:
            await _until(lambda: "missed" in _statuses(s, "late"), "the missed start")
        finally:
            await s.stop()
        return s, store

    _, store = asyncio.run(main())
    assert calls == 0
    row = store.query("SELECT status, result FROM job_runs WHERE job = 'late'").iloc[0]
    assert row["status"] == "missed" and "grace of 5 s" in row["result"]


def test_a_failing_job_is_a_failed_run_and_the_scheduler_goes_on(tmp_path: Path) -> None:
    async def broken() -> dict[str, Any]:
        raise RuntimeError("disk full")

    async def main() -> JobScheduler:
        s, _ = _sched(tmp_path, JobSpec("b", IntervalTrigger(seconds=1), broken, grace_s=30))
        s.start()
        try:
            await _until(lambda: _statuses(s, "b").count("failed") >= 2, "two failed runs")
        finally:
            await s.stop()
        return s

    s = asyncio.run(main())
    assert s.runs[0].result["error"] == "RuntimeError: disk full"
