"""``facility-agent approve ID``: answer a pending approval (through the running site, else directly)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx
from connectors.errors import FacilityError


def register(sub: Any) -> None:
    p = sub.add_parser("approve", help="approve a pending approval")
    add_options(p)
    p.add_argument("approval_id")
    p.add_argument("--why", default="", help="reason (recorded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent import runtime

    out = console()
    client = api(args)
    if client is not None:
        res = client.call(
            "POST", f"/approvals/{args.approval_id}/approve", json={"by": args.by, "why": args.why}
        )
        out.print(f"{args.approval_id}: approved; actions: {res['actions']}")
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        try:
            res = await runtime.answer_approval(
                ctx, args.approval_id, "approved", args.by, args.why
            )
            out.print(f"{args.approval_id}: approved; actions: {res.actions if res else []}")
        except (KeyError, ValueError) as err:
            raise FacilityError(str(err).strip("'\"")) from None
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0
