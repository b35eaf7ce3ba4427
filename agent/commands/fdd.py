"""``facility-agent fdd learn --equipment chiller_1 --since … --until …``: a chiller's
fault-free reference from the site's own history, stored for the agent.

Reads the chiller's points from the store (``--db``), refuses the windows whose data
quality is poor and the periods with too little operating range
(:mod:`tools.fdd.learn`), fits the reference and appends it to ``fdd_references``
(:func:`tools.fdd.save_reference`). The agent uses it from its next start; the chiller
fault policies (``tools/fdd/policies/chiller_fdd.yaml``) join the library then.
Last line: the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.errors import ConfigError, StoreError
from connectors.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("fdd", help="fault detection: learn a chiller's fault-free reference")
    fsub = p.add_subparsers(dest="fdd_command", metavar="COMMAND", required=True)
    lp = fsub.add_parser(
        "learn", help="fit a chiller's reference on a fault-free period of the site's history"
    )
    add_site_option(lp)
    add_db_option(lp)
    lp.add_argument("--equipment", required=True, help="chiller id, e.g. chiller_1")
    lp.add_argument("--since", required=True, help="start of the fault-free period (UTC, ISO)")
    lp.add_argument("--until", required=True, help="end of the fault-free period (UTC, ISO)")
    lp.add_argument(
        "--min-quality", type=float, default=None,
        help="weakest point's data-quality score a 10-minute window needs (default 0.6)",
    )  # fmt: skip
    lp.add_argument(
        "--dry-run", action="store_true", help="fit and report, but do not store the reference"
    )
    lp.set_defaults(func=learn)


def _when(text: str, flag: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected an ISO time like 2026-07-01T06:00") from None
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def learn(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tools.fdd import save_reference
    from tools.fdd.learn import LearnSettings, learn_reference

    site = site_from_args(args)
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    if not args.db.exists():
        raise StoreError(f"{args.db}: no such database file (run the site or an ingest first)")
    settings = LearnSettings()
    if args.min_quality is not None:
        settings = replace(settings, min_quality=float(args.min_quality))
    with Store(args.db) as store:
        learned = learn_reference(store, site, args.equipment, since, until, settings)
        if not args.dry_run:
            save_reference(store, args.equipment, learned.reference)
    s = learned.summary()
    print(
        f"{args.equipment}: reference fitted on {s['steady_rows']} steady rows "
        f"({learned.steady_rows * settings.sample_s / 3600:.1f} h) of {since:%Y-%m-%d %H:%M} → "
        f"{until:%Y-%m-%d %H:%M}; load {s['load_kw'][0]}–{s['load_kw'][1]} kW, "
        f"TEO {s['teo_c'][0]}–{s['teo_c'][1]} °C, TCI {s['tci_c'][0]}–{s['tci_c'][1]} °C; "
        f"{s['refused_windows']} of {s['quality_windows']} windows refused for data quality"
    )
    print(
        "dry run: not stored"
        if args.dry_run
        else f"stored in {args.db} (fdd_references); the agent uses it from its next start"
    )
    print(json.dumps({**s, "stored": not args.dry_run}), flush=True)
    return 0
