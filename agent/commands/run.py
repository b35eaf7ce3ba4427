"""``facility-agent run``: the site process — ingest, scheduled decision cycles, heartbeat, local API.

Polls the site into the DuckDB file, runs a decision cycle every ``--interval``
seconds (plus the agent's heartbeat to ``agent.heartbeat``), and serves the operators'
console (printed on start: ``console: http://127.0.0.1:PORT/``) and the local API that ``approve``/``reject``/``autonomy``/``estop``/``audit``/``chat``/``user`` use
while it runs (with a user's token; on a database without users it first creates the
admin user and prints its token once). Stops cleanly at ``--duration`` or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from agent.commands._agent import (
    add_options,
    checkpoint_path,
    console,
    decision_rows,
    decisions_table,
    load,
    site_writer,
)
from connectors.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="run the agent against a site: ingest, decision cycles, local API"
    )
    add_options(p, device_port=True)
    p.add_argument("--interval", type=float, default=10.0, help="seconds between decision cycles")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (0 = any free port)")
    p.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="also accept this Host header (default: 127.0.0.1, localhost, ::1 only)",
    )  # fmt: skip
    p.add_argument(
        "--no-ingest", action="store_true", help="do not poll (another process fills the store)"
    )
    p.set_defaults(func=run)


async def run_site(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from agent import llm, runtime
    from agent.api import serve
    from agent.commands.twin import install_stop
    from agent.commands.user import first_admin
    from agent.context import AgentContext
    from agent.http_guard import LOOPBACK_HOSTS

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
    install_stop(stop)

    def show(res: runtime.CycleResult) -> None:
        if res.decisions:
            out.print(decisions_table(decision_rows(res.decisions), f"Decisions — {res.run_id}"))

    tasks = [
        asyncio.create_task(
            runtime.run_forever(
                ctx,
                args.interval,
                stop=stop,
                on_result=show,
            )
        ),
        asyncio.create_task(
            serve(
                ctx,
                args.db,
                port=args.port,
                stop=stop,
                allowed_hosts=(*LOOPBACK_HOSTS, *args.allow_host),
                on_ready=lambda url: out.print(
                    f"console: {url}  (sign in with a user's token)", highlight=False
                ),
            )
        ),
    ]
    if not args.no_ingest:
        from connectors.ingest import Ingestor

        tasks.append(asyncio.create_task(Ingestor(site, store).run(None, stop)))
    try:
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
            stop.set()
        await asyncio.gather(*tasks)
    finally:
        await runtime.close(ctx, close_writer=True)
        store.close()


def run(args: argparse.Namespace) -> int:
    asyncio.run(run_site(args, asyncio.Event()))
    return 0
