"""``facility-agent estop``: emergency stop — cancel every pending approval, no more writes.

``facility-agent estop clear`` (admin) releases the emergency stop and an auto-lock;
the autonomy ceiling is left as it was (``autonomy set`` never clears an e-stop).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx, local_user
from agent.commands.autonomy import print_control


def register(sub: Any) -> None:
    p = sub.add_parser(
        "estop",
        help="emergency stop: cancel everything pending, stop writing; 'estop clear' (admin)",
    )
    add_options(p)
    p.add_argument(
        "action",
        nargs="?",
        choices=["clear"],
        help="clear: release the e-stop and auto-lock (admin)",
    )
    p.add_argument("--why", default="", help="reason (recorded in the audit)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return clear(args) if args.action == "clear" else engage(args)


def engage(args: argparse.Namespace) -> int:
    from agent import runtime

    out = console()
    client = api(args)
    if client is not None:
        res = client.call("POST", "/estop", json={"why": args.why})
        out.print(
            f"[bold red]emergency stop engaged[/] by {res['by']}; cancelled: {res['cancelled']}"
        )
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        try:
            who = local_user()
            cancelled = await runtime.emergency_stop(ctx, who, args.why)
            report(out, who, cancelled, runtime.agent_values_in_force(ctx))
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0


def report(out: Any, by: str, cancelled: list[str], in_force: list[dict[str, Any]]) -> None:
    out.print(f"[bold red]emergency stop engaged[/] by {by}; nothing more is written until cleared")
    out.print(f"cancelled approvals: {', '.join(cancelled) if cancelled else 'none pending'}")
    if not in_force:
        out.print("no set point holds a value the agent wrote")
        return
    out.print("set points still at the agent's values (journal):")
    for v in in_force:
        out.print(
            f"  {v['tag']} = {v['value']} (before the agent: {v['before_agent']}, {v['ts'][:19]})"
        )


def clear(args: argparse.Namespace) -> int:
    from agent import runtime

    out = console()
    client = api(args)
    if client is not None:
        res = client.call("POST", "/estop/clear", json={"why": args.why})
        cleared, by = bool(res["cleared"]), str(res["by"])
    else:
        ctx = direct_ctx(args)
        try:
            before, by = ctx.control(), local_user()
            res = asdict(runtime.clear_estop(ctx, by, args.why))
            cleared = res != asdict(before)
        finally:
            ctx.store.close()
    out.print(f"cleared by {by}" if cleared else "nothing to clear")
    print_control(res)
    return 0
