"""Stale or low-quality data lowers the level: the same fault ends in action on good data and in
decision support when the sensors it rests on are stale or stuck."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from agent_harness import Hall, agent_on
from test_agent_twin import cdu_policy

from agent.context import QualityResult
from agent.decision import Decision
from agent.runtime import decide_once, set_autonomy
from connectors.site import Site
from connectors.store import Store
from twin.faults import Fault


async def _scenario(
    tmp_path: Path, sensor_fault: Fault | None, settle_s: float = 0.0
) -> tuple[Decision, float]:
    """Drive the GPU hot with a CDU pump fault; optionally a sensor fault, ``settle_s`` before deciding."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    hall = Hall(tmp_path / "q.duckdb", poll_s=2.0)
    ctx = agent_on(hall, policies=cdu_policy())
    set_autonomy(ctx, 3, "admin")
    hall.run(900)  # 15 minutes of healthy history for the quality window
    hall.twin.inject(Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7))
    for _ in range(120):
        hall.run(10)
        if hall.twin.values()["gpu.gpu_temp_max"] > 82.0:
            break
    fault_at = hall.clock.now()
    if sensor_fault is not None:
        hall.twin.inject(sensor_fault)
        hall.run(settle_s)
    for _ in range(30):
        hall.run(10)
        res = await decide_once(ctx)
        if res.decisions:
            return res.decisions[0], (hall.clock.now() - fault_at).total_seconds()
    raise AssertionError("no decision")


def test_good_data_acts_stale_data_recommends(tmp_path: Path) -> None:
    good, _ = asyncio.run(_scenario(tmp_path / "a", None))
    assert good.outcome == "executed" and good.level == 3
    # the CDU's own flow reading shows the pump fault that heats the GPUs; the heat balance
    # says it is the pump, not the meter: named as an equipment fault, no sensor distrusted
    assert any("equipment fault: cdu_1 pump" in r for r in good.quality.reasons), good.quality
    stale, _ = asyncio.run(
        _scenario(
            tmp_path / "b", Fault(kind="comm_loss", target="gpu", start_s=0, duration_s=600), 75.0
        )
    )
    assert stale.policy_id == good.policy_id
    assert stale.level <= 1 and stale.outcome in ("recommended", "blocked")
    assert "quality" in stale.verdict.set_by
    assert stale.quality.score < good.quality.score
    assert any("gpu.gpu_temp_max" in r for r in stale.quality.reasons)


def test_stuck_sensor_recommends(tmp_path: Path) -> None:
    try:
        from tools.quality import score  # noqa: F401
    except ImportError:
        pytest.skip("tools.quality.score (flat-line detection) not available yet")
    stuck, _ = asyncio.run(
        _scenario(tmp_path / "c", Fault(kind="stuck", target="gpu.gpu_temp_max", start_s=0), 150.0)
    )
    assert stuck.verdict is not None and stuck.level <= 1 and "quality" in stuck.verdict.set_by
    assert stuck.outcome in ("recommended", "blocked")


def test_level3_write_refused_within_3_min_of_a_sensor_sticking(tmp_path: Path) -> None:
    """Issue 12: the GPU temperature the CDU write rests on sticks (at whatever it read, with
    the twin's RTD noise and 0.01 K resolution): the write that runs at level 3 on good data
    is not carried out alone by the first cycle after the sensor stuck (≤ 3 min), and the
    reason names the stuck sensor. (The decision's quality scope is its condition points and
    the setpoint; widening it to every sensor of the written equipment is the gate's job.)"""
    d, after_s = asyncio.run(
        _scenario(
            tmp_path / "s",
            Fault(kind="stuck", target="gpu.gpu_temp_max", start_s=0),
            settle_s=60.0,  # the first cycle comes 70 s after the sensor stuck
        )
    )
    assert after_s <= 180.0
    assert d.verdict is not None and d.level < 3 and d.outcome != "executed", d.verdict
    assert "quality" in d.verdict.set_by
    assert any("gpu.gpu_temp_max: stuck" in r for r in d.quality.reasons), d.quality


def test_broken_quality_scorer_trusts_nothing(tmp_path: Path) -> None:
    def broken(store: Store, site: Site, now: datetime, tags: Sequence[str]) -> QualityResult:
        raise RuntimeError("scorer bug")

    async def main() -> dict:
        hall = Hall()
        ctx = agent_on(hall, policies=cdu_policy(), quality=broken)
        set_autonomy(ctx, 3, "admin")
        hall.twin.inject(
            Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
        )
        for _ in range(40):
            hall.run(20)
            res = await decide_once(ctx)
            if res.decisions:
                return res.decisions[0]
        raise AssertionError("no decision")

    d = asyncio.run(main())
    assert d.level == 0 and d.outcome == "blocked"
    assert "quality scorer failed" in d.explanation


def test_approval_after_quality_dropped_is_not_carried_out(tmp_path: Path) -> None:
    from agent.runtime import answer_approval, close

    async def main() -> None:
        hall = Hall(tmp_path / "r.duckdb", poll_s=2.0)
        ctx = agent_on(hall, policies=cdu_policy())
        try:
            hall.run(900)
            hall.twin.inject(
                Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
            )
            d = None
            for _ in range(60):
                hall.run(10)
                res = await decide_once(ctx)
                if res.decisions:
                    d = res.decisions[0]
                    break
            assert d is not None and d.outcome == "approval_requested"
            # the GPU temperature sensor goes silent while the request waits
            hall.twin.inject(Fault(kind="comm_loss", target="gpu", start_s=0, duration_s=900))
            hall.run(100)
            out = await answer_approval(ctx, d.approval_id, "approved", "ana")
            assert out is not None and out.actions and "error" in out.actions[0]
            assert hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 27.0
            row = ctx.audit.decision(d.decision_id)
            assert row is not None and row.outcome == "blocked"
            assert "at write time: data quality" in row.explanation
        finally:
            await close(ctx)

    asyncio.run(main())
