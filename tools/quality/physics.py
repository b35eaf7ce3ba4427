"""Cross-sensor physics consistency, configured per equipment kind, evaluated in DuckDB.

A :class:`PhysicsRule` names the equipment kind it applies to, the *roles* it
needs (points chosen by Brick class or point name — on the same equipment, or
anywhere on the site for cross-equipment rules such as GPU vs CDU coolant), a
SQL condition ``when`` it applies (e.g. the chiller is running) and a SQL
condition ``violated``. Role names are the SQL column names.

Readings are averaged per point into ``bucket_s`` buckets, pivoted to one row per
(rule, equipment, bucket) and both conditions are evaluated for every bucket in
one query. The share of checked buckets that violate the rule — over the window
and over the last few buckets — lowers the score of every *involved* point, with
a reason that quotes the numbers.

Physics used (water: ρ·cp ≈ 1 kg/L × 4.19 kJ/(kg·K), so L/s × K × 4.19 = kW):

* chiller: leaving chilled water colder than entering while running;
* chiller first law: Q_cond = Q_evap + P_compressor (ASHRAE Handbook —
  Fundamentals, ch. 2; RP-1043 reports this "heat balance" within ±5–15 %);
* pump / CDU: running at speed with no flow;
* UPS: output power ≤ input power (efficiency ≤ 1) unless on battery;
* chiller, pump, tower, CRAH: a run status of 0 while the power meter shows a load is a
  contradiction — the status input is implicated (booleans have no other cross-check);
* GPU: die temperature above the coolant supplied to it (heat flows downhill).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from connectors.site import Site
from connectors.store import Store
from tools.quality.config import QualityConfig
from tools.quality.grid import CellGrid
from tools.quality.check import Check

CP_WATER = 4.19  # kJ/(kg·K) × 1 kg/L → kW per (L/s · K)


@dataclass(frozen=True)
class Role:
    """Points that play one part in a rule: matched by Brick class or point name."""

    name: str
    bricks: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    scope: Literal["equipment", "site"] = "equipment"
    kinds: tuple[str, ...] = ()  # for scope "site": equipment kinds to look in
    involved: bool = True  # a violation lowers this role's points
    optional: bool = False
    agg: Literal["avg", "min", "max", "sum"] = "avg"  # "sum": residuals only


@dataclass(frozen=True)
class PhysicsRule:
    id: str
    kind: str
    roles: tuple[Role, ...]
    when: str  # SQL over role columns; NULL counts as "does not apply"
    violated: str  # SQL over role columns
    message: str  # str.format over role values (and any `extra` columns)
    extra: tuple[tuple[str, str], ...] = ()  # (column, SQL) computed per bucket for the message


_SUP = Role(
    "sup", ("Leaving_Chilled_Water_Temperature_Sensor", "Chilled_Water_Supply_Temperature_Sensor")
)
_RET = Role(
    "ret", ("Entering_Chilled_Water_Temperature_Sensor", "Chilled_Water_Return_Temperature_Sensor")
)
_RUN = Role("run", ("Run_Status", "On_Status"), involved=False, optional=True)
_PWR = Role("pwr", ("Electric_Power_Sensor",), involved=False, optional=True)
_FLOW_BRICKS = (
    "Chilled_Water_Flow_Sensor",
    "Condenser_Water_Flow_Sensor",
    "Water_Flow_Sensor",
    "Coolant_Flow_Sensor",
    "Flow_Sensor",
)

DEFAULT_RULES: tuple[PhysicsRule, ...] = (
    PhysicsRule(
        id="chiller_supply_below_return",
        kind="chiller",
        roles=(_SUP, _RET, _RUN, _PWR),
        when="coalesce(run > 0.5, pwr > 5)",
        violated="sup > ret + 0.3",
        message="chilled-water supply {sup:.1f} °C is not colder than return {ret:.1f} °C "
        "while running (sensor drift/bias, or a real fault)",
    ),
    PhysicsRule(
        id="chiller_heat_balance",
        kind="chiller",
        roles=(
            _SUP,
            _RET,
            Role("chw_flow", ("Chilled_Water_Flow_Sensor",)),
            Role("cw_in", ("Entering_Condenser_Water_Temperature_Sensor",)),
            Role("cw_out", ("Leaving_Condenser_Water_Temperature_Sensor",)),
            Role("cw_flow", ("Condenser_Water_Flow_Sensor",)),
            Role("pwr", ("Electric_Power_Sensor",)),
            _RUN,
        ),
        when="coalesce(run > 0.5, TRUE) AND pwr > 5",
        violated=f"abs(chw_flow * (ret - sup) * {CP_WATER} + pwr - cw_flow * (cw_out - cw_in) * {CP_WATER})"
        f" > 0.2 * greatest(cw_flow * (cw_out - cw_in) * {CP_WATER}, chw_flow * (ret - sup) * {CP_WATER} + pwr, 1)",
        message="heat balance off by {imbalance:.0%}: evaporator {qe:.0f} kW + compressor {pwr:.0f} kW "
        "vs condenser {qc:.0f} kW (a flow or temperature reads wrong: drift/bias?)",
        extra=(
            ("qe", f"chw_flow * (ret - sup) * {CP_WATER}"),
            ("qc", f"cw_flow * (cw_out - cw_in) * {CP_WATER}"),
            (
                "imbalance",
                f"abs(chw_flow * (ret - sup) * {CP_WATER} + pwr - cw_flow * (cw_out - cw_in) * {CP_WATER})"
                f" / greatest(cw_flow * (cw_out - cw_in) * {CP_WATER}, 1)",
            ),
        ),
    ),
    PhysicsRule(
        id="pump_on_without_flow",
        kind="pump",
        roles=(
            Role("run", ("Run_Status", "On_Status")),
            Role("speed", ("Speed_Sensor",), involved=False, optional=True),
            Role("flow", _FLOW_BRICKS),
        ),
        when="run > 0.5 AND coalesce(speed > 10, TRUE)",
        violated="flow < 0.5",
        message="pump reports running but flow is {flow:.2f} L/s",
    ),
    PhysicsRule(
        id="cdu_pump_without_flow",
        kind="cdu",
        roles=(Role("speed", ("Speed_Sensor",)), Role("flow", ("Coolant_Flow_Sensor",))),
        when="speed > 10",
        violated="flow < 0.5",
        message="CDU pump at {speed:.0f} % but coolant flow is {flow:.2f} L/s",
    ),
    PhysicsRule(
        id="ups_output_not_above_input",
        kind="ups",
        roles=(
            Role("pin", names=("input_power",)),
            Role("pout", names=("output_power",)),
            Role("batt", names=("on_battery",), involved=False, optional=True),
        ),
        when="coalesce(batt < 0.5, TRUE) AND pin > 1",
        violated="pout > pin * 1.01 + 2",
        message="UPS output {pout:.0f} kW above input {pin:.0f} kW (efficiency > 100 %)",
    ),
    *(
        PhysicsRule(
            id=f"{kind}_off_but_drawing_power",
            kind=kind,
            roles=(
                Role("run", ("Run_Status", "On_Status")),
                Role("pwr", ("Electric_Power_Sensor",), involved=False),
            ),
            when="TRUE",
            violated="run < 0.5 AND pwr > 2",
            message="reports not running ({run:.0f}) while drawing {pwr:.1f} kW "
            "(a status input that contradicts the power meter)",
        )
        for kind in ("chiller", "pump", "cooling_tower", "crah")
    ),
    PhysicsRule(
        id="gpu_above_coolant",
        kind="gpu_cluster",
        roles=(
            Role("gpu", names=("gpu_temp_avg", "gpu_temp")),
            Role(
                "cool",
                ("Coolant_Supply_Temperature_Sensor",),
                scope="site",
                kinds=("cdu",),
                agg="min",
            ),
        ),
        when="TRUE",
        violated="gpu < cool - 0.5",
        message="GPU temperature {gpu:.1f} °C below the coolant supplied to it {cool:.1f} °C",
    ),
)


def _matches(role: Role, brick: str | None, name: str) -> bool:
    return (brick is not None and brick in role.bricks) or name in role.names


def role_table(site: Site, scored: pd.DataFrame, rules: tuple[PhysicsRule, ...]) -> pd.DataFrame:
    """(rule_id, anchor equipment, role, point_id, tag, involved, poll_s) for every rule instance.

    ``scored`` is the point table (tag → point_id, poll_s). A rule is instantiated for
    an equipment only when every non-optional role finds at least one point.
    """
    tags_ = scored["tag"].tolist()  # plain lists: iterating a pandas string column is slow
    pid = dict(zip(tags_, scored["point_id"].astype(int).tolist(), strict=True))
    poll = dict(zip(tags_, scored["poll_s"].astype(float).tolist(), strict=True))
    rows: list[tuple[object, ...]] = []
    # candidates (tag, brick, name) per equipment, only for the kinds the rules look at
    kinds = {r.kind for r in rules} | {k for r in rules for ro in r.roles for k in ro.kinds}
    per_eq: dict[str, list[tuple[str, str | None, str]]] = {}
    by_kind: dict[str, list[tuple[str, str | None, str]]] = {}
    for eq in site.equipment:
        if eq.kind.value in kinds:
            cands = [(f"{eq.id}.{p.name}", p.brick, p.name) for p in eq.points]
            per_eq[eq.id] = cands
            by_kind.setdefault(eq.kind.value, []).extend(cands)
    for rule in rules:
        site_cands = {
            role.name: [c for k in role.kinds for c in by_kind.get(k, [])]
            for role in rule.roles
            if role.scope != "equipment"
        }
        for eq in site.equipment:
            if eq.kind.value != rule.kind:
                continue
            found: list[tuple[str, str, bool]] = []
            complete = True
            for role in rule.roles:
                cands = per_eq[eq.id] if role.scope == "equipment" else site_cands[role.name]
                tags = [t for t, b, n in cands if _matches(role, b, n) and pid.get(t, -1) >= 0]
                if not tags and not role.optional:
                    complete = False
                    break
                found += [(role.name, t, role.involved) for t in tags]
            if not complete:
                continue
            rows += [(rule.id, eq.id, r, pid[t], t, inv, poll[t]) for r, t, inv in found]
    df = pd.DataFrame(
        rows, columns=["rule_id", "anchor", "role", "point_id", "tag", "involved", "poll_s"]
    )
    row_of = {t: i for i, t in enumerate(tags_)}
    df["row"] = np.asarray([row_of[t] for t in df["tag"]], dtype=np.int64)
    return df


def _role_aggs(rules: tuple[PhysicsRule, ...]) -> dict[str, str]:
    """Role name → how its points combine per bucket; one way per name across the rules."""
    aggs: dict[str, str] = {}
    for rule in rules:
        for role in rule.roles:
            prev = aggs.get(role.name)
            if prev is not None and prev != role.agg:
                raise ValueError(f"role {role.name!r} is aggregated both {prev} and {role.agg}")
            aggs[role.name] = role.agg
    return aggs


def physics_sql(rules: tuple[PhysicsRule, ...]) -> str:
    """The evaluate query for ``rules`` over ``_q_wide``.

    ``_q_wide`` has one row per (rule instance ``inst``, time cell ``bucket``): ``ri`` the
    rule's index in ``rules``, ``recent``, and one column per role name (the role's value in
    that cell, NULL when unknown or not a role of that rule). Each rule evaluates its own
    rows and the per-rule results are stacked. Output: one row per instance with its
    counts, last violated cell and the role/extra values of that cell (NULL for the
    columns of other rules).
    """
    aggs = _role_aggs(rules)
    names = sorted(aggs)
    extras = sorted({col for r in rules for col, _ in r.extra})
    cols = names + extras
    parts = []
    for ri, rule in enumerate(rules):
        own = {role.name for role in rule.roles}
        extra = dict(rule.extra)
        extra_cols = "".join(f",\n           ({extra[c]}) AS {c}" for c in extras if c in extra)
        last_vals = ",\n       ".join(
            f"arg_max({c}, bucket) FILTER (applies AND violated) AS {c}"
            if c in own or c in extra
            else f"NULL::DOUBLE AS {c}"
            for c in cols
        )
        parts.append(f"""
SELECT inst,
       count(*) FILTER (applies) AS n_checked,
       count(*) FILTER (applies AND violated) AS n_violated,
       count(*) FILTER (applies AND recent) AS n_checked_recent,
       count(*) FILTER (applies AND violated AND recent) AS n_violated_recent,
       max(bucket) FILTER (applies AND violated) AS last_violation,
       {last_vals}
FROM (
    SELECT *,
           coalesce(({rule.when}), FALSE) AS applies,
           coalesce(({rule.violated}), FALSE) AS violated{extra_cols}
    FROM _q_wide WHERE ri = {ri}
)
GROUP BY inst""")
    return "\nUNION ALL".join(parts)


@dataclass(frozen=True)
class PhysicsPlan:
    """What :func:`physics_scores` needs from the site, computed once (:func:`physics_plan`)."""

    roles: pd.DataFrame  # role_table(...) with its `row` column
    rules: tuple[PhysicsRule, ...]  # the rules that have instances
    instances: pd.DataFrame  # (rule_id, anchor), index = instance id
    # per rule: (instance ids, {role: [point rows per instance]})
    per_rule: tuple[tuple[np.ndarray, dict[str, list[list[int]]]], ...]


def physics_plan(roles: pd.DataFrame, rules: tuple[PhysicsRule, ...]) -> PhysicsPlan:
    present = set(roles["rule_id"].unique())
    used = tuple(r for r in rules if r.id in present)
    inst = roles[["rule_id", "anchor"]].drop_duplicates().reset_index(drop=True)
    rows_by: dict[tuple[str, str, str], list[int]] = {}
    for rid, anchor, role, row in zip(
        roles["rule_id"], roles["anchor"], roles["role"], roles["row"], strict=True
    ):
        rows_by.setdefault((str(rid), str(anchor), str(role)), []).append(int(row))
    per_rule = []
    for rule in used:
        mine = inst[inst["rule_id"] == rule.id]
        anchors = [str(a) for a in mine["anchor"]]
        per_rule.append(
            (
                mine.index.to_numpy(),
                {ro.name: [rows_by.get((rule.id, a, ro.name), []) for a in anchors] for ro in rule.roles},
            )
        )
    return PhysicsPlan(roles, used, inst, tuple(per_rule))


def physics_scores(
    store: Store,
    grid: CellGrid,
    plan: PhysicsPlan,
    cfg: QualityConfig,
) -> list[Check]:
    """The violated rule instances: their involved point rows, score and reason (isolated
    with the residual balances in :func:`tools.quality.residuals.residual_scores`).

    ``grid`` holds the window's bucket means of the plan's points: rules compare bucket
    means, never a bad reading.
    """
    roles, used, inst_keys = plan.roles, plan.rules, plan.instances
    if roles.empty:
        return []
    aggs = _role_aggs(used)
    names = sorted(aggs)
    k = grid.cells
    frames = []
    for ri, (rule, (ids, rows_per)) in enumerate(zip(used, plan.per_rule, strict=True)):
        m = len(ids)
        cols: dict[str, object] = {
            "inst": np.repeat(ids, k),
            "ri": np.full(m * k, ri),
            "bucket": np.tile(np.arange(k), m),
            "recent": np.tile(grid.recent, m),
        }
        for n in names:
            if n in rows_per:
                x = grid.matrix(rows_per[n], aggs[n]).reshape(-1)  # type: ignore[arg-type]
                cols[n] = pa.array(x, from_pandas=True)
            else:
                cols[n] = pa.nulls(m * k, pa.float64())
        frames.append(pa.table(cols))
    wide = pa.concat_tables(frames)
    cur = store.cursor()
    try:
        cur.register("_q_wide", wide)
        res = cur.sql(physics_sql(used)).df()
    finally:
        cur.close()
    if not res.empty:
        inst = inst_keys.loc[res["inst"]]
        res.insert(0, "rule_id", inst["rule_id"].to_numpy())
        res.insert(1, "anchor", inst["anchor"].to_numpy())
        res = res.drop(columns=["inst"])
        res["last_violation"] = pd.Timestamp(grid.origin_us, unit="us") + pd.to_timedelta(
            res["last_violation"].astype(float) * grid.cell_us, unit="us"
        )
    if res.empty:
        return []
    share_w = res["n_violated"] / res["n_checked"].where(res["n_checked"] > 0)
    share_r = res["n_violated_recent"] / res["n_checked_recent"].where(res["n_checked_recent"] > 0)
    lo_w, lo_r = 0.02, 1.0 / max(cfg.physics_recent_buckets, 1) + 1e-9
    excess = np.fmax(
        ((share_w - lo_w) / (cfg.physics_window_share - lo_w)).to_numpy(dtype=float),
        ((share_r - lo_r) / (cfg.physics_recent_share - lo_r)).to_numpy(dtype=float),
    )
    excess = np.clip(np.nan_to_num(excess, nan=0.0), 0.0, 1.0)
    res["physics"] = 1.0 - (1.0 - cfg.floor) * excess
    by_id = {r.id: r for r in used}
    reasons = []
    for row in res.itertuples(index=False):  # one row per failing rule instance: a handful
        if row.physics >= 1.0:
            reasons.append("")
            continue
        rule = by_id[row.rule_id]
        vals = {
            k: (float(v) if v is not None and not pd.isna(v) else float("nan"))
            for k, v in row._asdict().items()
            if isinstance(v, (int, float, np.floating))
        }
        try:
            msg = rule.message.format(**vals)
        except (KeyError, ValueError):
            msg = rule.id
        reasons.append(
            f"physics {rule.id} ({row.anchor}): {msg}; failed {row.n_violated}/{row.n_checked} "
            f"checks, last at {pd.Timestamp(row.last_violation):%H:%M:%S}"
        )
    res["physics_reason"] = reasons
    inv = roles[roles["involved"]]
    members: dict[tuple[str, str], list[int]] = {}
    for rid, anchor, row in zip(inv["rule_id"], inv["anchor"], inv["row"], strict=True):
        members.setdefault((str(rid), str(anchor)), []).append(int(row))
    return [
        Check(members.get((str(r.rule_id), str(r.anchor)), []), float(r.physics), False, r.physics_reason)
        for r in res.itertuples(index=False)
        if r.physics < 1.0
    ]
