"""Drift and bias: redundancy and physics residuals over the running state's bucket means.

Two kinds of :class:`Relation`, evaluated per time cell (``cell_s``, the finest bucket of
the points involved; coarser points hold their value across the cells they cover):

* ``redundant`` — sensors that measure the same thing (the condenser water leaving the
  tower and entering every running chiller): a member further than ``tol`` from the
  median of the others violates. With three or more members only the odd one out is
  implicated; with two, both are.
* ``ratio`` / ``offset`` — a balance ``y ≈ a·x`` (or ``y ≈ x + b``) where ``x`` and ``y``
  are expressions of a few points (transformer load vs the sum of what it feeds, UPS
  input vs output plus losses, load percent vs kW, flow vs pump speed, CDU heat vs
  flow × ΔT, tower approach vs leaving water − wet bulb). ``a`` (``b``) is learned from
  the earlier part of the window (the median, so a fault in a few cells does not move
  it): the site's own history is the model, as on a real plant. A residual beyond
  ``tol_abs + tol_rel·|a·x|`` violates; a sensor that drifts or picks up a bias moves the
  residual away from zero while its partners stay consistent with each other.

Scoring (as the physics rules): the share of checked cells violated, over the window and
over the last ``physics_recent_buckets`` cells, lowers the score of the implicated points.
**Exoneration**: a point in a violated relation that also sits in a relation that holds
(checked recently, no recent violation) is not implicated — the transformer's kW agrees
with what it feeds, so when ``load_pct`` disagrees with ``load`` it is ``load_pct``.
Each reason names the relation, the residual and the points it implicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from tools.quality.config import QualityConfig
from tools.quality.physics import CP_WATER, Role
from tools.quality.tracker import PointTracker, nanmedian_rows, to_us

Values = Mapping[str, np.ndarray]
Expr = Callable[[Values], np.ndarray]


@dataclass(frozen=True)
class Relation:
    id: str
    kind: str  # the anchor equipment kind: one instance per equipment of this kind
    roles: tuple[Role, ...]
    mode: Literal["ratio", "offset", "redundant"]
    y: Expr | None = None
    x: Expr | None = None
    tol_abs: float = 0.0
    tol_rel: float = 0.05
    min_x: float = 1e-9  # |x| below this: the relation does not apply (equipment off)
    when: Expr | None = None
    what: str = ""  # what the relation checks, for the reason
    running: tuple[str, ...] = field(default=())  # redundant: member applies while running


def _r(name: str, *names: str, bricks: tuple[str, ...] = (), **kw: object) -> Role:
    return Role(name, bricks, names, **kw)  # type: ignore[arg-type]


_EXPECT_RUN = ("Run_Status", "On_Status")

DEFAULT_RELATIONS: tuple[Relation, ...] = (
    Relation(
        "condenser_water_redundant",
        "cooling_tower",
        (
            _r("m", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
            _r(
                "m",
                bricks=("Entering_Condenser_Water_Temperature_Sensor",),
                scope="site",
                kinds=("chiller",),
            ),
        ),
        "redundant",
        tol_abs=1.0,
        what="condenser water leaving the tower = entering each running chiller",
        running=_EXPECT_RUN,
    ),
    Relation(
        "tower_approach",
        "cooling_tower",
        (
            _r("app", "approach"),
            _r("cws", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
            _r("wb", "wet_bulb", scope="site", kinds=("weather",)),
        ),
        "offset",
        y=lambda v: v["app"],
        x=lambda v: v["cws"] - v["wb"],
        tol_abs=1.0,
        what="approach = leaving water − wet bulb",
    ),
    Relation(
        "transformer_load_pct",
        "transformer",
        (_r("pct", "load_pct"), _r("kw", "load")),
        "ratio",
        y=lambda v: v["pct"],
        x=lambda v: v["kw"],
        tol_rel=0.05,
        tol_abs=1.0,
        min_x=20.0,
        what="load % ∝ kW",
    ),
    Relation(
        "transformer_feeds",
        "transformer",
        (
            _r("kw", "load"),
            _r("ups", "input_power", scope="site", kinds=("ups",), agg="sum"),
            _r(
                "mech",
                bricks=("Electric_Power_Sensor",),
                scope="site",
                kinds=("chiller", "pump", "cooling_tower", "crah"),
                agg="sum",
            ),
        ),
        "ratio",
        y=lambda v: v["kw"],
        x=lambda v: v["ups"] + v["mech"],
        tol_rel=0.05,
        tol_abs=5.0,
        min_x=20.0,
        what="transformer load = UPS input + chillers, pumps, tower and CRAH fans",
    ),
    Relation(
        "ups_in_vs_out",
        "ups",
        (_r("pin", "input_power"), _r("pout", "output_power")),
        "ratio",
        y=lambda v: v["pin"],
        x=lambda v: v["pout"],
        tol_rel=0.04,
        tol_abs=3.0,
        min_x=20.0,
        when=None,
        what="UPS input = output + losses",
    ),
    Relation(
        "ups_load_pct",
        "ups",
        (_r("pct", "load_pct"), _r("pout", "output_power")),
        "ratio",
        y=lambda v: v["pct"],
        x=lambda v: v["pout"],
        tol_rel=0.05,
        tol_abs=1.0,
        min_x=20.0,
        what="load % ∝ output kW",
    ),
    Relation(
        "pdu_load_pct",
        "pdu",
        (_r("pct", "load_pct"), _r("kw", "power")),
        "ratio",
        y=lambda v: v["pct"],
        x=lambda v: v["kw"],
        tol_rel=0.05,
        tol_abs=1.0,
        min_x=10.0,
        what="load % ∝ kW",
    ),
    Relation(
        "pdu_current",
        "pdu",
        (_r("amps", "current"), _r("kw", "power")),
        "ratio",
        y=lambda v: v["amps"],
        x=lambda v: v["kw"],
        tol_rel=0.05,
        tol_abs=2.0,
        min_x=10.0,
        what="current ∝ kW",
    ),
    Relation(
        "it_vs_pdus",
        "gpu_cluster",
        (
            _r("it", "it_power"),
            _r("pdu", bricks=("Electric_Power_Sensor",), scope="site", kinds=("pdu",), agg="sum"),
        ),
        "ratio",
        y=lambda v: v["it"],
        x=lambda v: v["pdu"],
        tol_rel=0.05,
        tol_abs=5.0,
        min_x=20.0,
        what="IT power = sum of PDU power",
    ),
    Relation(
        "pump_flow_vs_speed",
        "pump",
        (
            _r("flow", bricks=("Chilled_Water_Flow_Sensor", "Condenser_Water_Flow_Sensor",
                                "Water_Flow_Sensor", "Flow_Sensor")),  # fmt: skip
            _r("speed", bricks=("Speed_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["flow"],
        x=lambda v: v["speed"],
        tol_rel=0.08,
        tol_abs=0.5,
        min_x=10.0,
        what="flow ∝ pump speed (affinity law)",
    ),
    Relation(
        "cdu_flow_vs_speed",
        "cdu",
        (_r("flow", bricks=("Coolant_Flow_Sensor",)), _r("speed", bricks=("Speed_Sensor",))),
        "ratio",
        y=lambda v: v["flow"],
        x=lambda v: v["speed"],
        tol_rel=0.08,
        tol_abs=0.5,
        min_x=10.0,
        what="coolant flow ∝ pump speed (affinity law)",
    ),
    Relation(
        "cdu_heat_balance",
        "cdu",
        (
            _r("q", "heat_load"),
            _r("flow", bricks=("Coolant_Flow_Sensor",)),
            _r("sup", bricks=("Coolant_Supply_Temperature_Sensor",)),
            _r("ret", bricks=("Coolant_Return_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["q"],
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER,
        tol_rel=0.08,
        tol_abs=5.0,
        min_x=20.0,
        what="CDU heat = coolant flow × ΔT × 4.19",
    ),
    Relation(
        "chiller_evaporator",
        "chiller",
        (
            _r("load", bricks=("Load_Sensor",)),
            _r("flow", bricks=("Chilled_Water_Flow_Sensor",)),
            _r("sup", bricks=("Leaving_Chilled_Water_Temperature_Sensor",)),
            _r("ret", bricks=("Entering_Chilled_Water_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["load"],
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER,
        tol_rel=0.10,
        tol_abs=2.0,
        min_x=20.0,
        what="evaporator load % ∝ chilled-water flow × ΔT",
    ),
    Relation(
        "chiller_condenser",
        "chiller",
        (
            _r("flow", bricks=("Chilled_Water_Flow_Sensor",)),
            _r("sup", bricks=("Leaving_Chilled_Water_Temperature_Sensor",)),
            _r("ret", bricks=("Entering_Chilled_Water_Temperature_Sensor",)),
            _r("pwr", bricks=("Electric_Power_Sensor",)),
            _r("cwf", bricks=("Condenser_Water_Flow_Sensor",)),
            _r("cwi", bricks=("Entering_Condenser_Water_Temperature_Sensor",)),
            _r("cwo", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["cwf"] * (v["cwo"] - v["cwi"]) * CP_WATER,
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER + v["pwr"],
        tol_rel=0.06,
        tol_abs=10.0,
        min_x=50.0,
        what="condenser heat = evaporator heat + compressor power",
    ),
)


@dataclass
class _Instance:
    rel: Relation
    anchor: str
    roles: dict[str, list[int]]  # role → point rows (index into the point table)
    members: list[int]  # redundant: every member row


def instances(points: pd.DataFrame, relations: tuple[Relation, ...]) -> list[_Instance]:
    """Every relation instance the site's points complete (rows of ``points``)."""
    by_eq: dict[str, list[int]] = {}
    by_kind: dict[str, list[int]] = {}
    eq_kind: dict[str, str] = {}
    eqs = points["equipment"].tolist()
    kinds = points["kind"].tolist()
    for i, (e, k) in enumerate(zip(eqs, kinds, strict=True)):
        by_eq.setdefault(e, []).append(i)
        by_kind.setdefault(k, []).append(i)
        eq_kind[e] = k
    brick = points["brick"].tolist()
    name = points["name"].tolist()
    pid = points["point_id"].to_numpy()
    out: list[_Instance] = []
    for rel in relations:
        for eq, k in eq_kind.items():
            if k != rel.kind:
                continue
            roles: dict[str, list[int]] = {}
            members: list[int] = []
            ok = True
            for role in rel.roles:
                cands = (
                    by_eq[eq]
                    if role.scope == "equipment"
                    else [i for kk in role.kinds for i in by_kind.get(kk, [])]
                )
                rows = [
                    i
                    for i in cands
                    if pid[i] >= 0 and (brick[i] in role.bricks or name[i] in role.names)
                ]
                if not rows and not role.optional:
                    ok = False
                    break
                roles.setdefault(role.name, []).extend(rows)
                members += rows
            if ok and (rel.mode != "redundant" or len(members) >= 2):
                out.append(_Instance(rel, eq, roles, members))
    return out


def _series(
    tracker: PointTracker, rows: np.ndarray, now: datetime, window: timedelta
) -> tuple[np.ndarray, int]:
    """Bucket means of ``rows`` on a common grid of cells: (values [rows, cells], cell µs)."""
    mean, bstart = tracker.bucket_means(now, window)
    bw = tracker.bw_us[rows]
    cell = int(bw.min()) if len(rows) else 1
    start_us = to_us(now - window)
    origin = (start_us // cell) * cell
    k = int((to_us(now) - origin) // cell) + 1
    out = np.full((len(rows), k), np.nan)
    m, b = mean[rows], bstart[rows]
    ok = ~np.isnan(m)
    r_i, s_i = np.nonzero(ok)
    k0 = (b[r_i, s_i] - origin) // cell
    reps = np.maximum(bw[r_i] // cell, 1)
    for rep in np.unique(reps):
        sel = reps == rep
        for j in range(int(rep)):
            kk = k0[sel] + j
            good = (kk >= 0) & (kk < k)
            out[r_i[sel][good], kk[good]] = m[r_i[sel][good], s_i[sel][good]]
    return out, cell


def residual_scores(
    tracker: PointTracker,
    points: pd.DataFrame,
    now: datetime,
    window: timedelta,
    cfg: QualityConfig,
    relations: tuple[Relation, ...],
) -> pd.DataFrame:
    """Per implicated tag: ``residual`` sub-score and ``residual_reason`` (worst wins)."""
    empty = pd.DataFrame({"tag": pd.Series(dtype=str), "residual": [], "residual_reason": []})
    insts = instances(points, relations)
    if not insts:
        return empty
    rows = np.unique(np.concatenate([np.asarray(i.members, int) for i in insts]))
    pos = {int(r): j for j, r in enumerate(rows)}
    series, _cell = _series(tracker, rows, now, window)
    n_cells = series.shape[1]
    recent = np.zeros(n_cells, bool)
    recent[max(0, n_cells - cfg.physics_recent_buckets - 1) : max(0, n_cells - 1)] = True
    recent[-1] = True
    tags = points["tag"].to_numpy()
    run_rows = {
        e: i
        for i, (e, b) in enumerate(zip(points["equipment"], points["brick"], strict=True))
        if b in _EXPECT_RUN
    }
    # per instance: (violated rows → reason, held rows)
    blamed: dict[int, tuple[float, str]] = {}
    held: set[int] = set()
    sure: set[int] = set()  # the odd one out of three or more redundant sensors
    for inst in insts:
        if inst.rel.mode == "redundant":
            _redundant(inst, series, pos, recent, cfg, tags, points, run_rows, blamed, held, sure)
        else:
            _balance(inst, series, pos, recent, cfg, tags, blamed, held)
    out = [(tags[r], s, why) for r, (s, why) in blamed.items() if r not in held or r in sure]
    if not out:
        return empty
    return pd.DataFrame(out, columns=["tag", "residual", "residual_reason"])


def _share_score(viol: np.ndarray, applies: np.ndarray, recent: np.ndarray, cfg: QualityConfig) -> float:
    n_w, n_r = applies.sum(), (applies & recent).sum()
    if n_r < 2:
        return 1.0
    share_w = viol.sum() / max(n_w, 1)
    share_r = (viol & recent).sum() / max(n_r, 1)
    lo_w, lo_r = 0.02, 1.0 / max(cfg.physics_recent_buckets, 1) + 1e-9
    excess = max(
        (share_w - lo_w) / (cfg.physics_window_share - lo_w),
        (share_r - lo_r) / (cfg.physics_recent_share - lo_r),
    )
    return float(1.0 - (1.0 - cfg.floor) * np.clip(excess, 0.0, 1.0))


def _blame(blamed: dict[int, tuple[float, str]], rows: list[int], s: float, why: str) -> None:
    for r in rows:
        if r not in blamed or blamed[r][0] > s:
            blamed[r] = (s, why)


def _agg(role: Role, x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if role.agg == "sum":
            return np.where(np.isnan(x).any(axis=0), np.nan, np.nansum(x, axis=0))
        if role.agg == "min":
            return np.min(x, axis=0)
        if role.agg == "max":
            return np.max(x, axis=0)
        return np.mean(x, axis=0)


def _balance(
    inst: _Instance,
    series: np.ndarray,
    pos: dict[int, int],
    recent: np.ndarray,
    cfg: QualityConfig,
    tags: np.ndarray,
    blamed: dict[int, tuple[float, str]],
    held: set[int],
) -> None:
    rel = inst.rel
    assert rel.x is not None and rel.y is not None
    roles = {r.name: r for r in rel.roles}
    vals = {n: _agg(roles[n], series[[pos[i] for i in rows]]) for n, rows in inst.roles.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = rel.x(vals), rel.y(vals)
        applies = np.isfinite(x) & np.isfinite(y) & (np.abs(x) >= rel.min_x)
        if rel.when is not None:
            applies &= rel.when(vals).astype(bool)
        base = applies & ~recent
        if base.sum() < 3:
            return
        if rel.mode == "ratio":
            a = float(np.median(y[base] / x[base]))
            pred = a * x
        else:
            a = float(np.median(y[base] - x[base]))
            pred = x + a
        res = y - pred
        tol = rel.tol_abs + rel.tol_rel * np.abs(pred)
        viol = applies & (np.abs(res) > tol)
    involved = [i for n, rows in inst.roles.items() if roles[n].involved for i in rows]
    s = _share_score(viol, applies, recent, cfg)
    if s >= 1.0:
        if (applies & recent).sum() >= 2 and not (viol & recent).any():
            held.update(involved)
        return
    last = int(np.flatnonzero(viol)[-1]) if viol.any() else -1
    names = ", ".join(str(tags[i]) for i in involved)
    why = (
        f"residual {rel.id} ({inst.anchor}): {rel.what} off by {res[last]:+.3g} "
        f"(tolerance {tol[last]:.2g}; {int(viol.sum())}/{int(applies.sum())} checks failed, "
        f"{int((viol & recent).sum())}/{int((applies & recent).sum())} recently) — "
        f"drift or bias of {names}"
    )
    _blame(blamed, involved, s, why)


def _redundant(
    inst: _Instance,
    series: np.ndarray,
    pos: dict[int, int],
    recent: np.ndarray,
    cfg: QualityConfig,
    tags: np.ndarray,
    points: pd.DataFrame,
    run_rows: dict[str, int],
    blamed: dict[int, tuple[float, str]],
    held: set[int],
    sure: set[int],
) -> None:
    rel = inst.rel
    mem = inst.members
    v = series[[pos[i] for i in mem]].copy()
    eqs = points["equipment"].to_numpy()
    if rel.running:  # a member on idle equipment reads stagnant water: not compared
        for j, i in enumerate(mem):
            r = run_rows.get(str(eqs[i]))
            if r is not None and r in pos:
                on = series[pos[r]] >= 0.5
                v[j] = np.where(on, v[j], np.nan)
    n_ok = (~np.isnan(v)).sum(axis=0)
    for j, i in enumerate(mem):
        others = np.delete(v, j, axis=0)
        med = _nanmedian_cols(others)
        d = v[j] - med
        applies = np.isfinite(d) & (n_ok >= 2)
        viol = applies & (np.abs(d) > rel.tol_abs)
        s = _share_score(viol, applies, recent, cfg)
        if s >= 1.0:
            if (applies & recent).sum() >= 2 and not (viol & recent).any():
                held.add(i)
            continue
        last = int(np.flatnonzero(viol)[-1])
        three = int(n_ok[last]) >= 3
        culprits = [i] if three else [k for k in mem if not np.isnan(v[mem.index(k), last])]
        why = (
            f"residual {rel.id}: {tags[i]} reads {d[last]:+.2f} from the median of "
            f"{int(n_ok[last]) - 1} redundant sensor(s) ({rel.what}; tolerance "
            f"{rel.tol_abs:.2g}; {int(viol.sum())}/{int(applies.sum())} checks failed) — "
            + ("drift or bias of " + str(tags[i]) if three else "one of them drifts")
        )
        _blame(blamed, culprits, s, why)
        if three:
            sure.add(i)


def _nanmedian_cols(x: np.ndarray) -> np.ndarray:
    if x.shape[0] == 0:
        return np.full(x.shape[1], np.nan)
    return nanmedian_rows(x.T)
