"""``facility-agent faults [--open] [--since 1d] [--json]``: faults raised and cleared.

A fault (a fault policy, or any policy with a fault class) is raised when its condition has
held for the policy's ``for`` and cleared once the condition has been false for its
``clear_after`` (default 5 min; a condition back within that time keeps the same fault
open). With a site process running on ``--db`` it asks that process (``GET /faults``);
otherwise it reads the file. ``--json`` prints the rows as one JSON array.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from agent.commands._agent import add_options, api, console
from agent.commands._common import existing_db
from agent.commands.audit import parse_since
from connectors.clock import utcnow
from connectors.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("faults", help="faults raised and cleared (open ones with --open)")
    add_options(p)
    p.add_argument("--open", action="store_true", help="only the faults open now")
    p.add_argument(
        "--since",
        default=None,
        help="only faults open at some time since this ISO time (UTC) or age like 2h, 1d",
    )
    p.add_argument(
        "--limit", type=int, default=200, help="at most N faults, newest first (default 200)"
    )
    p.add_argument("--json", action="store_true", help="print the faults as a JSON array")
    p.set_defaults(func=run)


def _duration(s: Any) -> str:
    if s is None:
        return "open"
    n = round(float(s))
    return f"{n // 3600}:{n // 60 % 60:02d}:{n % 60:02d}"


def run(args: argparse.Namespace) -> int:
    since = parse_since(args.since, utcnow())
    client = api(args)
    if client is not None:
        params: dict[str, Any] = {"open": args.open, "limit": args.limit}
        if since is not None:
            params["since"] = since.isoformat()
        rows: list[dict[str, Any]] = client.call("GET", "/faults", params=params)
    else:
        from agent.faults import fault_list

        with Store(existing_db(args.db), read_only=True) as store:
            rows = fault_list(store, since, args.open, args.limit)
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    t = Table(title=f"Faults ({len(rows)}{', open' if args.open else ''})")
    for c in ("state", "raised_at", "cleared_at", "duration", "fault", "severity", "evidence"):
        t.add_column(c, overflow="fold")
    for r in rows:
        state = "open" if r["event"] == "raised" else "cleared"
        where = f"{r['fault_class'] or r['policy_id']} on {r['equipment'] or 'site'}"
        ev = r["evidence"] or ""
        if r.get("cleared_evidence"):
            ev += f" — cleared: {r['cleared_evidence']}"
        t.add_row(
            state,
            str(r["raised_at"]),
            str(r["cleared_at"] or "—"),
            _duration(r["duration_s"]),
            where,
            str(r["severity"]),
            ev,
        )
    console().print(t)
    return 0
