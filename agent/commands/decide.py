"""``facility-agent decide [--once] [--dry-run] [--json]``: decision cycles against the live
store; decisions as a table.

``--dry-run`` shows what one cycle would decide now — the same policies, data quality,
what-if and gate — and records, requests and writes nothing (:mod:`agent.dryrun`); it needs
only a viewer's token while a site runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
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
    p.add_argument(
        "--dry-run", action="store_true",
        help="show what one cycle would decide now; record, request and write nothing",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print each cycle's decisions as JSON")
    p.set_defaults(func=run)


def _show(args: argparse.Namespace, run_id: str, decisions: Sequence[Any], pending: Any) -> None:
    if args.json:
        print(json.dumps({"run_id": run_id, "decisions": list(decisions)}, default=str))
        return
    out = console()
    if decisions:
        out.print(decisions_table(decision_rows(decisions), f"Decisions — {run_id}"))
    else:
        out.print(f"{run_id}: no policy fired")
    for p in pending:
        out.print(
            f"approval requested: [bold]{p['approval_id']}[/] — facility-agent approve {p['approval_id']}"
        )


def dry_run(args: argparse.Namespace) -> int:
    client = api(args)
    if client is not None:
        _show(args, "dry run", client.call("POST", "/decide/dry-run"), [])
        return 0
    from agent import runtime
    from agent.dryrun import as_json
    from agent.dryrun import dry_run as dry

    async def main() -> list[dict[str, Any]]:
        ctx = direct_ctx(args)
        try:
            return as_json(await dry(ctx))
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    _show(args, "dry run", asyncio.run(main()), [])
    return 0


def run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return dry_run(args)
    from agent import runtime

    n = 1 if args.once else args.cycles
    client = api(args)
    if client is not None:
        i = 0
        while n is None or i < n:
            res = client.call("POST", "/decide")
            _show(args, res["run_id"], res["decisions"], res.get("pending_approvals", []))
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
                _show(args, res.run_id, [d.as_json() for d in res.decisions], res.pending_approvals)
                i += 1
                if n is None or i < n:
                    await asyncio.sleep(args.interval)
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0
