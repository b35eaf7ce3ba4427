"""The agent of an eval run: its context, its cycle, and what it left in the store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from agent.context import AgentContext
from agent.runtime import close, decide_once, expire_approvals, recalibrate_if_due
from connectors.clock import ManualClock
from connectors.site import Site
from connectors.store import Store
from connectors.writer import PointWriter
from evals.scenario import Scenario
from evals.sites import policy_path
from tools.fdd import ChillerReference, FddState
from tools.policies.loader import load_policies
from tools.site_state import SiteState


def site_state(scn: Scenario, reference: ChillerReference | None) -> SiteState:
    """The agent's fault detection knows this scenario's plant, nothing of another one
    (a chiller reference calibrated on RP-1043 must not judge the twin's chillers)."""
    fdd = FddState()
    fdd.set_ahu_config(scn.ahu.config())
    if reference is not None:
        fdd.set_chiller_reference(reference)
    return SiteState(fdd=fdd)


def agent_context(
    scn: Scenario,
    folder: Path,
    site: Site,
    store: Store,
    writer: PointWriter,
    clock: ManualClock,
    reference: ChillerReference | None = None,
) -> AgentContext:
    """An AgentContext for the run: the scenario's policies (default: the library)."""
    policies = None
    if scn.agent.policies is not None:
        policies = load_policies([policy_path(p, folder) for p in scn.agent.policies])
    ctx = AgentContext.build(
        site=site,
        store=store,
        writer=writer,
        clock=clock,
        policies=policies,
        approvals="record",
        checkpoint_path=None,
        site_state=site_state(scn, reference),
    )
    # the scenario's time to live, on every route that reads it (expiry and answers alike)
    ctx.approval_ttl_s = float(scn.agent.approval_ttl)
    return ctx


async def decide(ctx: AgentContext) -> None:
    """One scheduled cycle, as ``agent.runtime.run_forever`` runs it: stale approval
    requests expire after the context's time to live (nobody answers them in an eval), the
    model is refitted when due, then the agent decides."""
    await expire_approvals(ctx)
    recalibrate_if_due(ctx)
    await decide_once(ctx, trigger="eval")


async def close_agent(ctx: AgentContext) -> None:
    await close(ctx)


def table(store: Store, name: str) -> pd.DataFrame:
    try:
        return store.query(f"SELECT * FROM {name}")
    except Exception:
        return pd.DataFrame()


def write_log(writes: pd.DataFrame) -> pd.DataFrame:
    """The writer's record as the eval logs it: ``ts, tag, value`` (the value asked for)."""
    return writes[["ts", "tag", "requested"]].rename(columns={"requested": "value"})


def writes_with_decisions(writes: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Attach the journal's decision id to each logged write (same tag and value, in order)."""
    if writes.empty:
        return writes.assign(decision_id=pd.Series(dtype=object))
    out = writes.copy()
    out["decision_id"] = None
    if actions.empty or "tag" not in actions:
        return out
    acts = actions[actions["state"].isin(["executing", "done", "failed", "rolled_back"])]
    pool: dict[str, list[tuple[float, str]]] = {}
    for tag, val, did in zip(
        acts["tag"], acts["written"].fillna(acts["clamped"]), acts["decision_id"], strict=True
    ):
        if val is not None and not pd.isna(val):
            pool.setdefault(str(tag), []).append((float(val), str(did)))
    for i, row in out.iterrows():
        cands = pool.get(str(row["tag"]), [])
        for j, (v, did) in enumerate(cands):
            if abs(v - float(row["value"])) <= 1e-6 * max(1.0, abs(v)):
                out.at[i, "decision_id"] = did
                cands.pop(j)
                break
    return out
