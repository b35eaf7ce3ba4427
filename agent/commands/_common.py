"""Options shared by sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DB = "facility.duckdb"


def add_site_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--site",
        type=Path,
        default=None,
        help="site file (default: the twin's simulated data hall, twin/site.yaml)",
    )


def add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=Path(DEFAULT_DB), help=f"DuckDB file (default: {DEFAULT_DB})"
    )
