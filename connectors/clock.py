"""Clocks, injected wherever time is read, so recorded telemetry can replay fast.

Every timestamp in the project is a timezone-naive ``datetime`` in UTC (DuckDB
``TIMESTAMP``). Nodes, pollers and the quality scorer ask the clock they were
given — never ``datetime.now()`` — which is what lets the eval suite replay a
14-hour recording in seconds with :class:`ManualClock`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (replay, tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = start or datetime(2026, 1, 1)
        self._origin = self._t

    def now(self) -> datetime:
        return self._t

    def monotonic(self) -> float:
        return (self._t - self._origin).total_seconds()

    def set(self, t: datetime) -> None:
        self._t = t

    def advance(self, seconds: float) -> datetime:
        self._t += timedelta(seconds=seconds)
        return self._t
