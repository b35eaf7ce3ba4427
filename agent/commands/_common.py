"""Options shared by sub-commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from connectors.errors import StoreError
from connectors.site import Site, load_site, with_port

DEFAULT_DB = "facility.duckdb"


def add_site_option(p: argparse.ArgumentParser, *, device_port: bool = False) -> None:
    p.add_argument(
        "--site",
        type=Path,
        default=None,
        help="site file (default: the twin's simulated data hall, twin/site.yaml)",
    )
    if device_port:
        p.add_argument(
            "--device-port", type=int, default=None, metavar="P",
            help="reach every Modbus device of the site on this port (a twin started with --port P)",
        )  # fmt: skip


def site_from_args(args: argparse.Namespace) -> Site:
    """The ``--site`` file (default: the twin's), on ``--device-port`` when given.

    A bad file raises :class:`~connectors.errors.SiteConfigError`: one line, exit 2."""
    from twin import default_site_path

    site = load_site(args.site or default_site_path())
    port = getattr(args, "device_port", None)
    return with_port(site, port) if port is not None else site


def add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=Path(DEFAULT_DB), help=f"DuckDB file (default: {DEFAULT_DB})"
    )


def existing_db(db: str | Path) -> Path:
    """``db`` when the file is there; else a one-line error (never a new, empty database)."""
    path = Path(db)
    if not path.is_file():
        raise StoreError(
            f"{path}: no such database file (give --db the site's file; `run` or `ingest` "
            "creates one)"
        )
    return path


def user_text(doc: str | None, paragraphs: slice = slice(None)) -> str | None:
    """A module docstring as ``--help`` text: the paragraphs chosen, without reST markup
    (````x```` → x, ``:func:`x``` → x), so no developer notation reaches the user."""
    if not doc:
        return None
    paras = doc.strip().split("\n\n")[paragraphs]
    text = "\n\n".join(paras)
    text = re.sub(r":(?:func|mod|class|data|meth|attr):`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")
