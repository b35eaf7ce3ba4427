"""``facility-agent autonomy`` shows the site's autonomy ceiling; ``autonomy set LEVEL`` (admin) sets it.

Setting the ceiling changes only the ceiling: an emergency stop or an auto-lock
stays engaged until an admin runs ``facility-agent estop clear``.
Levels: 0 observe only, 1 decision support, 2 human validation, 3 full autonomy.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx, local_user
from tools.gate import LEVEL_NAMES


def register(sub: Any) -> None:
    p = sub.add_parser(
        "autonomy", help="show the site's autonomy ceiling, e-stop and auto-lock; set the ceiling"
    )
    add_options(p)
    p.add_argument("--json", action="store_true", help="print the settings as JSON")
    p.set_defaults(func=run_show)
    asub = p.add_subparsers(dest="autonomy_cmd")
    s = asub.add_parser("set", help="set the ceiling (admin; never clears an e-stop or auto-lock)")
    add_options(s)
    s.add_argument(
        "level", type=int, choices=[0, 1, 2, 3],
        help="0 observe only, 1 decision support, 2 human validation, 3 full autonomy",
    )  # fmt: skip
    s.add_argument("--why", default="", help="reason (recorded in the audit)")
    s.set_defaults(func=run_set)
    sh = asub.add_parser("show", help="show the ceiling, auto-lock and emergency stop")
    add_options(sh)
    sh.add_argument("--json", action="store_true", help="print the settings as JSON")
    sh.set_defaults(func=run_show)


def print_control(c: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        lvl = int(c["site_ceiling"])
        print(json.dumps({**c, "site_ceiling_name": LEVEL_NAMES[lvl]}, default=str))
        return
    out = console()
    lvl = int(c["site_ceiling"])
    out.print(f"site ceiling: {lvl} ({LEVEL_NAMES[lvl]})")
    out.print(f"auto-locked: {'yes — ' + c['lock_reason'] if c['locked'] else 'no'}")
    out.print(f"emergency stop: {'ENGAGED' if c['estop'] else 'no'}")
    if c["locked"] or c["estop"]:
        out.print("  (no level above 1 until an admin runs: facility-agent estop clear)")


def run_set(args: argparse.Namespace) -> int:
    from agent import runtime

    client = api(args)
    if client is not None:
        print_control(client.call("POST", "/autonomy", json={"level": args.level, "why": args.why}))
        return 0
    ctx = direct_ctx(args)
    try:
        print_control(asdict(runtime.set_autonomy(ctx, args.level, local_user(), args.why)))
    finally:
        ctx.store.close()
    return 0


def run_show(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    client = api(args)
    if client is not None:
        print_control(client.call("GET", "/autonomy"), as_json)
        return 0
    ctx = direct_ctx(args)
    try:
        print_control(asdict(ctx.control()), as_json)
    finally:
        ctx.store.close()
    return 0
