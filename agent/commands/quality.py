"""``facility-agent quality``: data-quality scores of the current window, as a table.

With a site process running on ``--db`` it asks that process (``GET /quality/report``, with
the token in ``$FACILITY_AGENT_TOKEN``); otherwise it opens the file read-only. Both give the
same table (:func:`agent.reads.quality_report`); ``--json`` prints the report as JSON instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.commands._agent import WHO_ACTS, api
from agent.commands._common import add_db_option, add_site_option, existing_db, site_from_args
from agent.reads import parse_window
from connectors.errors import StoreError
from connectors.site import Site
from connectors.store import Store

__all__ = ["parse_window", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "quality", help="data-quality score of every point (current window)", epilog=WHO_ACTS
    )
    add_site_option(p)
    add_db_option(p)
    p.add_argument(
        "--equipment", action="append", default=None, help="only this equipment (repeatable)"
    )
    p.add_argument("--window", default="15m", help="window length, e.g. 15m, 900s (default 15m)")
    p.add_argument(
        "--at",
        default=None,
        help="score the window ending at this UTC time (ISO) or 'latest' (newest reading); default: now",
    )
    p.add_argument("--below", type=float, default=None, help="only points scoring below this")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _open(db: Path) -> Store:
    try:
        return Store(existing_db(db), read_only=True)
    except StoreError as err:
        if "another process" in str(err):
            raise StoreError(
                f"{db} is locked by a running site process (it owns the database read-write) "
                "whose API does not answer here: is it still starting, or not a site process?"
            ) from err
        raise


def report(args: argparse.Namespace, site: Site) -> dict[str, Any]:
    """The quality report, from the running site's API when there is one, else from the file."""
    parse_window(args.window)  # a bad window is the user's error, before anything is opened
    client = api(args)
    if client is not None:
        params: dict[str, Any] = {"window": args.window}
        if args.at is not None:
            params["at"] = args.at
        if args.equipment:
            params["equipment"] = args.equipment
        rep: dict[str, Any] = client.call("GET", "/quality/report", params=params)
        return rep
    from agent.reads import quality_report

    with _open(args.db) as store:
        return quality_report(store, site, args.window, args.at, args.equipment)


def run(args: argparse.Namespace) -> int:
    site = site_from_args(args)
    rep = report(args, site)
    points = rep["points"]
    if args.below is not None:
        points = [p for p in points if p["score"] is not None and p["score"] < args.below]
    if args.json:
        print(json.dumps({**rep, "points": points}))
        return 0
    render(rep, points, Console())
    return 0


def render(rep: dict[str, Any], points: list[dict[str, Any]], out: Console) -> None:
    at = rep["at"].replace("T", " ")[:19]
    table = Table(title=f"data quality {at} UTC, window {rep['window']} — {rep['site']}")
    for col, kw in (
        ("point", {}),
        ("score", {"justify": "right"}),
        ("level", {"justify": "right"}),
        ("worst reason", {}),
    ):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for p in points:
        lvl = int(p["level"])
        style = "green" if lvl == 3 else "yellow" if lvl == 2 else "red"
        score = "—" if p["score"] is None else f"{p['score']:.2f}"
        table.add_row(p["tag"], f"[{style}]{score}[/]", f"[{style}]{lvl}[/]", p["worst_reason"])
    out.print(table)
    worst = rep["equipment"][:5]
    summary = ", ".join(f"{e['equipment']} {e['score']:.2f}" for e in worst)
    out.print(f"{len(rep['points'])} points; weakest equipment: {summary}")
    for f in rep.get("faults", []):  # an older site process's report has none
        out.print(f"[red]equipment fault[/] {f['equipment']} ({f['kind']}): {f['message']}")
    if rep["no_data"]:
        out.print(
            "[yellow]no readings in this window — try --at latest to score the newest data[/]"
        )
