"""``facility-agent audit [--since 1h] [--table decisions] [--json]``: the audit trail.

Shown in full: no explanation or reason is cut (the table folds long texts); ``--json``
prints the rows as one JSON array instead, for scripts.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timedelta
from typing import Any

import duckdb
from rich.table import Table

from agent.commands._agent import add_options, api, console, decisions_table
from agent.commands._common import existing_db
from connectors.clock import utcnow
from connectors.errors import ConfigError
from connectors.store import Store

TABLES = ("decisions", "approvals", "actions", "runs", "autonomy")
COLUMNS = {
    "approvals": ["ts", "approval_id", "decision_id", "state", "by_whom", "why"],
    "actions": ["ts", "tag", "requested", "written", "read_back", "state", "action_id"],
    "runs": ["run_id", "started", "finished", "trigger", "tokens_in", "tokens_out", "status"],
    "autonomy": ["ts", "site_ceiling", "locked", "estop", "by_whom", "why"],
}


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="show the audit trail (decisions, approvals, actions, runs)")
    add_options(p)
    p.add_argument(
        "--since", default=None, help="only rows since this ISO time (UTC) or age like 30m, 2h, 1d"
    )
    p.add_argument(
        "--table", choices=TABLES, default="decisions",
        help="which trail: decisions (default), approvals, actions (writes), runs, autonomy",
    )  # fmt: skip
    p.add_argument(
        "--limit", type=int, default=50, help="at most N rows, newest first (default 50)"
    )
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.set_defaults(func=run)


def parse_since(s: str | None, now: datetime) -> datetime | None:
    if s is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", s.strip())
    if m:
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return now - timedelta(seconds=float(m.group(1)) * mult)
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"--since: {s!r} is neither an ISO time nor an age like 30m") from None


def run(args: argparse.Namespace) -> int:
    out = console()
    since = parse_since(args.since, utcnow())
    client = api(args)
    if client is not None:
        params = {
            "table": args.table,
            "limit": args.limit,
            **({"since": since.isoformat()} if since else {}),
        }
        rows = client.call("GET", "/audit", params=params)
    else:
        from agent.audit import Audit

        store = Store(existing_db(args.db), read_only=True)
        try:
            from agent.api import records

            try:
                rows = records(Audit(store).table(args.table, since, args.limit))
            except duckdb.CatalogException:  # a store no agent has run on yet: no trail
                rows = []
        finally:
            store.close()
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    if args.table == "decisions":
        out.print(decisions_table(rows, f"Audit — decisions ({len(rows)})"))
        return 0
    t = Table(title=f"Audit — {args.table} ({len(rows)})")
    cols = [c for c in COLUMNS[args.table] if rows and c in rows[0]]
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(r[c]) for c in cols))
    out.print(t)
    return 0
