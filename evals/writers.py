"""Point writers for evals: record writes (open loop) or apply them to the twin (closed loop).

Both satisfy the ``PointWriter`` protocol the agent's actuator uses
(``async write(tag, value)``, ``async read(tag)``) and keep a log of every write
they received — the eval's evidence of what the agent did to the plant, whatever
path the write took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from connectors.clock import Clock
from connectors.errors import WriteRejected
from connectors.site import Site

if TYPE_CHECKING:
    from twin.sim import Twin


@dataclass(frozen=True)
class WriteResult:
    tag: str
    requested: float
    written: float
    read_back: float | None
    ts: datetime


@dataclass
class WriteLog:
    rows: list[tuple[datetime, str, float]] = field(default_factory=list)

    def add(self, ts: datetime, tag: str, value: float) -> None:
        self.rows.append((ts, tag, float(value)))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["ts", "tag", "value"])


class RecordingWriter:
    """Records every write and applies nothing; reads return the last value written or seen.

    ``seen`` is refreshed by the runner with the latest replayed values, so a
    read-back after a write returns what was written (the write "took") while
    the recorded plant itself never changes.
    """

    def __init__(self, site: Site, clock: Clock) -> None:
        self.site = site
        self.clock = clock
        self.log = WriteLog()
        self.seen: dict[str, float] = {}
        self._written: dict[str, float] = {}

    async def write(self, tag: str, value: float) -> WriteResult:
        if tag not in self.site.points_by_tag:
            raise WriteRejected(f"{tag}: not a point of site {self.site.name}")
        now = self.clock.now()
        self.log.add(now, tag, value)
        self._written[tag] = float(value)
        return WriteResult(tag, float(value), float(value), float(value), now)

    async def read(self, tag: str) -> float:
        if tag in self._written:
            return self._written[tag]
        return self.seen.get(tag, math.nan)


class TwinWriter:
    """Applies writes to a :class:`twin.sim.Twin` as a Modbus client would, and logs them."""

    def __init__(self, twin: Twin, clock: Clock) -> None:
        self.twin = twin
        self.clock = clock
        self.log = WriteLog()

    async def write(self, tag: str, value: float) -> WriteResult:
        now = self.clock.now()
        self.log.add(now, tag, value)
        self.twin.write(tag, float(value))
        back = self.twin.values().get(tag)
        return WriteResult(tag, float(value), float(value), back, now)

    async def read(self, tag: str) -> float:
        return float(self.twin.values().get(tag, math.nan))
