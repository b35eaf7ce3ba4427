"""Chiller FDD on the live site: ``fdd learn`` on the twin's own history, then a fouled condenser.

The twin (real physics, offline-stepped) runs from 04:00 with its native control; its
served values go into a real DuckDB store every 10 s. A stuck condenser-water sensor
spoils 05:00–06:00 of the learning period. ``fdd learn`` fits chiller_1's reference on
04:00–12:00 — refusing the stuck hour for data quality — and stores it; the agent, built
from the store as ``run`` builds it, then watches an hour of fault-free operation (no
chiller fault may be raised) and a condenser fouling on chiller_1 from 13:00 (it must
raise ``condenser_fouling``, and nothing else, within the hour).
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from agent.cli import main
from agent.context import AgentContext
from agent.runtime import close, decide_once
from connectors.clock import ManualClock
from connectors.errors import ConfigError
from connectors.site import Site, load_site
from connectors.status import Status
from connectors.store import Store
from connectors.writer import RecordingWriter
from evals.sites import with_poll_floor
from tools.fdd import FddState, save_reference
from tools.fdd.learn import learn_reference
from twin import default_site_path
from twin.faults import Fault
from twin.sim import Twin

SAMPLE_S = 10.0
START = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
T = START.replace(tzinfo=None)
CHILLER_FAULTS = {
    "condenser_fouling", "reduced_condenser_flow", "reduced_evaporator_flow", "refrigerant_leak",
    "refrigerant_overcharge", "excess_oil", "non_condensables",
}  # fmt: skip


class Recorder:
    """The twin stepped at 10 s, its served values appended to the store (a poller's rows)."""

    def __init__(self, site: Site, store: Store, twin: Twin, clock: ManualClock) -> None:
        self.store, self.twin, self.clock = store, twin, clock
        ids = store.register_site(site)
        self.tags = list(ids)
        self.ids = np.array([ids[t] for t in self.tags], dtype=np.int32)

    def run(self, seconds: float) -> None:
        ts, val, st = [], [], []
        for _ in range(round(seconds / SAMPLE_S)):
            self.twin.step(SAMPLE_S)
            now = self.twin.now.replace(tzinfo=None)
            self.clock.set(now)
            vals, down = self.twin.values(), self.twin.unavailable()
            v = np.array([vals.get(t, math.nan) for t in self.tags], dtype=float)
            s = np.where(np.isnan(v), Status.DECODE_ERROR, Status.OK).astype(np.uint8)
            s[[t in down for t in self.tags]] = Status.NOT_CONNECTED
            v[s != Status.OK] = np.nan
            ts.append(np.full(len(self.tags), np.datetime64(now, "us")))
            val.append(v)
            st.append(s)
        n = len(ts)
        self.store.append(np.concatenate(ts), np.tile(self.ids, n), np.concatenate(val),
                          np.concatenate(st))  # fmt: skip


@dataclass
class Live:
    site: Site
    db: Path
    site_file: Path
    summary: dict[str, Any]
    fault_free: pd.DataFrame
    faulted: pd.DataFrame
    policies: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    tmp = tmp_path_factory.mktemp("fdd_live")
    # recorded every 10 s: the site is polled (and judged for freshness) at that rate
    site = with_poll_floor(load_site(default_site_path()), SAMPLE_S)
    site_file = tmp / "site.yaml"
    site_file.write_text(yaml.safe_dump(site.model_dump(mode="json"), sort_keys=False))
    twin = Twin(site, seed=1, start=START)
    twin.inject(Fault(kind="stuck", target="chiller_1.cw_leaving_temp", start_s=3600,
                      duration_s=3600))  # fmt: skip
    clock = ManualClock(T)
    db = tmp / "site.duckdb"
    store = Store(db)
    rec = Recorder(site, store, twin, clock)
    for _ in range(8 * 12):
        rec.run(300.0)
    learned = learn_reference(store, site, "chiller_1", T, T + timedelta(hours=8))
    save_reference(store, "chiller_1", learned.reference)

    async def agent_phase() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
        writer = RecordingWriter(
            site, clock, values=lambda tag: twin.values().get(tag, math.nan), echo=False,
            apply=twin.write,
        )  # fmt: skip
        # built as `run` builds it: references and policies from the store
        ctx = AgentContext.build(
            site=site, store=store, writer=writer, clock=clock, approvals="record",
            checkpoint_path=None,
        )  # fmt: skip
        policies = sorted({i.lp.policy.id for i in ctx.engine.c.instances})
        hb = 0.0

        async def cycles(n: int) -> None:
            nonlocal hb
            for _ in range(n):
                rec.run(300.0)
                hb += 1
                twin.write("agent.heartbeat", hb)
                await decide_once(ctx, trigger="test")

        await cycles(12)  # 12:00–13:00 fault-free
        ff = _fault_decisions(store)
        twin.inject(Fault(kind="condenser_fouling", target="chiller_1", magnitude=0.6))
        await cycles(18)  # 13:00–14:30 fouled
        faulted = _fault_decisions(store)
        faulted = faulted[faulted["ts"] > T + timedelta(hours=9)]
        await close(ctx)
        return ff, faulted, policies

    ff, faulted, policies = asyncio.run(agent_phase())
    store.close()
    return Live(site, db, site_file, learned.summary(), ff, faulted, policies)


def _fault_decisions(store: Store) -> pd.DataFrame:
    d = store.query("SELECT * FROM decisions_latest WHERE fault_class IS NOT NULL")
    d["ts"] = pd.to_datetime(d["ts"])
    return d


def test_learn_fits_on_good_history_and_refuses_the_stuck_hour(live: Live) -> None:
    s = live.summary
    assert s["equipment"] == "chiller_1" and s["sigma_method"].startswith("out_of_fold")
    # the stuck cw_leaving_temp (07:00–08:00) is refused, and nothing much else
    stuck = [e for e in s["refused_examples"] if "cw_leaving_temp" in e]
    assert stuck and 5 <= s["refused_windows"] <= 9, s["refused_examples"]
    assert s["steady_rows"] >= 4 * 360
    # the native control holds 7 °C chilled water: TEO did not move and is pinned
    assert "TEO" in s["pinned"]
    assert set(s["features"]) >= {"power", "cond_dt", "evap_dt"}


def test_reference_is_stored_for_the_agent(live: Live) -> None:
    with Store(live.db, read_only=True) as store:
        st = FddState.load(store)
    ref = st.chiller_reference("chiller_1")
    assert ref is not None and "chiller_1" in ref.source
    assert st.chiller_reference("chiller_2") is None  # learned for chiller_1 only
    assert "chiller_fdd_condenser_fouling" in live.policies


def test_fault_free_hour_raises_no_chiller_fault(live: Live) -> None:
    classes = set(live.fault_free["fault_class"]) & CHILLER_FAULTS
    assert classes == set(), live.fault_free[["ts", "policy_id", "fault_class"]]


def test_condenser_fouling_on_chiller_1_is_named_live(live: Live) -> None:
    d = live.faulted
    chiller = d[d["fault_class"].isin(CHILLER_FAULTS)]
    assert set(chiller["fault_class"]) == {"condenser_fouling"}, chiller[["ts", "fault_class"]]
    first = chiller["ts"].min()
    print(f"condenser_fouling named {first - (T + timedelta(hours=9))} after the fouling began")
    assert first <= T + timedelta(hours=10)  # within the hour after the fouling began
    assert "chiller_1" in " ".join(str(e) for e in chiller["evidence"])


def test_learn_command_dry_run(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([
        "fdd", "learn", "--db", str(live.db), "--site", str(live.site_file),
        "--equipment", "chiller_1", "--since", "2026-07-01T04:00", "--until", "2026-07-01T12:00",
        "--dry-run",
    ])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(out[-1])
    assert doc["stored"] is False and doc["refused_windows"] == live.summary["refused_windows"]
    assert "dry run" in out[-2]


def test_learn_refuses_too_little_history_or_range(live: Live) -> None:
    with Store(live.db, read_only=True) as store:
        with pytest.raises(ConfigError, match=r"chiller_1: .*steady running"):
            learn_reference(store, live.site, "chiller_1", T, T + timedelta(minutes=90))
        with pytest.raises(ConfigError, match="too little operating range"):
            learn_reference(
                store,
                live.site,
                "chiller_1",
                T + timedelta(hours=8),
                T + timedelta(hours=10, minutes=30),
            )
        with pytest.raises(ConfigError, match="crah_1 is a crah"):
            learn_reference(store, live.site, "crah_1", T, T + timedelta(hours=8))


def test_learn_command_names_a_missing_store(tmp_path: Path) -> None:
    rc = main(["fdd", "learn", "--db", str(tmp_path / "none.duckdb"), "--equipment", "chiller_1",
               "--since", "2026-07-01T06:00", "--until", "2026-07-01T12:00"])  # fmt: skip
    assert rc != 0
