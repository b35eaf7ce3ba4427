"""What ``facility-agent run`` says when it starts: one block an operator (or ``journalctl``)
can read to know what this process is — site, devices, points, where its API and console
listen, the autonomy ceiling, the LLM, the schedules."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.site import Site, device_count, protocol_summary
from tools.gate import LEVEL_NAMES


def llm_mode(env: Mapping[str, str] | None = None) -> str:
    """The LLM the process uses, from the same variables as :func:`agent.llm.chat_model_from_env`."""
    e = os.environ if env is None else env
    key, base = e.get("OPENAI_API_KEY"), e.get("OPENAI_BASE_URL")
    if not key and not base:
        return "none (no OPENAI_API_KEY / OPENAI_BASE_URL): policies decide, chat answers commands"
    model = e.get("FACILITY_AGENT_MODEL", "gpt-4o-mini")
    return f"{model} at {base or 'api.openai.com'} (explains and proposes; the gate decides)"


def console_path(routes: Sequence[str]) -> str | None:
    """The console's page among the app's routes (``/console…`` or ``/``), None without one."""
    for p in routes:
        if p.startswith("/console"):
            return "/console" if p.startswith("/console/") or p == "/console" else p
    return "/" if "/" in routes else None


@dataclass(frozen=True)
class Banner:
    site: Site
    db: str
    api_url: str
    routes: Sequence[str]
    ceiling: int
    schedules: Sequence[str]
    ingest: bool
    llm: str

    def lines(self) -> list[str]:
        s = self.site
        page = console_path(self.routes)
        console = f"{self.api_url}{page}" if page else "none in this build"
        poll = (
            f"polling {protocol_summary(s)}"
            if self.ingest
            else "not polling (--no-ingest: another process fills the store)"
        )
        return [
            f"facility-agent run — site {s.name}: {len(s.equipment)} equipment, "
            f"{len(s.point_ids)} points on {device_count(s)} devices",
            f"  database   {self.db}",
            f"  ingest     {poll}",
            f"  API        {self.api_url}  (token in FACILITY_AGENT_TOKEN; /metrics for Prometheus)",
            f"  console    {console}",
            f"  autonomy   ceiling {self.ceiling} ({LEVEL_NAMES[self.ceiling]})",
            f"  LLM        {self.llm}",
            *(f"  schedule   {x}" for x in self.schedules),
            "  stop       Ctrl-C or SIGTERM: flushes readings, checkpoints, lets the heartbeat lapse",
        ]

    def as_dict(self) -> dict[str, Any]:
        """The banner's facts as structured fields (for ``--log-json``)."""
        page = console_path(self.routes)
        return {
            "site": self.site.name,
            "equipment": len(self.site.equipment),
            "points": len(self.site.point_ids),
            "devices": device_count(self.site),
            "modbus_devices": len(self.site.devices()),
            "bacnet_devices": len(self.site.bacnet_devices()),
            "db": self.db,
            "api": self.api_url,
            "console": f"{self.api_url}{page}" if page else None,
            "autonomy_ceiling": self.ceiling,
            "llm": self.llm,
            "schedules": list(self.schedules),
            "ingest": self.ingest,
        }
