"""The site process's API serves the data-quality score, level and reasons of every point."""

from __future__ import annotations

from pathlib import Path

import httpx
from agent_harness import Hall
from test_agent_twin import cdu_policy

from agent.api import make_app
from agent.context import AgentContext
from agent.users import Role, Users
from twin.faults import Fault


async def _get(ctx: AgentContext, path: str) -> list[dict[str, object]]:
    token = Users(ctx.store).add("vic", Role.VIEWER, "test")
    transport = httpx.ASGITransport(app=make_app(ctx))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://127.0.0.1",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        r = await client.get(path)
        r.raise_for_status()
        out: list[dict[str, object]] = r.json()
        return out


def test_quality_route_names_the_reason_per_point(tmp_path: Path) -> None:
    import asyncio

    hall = Hall(tmp_path / "q.duckdb", poll_s=2.0)
    hall.run(300)
    hall.twin.inject(Fault(kind="stuck", target="chiller_1.chw_supply_temp"))
    hall.run(120)
    ctx = AgentContext.build(hall.site, hall.store, hall.writer, hall.clock, policies=cdu_policy())
    rows = asyncio.run(_get(ctx, "/quality?equipment=chiller_1"))
    by_tag = {r["tag"]: r for r in rows}
    assert set(by_tag) == {t for t in hall.site.points_by_tag if t.startswith("chiller_1.")}
    stuck = by_tag["chiller_1.chw_supply_temp"]
    assert isinstance(stuck["score"], float) and stuck["score"] < 0.95
    assert stuck["level"] in (0, 1, 2)
    reasons = stuck["reasons"]
    assert isinstance(reasons, list) and str(reasons[0]).startswith("stuck")
    assert by_tag["chiller_1.chw_return_temp"]["reasons"] == []
