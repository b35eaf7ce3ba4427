"""``facility-agent autonomy set LEVEL`` / ``autonomy show``: the site's autonomy ceiling.

Setting a level also re-enables the site after an auto-lock or an emergency stop.
Levels: 0 observe only, 1 decision support, 2 human validation, 3 full autonomy.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx
from tools.gate import LEVEL_NAMES


def register(sub: Any) -> None:
    p = sub.add_parser("autonomy", help="show or set the site's autonomy ceiling")
    asub = p.add_subparsers(dest="autonomy_cmd", required=True)
    s = asub.add_parser("set", help="set the ceiling (re-enables after auto-lock / e-stop)")
    add_options(s)
    s.add_argument("level", type=int, choices=[0, 1, 2, 3])
    s.add_argument("--why", default="")
    s.set_defaults(func=run_set)
    sh = asub.add_parser("show", help="show the ceiling, lock and emergency stop")
    add_options(sh)
    sh.set_defaults(func=run_show)


def _print(c: dict[str, Any]) -> None:
    out = console()
    lvl = int(c["site_ceiling"])
    out.print(f"site ceiling: {lvl} ({LEVEL_NAMES[lvl]})")
    out.print(f"auto-locked: {'yes — ' + c['lock_reason'] if c['locked'] else 'no'}")
    out.print(f"emergency stop: {'ENGAGED' if c['estop'] else 'no'}")


def run_set(args: argparse.Namespace) -> int:
    from agent import runtime

    client = api(args)
    if client is not None:
        _print(
            client.call(
                "POST", "/autonomy", json={"level": args.level, "by": args.by, "why": args.why}
            )
        )
        return 0
    ctx = direct_ctx(args)
    try:
        _print(asdict(runtime.set_autonomy(ctx, args.level, args.by, args.why)))
    finally:
        ctx.store.close()
    return 0


def run_show(args: argparse.Namespace) -> int:
    client = api(args)
    if client is not None:
        _print(client.call("GET", "/autonomy"))
        return 0
    ctx = direct_ctx(args)
    try:
        _print(asdict(ctx.control()))
    finally:
        ctx.store.close()
    return 0
