"""Drift and bias: redundancy and physics residuals over the running state's bucket means.

Two kinds of :class:`~tools.quality.relations.Relation` (the table is in
:mod:`tools.quality.relations`), evaluated per time cell (``cell_s``, the finest bucket of
the points involved; coarser points hold their value across the cells they cover):

* ``redundant`` — sensors that measure the same thing (the condenser water leaving the
  tower and entering every running chiller): a member further than ``tol`` from the
  median of the group violates. With three or more members only the odd one out is
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

import numpy as np
import pandas as pd

from tools.quality.check import Check, share_scores
from tools.quality.config import QualityConfig
from tools.quality.grid import CellGrid
from tools.quality.physics import Role
from tools.quality.relations import DEFAULT_RELATIONS, Relation
from tools.quality.tracker import nanmedian_rows

# how a violated balance was resolved elsewhere: None (an equipment fault, no sensor to
# blame) or (point rows to blame alone, reason)
Explanation = tuple[list[int], str] | None

__all__ = ["DEFAULT_RELATIONS", "Relation", "instances", "member_rows", "residual_scores"]


@dataclass
class _Instance:
    rel: Relation
    anchor: str
    roles: dict[str, list[int]]  # role → point rows (index into the point table)
    members: list[int]  # redundant: every member row
    run_rows: dict[str, int] = field(default_factory=dict)  # redundant: equipment → run status


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
                runs: dict[str, int] = {}
                if rel.running:  # the peers elsewhere, not the anchor (a tower's fan may idle)
                    for i in members:
                        if eqs[i] == eq:
                            continue
                        for j in by_eq[eqs[i]]:
                            if brick[j] in rel.running:
                                runs[eqs[i]] = j
                out.append(_Instance(rel, eq, roles, members, runs))
    return out


def member_rows(insts: list[_Instance]) -> np.ndarray:
    """Point rows the instances read (for the :class:`CellGrid`)."""
    if not insts:
        return np.zeros(0, int)
    rows = [np.asarray(i.members + list(i.run_rows.values()), int) for i in insts]
    return np.unique(np.concatenate(rows))


def residual_scores(
    grid: CellGrid,
    points: pd.DataFrame,
    cfg: QualityConfig,
    insts: list[_Instance],
    physics: list[Check] | None = None,
    known_bad: set[int] | None = None,
    explained: Mapping[tuple[str, str], Explanation] | None = None,
    applied: list[tuple[tuple[str, str], float]] | None = None,
    settling: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per implicated tag: ``residual`` sub-score and ``residual_reason`` (worst wins).

    ``insts`` are :func:`instances` of the relations (they depend on the site only); the
    grid holds the window's bucket means of at least their :func:`member_rows`.
    ``physics``: violated physics rules, isolated the same way; ``known_bad``: rows that
    already fail their own checks (a violation they explain blames them alone).
    ``explained``: violated balances resolved elsewhere, by (relation id, anchor): ``None``
    — an equipment fault explains it, it blames no sensor; ``(rows, why)`` — it blames
    ``rows`` alone, with ``why`` (e.g. :mod:`tools.quality.cdu`). ``applied`` (an output)
    gets the key and score of every violated balance ``explained`` resolved.
    ``settling``: cells (a bool mask over the grid) in which a balance, by (relation id,
    anchor), is not checked — its loop is settling after an equipment event (a heat
    balance lags a flow step by the loop's thermal time constant)."""
    empty = pd.DataFrame({"tag": pd.Series(dtype=str), "residual": [], "residual_reason": []})
    tags = points["tag"].to_numpy()
    blamed: dict[int, tuple[float, str]] = {}
    sure: set[int] = set()  # the odd one out of three or more redundant sensors
    leaning: dict[int, float] = {}  # member → deviation from its redundant peers
    checks: list[Check] = []
    by_rel: dict[str, list[_Instance]] = {}
    for inst in insts:
        if inst.rel.mode == "redundant":
            _redundant(inst, grid, cfg, tags, points, blamed, sure, leaning)
        else:
            by_rel.setdefault(inst.rel.id, []).append(inst)
    holding: list[_Holding] = []
    forced: list[tuple[list[int], float, str]] = []
    for group in by_rel.values():
        v, h = _balance(group, grid, cfg, tags, settling)
        for c in v:
            if explained is None or c.key not in explained:
                checks.append(c)
                continue
            how = explained[c.key]
            if applied is not None:
                applied.append((c.key, c.score))
            if how is not None:  # the sensor named: it takes the blame of what it explains
                checks.append(c)
                forced.append((how[0], c.score, how[1]))
        holding.append(h)
    bad = set(known_bad or ()) | {r for rows, _s, _w in forced for r in rows}
    _isolate(checks, holding, physics or [], sure, leaning, bad, blamed)
    for rows, s, why in forced:  # resolved by redundancy: its reason names the fault
        for r in rows:
            if r not in blamed or blamed[r][0] >= s:
                blamed[r] = (s, why)
    out = [(tags[r], s, why) for r, (s, why) in blamed.items()]
    if not out:
        return empty
    return pd.DataFrame(out, columns=["tag", "residual", "residual_reason"])


def _isolate(
    violated: list[Check],
    holding: list[_Holding],
    physics: list[Check],
    sure: set[int],
    leaning: dict[int, float],
    known_bad: set[int],
    blamed: dict[int, tuple[float, str]],
) -> None:
    """Single-fault isolation. For each violated balance, a member is a candidate unless the
    offset that would explain the violation would also have broken a balance that holds
    (magnitude-aware: a loose balance does not vouch for a sensor it cannot see); of the
    candidates, one already leaning from its redundant peers in that direction is preferred,
    else those whose offset strains the holding balances least are kept. Members
    singled out by redundant peers, or already failing their own checks, take the blame
    alone; ties go to the members in the most violated balances. A violated physics rule
    (an inequality: no magnitude) blames the members the balances blamed, else all."""
    count: dict[int, int] = {}
    for c in violated + physics:
        for m in set(c.members):
            count[m] = count.get(m, 0) + 1
    by_member: dict[int, list[Check]] = {}
    for m in count:
        by_member[m] = [c for h in holding for c in h.of(m)]
    # one sensor explains several violations only with one offset: a member whose offsets
    # disagree (sign, or more than 1.5×) is not the single fault behind them
    offsets: dict[int, list[float]] = {}
    for v in violated:
        for m in dict.fromkeys(v.members):
            d = v.explains(m)
            if d is not None:
                offsets.setdefault(m, []).append(d)
    inconsistent = {
        m
        for m, ds in offsets.items()
        if len(ds) > 1 and (min(ds) * max(ds) <= 0 or max(map(abs, ds)) > 1.5 * min(map(abs, ds)))
    }
    for v in violated:
        strain: dict[int, float] = {}
        for m in dict.fromkeys(v.members):
            d = v.explains(m)
            if d is not None:
                strain[m] = max((h.strain(m, d) for h in by_member.get(m, [])), default=0.0)
        if any(m not in inconsistent for m in strain):
            strain = {m: x for m, x in strain.items() if m not in inconsistent}
        # candidates: an offset that explains the violation without breaking a holding balance;
        # of those, the ones that strain the holding balances least (the most plausible)
        ok = {m: x for m, x in strain.items() if x <= 1.0}
        # a sensor already known bad that could explain it takes the blame
        known = _narrow(list(ok), sure, known_bad)
        if len(known) < len(ok):
            _blame(blamed, known, v.score, v.why)
            continue
        # a candidate already leaning away from its redundant peers the way this violation
        # needs (its error = −offset) is the one
        offs = {m: v.explains(m) for m in ok}
        lean = [m for m in ok if m in leaning and (offs[m] or 0.0) * leaning[m] < 0]
        if lean:
            ok = {m: ok[m] for m in lean}
        least = min(ok.values(), default=0.0)
        cand = [m for m, x in ok.items() if x <= least + 0.25]
        cand = _narrow(cand or list(dict.fromkeys(v.members)), sure, known_bad)
        top = max(count[m] for m in cand)
        _blame(blamed, [m for m in cand if count[m] == top], v.score, v.why)
    for p in physics:
        cand = list(dict.fromkeys(p.members))
        named = [m for m in cand if m in blamed]
        _blame(blamed, _narrow(named or cand, sure, known_bad), p.score, p.why)


def _narrow(cand: list[int], sure: set[int], known_bad: set[int]) -> list[int]:
    for known in (sure, known_bad):
        hit = [m for m in cand if m in known]
        if hit:
            return hit
    return cand


def _blame(blamed: dict[int, tuple[float, str]], rows: list[int], s: float, why: str) -> None:
    for r in rows:
        if r not in blamed or blamed[r][0] > s:
            blamed[r] = (s, why)


def _balance(
    insts: list[_Instance],
    grid: CellGrid,
    cfg: QualityConfig,
    tags: np.ndarray,
    settling: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> tuple[list[Check], _Holding]:
    """One balance relation over all its instances at once: the violated instances, and
    the holding ones (built lazily: isolation asks only about a violation's members)."""
    rel = insts[0].rel
    assert rel.x is not None and rel.y is not None
    roles = {r.name: r for r in rel.roles}
    present = {n for inst in insts for n in inst.roles if inst.roles[n]}
    recent = grid.recent
    vals = {
        n: grid.matrix([inst.roles.get(n, []) for inst in insts], roles[n].agg)
        for n in roles
        if n in present
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = rel.x(vals), rel.y(vals)
        applies = np.isfinite(x) & np.isfinite(y) & (np.abs(x) >= rel.min_x)
        if rel.when is not None:
            applies &= np.asarray(rel.when(vals), bool)
        for k, inst in enumerate(insts):  # a loop settling after an equipment event
            skip = settling.get((rel.id, inst.anchor)) if settling else None
            if skip is not None:
                applies[k] &= ~skip
        if not applies.any():  # nothing to check (the usual case): no violation, none holds
            return [], _Holding({}, _no_check)
        # the relation is learned from the older half of the window (a drift that began
        # inside the window hardly moves it), or all but the recent cells if that is short
        older = np.arange(grid.cells) < grid.cells // 2
        base = applies & older
        base = np.where((base.sum(axis=1) >= 3)[:, None], base, applies & ~recent)
        enough = base.sum(axis=1) >= 3
        if rel.mode == "ratio":
            a = nanmedian_rows(np.where(base, y / x, np.nan))
            pred = a[:, None] * x
        else:
            a = nanmedian_rows(np.where(base, y - x, np.nan))
            pred = x + a[:, None]
        res = y - pred
        tol = rel.tol_abs + rel.tol_rel * np.abs(pred)
        viol = applies & (np.abs(res) > tol) & enough[:, None]
    score = share_scores(viol, applies & enough[:, None], recent, cfg)
    n_rec = (applies & recent).sum(axis=1)
    v_rec = (viol & recent).sum(axis=1)
    checked = enough & applies.any(axis=1)
    holds = checked & (score >= 1.0) & (n_rec >= 2) & (v_rec == 0)
    # the reference cell: the last violated one, else the last checked one
    ref = np.where(viol.any(axis=1)[:, None], viol, applies)
    cell = ref.shape[1] - 1 - np.argmax(ref[:, ::-1], axis=1)

    def check(k: int) -> Check:
        inst = insts[k]
        c = int(cell[k])
        involved = [i for n, rs in inst.roles.items() if roles[n].involved for i in rs]
        at = _residual_at(rel, inst, roles, {n: v[k, c] for n, v in vals.items()}, a[k])
        why = ""
        if score[k] < 1.0:
            names = ", ".join(str(tags[i]) for i in involved)
            why = (
                f"residual {rel.id} ({inst.anchor}): {rel.what} off by {res[k, c]:+.3g} "
                f"(tolerance {tol[k, c]:.2g}; {int(viol[k].sum())}/{int(applies[k].sum())} "
                f"checks failed, {int(v_rec[k])}/{int(n_rec[k])} recently) — drift or bias of "
                f"one of {names}"
            )
        return Check(
            involved, float(score[k]), bool(holds[k]), why, at, float(tol[k, c]),
            (rel.id, inst.anchor),
        )  # fmt: skip

    violated = [check(int(k)) for k in np.flatnonzero(checked & (score < 1.0))]
    holding = {int(k): inst for k, inst in enumerate(insts) if holds[k]}
    return violated, _Holding(holding, check)


def _no_check(k: int) -> Check:
    raise AssertionError(f"instance {k} was not checked")


class _Holding:
    """The holding instances of one relation, made into :class:`Check` only when asked."""

    def __init__(self, insts: dict[int, _Instance], make: Callable[[int], Check]) -> None:
        self._by_member: dict[int, list[int]] = {}
        for k, inst in insts.items():
            for m in inst.members:
                self._by_member.setdefault(m, []).append(k)
        self._make = make
        self._made: dict[int, Check] = {}

    def of(self, m: int) -> list[Check]:
        out = []
        for k in self._by_member.get(m, []):
            if k not in self._made:
                self._made[k] = self._make(k)
            out.append(self._made[k])
        return out


def _residual_at(
    rel: Relation,
    inst: _Instance,
    roles: dict[str, Role],
    cell: dict[str, float],
    a: float,
) -> Callable[[int, float], float]:
    """Residual of ``rel`` at one cell with member row ``r`` offset by ``d``."""
    assert rel.x is not None and rel.y is not None
    fx, fy = rel.x, rel.y

    def at(r: int, d: float) -> float:
        v = {}
        for n, val in cell.items():
            rows = inst.roles.get(n, [])
            w = 0.0
            if r in rows:
                w = 1.0 / len(rows) if roles[n].agg == "avg" else 1.0
            v[n] = np.asarray([val + w * d])
        with np.errstate(invalid="ignore", divide="ignore"):
            x, y = float(fx(v)[0]), float(fy(v)[0])
        return y - a * x if rel.mode == "ratio" else y - (x + a)

    return at


def _redundant(
    inst: _Instance,
    grid: CellGrid,
    cfg: QualityConfig,
    tags: np.ndarray,
    points: pd.DataFrame,
    blamed: dict[int, tuple[float, str]],
    sure: set[int],
    leaning: dict[int, float],
) -> None:
    """Each member against the group's median; ``leaning`` gets the latest deviation of
    every member of a group of three or more (evidence for isolation before it violates)."""
    rel = inst.rel
    mem = inst.members
    recent = grid.recent
    v = grid.matrix([[i] for i in mem])
    eqs = points["equipment"].to_numpy()
    if rel.running:  # a member on idle equipment reads stagnant water: not compared
        for j, i in enumerate(mem):
            r = inst.run_rows.get(str(eqs[i]))
            if r is not None:
                on = grid.series([r]) >= 0.5
                v[j] = np.where(on, v[j], np.nan)
    n_ok = (~np.isnan(v)).sum(axis=0)
    # against the median of all members: with three, one outlier cannot drag a healthy
    # member's reference half-way (as the median of "the others" would)
    med = _nanmedian_cols(v)
    for j, i in enumerate(mem):
        d = v[j] - med
        applies = np.isfinite(d) & (n_ok >= 2)
        viol = applies & (np.abs(d) > rel.tol_abs)
        seen = np.flatnonzero(applies & (n_ok >= 3))
        if len(seen) and abs(d[seen[-1]]) >= 0.5 * rel.tol_abs:
            leaning[i] = float(d[seen[-1]])
        s = float(share_scores(viol[None], applies[None], recent, cfg)[0])
        if s >= 1.0:
            continue
        last = int(np.flatnonzero(viol)[-1])
        three = int(n_ok[last]) >= 3
        culprits = [i] if three else [k for k in mem if not np.isnan(v[mem.index(k), last])]
        why = (
            f"residual {rel.id}: {tags[i]} reads {d[last]:+.2f} from the median of "
            f"{int(n_ok[last])} redundant sensors ({rel.what}; tolerance "
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
