"""Shared by the agent's commands: talk to the running site process, or open the store directly."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table

from agent.commands._common import add_db_option, add_site_option, existing_db, site_from_args
from connectors.errors import FacilityError
from connectors.site import Site
from connectors.site_writer import SiteWriter
from connectors.store import Store

if TYPE_CHECKING:  # heavy (LangGraph, FastAPI): imported when a command runs, not at start-up
    from agent.context import AgentContext
    from agent.decision import Decision


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


def checkpoint_path(db: str | Path) -> Path:
    """Where a site's checkpoints live: beside its DuckDB file."""
    return Path(f"{db}.ckpt.sqlite")


def load(args: argparse.Namespace) -> Site:
    return site_from_args(args)


def site_writer(site: Site) -> SiteWriter:
    """The site's own writer: Modbus TCP or BACnet/IP to each point's device (site file)."""
    return SiteWriter(site)


def direct_ctx(args: argparse.Namespace, approvals: str = "interrupt") -> AgentContext:
    """Open the store file directly (no site process is running); it must exist."""
    site = load(args)
    store = Store(existing_db(args.db))
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
        """The JSON answer of ``method path``; a refusal or error is one FacilityError line."""
        return self.request(method, path, json, params).json()

    def call_bytes(self, method: str, path: str, params: dict[str, Any] | None = None) -> bytes:
        """The raw body of ``method path`` (Parquet, Prometheus text)."""
        return self.request(method, path, None, params).content

    def request(
        self, method: str, path: str, json: Any | None = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
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
            raise refused(r)
        return r


def api(args: argparse.Namespace) -> Api | None:
    from agent.api import find_api

    url = find_api(args.db)
    return Api(url, os.environ.get(TOKEN_ENV, "").strip() or None) if url else None


def local_user() -> str:
    """Who acts when the CLI opens the file directly (no site process runs)."""
    from agent.users import local_principal

    return local_principal().name


def decision_rows(decisions: Sequence[Decision | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Decisions (records, or their JSON from the API) as rows shaped like the audit's."""
    from agent.decision import decision_from_json

    out = []
    for x in decisions:
        d = decision_from_json(x)
        out.append(
            {
                "ts": d.ts.isoformat(),
                "policy_id": d.policy_id,
                "outcome": d.outcome,
                "effective_level": d.level,
                "level_set_by": ",".join(d.verdict.set_by) if d.verdict else "",
                "explanation": d.explanation,
            }
        )
    return out


def decisions_table(rows: Sequence[Mapping[str, Any]], title: str = "Decisions") -> Table:
    """Audit-shaped decision rows (``decisions`` table, or :func:`decision_rows`) as a table."""
    t = Table(title=title, show_lines=False)
    for c in ("time", "policy", "outcome", "level", "set by", "explanation"):
        t.add_column(c, overflow="fold")
    for d in rows:
        t.add_row(
            str(d["ts"])[:19],
            str(d["policy_id"]),
            str(d["outcome"]),
            str(d["effective_level"]),
            str(d["level_set_by"]),
            str(d["explanation"] or ""),
        )
    return t


def console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=200)


def refused(r: httpx.Response) -> FacilityError:
    """The site process's refusal (a 4xx/5xx answer) as one line: access denied (401/403, with
    a hint at the token) or the route's own detail."""
    from agent.users import AccessDenied

    try:
        detail = str(r.json().get("detail"))
    except ValueError:
        detail = r.text.strip()[:300]
    if r.status_code in (401, 403):
        hint = f" (check {TOKEN_ENV})" if r.status_code == 401 else ""
        return AccessDenied(f"site process refused ({r.status_code}): {detail}{hint}")
    return FacilityError(f"site process: {detail}")
