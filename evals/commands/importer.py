"""``facility-agent import rp1043|lbnl|esb FILE … --out DIR``: a public dataset → an eval scenario folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="turn a public dataset file into an eval scenario folder")
    isub = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    rp = isub.add_parser(
        "rp1043", help="ASHRAE RP-1043 chiller spreadsheet (+ fault-free reference)"
    )
    rp.add_argument("file", type=Path, help="fault file, e.g. cf12.xls (or normal.xls)")
    rp.add_argument(
        "--reference", type=Path, required=True, help="fault-free file to calibrate on (normal.xls)"
    )
    rp.add_argument("--out", type=Path, required=True, help="scenario folder to write")
    rp.add_argument("--cycle", default="5m", help="agent decision cycle (default 5m)")
    rp.set_defaults(func=_rp1043)
    lb = isub.add_parser("lbnl", help="LBNL AHU CSV with per-row ground truth")
    lb.add_argument("file", type=Path, help="the LBNL CSV (e.g. SZCAV.csv)")
    lb.add_argument("--out", type=Path, required=True, help="scenario folder to write")
    lb.add_argument("--cycle", default="1h", help="agent decision cycle (default 1h)")
    lb.add_argument(
        "--fan-heat", type=float, default=None, metavar="K",
        help="the unit's supply-fan temperature rise, from its documentation (default: G36's 0.56 K)",
    )  # fmt: skip
    lb.add_argument(
        "--commission-days", default="", metavar="DAY[,DAY…]",
        help="days (YYYY-MM-DD) the unit was healthy: its fan heat is measured there, "
        "and they are not scored",
    )  # fmt: skip
    lb.set_defaults(func=_lbnl)
    es = isub.add_parser("esb", help="Vanderbilt ESB chiller CSV (normal operation)")
    es.add_argument("file", type=Path, help="the ESB chiller CSV")
    es.add_argument("--out", type=Path, required=True, help="scenario folder to write")
    es.add_argument("--cycle", default="1h", help="agent decision cycle (default 1h)")
    es.set_defaults(func=_esb)


def _rp1043(args: argparse.Namespace) -> int:
    from evals.importers import import_rp1043

    print(import_rp1043(args.file, args.reference, args.out, cycle=args.cycle) / "scenario.yaml")
    return 0


def _lbnl(args: argparse.Namespace) -> int:
    from evals.importers import import_lbnl

    days = [d.strip() for d in args.commission_days.split(",") if d.strip()]
    folder = import_lbnl(
        args.file, args.out, cycle=args.cycle, fan_heat=args.fan_heat, commission_days=days
    )
    print(folder / "scenario.yaml")
    return 0


def _esb(args: argparse.Namespace) -> int:
    from evals.importers import import_esb

    print(import_esb(args.file, args.out, cycle=args.cycle) / "scenario.yaml")
    return 0
