"""``facility-agent demo``: the twin, the ingest, the agent and a live view, in one process.

Starts the simulated data hall on Modbus TCP, polls it into DuckDB with the
real ingest pipeline, runs the agent's decision cycles against the store, and
shows key plant values and the agent's latest decisions in a table refreshed
in place. Unless ``--fault`` or ``--scenario`` say otherwise, a utility loss is
injected after a minute: the UPS goes on battery, the
agent proposes a GPU power cap, checks it with the what-if model and — the
site's autonomy ceiling being human validation — asks for an approval that
``facility-agent approve ID`` (another terminal, with the admin token the demo
prints on a fresh database in ``FACILITY_AGENT_TOKEN``) answers through the demo's
local API. Stops cleanly at ``--duration`` or on Ctrl-C.

Adding a component (the agent) is one more entry in :func:`demo_tasks`: a
callable taking the :class:`DemoContext` and returning a coroutine that runs
until ``ctx.stop`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.commands._agent import checkpoint_path, site_writer
from agent.commands._common import add_db_option, user_text
from agent.commands.twin import add_twin_options, build_twin, install_stop, serve_parts
from connectors.ingest import Ingestor
from connectors.site import Site
from connectors.store import Store
from twin.sim import Twin, TwinRunner

if TYPE_CHECKING:  # LangGraph and FastAPI load when the agent starts, not with the CLI
    from agent.decision import Decision
    from agent.runtime import CycleResult

# Injected when neither --fault nor --scenario is given: utility loss one minute in.
DEFAULT_FAULT = "utility_loss:ups_1:60"

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
    ("CRAH 1 supply air SP", "crah_1.supply_air_setpoint", "{:.1f} °C"),
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
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=6))
    with_agent: bool = True

    def on_cycle(self, result: CycleResult) -> None:
        """Keep the agent's newest decisions for the live view."""
        for d in result.decisions:
            self.decisions.appendleft(d)


DemoTask = Callable[[DemoContext], Coroutine[Any, Any, None]]


def demo_tasks() -> list[DemoTask]:
    """The demo's concurrent parts. The agent joins here (one more entry)."""
    tasks: list[DemoTask] = [
        lambda ctx: ctx.runner.run(None, ctx.stop),
        lambda ctx: ctx.ingestor.run(None, ctx.stop),
        show_live,
        _agent_task,
    ]
    return tasks


async def _agent_task(ctx: DemoContext) -> None:
    if ctx.with_agent:
        await demo_agent(
            ctx.twin.site,
            ctx.store,
            ctx.stop,
            show=ctx.on_cycle,
            on_ready=lambda url: ctx.console.print(
                f"console: {url}  (sign in with the admin token above)", highlight=False
            ),
        )


async def demo_agent(
    site: Site,
    store: Store,
    stop: asyncio.Event,
    interval_s: float = 10.0,
    show: Callable[[CycleResult], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """The agent as one more demo task: decision cycles every ``interval_s`` against the
    demo's store, writes to the twin over Modbus TCP or BACnet/IP by point
    (``connectors.writer.SiteWriter``),
    its heartbeat, and the local API so that ``facility-agent approve ID`` works while the
    demo runs. ``show(result)`` is called after each cycle; ``on_ready(url)`` once the API
    (and the console at that URL) listens."""
    from agent import runtime  # LangGraph, FastAPI: loaded when the agent starts
    from agent.api import serve
    from agent.context import AgentContext
    from agent.llm import chat_model_from_env

    ctx = AgentContext.build(
        site,
        store,
        site_writer(site),
        checkpoint_path=checkpoint_path(store.path),
        llm=chat_model_from_env(),
    )
    try:
        await asyncio.gather(
            runtime.run_forever(ctx, interval_s, stop=stop, on_result=show),
            serve(
                ctx,
                store.path,
                stop=stop,
                on_started=None if on_ready is None else (lambda url, _app: on_ready(url + "/")),
            ),
        )
    finally:
        await runtime.close(ctx, close_writer=True)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the twin, the ingest and a live view together",
        description=user_text(__doc__, slice(0, 2)),
    )
    add_twin_options(p)
    add_db_option(p)
    p.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)"
    )
    p.add_argument("--no-agent", action="store_true", help="twin and ingest only")
    p.add_argument(
        "--no-fault", action="store_true",
        help=f"do not inject the default fault ({DEFAULT_FAULT}) when no --fault is given",
    )  # fmt: skip
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
    table.add_column("via")
    for label, tag, fmt in SHOWN:
        if tag not in ctx.twin.site.points_by_tag:
            continue
        value, status = rows.get(tag, (None, "—"))
        via = "BACnet/IP" if ctx.twin.site.point(tag).is_bacnet else "Modbus TCP"
        table.add_row(label, _fmt(value, fmt), str(status), via)
    st = ctx.ingestor.stats()
    down = [str(p.key) for p in ctx.ingestor.pollers if not p.stats.up]
    faults = ", ".join(f.id or "" for f in ctx.twin.active_faults()) or "none"
    n_bacnet = len(ctx.ingestor.bacnet_pollers)
    protocols = (
        f" (Modbus TCP {len(ctx.ingestor.pollers) - n_bacnet}, BACnet/IP {n_bacnet})"
        if n_bacnet
        else ""
    )
    lines = Text(
        f"devices up {st.devices_up}, down {st.devices_down}{protocols}"
        + (f" ({', '.join(down)})" if down else "")
        + f" | {st.points_per_s:,.0f} points/s | rows stored {st.rows_stored:,}"
        + f"\nactive faults: {faults}"
    )
    parts: list[Any] = [table, lines]
    if ctx.with_agent:
        parts.append(_agent_table(ctx))
    return Group(*parts)


def _agent_table(ctx: DemoContext) -> Table:
    """The agent's newest decisions: policy, outcome, effective level and why, what-if."""
    t = Table(title="agent — newest decisions (approve with: facility-agent approve ID)")
    for col in ("policy", "outcome", "level (set by)", "what-if", "approval"):
        t.add_column(col)
    from agent.audit import Audit

    audit = Audit(ctx.store)
    open_ = audit.pending_approvals()
    pending = {str(p["decision_id"]): str(p["approval_id"]) for p in open_}
    for kept in ctx.decisions:
        d = audit.decision(kept.decision_id) or kept  # as it stands now, not as the cycle left it
        set_by = ",".join(d.verdict.set_by) if d.verdict else ""
        t.add_row(
            d.policy_id,
            d.outcome,
            f"{d.level} ({set_by})",
            _whatif_summary(d),
            pending.get(d.decision_id, ""),
        )
    if not ctx.decisions:
        t.add_row("(no decision yet)", "", "", "", "")
    return t


def _whatif_summary(d: Decision) -> str:
    """ΔkW and every broken constraint (never "ok" while one is broken)."""
    from agent.web.present import whatif_summary

    return whatif_summary(d.prediction, d.whatif_reason)


async def show_live(ctx: DemoContext) -> None:
    with Live(render(ctx), console=ctx.console, refresh_per_second=4, transient=False) as live:
        while not ctx.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stop.wait(), 1.0)
            live.update(render(ctx))
    ctx.console.print()


DEMO_ADMIN = "demo"


def demo_admin(store: Store, out: Console) -> str | None:
    """On a database that has users: (re)issue the admin user ``demo`` and print its token, so
    whoever starts the demo can sign in to the console (the demo's owner may open the file, so is
    its admin anyway). Returns the token, or None when ``demo`` is the last admin (kept)."""
    from agent.commands._agent import TOKEN_ENV, local_user
    from agent.users import Role, Users
    from connectors.errors import ConfigError

    users = Users(store)
    by = f"{local_user()} (demo start)"
    try:
        if users.get(DEMO_ADMIN) is not None:
            users.remove(DEMO_ADMIN, by)
        token = users.add(DEMO_ADMIN, Role.ADMIN, by)
    except ConfigError as err:
        out.print(f"no console token issued: {err}", highlight=False)
        return None
    out.print(
        f"Admin user '{DEMO_ADMIN}' (re)issued for this demo. Sign in to the console with its "
        f"token, or in another terminal:\n  export {TOKEN_ENV}={token}",
        soft_wrap=True,
        highlight=False,
    )
    return token


async def _stop_after(stop: asyncio.Event, duration: float | None) -> None:
    if duration is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        stop.set()


async def run_demo(args: argparse.Namespace, console: Console | None = None) -> int:
    if not args.fault and args.scenario is None and not args.no_fault:
        args.fault = [DEFAULT_FAULT]
    twin = build_twin(args)
    served = serve_parts(args, twin, args.speed)
    server, runner = served.server, served.runner
    await served.start()
    store = Store(args.db)
    try:
        ingestor = Ingestor(twin.site, store)
        stop = asyncio.Event()
        install_stop(stop)
        ctx = DemoContext(
            twin, server, runner, store, ingestor, stop, args.duration, console or Console(),
            with_agent=not args.no_agent,
        )  # fmt: skip
        if ctx.with_agent:
            from agent.commands.user import first_admin

            if first_admin(store, ctx.console) is None:
                demo_admin(store, ctx.console)
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
        await served.stop()
        store.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo(args))
