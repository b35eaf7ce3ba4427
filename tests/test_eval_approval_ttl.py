"""An eval scenario's ``agent.approval_ttl`` is its agent's time to live, on every route.

It used to reach only the cycle's expiry sweep (``decide``), while ``answer_approval`` and a
restart's resumption read ``AgentContext.approval_ttl_s`` — the default 15 min — so a scenario
could not set the time to live its approvals are answered against.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from connectors.clock import ManualClock
from connectors.store import Store
from connectors.writer import RecordingWriter
from evals.scenario import load_scenario
from evals.shipped import SCENARIOS_DIR
from evals.sites import scenario_site
from evals.wiring import agent_context, close_agent
from tools.gate import APPROVAL_TTL_S


def test_the_scenarios_ttl_is_the_contexts(tmp_path: Path) -> None:
    scn, folder = load_scenario(SCENARIOS_DIR / "twin-injection")
    assert scn.agent.approval_ttl == APPROVAL_TTL_S
    scn = scn.model_copy(update={"agent": scn.agent.model_copy(update={"approval_ttl": 90.0})})
    site = scenario_site(scn, folder)
    clock = ManualClock()
    store = Store(tmp_path / "t.duckdb")
    writer = RecordingWriter(site, clock, values=lambda tag: math.nan)
    ctx = agent_context(scn, folder, site, store, writer, clock)
    try:
        assert ctx.approval_ttl_s == 90.0
    finally:
        asyncio.run(close_agent(ctx))
        store.close()
