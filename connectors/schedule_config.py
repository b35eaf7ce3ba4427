"""The ``schedule:`` block of a site file: when ``run``'s jobs run, and how long data is kept.

Pure configuration (pydantic models, each field documented): :mod:`agent.schedule` turns
it into APScheduler jobs, :mod:`connectors.lake` applies the retention part. Every
field has a default, so a site file without ``schedule:`` gets the defaults::

    schedule:
      timezone: Europe/Paris        # site time, for the daily jobs' ``at``
      misfire_grace_s: 300          # a run late by less than this still runs (once)
      cycle: {every_s: 10}          # decision cycle (protection and alarm policies)
      optimisation: {every_s: 900}  # efficiency policies: their proposals go through the gate
      fdd: {every_s: 3600}          # fault-detection policies
      report: {at: "06:00"}         # daily report of the day before, under reports/
      retention: {at: "02:30", raw_days: 30}   # roll up, export to Parquet, then delete raw
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class IntervalJob(_Strict):
    """A job that runs every ``every_s`` seconds."""

    enabled: bool = Field(True, description="false: the job is not scheduled at all")
    every_s: float = Field(gt=0, description="seconds between two starts of the job")
    misfire_grace_s: float | None = Field(
        None,
        gt=0,
        description="a start late by less than this still runs; later, it is skipped "
        "(default: the schedule's misfire_grace_s)",
    )


class DailyJob(_Strict):
    """A job that runs once a day at a site-local time."""

    enabled: bool = Field(True, description="false: the job is not scheduled at all")
    at: str = Field(description="site-local time of day HH:MM (see schedule.timezone)")
    misfire_grace_s: float | None = Field(
        None,
        gt=0,
        description="a start late by less than this still runs; later, it is skipped "
        "(default: the schedule's misfire_grace_s)",
    )
    every_s: float | None = Field(
        None,
        gt=0,
        description="instead of daily at `at`, every N seconds from the start (tests, demos)",
    )

    @field_validator("at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.match(HHMM, v):
            raise ValueError(f"{v!r} is not a time of day: expected HH:MM (24 h), e.g. 06:00")
        return v

    @property
    def time(self) -> time:
        h, m = self.at.split(":")
        return time(int(h), int(m))


class ReportJob(DailyJob):
    """The daily report: an HTML page with plots of the previous site-local day."""

    at: str = Field("06:00", description="site-local time of day HH:MM the report is made")
    day: Literal["yesterday", "today"] = Field(
        "yesterday",
        description="the site-local day a report covers: the day before (a complete day), "
        "or today so far",
    )
    dir: str = Field(
        "reports",
        min_length=1,
        description="folder of the reports; a relative path is taken from the database's folder",
    )


class RetentionJob(DailyJob):
    """Nightly retention: raw readings older than ``raw_days`` are exported to the Parquet lake,
    verified, rolled up to 1-minute aggregates and only then deleted."""

    at: str = Field("02:30", description="site-local time of day HH:MM retention runs")
    raw_days: float = Field(
        30.0, gt=0, description="days raw readings stay in the database (fractions allowed)"
    )
    lake: str = Field(
        "lake",
        min_length=1,
        description="folder of the Parquet lake; a relative path is taken from the "
        "database's folder",
    )
    checkpoint_threads: int = Field(
        200,
        ge=1,
        description="finished decision threads kept in the checkpoint database (newest); "
        "threads waiting for an approval are always kept",
    )


class ScheduleConfig(_Strict):
    """When ``run``'s jobs run. Jobs never overlap (one instance each); a run missed by less
    than its grace runs once late, several missed runs of one job run once (coalesced)."""

    timezone: str = Field(
        "UTC", description="IANA time zone of the site (e.g. Europe/Paris) for the daily jobs"
    )
    misfire_grace_s: float = Field(
        300.0,
        gt=0,
        description="default grace: a start late by less than this still runs, once",
    )
    cycle: IntervalJob = Field(
        default_factory=lambda: IntervalJob(every_s=10.0),
        description="the decision cycle (protection and alarm policies); "
        "`run --interval N` overrides every_s",
    )
    optimisation: IntervalJob = Field(
        default_factory=lambda: IntervalJob(every_s=900.0),
        description="the optimisation sweep (efficiency policies); its proposals go through "
        "the autonomy gate like any other",
    )
    fdd: IntervalJob = Field(
        default_factory=lambda: IntervalJob(every_s=3600.0),
        description="the fault-detection sweep (fault policies)",
    )
    report: ReportJob = Field(
        default_factory=ReportJob, description="the daily report of the previous day"
    )
    retention: RetentionJob = Field(
        default_factory=RetentionJob,
        description="nightly retention: export to Parquet, verify, roll up, delete raw",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Europe/Paris)") from None
        return v

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def site_folder(folder: str, db: str | Path) -> Path:
    """A folder of the schedule (reports, lake): absolute as given, else beside the database."""
    p = Path(folder).expanduser()
    if p.is_absolute():
        return p
    base = Path(db).parent if str(db) != ":memory:" else Path.cwd()
    return (base / p).resolve()
