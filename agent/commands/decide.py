"""``facility-agent decide [--once]``: decision cycles against the live store; decisions as a table."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from agent.commands._agent import (
    add_options,
    api,
    console,
    decision_rows,
    decisions_table,
    direct_ctx,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decide", help="run decision cycles against the store and print the decisions"
    )
    add_options(p)
    p.add_argument("--once", action="store_true", help="one cycle, then exit")
    p.add_argument(
        "--interval", type=float, default=10.0, help="seconds between cycles (without --once)"
    )
    p.add_argument("--cycles", type=int, default=None, help="stop after N cycles")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent import runtime

    out = console()
    n = 1 if args.once else args.cycles
    client = api(args)
    if client is not None:
        i = 0
        while n is None or i < n:
            res = client.call("POST", "/decide")
            if res["decisions"]:
                out.print(
                    decisions_table(decision_rows(res["decisions"]), f"Decisions — {res['run_id']}")
                )
            else:
                out.print(f"{res['run_id']}: no policy fired")
            i += 1
            if n is None or i < n:
                time.sleep(args.interval)
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        try:
            await runtime.startup(ctx)
            i = 0
            while n is None or i < n:
                res = await runtime.decide_once(ctx, "cli")
                if res.decisions:
                    out.print(
                        decisions_table(decision_rows(res.decisions), f"Decisions — {res.run_id}")
                    )
                else:
                    out.print(f"{res.run_id}: no policy fired")
                for p in res.pending_approvals:
                    out.print(
                        f"approval requested: [bold]{p['approval_id']}[/] — facility-agent approve {p['approval_id']}"
                    )
                i += 1
                if n is None or i < n:
                    await asyncio.sleep(args.interval)
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0
