"""Shared by the agent's commands: talk to the running site process, or open the store directly."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.errors import DeviceUnreachable, FacilityError
from connectors.site import Site
from connectors.store import Store

if TYPE_CHECKING:  # heavy (LangGraph, FastAPI): imported when a command runs, not at start-up
    from agent.context import AgentContext


TOKEN_ENV = "FACILITY_AGENT_TOKEN"

WHO_ACTS = (
    f"While a site process runs (run, demo), this goes through its API as the user whose token is "
    f"in ${TOKEN_ENV}. When none runs, it opens the --db file directly and acts as "
    "local:<your OS user>: permission on the file is the authority."
)


def add_options(p: argparse.ArgumentParser, *, device_port: bool = False) -> None:
    add_site_option(p, device_port=device_port)
    add_db_option(p)
    p.epilog = WHO_ACTS


def checkpoint_path(db: Path) -> Path:
    return Path(f"{db}.ckpt.sqlite")


def load(args: argparse.Namespace) -> Site:
    return site_from_args(args)


class _Offline:
    """Writer used when no Modbus writer is available: every write is refused."""

    async def write(self, tag: str, value: float) -> Any:
        raise DeviceUnreachable(f"{tag}: no writer available in this process")

    async def read(self, tag: str) -> float:
        raise DeviceUnreachable(f"{tag}: no writer available in this process")


def site_writer(site: Site) -> Any:
    try:
        mod = importlib.import_module("connectors.writer")
        return mod.ModbusPointWriter(site)
    except (ModuleNotFoundError, AttributeError):
        return _Offline()


def direct_ctx(args: argparse.Namespace, approvals: str = "interrupt") -> AgentContext:
    """Open the store file directly (no site process is running)."""
    site = load(args)
    store = Store(args.db)
    from agent.context import AgentContext

    return AgentContext.build(
        site,
        store,
        site_writer(site),
        approvals=approvals,  # type: ignore[arg-type]
        checkpoint_path=checkpoint_path(args.db),
    )


class Api:
    """A running site's API, called with the Bearer token of ``$FACILITY_AGENT_TOKEN``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token

    def call(
        self, method: str, path: str, json: Any | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        from agent.users import AccessDenied

        if not self.token:
            raise AccessDenied(
                f"a site process runs at {self.url}: set {TOKEN_ENV} to your token "
                "(an admin makes one with: facility-agent user add NAME --role operator)"
            )
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            r = httpx.request(
                method, self.url + path, json=json, params=params, headers=headers, timeout=120.0
            )
        except httpx.HTTPError as err:
            raise FacilityError(
                f"site process at {self.url}: {err or type(err).__name__}"
            ) from None
        if r.status_code >= 400:
            try:
                detail = str(r.json().get("detail"))
            except ValueError:
                detail = r.text.strip()[:300]
            if r.status_code in (401, 403):
                hint = f" (check {TOKEN_ENV})" if r.status_code == 401 else ""
                raise AccessDenied(f"site process refused ({r.status_code}): {detail}{hint}")
            raise FacilityError(f"site process: {detail}")
        return r.json()


def api(args: argparse.Namespace) -> Api | None:
    from agent.api import find_api

    url = find_api(args.db)
    return Api(url, os.environ.get(TOKEN_ENV, "").strip() or None) if url else None


def local_user() -> str:
    """Who acts when the CLI opens the file directly (no site process runs)."""
    from agent.users import local_principal

    return local_principal().name


def decisions_table(rows: list[dict[str, Any]], title: str = "Decisions") -> Table:
    t = Table(title=title, show_lines=False)
    for c in ("time", "policy", "outcome", "level", "set by", "explanation"):
        t.add_column(c, overflow="fold")
    for d in rows:
        lvl = d.get("effective_level", (d.get("verdict") or {}).get("level"))
        by = d.get("level_set_by") or ",".join((d.get("verdict") or {}).get("set_by", []))
        t.add_row(
            str(d.get("ts", ""))[:19],
            str(d.get("policy_id")),
            str(d.get("outcome")),
            str(lvl),
            str(by),
            str(d.get("explanation", ""))[:400],
        )
    return t


def console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=200)
