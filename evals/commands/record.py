"""``facility-agent record --duration 10m --out DIR``: the last stretch of a live run as a scenario.

Reads the store (``--db``) read-only — stop the running site first, or point at a
copy: DuckDB allows one writer process, and a locked file is a clear error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError


def register(sub: Any) -> None:
    from agent.commands._common import add_db_option, add_site_option

    p = sub.add_parser("record", help="capture the last DURATION of the store as an eval scenario")
    p.add_argument("--duration", required=True, help="how far back, e.g. 30m, 2h")
    p.add_argument("--out", type=Path, required=True, help="scenario folder to write")
    add_db_option(p)
    add_site_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.config import parse_duration
    from connectors.site import load_site
    from connectors.store import Store
    from evals.importers import record
    from twin import default_site_path

    try:
        seconds = parse_duration(args.duration)
    except ValueError as err:
        raise ConfigError(f"--duration: {err}") from None
    if not Path(args.db).is_file():
        raise ConfigError(f"{args.db}: no such database")
    site = load_site(args.site or default_site_path())
    with Store(args.db, read_only=True) as store:
        folder = record(store, site, seconds, args.out)
    print(folder / "scenario.yaml")
    return 0
