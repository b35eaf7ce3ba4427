"""``facility-agent estop``: emergency stop — hand the plant back, cancel what is pending.

Every set point the agent holds is restored to its value before the agent (listed:
agent value → restored, read back; anything not restored is named loudly), the
heartbeat stops, pending approvals are cancelled, and nothing more is written.

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
        report(out, client.call("POST", "/estop", json={"why": args.why}))
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        try:
            res = await runtime.emergency_stop(ctx, local_user(), args.why)
            report(out, {**res.as_json(), "in_force": runtime.agent_values_in_force(ctx)})
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0


def report(out: Any, res: dict[str, Any]) -> None:
    """What the stop did (the API's JSON answer): cancelled, restored, NOT restored, still held."""
    out.print(
        f"[bold red]emergency stop engaged[/] by {res['by']}; nothing more is written until cleared"
    )
    cancelled = res["cancelled"]
    out.print(f"cancelled approvals: {', '.join(cancelled) if cancelled else 'none pending'}")
    restored, failed = res["restored"], res["not_restored"]
    if not restored and not failed:
        out.print("no set point held a value the agent wrote: nothing to restore")
    if restored:
        out.print("set points handed back (agent value → restored, read back):")
    for r in restored:
        out.print(
            f"  {r['tag']}: {r['agent_value']} → {r['restored']} (read back {r['read_back']})"
        )
    for r in failed:
        out.print(
            f"[bold red]NOT RESTORED[/] {r['tag']}: still {r['agent_value']} "
            f"(before the agent: {r['restored']}) — {r['error']}"
        )
    for v in res.get("in_force", []):
        out.print(
            f"[bold red]still at the agent's value[/] {v['tag']} = {v['value']} "
            f"(before the agent: {v['before_agent']})"
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
