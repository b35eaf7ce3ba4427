"""``decide --dry-run``: the decisions a cycle would make now — policies, quality, what-if,
the whole gate — with nothing recorded, requested or written, and the policy engine's timers
left as they were (the next real cycle fires as if no dry run had happened)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent_harness import Hall, TwinDirectWriter

from agent.dryrun import dry_run
from agent.runtime import close, decide_once
from tools.policies import policies_from_dicts


def _policy() -> list[Any]:
    return policies_from_dicts(
        [
            {
                "id": "cdu_lower",
                "description": "GPUs drawing power: lower the CDU supply set point",
                "severity": "low",
                "when": {"all": [{"point": "gpu.it_power", "op": ">", "value": 1.0}]},
                "cooldown": "30m",
                "then": {
                    "action": "write_setpoint",
                    "target": "cdu_1.coolant_supply_setpoint",
                    "delta": -1.0,
                    "min": 20.0,
                    "max": 40.0,
                },
                "ceiling": 3,
                "min_quality": 0.1,
                "whatif": "optional",
            }
        ]
    )


def _counts(hall: Hall) -> dict[str, int]:
    return {
        t: int(hall.store.query(f"SELECT count(*) AS n FROM {t}")["n"].iloc[0])
        for t in ("runs", "decisions", "approvals", "actions")
    }


def test_a_dry_run_decides_like_a_cycle_and_leaves_no_trace(tmp_path: Path, agent_on: Any) -> None:
    async def main() -> None:
        hall = Hall(tmp_path / "d.duckdb")
        hall.run(300)
        ctx = agent_on(hall, policies=_policy(), approvals="record")
        try:
            before = _counts(hall)
            dry = await dry_run(ctx)
            again = await dry_run(ctx)  # a second dry run: the first started no cool-down
            assert [d.policy_id for d in dry] == ["cdu_lower"] == [d.policy_id for d in again]
            d = dry[0]
            assert d.verdict is not None and d.explanation.startswith(d.description)
            assert d.action.changes[0].tag == "cdu_1.coolant_supply_setpoint"
            assert _counts(hall) == before  # no run, decision, approval or action row
            assert isinstance(hall.writer, TwinDirectWriter) and hall.writer.writes == []
            real = await decide_once(ctx, "cli")  # the engine's timers were left alone
            assert [x.policy_id for x in real.decisions] == ["cdu_lower"]
            assert real.decisions[0].verdict is not None
            assert real.decisions[0].verdict.level == d.verdict.level
            assert _counts(hall)["decisions"] > before["decisions"]
        finally:
            await close(ctx)
            hall.store.close()

    asyncio.run(main())
