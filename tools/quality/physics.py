"""Cross-sensor physics consistency, configured per equipment kind, evaluated with numpy.

A :class:`PhysicsRule` names the equipment kind it applies to, the *roles* it
needs (points chosen by Brick class or point name — on the same equipment, or
anywhere on the site for cross-equipment rules such as GPU vs CDU coolant), a
condition ``when`` it applies (e.g. the chiller is running) and a condition
``violated`` — both functions of the role values (arrays: instances × time cells;
NaN where a role has no good reading, and a comparison with NaN is False, so an
unknown value never violates).

The role values are the window's bucket means on one time grid
(:class:`tools.quality.grid.CellGrid`). The share of checked cells that violate the
rule — over the window and over the last few cells — gives the rule instance its
score; :func:`tools.quality.residuals.residual_scores` decides which *involved*
points it lowers (single-fault isolation), with a reason that quotes the numbers.

Physics used (water: ρ·cp ≈ 1 kg/L × 4.19 kJ/(kg·K), so L/s × K × 4.19 = kW):

* chiller: leaving chilled water colder than entering while running;
* chiller first law: Q_cond = Q_evap + P_compressor (ASHRAE Handbook —
  Fundamentals, ch. 2; RP-1043 reports this "heat balance" within ±5–15 %);
* pump / CDU: running at speed with no flow;
* UPS: output power ≤ input power (efficiency ≤ 1) unless on battery;
* chiller, pump, tower, CRAH: a run status of 0 while the power meter shows a load is a
  contradiction — the status input is implicated (booleans have no other cross-check) —
  judged where the status read 0 throughout a cell, and for a minute before: a start or a
  stop is a transient, not a contradiction;
* GPU: die temperature above the coolant supplied to it (heat flows downhill).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from connectors.site import Site
from tools.quality.check import Check, share_scores
from tools.quality.config import QualityConfig
from tools.quality.grid import CellGrid

CP_WATER = 4.19  # kJ/(kg·K) × 1 kg/L → kW per (L/s · K)

Values = Mapping[str, np.ndarray]
Cond = Callable[[Values], np.ndarray]


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
    agg: Literal["avg", "min", "max", "sum"] = "avg"


@dataclass(frozen=True)
class PhysicsRule:
    id: str
    kind: str
    roles: tuple[Role, ...]
    when: Cond  # over role values: where the rule applies
    violated: Cond  # over role values
    message: str  # str.format over role values (and any `extra` values) at the last violation
    extra: tuple[tuple[str, Cond], ...] = ()  # (name, value) computed per cell for the message
    # ``when`` must have held this long (seconds, and at least the whole cell before) for a
    # cell to be judged: a stop is a transient — the status opens first, the meter follows
    settle_s: float = 0.0


def held_cells(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` (instances × cells) where it has been True for the last ``n`` cells in a row
    (the first ``n − 1`` cells of the window, whose past is unknown here, are False)."""
    if n <= 1:
        return mask
    out = mask.copy()
    for s in range(1, n):
        out[:, s:] &= mask[:, :-s]
    out[:, : n - 1] = False
    return out


def _gt(v: Values, name: str, c: float, default: np.ndarray | bool) -> np.ndarray:
    """``v[name] > c`` where the value is known, else ``default`` (SQL's coalesce)."""
    x = v[name]
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(x), default, x > c)


def _lt(v: Values, name: str, c: float, default: np.ndarray | bool) -> np.ndarray:
    x = v[name]
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(x), default, x < c)


def _always(v: Values) -> np.ndarray:
    return np.ones_like(next(iter(v.values())), bool)


def _qe(v: Values) -> np.ndarray:
    return v["chw_flow"] * (v["ret"] - v["sup"]) * CP_WATER


def _qc(v: Values) -> np.ndarray:
    return v["cw_flow"] * (v["cw_out"] - v["cw_in"]) * CP_WATER


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
        when=lambda v: _gt(v, "run", 0.5, _gt(v, "pwr", 5.0, False)),
        violated=lambda v: v["sup"] > v["ret"] + 0.3,
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
        when=lambda v: _gt(v, "run", 0.5, True) & (v["pwr"] > 5),
        violated=lambda v: (
            np.abs(_qe(v) + v["pwr"] - _qc(v))
            > 0.2 * np.fmax(np.fmax(_qc(v), _qe(v) + v["pwr"]), 1.0)
        ),
        message="heat balance off by {imbalance:.0%}: evaporator {qe:.0f} kW + compressor {pwr:.0f} kW "
        "vs condenser {qc:.0f} kW (a flow or temperature reads wrong: drift/bias?)",
        extra=(
            ("qe", _qe),
            ("qc", _qc),
            ("imbalance", lambda v: np.abs(_qe(v) + v["pwr"] - _qc(v)) / np.fmax(_qc(v), 1.0)),
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
        when=lambda v: (v["run"] > 0.5) & _gt(v, "speed", 10.0, True),
        violated=lambda v: v["flow"] < 0.5,
        message="pump reports running but flow is {flow:.2f} L/s",
    ),
    PhysicsRule(
        id="cdu_pump_without_flow",
        kind="cdu",
        roles=(Role("speed", ("Speed_Sensor",)), Role("flow", ("Coolant_Flow_Sensor",))),
        when=lambda v: v["speed"] > 10,
        violated=lambda v: v["flow"] < 0.5,
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
        when=lambda v: _lt(v, "batt", 0.5, True) & (v["pin"] > 1),
        violated=lambda v: v["pout"] > v["pin"] * 1.01 + 2,
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
            # judged in cells where the status read 0 throughout (the cell's mean is 0), the
            # cells before them too for a minute: a cell where the machine starts or stops
            # averages its running part ("running 0.05, drawing 2.4 kW"), and a meter lags
            # the contact — a state change is no contradiction
            when=lambda v: v["run"] == 0.0,
            violated=lambda v: v["pwr"] > 2,
            message="reports not running ({run:.0f}) while drawing {pwr:.1f} kW "
            "(a status input that contradicts the power meter)",
            settle_s=60.0,
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
        when=_always,
        violated=lambda v: v["gpu"] < v["cool"] - 0.5,
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


@dataclass(frozen=True)
class PhysicsPlan:
    """What :func:`physics_scores` needs from the site, computed once (:func:`physics_plan`)."""

    roles: pd.DataFrame  # role_table(...) with its `row` column
    rules: tuple[PhysicsRule, ...]  # the rules that have instances
    # per rule: (anchors, {role: [point rows per instance]}, involved rows per instance)
    per_rule: tuple[tuple[list[str], dict[str, list[list[int]]], list[list[int]]], ...]


def physics_plan(roles: pd.DataFrame, rules: tuple[PhysicsRule, ...]) -> PhysicsPlan:
    present = set(roles["rule_id"].unique())
    used = tuple(r for r in rules if r.id in present)
    rows_by: dict[tuple[str, str, str], list[int]] = {}
    anchors: dict[str, list[str]] = {}
    for rid, anchor, role, row in zip(
        roles["rule_id"], roles["anchor"], roles["role"], roles["row"], strict=True
    ):
        rows_by.setdefault((str(rid), str(anchor), str(role)), []).append(int(row))
        a = anchors.setdefault(str(rid), [])
        if not a or a[-1] != anchor:
            a.append(str(anchor))
    per_rule = []
    for rule in used:
        anc = list(dict.fromkeys(anchors[rule.id]))
        per_role = {
            ro.name: [rows_by.get((rule.id, a, ro.name), []) for a in anc] for ro in rule.roles
        }
        involved = [
            [i for ro in rule.roles if ro.involved for i in rows_by.get((rule.id, a, ro.name), [])]
            for a in anc
        ]
        per_rule.append((anc, per_role, involved))
    return PhysicsPlan(roles, used, tuple(per_rule))


def physics_scores(grid: CellGrid, plan: PhysicsPlan, cfg: QualityConfig) -> list[Check]:
    """The violated rule instances: their involved point rows, score and reason (isolated
    with the residual balances in :func:`tools.quality.residuals.residual_scores`).

    ``grid`` holds the window's bucket means of the plan's points: rules compare bucket
    means, never a bad reading.
    """
    out: list[Check] = []
    for rule, (anchors, per_role, involved) in zip(plan.rules, plan.per_rule, strict=True):
        aggs = {ro.name: ro.agg for ro in rule.roles}
        vals = {n: grid.matrix(rows, aggs[n]) for n, rows in per_role.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            applies = np.asarray(rule.when(vals), bool) & np.ones((len(anchors), grid.cells), bool)
            if rule.settle_s > 0:
                # and the whole cell before: a cell wider than the settling time averages the
                # running part of the cell where the status opened (5-min cells: 1/20 of it)
                applies = held_cells(applies, math.ceil(rule.settle_s * 1e6 / grid.cell_us) + 1)
            viol = applies & np.asarray(rule.violated(vals), bool)
        score = share_scores(viol, applies, grid.recent, cfg)
        for k in np.flatnonzero((score < 1.0) & viol.any(axis=1)):
            c = int(np.flatnonzero(viol[k])[-1])
            at = {n: float(x[k, c]) for n, x in vals.items()}
            with np.errstate(invalid="ignore", divide="ignore"):
                at.update({n: float(f(vals)[k, c]) for n, f in rule.extra})
            try:
                msg = rule.message.format(**at)
            except (KeyError, ValueError):
                msg = rule.id
            when = pd.Timestamp(grid.origin_us + c * grid.cell_us, unit="us")
            why = (
                f"physics {rule.id} ({anchors[k]}): {msg}; failed {int(viol[k].sum())}/"
                f"{int(applies[k].sum())} checks, last at {when:%H:%M:%S}"
            )
            out.append(Check(involved[k], float(score[k]), False, why))
    return out
