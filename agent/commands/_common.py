"""Options shared by sub-commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from connectors.errors import StoreError
from connectors.site import Site, load_site, with_bacnet_port, with_port

DEFAULT_DB = "facility.duckdb"


#: How ``--help`` and messages name the default site.
DEFAULT_SITE_HELP = (
    "the twin's simulated data hall as the twin serves it: twin/site.yaml with the CRAHs and "
    "the CDU on BACnet/IP (127.0.0.1:47810–47814), the rest on Modbus TCP (127.0.0.1:5020); "
    "--site twin/site.yaml is the same plant all on Modbus"
)


def add_site_option(
    p: argparse.ArgumentParser, *, device_port: bool = False, help: str | None = None
) -> None:
    p.add_argument(
        "--site", type=Path, default=None, help=help or f"site file (default: {DEFAULT_SITE_HELP})"
    )
    if device_port:
        p.add_argument(
            "--device-port", type=int, default=None, metavar="P",
            help="reach every Modbus device of the site on this port (a twin started with --port P)",
        )  # fmt: skip
        p.add_argument(
            "--bacnet-port", type=int, default=None, metavar="P",
            help="reach the site's BACnet/IP devices from this UDP port on, the first device on "
            "P and the others at their offsets (a twin started with --bacnet-port P)",
        )  # fmt: skip


def default_site() -> Site:
    """The default site of the agent's commands: the twin's data hall as the twin serves it
    by default (CRAHs and CDU over BACnet/IP, the rest over Modbus TCP)."""
    from twin.bacnet_map import bacnet_twin_site

    return bacnet_twin_site()


def site_from_args(args: argparse.Namespace) -> Site:
    """The ``--site`` file (default: :func:`default_site`), with its Modbus devices on
    ``--device-port`` and its BACnet devices from ``--bacnet-port`` on, when given.

    A bad file raises :class:`~connectors.errors.SiteConfigError`: one line, exit 2."""
    site = load_site(args.site) if args.site else default_site()
    port = getattr(args, "device_port", None)
    if port is not None:
        site = with_port(site, port)
    bacnet_port = getattr(args, "bacnet_port", None)
    if bacnet_port is not None:
        site = with_bacnet_port(site, bacnet_port)
    return site


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
