"""``facility-agent report --date YYYY-MM-DD``: the daily report of one site-local day, now.

Written under the site's reports folder (``schedule.report.dir``, beside the database)
as ``report-<site>-<date>.html``: one page with its PNG plots inlined. While a site
process runs, it makes the report (through the API, operator role); otherwise the
``--db`` file is opened read-only.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agent.commands._agent import add_options, api, console, load


def _day(s: str) -> date:
    try:
        return datetime.strptime(s, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: expected YYYY-MM-DD") from None


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="make the daily report (HTML with plots) of one day")
    add_options(p)
    p.add_argument("--date", type=_day, required=True, help="site-local day, YYYY-MM-DD")
    p.add_argument(
        "--out", type=Path, default=None, help="folder (default: the site's reports folder)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.schedule.report import make_report
    from connectors.schedule_config import site_folder
    from connectors.store import Store

    client = api(args) if args.out is None else None
    if client is not None:
        res = client.call("POST", "/reports", params={"date": args.date.isoformat()})
        console().print(f"report: {res['file']}  (served at {client.url}{res['url']})")
        return 0
    site = load(args)
    folder = args.out or site_folder(site.schedule.report.dir, args.db)
    with Store(args.db, read_only=True) as store:
        path = make_report(store, site, args.date, folder)
    console().print(f"report: {path}")
    return 0
