"""Compile policies against a site, then evaluate them all at once with numpy.

Compilation (:func:`compile_policies`) resolves every reference — point names and
Brick classes on scoped equipment, tags, derived values, quality scores, action
targets — and fails with a :class:`~connectors.errors.PolicyConfigError` naming
file and line. A scoped policy becomes one *instance* per matching equipment.

Each condition becomes an *atom*: (source column, operator, lo, hi, hysteresis,
for). One cycle (:meth:`PolicyEngine.evaluate`) gathers the value vector
``V = [point values | derived values | quality scores]``, compares every atom in
a handful of vector operations, reduces atoms to instances with
``logical_and/or.reduceat``, then applies hold times, hysteresis and cool-downs
from per-atom / per-instance state arrays. Only the few instances that fire are
touched in Python (evidence and the proposed action).

Time is seconds (float) from the injected clock; values are ``nan`` when missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic.dataclasses import dataclass as pydantic_dataclass

from connectors.errors import PolicyConfigError
from connectors.site import Equipment, Site
from tools.policies.derived import DerivedInput, DerivedRegistry, DerivedSpec, HistoryFn, compute
from tools.policies.loader import LoadedPolicy
from tools.policies.model import Action, ActionKind, Condition, Policy
from tools.policies.state import PolicyState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_OPS = {">": 0, ">=": 1, "<": 2, "<=": 3, "==": 4, "!=": 5, "outside": 6, "inside": 7}
_SRC_POINT, _SRC_DERIVED, _SRC_QUALITY = 0, 1, 2
EQ_TOL = 1e-6


class ValuesView(Mapping[str, float]):
    """A read-only ``{tag: value}`` view over an array aligned with ``site.point_ids``."""

    def __init__(self, ids: Mapping[str, int], arr: FloatArray) -> None:
        self._ids = ids
        self._arr = arr

    def __getitem__(self, tag: str) -> float:
        return float(self._arr[self._ids[tag]])

    def get(self, tag: str, default: Any = None) -> Any:
        i = self._ids.get(tag)
        return default if i is None else float(self._arr[i])

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True)
class Change:
    """One write the agent proposes: ``tag`` to ``value`` (``previous`` as last read)."""

    tag: str
    value: float
    previous: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "value": self.value, "previous": self.previous}


@pydantic_dataclass(frozen=True)
class ProposedAction:
    """What a fired policy proposes: writes (``changes``), a message, optimiser variables.

    Validated (a pydantic dataclass): the agent keeps it in its decision record
    (``agent.decision.Action``), and a checkpoint read back has the same types."""

    kind: ActionKind
    changes: tuple[Change, ...] = ()
    message: str = ""
    variables: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return bool(self.changes) or self.kind == "optimise"


@dataclass(frozen=True)
class Evidence:
    ref: str
    tag: str | None
    value: float
    op: str
    threshold: float | tuple[float, float]
    holds: bool

    def as_dict(self) -> dict[str, Any]:
        v = None if math.isnan(self.value) else self.value
        return {
            "ref": self.ref,
            "tag": self.tag,
            "value": v,
            "op": self.op,
            "threshold": self.threshold,
            "holds": self.holds,
        }


@dataclass(frozen=True)
class Trigger:
    """An instance of a policy that fired this cycle."""

    instance: int
    policy: Policy
    equipment: str | None
    evidence: tuple[Evidence, ...]
    rests_on: tuple[str, ...]
    action: ProposedAction

    @property
    def key(self) -> str:
        return f"{self.policy.id}@{self.equipment}" if self.equipment else self.policy.id


@dataclass
class _Instance:
    lp: LoadedPolicy
    equipment: Equipment | None
    start: int
    stop: int
    mode_all: bool
    rests_on: tuple[str, ...]
    target: str | None
    verify_tag: str | None


@dataclass
class _Derived:
    spec: DerivedSpec
    equipment: Equipment | None
    args: dict[str, float]


@dataclass
class CompiledPolicies:
    site: Site
    instances: list[_Instance]
    src: npt.NDArray[np.int8]
    col: npt.NDArray[np.int64]  # index into the point array / derived slots / quality array
    op: npt.NDArray[np.int8]
    lo: FloatArray
    hi: FloatArray
    hyst: FloatArray
    for_s: FloatArray
    atom_ref: list[tuple[str, str | None, Condition]]
    derived: list[_Derived]
    starts: npt.NDArray[np.int64]
    mode_all: BoolArray
    inst_for: FloatArray
    inst_cooldown: FloatArray
    referenced_tags: list[str] = field(default_factory=list)

    @property
    def n_atoms(self) -> int:
        return len(self.op)


# ---- compilation ---------------------------------------------------------------------------------
def _equipment_for(lp: LoadedPolicy, site: Site) -> list[Equipment | None]:
    sc = lp.policy.scope
    if sc is None:
        return [None]
    if sc.kind is not None:
        eqs = [e for e in site.equipment if e.kind.value == sc.kind]
        if not eqs:
            raise lp.error(
                ("scope", "kind"), f"site {site.name!r} has no equipment of kind {sc.kind!r}"
            )
        return list(eqs)
    out: list[Equipment | None] = []
    for i, eid in enumerate(sc.equipment or []):
        try:
            out.append(site.equipment_by_id(eid))
        except KeyError:
            raise lp.error(("scope", "equipment", i), f"unknown equipment {eid!r}") from None
    return out


def _point_tag(site: Site, eq: Equipment | None, ref: str) -> str | None:
    if "." in ref:
        return ref if ref in site.points_by_tag else None
    if eq is None:
        return None
    t = f"{eq.id}.{ref}"
    return t if t in site.points_by_tag else None


def _brick_tag(eq: Equipment | None, brick: str) -> str | None:
    if eq is None:
        return None
    for p in eq.points:
        if p.brick == brick:
            return f"{eq.id}.{p.name}"
    return None


def compile_policies(
    policies: Sequence[LoadedPolicy], site: Site, registry: DerivedRegistry | None = None
) -> CompiledPolicies:
    """Resolve every reference against ``site``; raise PolicyConfigError naming file:line.

    ``registry``: the derived values the policies may use (default: the built-ins).
    """
    registry = registry if registry is not None else DerivedRegistry.builtin()
    ids = site.point_ids
    instances: list[_Instance] = []
    src: list[int] = []
    col: list[int] = []
    ops: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    hyst: list[float] = []
    fors: list[float] = []
    refs: list[tuple[str, str | None, Condition]] = []
    dslots: list[_Derived] = []
    referenced: set[str] = set()

    for lp in policies:
        pol = lp.policy
        if not pol.enabled:
            continue
        cond_key = "all" if pol.when.all is not None else "any"
        eqs = _equipment_for(lp, site)
        for eq in eqs:
            start = len(ops)
            rests: list[str] = []
            for j, c in enumerate(pol.when.conditions):
                where = ("when", cond_key, j)
                tag: str | None = None
                if c.point is not None or c.quality is not None:
                    ref = c.point if c.point is not None else c.quality
                    assert ref is not None
                    tag = _point_tag(site, eq, ref)
                    if tag is None:
                        on = f" on {eq.id}" if eq is not None and "." not in ref else ""
                        key = "point" if c.point is not None else "quality"
                        raise lp.error((*where, key), f"unknown point {ref!r}{on}")
                    src.append(_SRC_POINT if c.point is not None else _SRC_QUALITY)
                    col.append(ids[tag])
                    rests.append(tag)
                elif c.brick is not None:
                    tag = _brick_tag(eq, c.brick)
                    if tag is None:
                        on = f"{eq.id}" if eq is not None else "an unscoped policy"
                        raise lp.error(
                            (*where, "brick"), f"no point with Brick class {c.brick!r} on {on}"
                        )
                    src.append(_SRC_POINT)
                    col.append(ids[tag])
                    rests.append(tag)
                else:
                    assert c.derived is not None
                    try:
                        spec = registry.get(c.derived)
                    except KeyError:
                        known = ", ".join(registry.names()[:12])
                        raise lp.error(
                            (*where, "derived"),
                            f"unknown derived value {c.derived!r} (known: {known})",
                        ) from None
                    if not spec.applies_to(eq):
                        raise lp.error(
                            (*where, "derived"),
                            f"{c.derived} applies to {sorted(spec.kinds or [])}, "
                            f"not {eq.kind.value if eq else 'an unscoped policy'}",
                        )
                    missing = [t for t in spec.input_tags(eq) if t not in site.points_by_tag]
                    if missing:
                        raise lp.error((*where, "derived"), f"{c.derived} needs points {missing}")
                    src.append(_SRC_DERIVED)
                    col.append(len(dslots))
                    dslots.append(_Derived(spec, eq, dict(c.args)))
                    rests.extend(spec.input_tags(eq))
                ops.append(_OPS[c.op])
                if isinstance(c.value, tuple):
                    lo.append(c.value[0])
                    hi.append(c.value[1])
                else:
                    lo.append(c.value)
                    hi.append(c.value)
                hyst.append(c.hysteresis)
                fors.append(c.for_s)
                refs.append((c.ref, tag, c))
            target = _resolve_target(lp, site, eq, pol.then)
            if target is not None:
                rests.append(target)
            verify_tag = None
            if pol.verify is not None:
                verify_tag = _point_tag(site, eq, pol.verify.point)
                if verify_tag is None:
                    raise lp.error(("verify", "point"), f"unknown point {pol.verify.point!r}")
            rests_t = tuple(dict.fromkeys(rests))
            referenced.update(rests_t)
            instances.append(
                _Instance(
                    lp, eq, start, len(ops), pol.when.mode == "all", rests_t, target, verify_tag
                )
            )

    n_inst = len(instances)
    return CompiledPolicies(
        site=site,
        instances=instances,
        src=np.asarray(src, np.int8),
        col=np.asarray(col, np.int64),
        op=np.asarray(ops, np.int8),
        lo=np.asarray(lo, float),
        hi=np.asarray(hi, float),
        hyst=np.asarray(hyst, float),
        for_s=np.asarray(fors, float),
        atom_ref=refs,
        derived=dslots,
        starts=np.asarray([i.start for i in instances], np.int64),
        mode_all=np.asarray([i.mode_all for i in instances], bool),
        inst_for=np.asarray([i.lp.policy.for_s for i in instances], float).reshape(n_inst),
        inst_cooldown=np.asarray([i.lp.policy.cooldown_s for i in instances], float).reshape(
            n_inst
        ),
        referenced_tags=sorted(referenced),
    )


def _resolve_target(lp: LoadedPolicy, site: Site, eq: Equipment | None, act: Action) -> str | None:
    if act.target is None:
        if act.action == "stage":
            kind = act.stage_kind
            if not any(e.kind.value == kind for e in site.equipment):
                raise lp.error(("then", "stage_kind"), f"site has no equipment of kind {kind!r}")
        return None
    tag = _point_tag(site, eq, act.target)
    if tag is None:
        raise lp.error(("then", "target"), f"unknown point {act.target!r}")
    point = site.point(tag)
    if point.write is None:
        raise lp.error(("then", "target"), f"{tag} is not writable")
    lim = point.write
    for key in ("min", "max", "value"):
        v = getattr(act, key)
        if v is not None and not (lim.min <= v <= lim.max):
            raise lp.error(
                ("then", key), f"{key} {v} is outside {tag}'s write limits [{lim.min}, {lim.max}]"
            )
    return tag


# ---- evaluation ----------------------------------------------------------------------------------
@dataclass
class Observation:
    """One cycle's inputs, aligned with ``site.point_ids`` (``nan`` = missing or bad)."""

    now: datetime
    values: FloatArray
    quality: FloatArray | None = None
    history: HistoryFn | None = None


def applicable(
    policies: Sequence[LoadedPolicy], site: Site, registry: DerivedRegistry | None = None
) -> tuple[list[LoadedPolicy], list[tuple[str, str]]]:
    """Split policies into those that compile against ``site`` and (id, why) of the rest."""
    ok: list[LoadedPolicy] = []
    skipped: list[tuple[str, str]] = []
    for lp in policies:
        try:
            compile_policies([lp], site, registry)
        except PolicyConfigError as err:
            skipped.append((lp.policy.id, str(err)))
            continue
        ok.append(lp)
    return ok, skipped


class PolicyEngine:
    """Compiled policies plus their state (hold timers, hysteresis, cool-downs).

    ``strict=False`` drops the policies that do not apply to the site (e.g. the data-hall
    library on an air-handler recording) and lists them in ``skipped``. ``registry``: the
    derived values the policies may use (default: the built-ins). ``state``: when each
    instance last fired — the cool-downs, kept across a restart when the state has a store
    (:meth:`tools.policies.state.PolicyState.load`).
    """

    def __init__(
        self,
        policies: Sequence[LoadedPolicy],
        site: Site,
        strict: bool = True,
        *,
        registry: DerivedRegistry | None = None,
        state: PolicyState | None = None,
    ) -> None:
        self.site = site
        self.registry = registry if registry is not None else DerivedRegistry.builtin()
        self.state = state if state is not None else PolicyState()
        self.skipped: list[tuple[str, str]] = []
        if not strict:
            policies, self.skipped = applicable(policies, site, self.registry)
        self.c = compile_policies(policies, site, self.registry)
        n, m = self.c.n_atoms, len(self.c.instances)
        self._atom_prev = np.zeros(n, bool)
        self._atom_since = np.full(n, np.nan)
        self._inst_since = np.full(m, np.nan)
        self._last_fired = np.full(m, -np.inf)
        for i in range(m):
            t = self.state.last_fired.get(self.instance_key(i))
            if t is not None:
                self._last_fired[i] = t.timestamp()
        self.active = np.zeros(m, bool)
        # the last cycle, for the fault lifecycle (tools.policies.faults): instances whose
        # condition held for the policy's `for` (they fire unless cooling down, suppressed or
        # waiting for their job), instances whose atoms all had a value, the atom values
        self.ready = np.zeros(m, bool)
        self.known = np.zeros(m, bool)
        self.last_now: datetime | None = None
        self._last_v = np.full(n, np.nan)
        self._last_held = np.zeros(n, bool)
        self.suppressed: set[str] = set()  # instance keys with a decision still open
        # policy kinds that may fire (None: all); the others keep their timers but wait
        # (the site's schedule: efficiency and fault policies fire in their own sweeps)
        self.kinds: frozenset[str] | None = None

    @property
    def n_policies(self) -> int:
        return len({i.lp.policy.id for i in self.c.instances})

    @property
    def referenced_tags(self) -> list[str]:
        return self.c.referenced_tags

    def instance_key(self, i: int) -> str:
        inst = self.c.instances[i]
        return f"{inst.lp.policy.id}@{inst.equipment.id}" if inst.equipment else inst.lp.policy.id

    def _vector(self, obs: Observation, memo: dict[str, Any]) -> FloatArray:
        c = self.c
        v = np.full(c.n_atoms, np.nan)
        pm = c.src == _SRC_POINT
        v[pm] = obs.values[c.col[pm]]
        qm = c.src == _SRC_QUALITY
        if qm.any() and obs.quality is not None:
            v[qm] = obs.quality[c.col[qm]]
        dm = np.flatnonzero(c.src == _SRC_DERIVED)
        if len(dm):
            view = ValuesView(self.site.point_ids, obs.values)
            for a in dm:
                d = c.derived[c.col[a]]
                x = DerivedInput(self.site, d.equipment, view, obs.now, d.args, obs.history, memo)
                v[a] = compute(d.spec, x)
        return v

    def evaluate(self, obs: Observation) -> list[Trigger]:
        """One cycle: which instances fire now (held long enough, out of cool-down)."""
        c = self.c
        if not c.instances:
            return []
        t = obs.now.timestamp()
        v = self._vector(obs, {})
        prev = self._atom_prev
        h = np.where(prev, c.hyst, 0.0)
        lo, hi = c.lo, c.hi
        res = np.zeros((8, c.n_atoms), bool)
        with np.errstate(invalid="ignore"):
            res[0] = v > lo - h
            res[1] = v >= lo - h
            res[2] = v < hi + h
            res[3] = v <= hi + h
            res[4] = np.abs(v - lo) <= EQ_TOL
            res[5] = np.abs(v - lo) > EQ_TOL
            res[6] = (v < lo + h) | (v > hi - h)
            res[7] = (v >= lo - h) & (v <= hi + h)
        raw = res[c.op, np.arange(c.n_atoms)] & ~np.isnan(v)
        self._atom_since = np.where(raw, np.where(prev, self._atom_since, t), np.nan)
        self._atom_prev = raw
        held = raw & ((t - self._atom_since) >= c.for_s)
        all_ = np.logical_and.reduceat(held, c.starts)
        any_ = np.logical_or.reduceat(held, c.starts)
        inst = np.where(c.mode_all, all_, any_)
        was = self.active
        self._inst_since = np.where(inst, np.where(was, self._inst_since, t), np.nan)
        self.active = inst
        ready = inst & ((t - self._inst_since) >= c.inst_for)
        self.ready = ready
        self.known = np.logical_and.reduceat(~np.isnan(v), c.starts)
        self.last_now = obs.now
        self._last_v, self._last_held = v, held
        fire = ready & ((t - self._last_fired) >= c.inst_cooldown)
        out: list[Trigger] = []
        for i in np.flatnonzero(fire):
            key = self.instance_key(int(i))
            if key in self.suppressed:
                continue
            if self.kinds is not None and self.c.instances[i].lp.policy.kind not in self.kinds:
                continue
            trig = self._trigger(int(i), v, held, obs)
            if trig is None:  # its set point already holds the value: nothing to do, no cooldown
                continue
            self._last_fired[i] = t
            self.state.fired(key, self.c.instances[i].lp.policy.id, obs.now)
            out.append(trig)
        return out

    def _evidence(self, i: int, v: FloatArray, held: BoolArray) -> tuple[Evidence, ...]:
        inst = self.c.instances[i]
        ev = []
        for a in range(inst.start, inst.stop):
            ref, tag, cond = self.c.atom_ref[a]
            ev.append(Evidence(ref, tag, float(v[a]), cond.op, cond.value, bool(held[a])))
        return tuple(ev)

    def true_since(self, i: int) -> datetime | None:
        """Since when instance ``i``'s condition has been true (None: it is not)."""
        x = float(self._inst_since[i])
        return None if math.isnan(x) else datetime.fromtimestamp(x)

    def last_evidence(self, i: int) -> tuple[Evidence, ...]:
        """Instance ``i``'s conditions as the last :meth:`evaluate` saw them."""
        return self._evidence(i, self._last_v, self._last_held)

    def _trigger(self, i: int, v: FloatArray, held: BoolArray, obs: Observation) -> Trigger | None:
        inst = self.c.instances[i]
        ev = self._evidence(i, v, held)
        view = ValuesView(self.site.point_ids, obs.values)
        action = resolve_action(self.site, inst.lp.policy.then, inst.equipment, inst.target, view)
        if action is None:
            return None
        eid = inst.equipment.id if inst.equipment is not None else None
        return Trigger(i, inst.lp.policy, eid, ev, inst.rests_on, action)

    def verify_tag(self, i: int) -> str | None:
        return self.c.instances[i].verify_tag

    def reset(self) -> None:
        self._atom_prev[:] = False
        self._atom_since[:] = np.nan
        self._inst_since[:] = np.nan
        self._last_fired[:] = -np.inf
        self.active[:] = False
        self.ready[:] = False
        self.known[:] = False


def resolve_action(
    site: Site, act: Action, eq: Equipment | None, target: str | None, values: Mapping[str, float]
) -> ProposedAction | None:
    """Turn a policy's THEN into concrete changes, bounded by its min/max; None when a
    ``write_setpoint`` target already holds the value (nothing to change, nothing to approve:
    the CDU pump's protection at a utility loss asked an operator to write 100 over 100)."""

    def bound(x: float) -> float:
        if act.min is not None:
            x = max(act.min, x)
        if act.max is not None:
            x = min(act.max, x)
        return x

    def cur(tag: str) -> float:
        return float(values.get(tag, math.nan))

    msg = act.message
    k = act.action
    if k in ("alarm", "notify"):
        return ProposedAction(k, (), msg)
    if k == "optimise":
        return ProposedAction(k, (), msg, tuple(act.variables))
    if k == "stage":
        for other in site.equipment:
            if other.kind.value != act.stage_kind or (eq is not None and other.id == eq.id):
                continue
            en, run, trip = (f"{other.id}.{n}" for n in ("enable", "running", "tripped"))
            if en not in site.points_by_tag or site.point(en).write is None:
                continue
            if cur(run) == 1.0 or cur(trip) == 1.0 or cur(en) == 1.0:
                continue
            return ProposedAction(
                k, (Change(en, 1.0, _prev(cur(en))),), msg or f"start standby {other.id}"
            )
        return ProposedAction(
            k, (), (msg + " — " if msg else "") + f"no standby {act.stage_kind} available"
        )
    if target is None:  # isolate without a writable valve: a recommendation to isolate by hand
        return ProposedAction(k, (), msg)
    now_v = cur(target)
    if k == "start":
        value = 1.0
    elif k == "stop":
        value = 0.0
    elif act.value is not None:
        value = bound(act.value)
    elif act.delta is not None:
        if math.isnan(now_v):
            return ProposedAction(
                k, (), (msg + " — " if msg else "") + f"{target} has no current value"
            )
        value = bound(now_v + act.delta)
    elif act.fraction is not None:
        if math.isnan(now_v):
            return ProposedAction(
                k, (), (msg + " — " if msg else "") + f"{target} has no current value"
            )
        value = bound(now_v * act.fraction)
    else:
        value = bound(1.0)
    if k == "write_setpoint" and value == now_v:
        return None
    return ProposedAction(k, (Change(target, value, _prev(now_v)),), msg)


def _prev(x: float) -> float | None:
    return None if math.isnan(x) else x
