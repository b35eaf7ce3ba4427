"""Per-site state: owned by the site's context, stored in its DuckDB, kept across a restart.

* FDD references and AHU settings round-trip through the store (newest wins);
* a policy's cool-down still holds after the agent restarts on the same database;
* a chiller reference saved into the store makes the live agent (the context ``run`` and
  ``demo`` build) run the chiller fault policies — on the twin, over Modbus.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
from agent_harness import Hall, on_hall

from agent.context import AgentContext
from agent.runtime import answer_approval, close, decide_once, set_autonomy
from connectors.store import Store
from tools.fdd import ChillerReference, FddState, save_ahu_config, save_reference
from tools.fdd.ahu import LAB_GRADE
from tools.fdd.derived import wide
from tools.policies import LoadedPolicy, policies_from_dicts
from tools.policies.state import PolicyState
from tools.site_state import SiteState


def _ref(source: str, bias: float = 0.0) -> ChillerReference:
    return ChillerReference(
        coef={"power": [100.0 + bias] + [0.0] * 9},
        sigma={"power": 1.0},
        flow_ref={},
        scale=[7.0, 29.0, 500.0],
        bounds={"TEO": [6.0, 8.0], "TCI": [25.0, 30.0], "Q": [100.0, 700.0]},
        window_rows=60,
        n_rows=500,
        source=source,
    )


def test_fdd_settings_round_trip_through_the_store(tmp_path: Path) -> None:
    db = tmp_path / "site.duckdb"
    with Store(db) as store:
        assert FddState.load(store).chiller_reference("chiller_1") is None
        save_reference(store, "chiller_1", _ref("first"))
        save_reference(store, "chiller_1", _ref("second", bias=5.0))  # newest wins
        save_reference(store, "*", _ref("every chiller"))
        save_ahu_config(store, "ahu_1", replace(LAB_GRADE, fan_heat=1.1))
    with Store(db) as store:  # a restart
        st = FddState.load(store)
    r1 = st.chiller_reference("chiller_1")
    assert r1 is not None and r1.source == "second" and r1.coef["power"][0] == 105.0
    r2 = st.chiller_reference("chiller_2")  # no own reference: the site-wide one
    assert r2 is not None and r2.source == "every chiller"
    assert st.ahu_config("ahu_1") == replace(LAB_GRADE, fan_heat=1.1)
    assert st.ahu_config("ahu_2").fan_heat != 1.1  # the G36 defaults


def test_policy_state_keeps_last_firing_per_instance(tmp_path: Path) -> None:
    db = tmp_path / "site.duckdb"
    t = pd.Timestamp("2026-07-01 10:00").to_pydatetime()
    with Store(db) as store:
        ps = PolicyState.load(store)
        ps.fired("p@chiller_1", "p", t)
        ps.fired("p@chiller_1", "p", t + timedelta(minutes=1))  # replaces, one row per instance
        ps.fired("q", "q", t)
    with Store(db) as store:
        again = PolicyState.load(store)
        n = int(store.query("SELECT count(*) AS n FROM policy_state")["n"].iloc[0])
    assert again.last_fired == {"p@chiller_1": t + timedelta(minutes=1), "q": t}
    assert n == 2


def _always_policy(cooldown: str = "2m", ceiling: int = 2) -> list[LoadedPolicy]:
    """Fires whenever it may (a constant condition), asks approval to lower the CDU set point."""
    return list(
        policies_from_dicts(
            [
                {
                    "id": "nudge_cdu",
                    "description": "lower the CDU supply set point",
                    "when": {
                        "all": [{"derived": "const", "args": {"value": 1}, "op": ">", "value": 0.5}]
                    },
                    "cooldown": cooldown,
                    "then": {
                        "action": "write_setpoint",
                        "target": "cdu_1.coolant_supply_setpoint",
                        "delta": -0.5,
                        "min": 20.0,
                        "max": 40.0,
                    },
                    "ceiling": ceiling,
                    "whatif": "none",
                }
            ],
            "test",
        )
    )


def test_cooldown_holds_across_a_restart(tmp_path: Path, port: int) -> None:
    """Issue 11 finding 8: an approved write, the site restarts, and ten seconds later the
    same policy must not ask again inside its 2-minute cool-down."""

    async def body(hall: Hall) -> None:
        pols = _always_policy()
        ckpt = tmp_path / "ckpt.sqlite"
        ctx = AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, policies=pols, checkpoint_path=ckpt
        )
        res = await decide_once(ctx)
        d = res.decisions[0]
        assert d.policy_id == "nudge_cdu" and d.outcome == "approval_requested"
        assert d.approval_id is not None
        out = await answer_approval(ctx, d.approval_id, "approved", "ana", "go")
        assert out is not None
        act = next(a for a in out.actions if a.get("tag") == "cdu_1.coolant_supply_setpoint")
        assert (
            act["state"] == "done" and hall.twin.values()["cdu_1.coolant_supply_setpoint"] == 26.5
        )
        await close(ctx)

        path = hall.store.path  # the site process restarts on the same database
        hall.store.close()
        hall.store = Store(path)
        hall.run(10)
        ctx = AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, policies=pols, checkpoint_path=ckpt
        )
        try:
            assert (await decide_once(ctx)).decisions == []  # still cooling down
        finally:
            await close(ctx)

        # the same restart without the stored state would have asked again at once
        forgetful = AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, policies=pols, site_state=SiteState()
        )
        try:
            assert [x.policy_id for x in (await decide_once(forgetful)).decisions] == ["nudge_cdu"]
        finally:
            await close(forgetful)

        hall.run(120)  # and once the cool-down has passed, the restarted agent asks again
        ctx = AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, policies=pols, checkpoint_path=ckpt
        )
        try:
            assert ctx.engine.state.last_fired  # loaded from the store
        finally:
            await close(ctx)

    on_hall(tmp_path / "site.duckdb", port, body)


def test_auto_lock_history_survives_a_restart(tmp_path: Path, port: int) -> None:
    """The auto-lock counts autonomous actions over its window, also those made before a
    restart (the audit's record of them seeds the restarted context's lock)."""

    async def body(hall: Hall) -> None:
        pols = _always_policy(ceiling=3)
        ctx = AgentContext.build(hall.site, hall.store, hall.writer, hall.clock, policies=pols)
        set_autonomy(ctx, 3, "admin")
        d = (await decide_once(ctx)).decisions[0]
        assert d.outcome == "executed" and d.level == 3
        assert len(ctx.autolock.times) == 1
        await close(ctx)

        path = hall.store.path
        hall.store.close()
        hall.store = Store(path)
        hall.run(10)
        again = AgentContext.build(hall.site, hall.store, hall.writer, hall.clock, policies=pols)
        try:
            assert list(again.autolock.times) == list(ctx.autolock.times)
        finally:
            await close(again)

    on_hall(tmp_path / "site.duckdb", port, body)


def _chiller_history(hall: Hall, equipment: str, seconds: float) -> pd.DataFrame:
    now = hall.clock.now()
    tags = [f"{equipment}.{p.name}" for p in hall.site.equipment_by_id(equipment).points]
    h = hall.store.window(tags, now - timedelta(seconds=seconds), now + timedelta(microseconds=1))
    return wide(h[h["status"] == 0].drop(columns="status"), f"{equipment}.")


def test_saved_chiller_reference_runs_chiller_fdd_in_the_live_agent(
    tmp_path: Path, port: int
) -> None:
    """The context ``run``/``demo`` build (no policy list: the library) picks up a chiller
    reference saved into the store and runs the chiller FDD policies with it. The reference
    is the healthy chiller_1's own history with the expected compressor power lowered by
    40 kW, so the healthy chiller reads as condenser fouling (power up, water side as
    expected); chiller_2, without a reference, raises nothing."""

    async def body(hall: Hall) -> None:
        ref = ChillerReference.fit(_chiller_history(hall, "chiller_1", 7200), source="twin")
        ref.coef["power"][0] -= 40.0  # the intercept multiplies a column of ones
        save_reference(hall.store, "chiller_1", ref)

        ctx = AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, checkpoint_path=tmp_path / "c.sqlite"
        )
        try:
            assert ctx.state.fdd.chiller_reference("chiller_1") is not None
            assert "chiller_fdd_condenser_fouling" in {
                i.lp.policy.id for i in ctx.engine.c.instances
            }
            res = await decide_once(ctx)
            fdd = [d for d in res.decisions if d.policy_id.startswith("chiller_fdd")]
            assert [(d.policy_id, d.equipment, d.fault_class) for d in fdd] == [
                ("chiller_fdd_condenser_fouling", "chiller_1", "condenser_fouling")
            ]
            logged = ctx.audit.decision(fdd[0].decision_id)
            assert logged is not None and logged.policy_id == "chiller_fdd_condenser_fouling"
        finally:
            await close(ctx)

    on_hall(tmp_path / "site.duckdb", port, body, warm_s=7200)


def test_without_a_reference_the_library_has_no_chiller_fdd(tmp_path: Path) -> None:
    hall = Hall(tmp_path / "s.duckdb")
    ctx = AgentContext.build(hall.site, hall.store, hall.writer, hall.clock)
    ids = {i.lp.policy.id for i in ctx.engine.c.instances}
    assert ids  # the library applies …
    assert not any(p.startswith("chiller_fdd") for p in ids)  # … without chiller FDD
    asyncio.run(close(ctx))
