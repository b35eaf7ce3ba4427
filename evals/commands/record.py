"""``facility-agent record --duration 10m --out DIR``: the last stretch of a live run as a scenario.

Reads the store (``--db``) read-only; while a site process runs on it, the readings come
through its API instead (``GET /readings``, a viewer's token in ``$FACILITY_AGENT_TOKEN``) and
the scenario is the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError


def register(sub: Any) -> None:
    from agent.commands._agent import WHO_ACTS
    from agent.commands._common import add_db_option, add_site_option

    p = sub.add_parser(
        "record", help="capture the last DURATION of the store as an eval scenario", epilog=WHO_ACTS
    )
    p.add_argument("--duration", required=True, help="how far back, e.g. 30m, 2h")
    p.add_argument("--out", type=Path, required=True, help="scenario folder to write")
    add_db_option(p)
    add_site_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.config import parse_duration
    from connectors.store import Store
    from evals.importers import record

    try:
        seconds = parse_duration(args.duration)
    except ValueError as err:
        raise ConfigError(f"--duration: {err}") from None
    from agent.commands._agent import api
    from agent.commands._common import existing_db, site_from_args

    db = existing_db(args.db)
    site = site_from_args(args)  # the same default as every agent-side command
    client = api(args)
    if client is not None:
        from agent.reads import from_parquet, scratch_store

        data = client.call_bytes("GET", "/readings", params={"seconds": seconds})
        with scratch_store(site, from_parquet(data)) as store:
            folder = record(store, site, seconds, args.out)
    else:
        with Store(db, read_only=True) as store:
            folder = record(store, site, seconds, args.out)
    print(folder / "scenario.yaml")
    return 0
