"""``facility-agent quality``: data-quality scores of the current window, as a table.

Opens the store read-only. DuckDB lets one process own a file read-write; when
the running site process holds it, this command says so (the site's HTTP API
will serve the scores then).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.clock import utcnow
from connectors.errors import ConfigError, StoreError
from connectors.store import Store
from tools.quality import score

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """``15m``, ``900s``, ``1h``, ``90`` (seconds) → timedelta."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--window {text!r}: expected a positive duration like 15m, 900s, 1h")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def register(sub: Any) -> None:
    p = sub.add_parser("quality", help="data-quality score of every point (current window)")
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
    p.set_defaults(func=run)


def _open(db: Path) -> Store:
    if not db.exists():
        raise StoreError(f"{db}: no such database file (run the site or an ingest first)")
    try:
        return Store(db, read_only=True)
    except StoreError as err:
        if "another process" in str(err):
            raise StoreError(
                f"{db} is locked by a running site process (it owns the database read-write); "
                "stop it to read scores here — the site's HTTP API will serve them"
            ) from err
        raise


def run(args: argparse.Namespace) -> int:
    site = site_from_args(args)
    window = parse_window(args.window)
    out = Console()
    with _open(args.db) as store:
        now = _instant(store, args.at)
        tags = None
        if args.equipment:
            known = {e.id for e in site.equipment}
            bad = [e for e in args.equipment if e not in known]
            if bad:
                raise ConfigError(
                    f"--equipment {bad[0]!r}: not in site {site.name} ({', '.join(sorted(known))})"
                )
            tags = [
                f"{eq.id}.{p.name}"
                for eq in site.equipment
                if eq.id in args.equipment
                for p in eq.points
            ]
        rep = score(store, site, now, window, tags=tags)
    df = rep.points.sort_values(["score", "tag"], kind="stable")
    if args.below is not None:
        df = df[df["score"] < args.below]
    th = site.quality
    table = Table(
        title=f"data quality {now:%Y-%m-%d %H:%M:%S} UTC, window {args.window} — {site.name}"
    )
    for col, kw in (
        ("point", {}),
        ("score", {"justify": "right"}),
        ("level", {"justify": "right"}),
        ("worst reason", {}),
    ):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for r in df.itertuples(index=False):
        lvl = th.level(float(r.score))
        style = "green" if lvl == 3 else "yellow" if lvl == 2 else "red"
        table.add_row(
            r.tag, f"[{style}]{r.score:.2f}[/]", f"[{style}]{lvl}[/]", r.worst_reason or ""
        )
    out.print(table)
    eq = rep.equipment()
    worst = eq.sort_values("score").head(5)
    summary = ", ".join(f"{e.equipment} {e.score:.2f}" for e in worst.itertuples(index=False))
    out.print(f"{len(rep.points)} points; weakest equipment: {summary}")
    if (rep.points["freshness"] == 0).all():
        out.print(
            "[yellow]no readings in this window — try --at latest to score the newest data[/]"
        )
    return 0


def _instant(store: Store, at: str | None) -> datetime:
    if at is None:
        return utcnow()
    if at == "latest":
        newest = pd.Timestamp(store.query("SELECT max(ts) AS t FROM readings")["t"].iloc[0])
        if pd.isna(newest):
            raise StoreError(f"{store.path}: no readings")
        return newest.to_pydatetime() + timedelta(microseconds=1)
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        raise ConfigError(
            f"--at {at!r}: expected ISO time (2026-01-01T12:00:00) or 'latest'"
        ) from None
