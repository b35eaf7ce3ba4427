"""``facility-agent run``: the site process — ingest, scheduled jobs, heartbeat, local API.

Polls the site into the DuckDB file, runs the site file's ``schedule:`` jobs
(:mod:`agent.schedule`: decision cycle — every ``--interval`` seconds when given —,
optimisation and fault-detection sweeps, daily report, retention) plus the agent's heartbeat
to ``agent.heartbeat``, and serves the local API (and ``/metrics``) that the other commands
use while it runs. It starts with a banner on stdout (site, devices, API and console URL,
autonomy ceiling, LLM, schedules); logs go to stderr (``-v``, ``--log-json``). Ctrl-C, SIGTERM
or ``--duration`` stop it cleanly: pending readings are flushed, the database checkpointed,
the approvals' SQLite checkpoint closed, and the heartbeat simply stops — the plant's own
fallback takes its set points back when it lapses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

from agent.commands._agent import (
    add_options,
    checkpoint_path,
    console,
    decision_rows,
    decisions_table,
    load,
    site_writer,
)
from agent.commands._common import user_text
from connectors.site import Site
from connectors.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from agent import runtime

log = logging.getLogger("agent.run")


def schedule_lines(site: Site, interval_s: float | None) -> list[str]:
    """The banner's schedule: each planned job and when it runs, then the heartbeat."""
    from agent.schedule.jobs import plan

    lines = []
    for j in plan(site.schedule, interval_s):
        trig = j.trigger
        secs = getattr(trig, "interval", None)
        if secs is not None:
            when = f"every {secs.total_seconds():g} s"
        else:
            f = {x.name: str(x) for x in getattr(trig, "fields", [])}
            try:
                when = f"daily at {int(f['hour']):02d}:{int(f['minute']):02d} site time"
            except (KeyError, ValueError):
                when = str(trig)
        head, _, rest = j.what.partition(" (")
        lines.append(f"{head} {when}" + (f" ({rest}" if rest else ""))
    return [*lines, "heartbeat every 5 s"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the agent against a site: ingest, decision cycles, local API",
        description=user_text(__doc__, slice(1, 2)),
    )
    add_options(p, device_port=True)
    p.add_argument(
        "--interval", type=float, default=None,
        help="seconds between decision cycles (overrides the site file's schedule.cycle.every_s)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument(
        "--port", type=int, default=0,
        help="API port on 127.0.0.1 (default 0: any free port, written to <db>.api.json)",
    )  # fmt: skip
    p.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="also accept this Host header (default: 127.0.0.1, localhost, ::1 only)",
    )  # fmt: skip
    p.add_argument(
        "--no-ingest", action="store_true", help="do not poll (another process fills the store)"
    )
    p.set_defaults(func=run)


def _stop_on_signals(stop: asyncio.Event, got: list[str]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):

        def handler(s: signal.Signals = sig) -> None:
            got.append(s.name)
            log.info("%s received: stopping", s.name)
            stop.set()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)


async def run_site(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from agent import llm, runtime
    from agent.api import serve
    from agent.banner import Banner, llm_mode
    from agent.commands.user import first_admin
    from agent.context import AgentContext
    from agent.http_guard import LOOPBACK_HOSTS
    from agent.schedule.service import run_scheduled

    site = load(args)
    store = Store(args.db)
    store.register_site(site)
    out = console()
    first_admin(store, out)
    ctx = AgentContext.build(
        site,
        store,
        site_writer(site),
        checkpoint_path=checkpoint_path(args.db),
        llm=llm.chat_model_from_env(),
    )
    got: list[str] = []
    _stop_on_signals(stop, got)
    ingestor = None
    if not args.no_ingest:
        from connectors.ingest import Ingestor

        ingestor = Ingestor(site, store)

    def started(url: str, app: FastAPI) -> None:
        banner = Banner(
            site=site,
            db=str(args.db),
            api_url=url,
            routes=[str(getattr(r, "path", "")) for r in app.routes],
            ceiling=ctx.control().site_ceiling,
            schedules=schedule_lines(site, args.interval),
            ingest=ingestor is not None,
            llm=llm_mode(),
        )
        for line in banner.lines():
            print(line, flush=True)
        log.info("site process started", extra=banner.as_dict())

    def show(res: runtime.CycleResult) -> None:
        log.info(
            "decision cycle %s: %d decisions, %d pending approvals",
            res.run_id, len(res.decisions), len(res.pending_approvals),
        )  # fmt: skip
        if res.decisions:
            out.print(decisions_table(decision_rows(res.decisions), f"Decisions — {res.run_id}"))

    tasks = [
        asyncio.create_task(
            run_scheduled(ctx, args.db, stop, interval_s=args.interval, on_result=show)
        ),
        asyncio.create_task(
            serve(
                ctx,
                args.db,
                port=args.port,
                stop=stop,
                allowed_hosts=(*LOOPBACK_HOSTS, *args.allow_host),
                ingestor=ingestor,
                on_started=started,
            )
        ),
    ]
    if ingestor is not None:
        tasks.append(asyncio.create_task(ingestor.run(None, stop)))
    try:
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
            stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await runtime.close(ctx, close_writer=True)
        store.execute("CHECKPOINT")
        store.close()
        rows = f"{ingestor.rows_stored:,} rows stored, " if ingestor is not None else ""
        why = got[0] if got else "end of --duration" if args.duration is not None else "stop"
        print(
            f"run: stopped ({why}): {rows}database checkpointed; heartbeat stopped — the plant "
            "takes the agent's set points back when it lapses",
            file=sys.stderr,
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    asyncio.run(run_site(args, asyncio.Event()))
    return 0
