"""Every job run is a row: ``runs`` (as every decision run) plus its result in ``job_runs``.

``runs`` gets the usual pair of rows (``trigger`` = ``job:<name>``, status ``done`` /
``failed`` / ``missed`` / ``skipped``), so the audit shows jobs beside decision cycles;
``job_runs(run_id, job, started, finished, duration_s, status, result JSON)`` keeps what the
job did (files written, rows moved, the decision run it started, the error).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.audit import Audit

JOB_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS job_runs (
    run_id VARCHAR NOT NULL, job VARCHAR NOT NULL, started TIMESTAMP NOT NULL,
    finished TIMESTAMP NOT NULL, duration_s DOUBLE NOT NULL, status VARCHAR NOT NULL,
    result JSON);
"""


@dataclass(frozen=True)
class JobRun:
    run_id: str
    job: str
    started: datetime
    finished: datetime
    status: str
    result: dict[str, Any]

    @property
    def duration_s(self) -> float:
        return (self.finished - self.started).total_seconds()


def new_run_id(job: str, now: datetime) -> str:
    return f"job-{job}-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


class JobLog:
    """Appends job runs to the store of an :class:`~agent.audit.Audit`."""

    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        audit.store.ensure_schema(JOB_RUNS_DDL)

    def start(self, job: str, now: datetime) -> str:
        run_id = new_run_id(job, now)
        self.audit.start_run(run_id, f"job:{job}", now)
        return run_id

    def finish(
        self,
        run_id: str,
        job: str,
        started: datetime,
        now: datetime,
        status: str,
        result: dict[str, Any],
    ) -> JobRun:
        self.audit.finish_run(run_id, now, status)
        self.audit.store.execute(
            "INSERT INTO job_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                job,
                started,
                now,
                (now - started).total_seconds(),
                status,
                json.dumps(result, default=str),
            ],
        )
        return JobRun(run_id, job, started, now, status, result)

    def event(self, job: str, now: datetime, status: str, result: dict[str, Any]) -> JobRun:
        """A run that did not happen (missed, skipped): recorded all the same."""
        run_id = self.start(job, now)
        return self.finish(run_id, job, now, now, status, result)

    def last(self) -> dict[str, dict[str, Any]]:
        """The newest run of each job: {job: {started, duration_s, status, result}}."""
        df = self.audit.store.query(
            """SELECT job, started, duration_s, status, result FROM job_runs
               QUALIFY row_number() OVER (PARTITION BY job ORDER BY started DESC) = 1"""
        )
        out: dict[str, dict[str, Any]] = {}
        for r in df.to_dict("records"):
            out[str(r["job"])] = {
                "started": r["started"].isoformat(),
                "duration_s": float(r["duration_s"]),
                "status": r["status"],
                "result": json.loads(r["result"]) if isinstance(r["result"], str) else None,
            }
        return out
