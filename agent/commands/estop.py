"""``facility-agent estop``: emergency stop — cancel every pending approval, no more writes.

The site stays at decision support until an admin runs ``facility-agent autonomy set LEVEL``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx


def register(sub: Any) -> None:
    p = sub.add_parser("estop", help="emergency stop: cancel everything pending, stop writing")
    add_options(p)
    p.add_argument("--why", default="")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent import runtime

    out = console()
    client = api(args)
    if client is not None:
        res = client.call("POST", "/estop", json={"by": args.by, "why": args.why})
        out.print(f"[bold red]emergency stop engaged[/]; cancelled: {res['cancelled']}")
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        try:
            cancelled = await runtime.emergency_stop(ctx, args.by, args.why)
            out.print(f"[bold red]emergency stop engaged[/]; cancelled: {cancelled}")
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0
