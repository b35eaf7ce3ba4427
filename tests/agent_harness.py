"""Test harness: the twin as a plant, its readings in a DuckDB store, the agent on top.

Readings go from ``Twin.values()`` straight into the store (the ingest path has its
own tests); writes go through the real writer — ``connectors.writer.ModbusPointWriter``
over a real ``twin.server.SiteServer`` on loopback once :meth:`Hall.start` ran, else a
writer that applies to the twin directly. :func:`agent_on` builds the agent on a hall
(the ``agent_on`` fixture in ``conftest.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agent.context import AgentContext
from connectors.clock import ManualClock
from connectors.site import Site, parse_site, with_port
from connectors.status import Status
from connectors.store import Store
from connectors.writer import ModbusPointWriter
from twin.server import SiteServer
from twin.sim import Twin, TwinRunner, default_site


def naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


class TwinDirectWriter:
    """Applies writes to the twin directly (a hall not served over Modbus)."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.writes: list[tuple[str, float]] = []

    async def write(self, tag: str, value: float) -> Any:
        self.twin.write(tag, value)
        self.writes.append((tag, value))
        rb = self.twin.values()[tag]
        return type("WR", (), {"tag": tag, "requested": value, "written": value, "read_back": rb})()

    async def read(self, tag: str) -> float:
        return float(self.twin.values()[tag])


def polled_every(site: Site, seconds: float) -> Site:
    """The same site with every point polled every ``seconds`` (the harness records at that rate)."""
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["poll_interval_s"] = seconds
    return parse_site(data, origin=f"{site.name}/poll{seconds:g}s")


class Hall:
    """Twin + store + clock; ``await hall.start(port)`` serves it over Modbus when possible."""

    def __init__(
        self,
        db: Path | str = ":memory:",
        seed: int = 0,
        site: Site | None = None,
        poll_s: float = 10.0,
    ) -> None:
        self.poll_s = poll_s
        self.site = site or polled_every(default_site(), poll_s)
        self.twin = Twin(self.site, seed=seed)
        self.clock = ManualClock(naive(self.twin.now))
        self.store = Store(db)
        self.store.register_site(self.site)
        self.server: Any = None
        self.runner: Any = None
        self.writer: Any = TwinDirectWriter(self.twin)
        self.served: Site = self.site
        self.record()

    async def start(self, port: int) -> None:
        """Serve the twin over Modbus on ``port``; writes go through the real Modbus writer."""
        served = with_port(self.site, port)
        self.served = served
        self.server = SiteServer(served)
        await self.server.start()
        self.runner = TwinRunner(self.twin, self.server)
        self.runner.push()
        self.writer = ModbusPointWriter(served)

    async def stop(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            res = close()
            if hasattr(res, "__await__"):
                await res
        if self.server is not None:
            await self.server.stop()

    def record(self) -> None:
        vals = self.twin.values()
        down = self.twin.unavailable()
        tags = list(vals)
        v = np.array([np.nan if t in down else vals[t] for t in tags])
        st = np.array([int(Status.TIMEOUT) if t in down else 0 for t in tags], np.uint8)
        self.store.append_frame(
            pd.DataFrame(
                {"ts": [self.clock.now()] * len(tags), "tag": tags, "value": v, "status": st}
            )
        )

    def run(self, seconds: float, dt: float | None = None) -> None:
        """Advance the plant, recording every ``dt`` seconds (default: the poll interval)."""
        dt = dt or self.poll_s
        t = 0.0
        while t < seconds - 1e-9:
            self.twin.step(dt)
            if self.runner is not None:
                self.runner.push()
            self.clock.set(naive(self.twin.now))
            self.record()
            t += dt


AgentOn = Callable[..., AgentContext]


def agent_on(hall: Hall, **kw: Any) -> AgentContext:
    """The agent on a hall: its site, store, writer and clock; keywords as ``AgentContext.build``.

    Call it after :meth:`Hall.start` when writes should go over Modbus."""
    return AgentContext.build(hall.site, hall.store, hall.writer, hall.clock, **kw)


def on_hall(
    db: Path | str, port: int, body: Callable[[Hall], Awaitable[None]], warm_s: float = 900.0
) -> None:
    """Run ``body`` on a hall served over Modbus on ``port``, after ``warm_s`` seconds of
    healthy history (default a quarter-hour: the quality window has a normal baseline)."""

    async def main() -> None:
        h = Hall(db)
        h.run(warm_s)
        await h.start(port)
        try:
            await body(h)
        finally:
            await h.stop()

    asyncio.run(main())
