"""``facility-agent schedule list``: each job of the site's schedule, its next start and last run.

While a site process runs, its live scheduler answers (through the API); otherwise the
next starts come from the site file's ``schedule:`` block and the last runs from the
``--db`` file (opened read-only).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from agent.commands._agent import add_options, api, console, load


def register(sub: Any) -> None:
    p = sub.add_parser("schedule", help="the site's scheduled jobs: next start, last run")
    ssub = p.add_subparsers(dest="schedule_cmd")
    ls = ssub.add_parser("list", help="each job, its next start and its last run")
    for q in (p, ls):
        add_options(q)
        q.add_argument("--interval", type=float, default=None, help="as `run --interval N`")
        q.add_argument("--json", action="store_true", help="print JSON")
        q.set_defaults(func=run_list)


def _offline(args: argparse.Namespace) -> dict[str, Any]:
    from agent.schedule.service import planned
    from connectors.errors import StoreError
    from connectors.store import Store

    site = load(args)
    last: dict[str, Any] = {}
    if args.db.exists():
        try:
            with Store(args.db, read_only=True) as store:
                tables = set(store.query("SELECT table_name FROM duckdb_tables()")["table_name"])
                if "job_runs" in tables:
                    last = _last(store)
        except StoreError:
            pass
    return {"running": False, "jobs": planned(site.schedule, args.interval), "last": last}


def _last(store: Any) -> dict[str, Any]:
    df = store.query(
        """SELECT job, started, duration_s, status FROM job_runs
           QUALIFY row_number() OVER (PARTITION BY job ORDER BY started DESC) = 1"""
    )
    return {
        str(r["job"]): {
            "started": r["started"].isoformat(),
            "duration_s": float(r["duration_s"]),
            "status": r["status"],
        }
        for r in df.to_dict("records")
    }


def run_list(args: argparse.Namespace) -> int:
    client = api(args)
    data = client.call("GET", "/schedule") if client is not None else _offline(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    where = "live, from the running site" if data["running"] else "from the site file"
    t = Table(title=f"Schedule ({where})")
    for c in (
        "job",
        "next start (site time)",
        "grace s",
        "last run (UTC)",
        "status",
        "took s",
        "what",
    ):
        t.add_column(c, overflow="fold")
    for j in data["jobs"]:
        last = data["last"].get(j["job"], {})
        t.add_row(
            j["job"],
            (j["next_run"] or "with run")[:19].replace("T", " "),
            f"{j['grace_s']:g}",
            str(last.get("started", "—"))[:19].replace("T", " "),
            str(last.get("status", "—")),
            f"{last['duration_s']:.2f}" if "duration_s" in last else "—",
            j["what"],
        )
    console().print(t)
    return 0
