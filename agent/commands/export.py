"""``facility-agent export --since … --to DIR``: raw readings as hive-partitioned Parquet, now.

Writes ``DIR/readings/site=<site>/date=YYYY-MM-DD/part-….parquet`` (zstd) for the raw
readings from ``--since`` (a date or a UTC time) up to ``--until`` (default: the newest),
each file's row count verified against the database. Nothing is deleted (retention
does that, nightly). Opens the ``--db`` file read-only: stop the site process first, or
read the lake retention already wrote.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.commands._agent import add_options, console, load


def _when(s: str) -> datetime:
    try:
        return datetime.fromisoformat(s).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{s!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        ) from None


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export raw readings to hive-partitioned Parquet")
    add_options(p)
    p.add_argument("--since", type=_when, required=True, help="UTC date or time, ISO")
    p.add_argument("--until", type=_when, default=None, help="UTC date or time (exclusive)")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="lake folder")
    p.add_argument("--json", action="store_true", help="print the files as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.lake import export_range
    from connectors.store import Store

    site = load(args)
    with Store(args.db, read_only=True) as store:
        cur = store.cursor()
        try:
            files = export_range(cur, args.to, site.name, args.since, args.until)
        finally:
            cur.close()
    if args.json:
        print(json.dumps([f.as_json() for f in files], indent=2))
        return 0
    out = console()
    for f in files:
        out.print(f"{f.path}  {f.rows:,} rows  {f.bytes:,} bytes")
    out.print(f"{len(files)} file(s), {sum(f.rows for f in files):,} rows")
    return 0
