"""``facility-agent demo``: the twin, the ingest and a live view, in one process.

Starts the simulated data hall on Modbus TCP, polls it into DuckDB with the
real ingest pipeline, and shows key plant values read back from the store in a
table refreshed in place. Stops cleanly at ``--duration`` or on Ctrl-C.

Adding a component (the agent) is one more entry in :func:`demo_tasks`: a
callable taking the :class:`DemoContext` and returning a coroutine that runs
until ``ctx.stop`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.commands._common import add_db_option
from agent.commands.twin import add_twin_options, build_twin, check_ports_free, install_stop
from connectors.ingest import Ingestor
from connectors.store import Store
from twin.sim import Twin, TwinRunner

# (label, tag, format) of the values shown; bools show as on/off
SHOWN: tuple[tuple[str, str, str], ...] = (
    ("IT power", "plant.it_power", "{:.0f} kW"),
    ("Facility power", "plant.facility_power", "{:.0f} kW"),
    ("Cooling power", "plant.cooling_power", "{:.0f} kW"),
    ("PUE", "plant.pue", "{:.3f}"),
    ("GPU throughput", "gpu.throughput", "{:.1f} %"),
    ("GPU die max", "gpu.gpu_temp_max", "{:.1f} °C"),
    ("GPU throttling", "gpu.throttling", "bool"),
    ("CDU coolant supply", "cdu_1.coolant_supply_temp", "{:.1f} °C"),
    ("Chiller 1 running", "chiller_1.running", "bool"),
    ("Chiller 2 running", "chiller_2.running", "bool"),
    ("Chiller 3 running", "chiller_3.running", "bool"),
    ("CHW supply (ch 1)", "chiller_1.chw_supply_temp", "{:.1f} °C"),
    ("CW supply (tower)", "ct_1.cw_supply_temp", "{:.1f} °C"),
    ("Tower fan", "ct_1.fan_speed", "{:.0f} %"),
    ("Wet bulb", "weather.wet_bulb", "{:.1f} °C"),
    ("Rack inlet (CRAH 1)", "crah_1.rack_inlet_temp", "{:.1f} °C"),
    ("UPS state of charge", "ups_1.soc", "{:.1f} %"),
    ("UPS on battery", "ups_1.on_battery", "bool"),
    ("Leak", "leak_1.leak_detected", "bool"),
    ("VESDA alarm level", "vesda_1.alarm_level", "{:.0f}"),
)


@dataclass
class DemoContext:
    """What every demo task gets: the parts, and one event that stops them all."""

    twin: Twin
    server: Any  # twin.server.SiteServer
    runner: TwinRunner
    store: Store
    ingestor: Ingestor
    stop: asyncio.Event
    duration: float | None
    console: Console


DemoTask = Callable[[DemoContext], Coroutine[Any, Any, None]]


def demo_tasks() -> list[DemoTask]:
    """The demo's concurrent parts. The agent joins here (one more entry)."""
    tasks: list[DemoTask] = [
        lambda ctx: ctx.runner.run(None, ctx.stop),
        lambda ctx: ctx.ingestor.run(None, ctx.stop),
        show_live,
    ]
    # The agent joins with one more entry, e.g.:
    #     from agent.runtime import demo_agent
    #     tasks.append(lambda ctx: demo_agent(ctx))
    return tasks


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="run the twin, the ingest and a live view together", description=__doc__
    )
    add_twin_options(p)
    add_db_option(p)
    p.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)"
    )
    p.set_defaults(func=run)


def _fmt(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if fmt == "bool":
        return "on" if value >= 0.5 else "off"
    return fmt.format(value)


def render(ctx: DemoContext) -> Group:
    """One frame: key values from the store, device states, ingest rate."""
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=30)
    tags = [t for _, t, _ in SHOWN if t in ctx.twin.site.points_by_tag]
    latest = ctx.store.latest(tags, since=since)
    rows = {r.tag: (r.value, r.status) for r in latest.itertuples()}
    table = Table(title=f"{ctx.twin.site.name} — simulated {ctx.twin.now:%Y-%m-%d %H:%M:%S} UTC")
    table.add_column("point")
    table.add_column("value", justify="right")
    table.add_column("status")
    for label, tag, fmt in SHOWN:
        if tag not in ctx.twin.site.points_by_tag:
            continue
        value, status = rows.get(tag, (None, "—"))
        table.add_row(label, _fmt(value, fmt), str(status))
    st = ctx.ingestor.stats()
    down = [str(p.key) for p in ctx.ingestor.pollers if not p.stats.up]
    faults = ", ".join(f.id or "" for f in ctx.twin.active_faults()) or "none"
    lines = Text(
        f"devices up {st.devices_up}, down {st.devices_down}"
        + (f" ({', '.join(down)})" if down else "")
        + f" | {st.points_per_s:,.0f} points/s | rows stored {st.rows_stored:,}"
        + f"\nactive faults: {faults}"
    )
    return Group(table, lines)


async def show_live(ctx: DemoContext) -> None:
    with Live(render(ctx), console=ctx.console, refresh_per_second=4, transient=False) as live:
        while not ctx.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stop.wait(), 1.0)
            live.update(render(ctx))
    ctx.console.print()


async def _stop_after(stop: asyncio.Event, duration: float | None) -> None:
    if duration is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        stop.set()


async def run_demo(args: argparse.Namespace, console: Console | None = None) -> int:
    from twin.server import SiteServer

    twin = build_twin(args)
    check_ports_free(twin.site)
    server = SiteServer(twin.site)
    runner = TwinRunner(twin, server, speed=args.speed)
    runner.push()
    await server.start()
    store = Store(args.db)
    try:
        ingestor = Ingestor(twin.site, store)
        stop = asyncio.Event()
        install_stop(stop)
        ctx = DemoContext(
            twin, server, runner, store, ingestor, stop, args.duration, console or Console()
        )
        tasks = [asyncio.create_task(make(ctx)) for make in demo_tasks()]
        tasks.append(asyncio.create_task(_stop_after(stop, args.duration)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await server.stop()
        store.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo(args))
