"""The autonomy gate: how far a decision may be carried out, and the only minter of write permits.

    effective level = min(site ceiling, policy ceiling, data-quality level, what-if level)

(DESIGN.md "Autonomy levels and the gate"). An operator override on the target
point caps the level at 1 (the person is in control of that point). An auto-lock
or an emergency stop lowers the *site* ceiling to 1 (decision support) until an
admin re-enables it. The :class:`GateVerdict` records every cap and which factor
set the level.

Levels: 0 observe only, 1 decision support (recommend), 2 human validation
(act after approval), 3 full autonomy (act, then tell).

Structural guarantee: :mod:`tools.actuation` writes only with an
:class:`Authorization`, and only :func:`authorize` (or :func:`authorize_rollback`)
here can construct one — the constructor demands a private token. A level-2
verdict needs a matching approved :class:`Approval`; an emergency stop or an
auto-lock refuses everything.

Approval is consent, never authority: the verdict a write is authorised under is
:func:`at_write_time` — the stored verdict lowered by the whole gate judged again on
current data at the moment of writing (``agent.nodes.reevaluate``), never raised. A
NaN or infinite value is refused outright (:func:`nonfinite`; what-if level 0).

Everything here is pure: state (the control settings, the auto-lock window)
is passed in and returned, never read from globals or the clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic.dataclasses import dataclass as pydantic_dataclass

from connectors.errors import WriteRejected
from connectors.site import QualityThresholds
from tools.prediction import PredictionRecord

APPROVAL_TTL_S = 900.0
"""How long an approval request stays open. It was judged on the plant as it was then:
after a quarter of an hour the plant has moved on, so the request expires (nothing is
written) and the policy, if its condition persists, asks again on fresh data — and may
then not need a person at all (the condition that capped it at human validation, e.g.
a transient broken constraint, may have passed)."""

LEVEL_NAMES = {0: "observe only", 1: "decision support", 2: "human validation", 3: "full autonomy"}
Factor = Literal["site", "policy", "quality", "whatif", "override", "refused"]
"""What can set a verdict's level (``refused``: a tool call the gate never judged)."""
FACTORS: tuple[Factor, ...] = ("site", "policy", "quality", "whatif", "override")
Outcome = Literal[
    "recommended", "approval_requested", "executed", "blocked", "alarm", "rejected_by_gate"
]
"""What becomes of a decision — the one set of outcome strings (state, audit, API, evals)."""
ApprovalState = Literal["pending", "approved", "rejected", "cancelled", "expired"]
ANSWERS: tuple[ApprovalState, ...] = ("approved", "rejected", "cancelled", "expired")
WhatIfRequirement = Literal["required", "optional", "none"]


# ---- the four caps ----------------------------------------------------------------------------
def quality_level(score: float, thresholds: QualityThresholds, min_quality: float = 0.0) -> int:
    """Level the data quality allows: by thresholds; below the policy's minimum, at most 1."""
    if math.isnan(score):  # nan: nothing known about the data
        return 0
    lvl = thresholds.level(score)
    return min(lvl, 1) if score < min_quality else lvl


@dataclass(frozen=True)
class ConstraintVerdict:
    """What a predicted change does to the constraints it leaves broken (text per constraint).

    ``broken``: broken by the change, or made worse; ``eased``: broken before and brought
    measurably closer to the limit; ``still``: broken before and left as they were."""

    broken: tuple[str, ...] = ()
    eased: tuple[str, ...] = ()
    still: tuple[str, ...] = ()


def _num(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def constraint_verdict(prediction: PredictionRecord) -> ConstraintVerdict:
    """Classify a prediction's violated constraints (pure)."""
    worsened = set(prediction.worsened)
    broken: list[str] = []
    still: list[str] = []
    eased: list[str] = []
    for c in prediction.constraints:
        if c.ok:
            continue
        text = f"{c.name} {_num(c.value)} vs limit {_num(c.limit)}"
        before, m = c.margin_before, c.margin
        unevaluable = c.limit is not None and c.value is None and m is None and before is None
        if unevaluable and c.name not in worsened:
            # the model checked the limit but cannot evaluate the value, before or after (e.g.
            # chiller load with no chiller running during a utility loss): a person decides
            still.append(text)
        elif before is None or m is None or before >= 0 or c.name in worsened:
            broken.append(text)
        elif m - before > max(1e-3, 0.01 * abs(before)):
            eased.append(text)
        else:
            still.append(text)
    return ConstraintVerdict(tuple(broken), tuple(eased), tuple(still))


def whatif_level(
    prediction: PredictionRecord | None,
    requirement: WhatIfRequirement,
    error: str | None = None,
    refused: str | None = None,
    toward_safety: bool = False,
) -> tuple[int, str]:
    """Level the what-if check allows, and why.

    * ``refused`` (the proposal itself is invalid, e.g. a NaN or infinite value) → 0,
      whatever the requirement: there is nothing sound to carry out;
    * ``requirement == "none"`` → 3 (the policy does not ask for one);
    * no prediction: 1 when required ("cannot check: recommend only"), 3 when optional;
    * a constraint the change breaks (it held before) or makes worse → 0 (rejected);
    * constraints already broken before, each brought measurably closer to its limit
      and none made worse (a corrective move that does not fully cure them yet, e.g.
      giving back one CRAH's over-cooling while the hall is still too cold) → 3: doing
      nothing is the worse choice, and the move is exactly toward safety;
    * a constraint already broken before that the change leaves as it is (the action
      does not address what is wrong) → 2: a person decides;
    * outside the model's validity range → 2 (a person must look);
    * but ``toward_safety`` — every change moves its point in the direction the site declares
      safe (``write.safe_direction``: a CDU pump speeding up) — with nothing broken or made
      worse → 3, whatever else is broken or however far outside its range the model is: in a
      loss of cooling the model cannot cure the outage, and a person asked to approve a pump
      going to full speed is minutes the GPUs do not have.
    """
    if refused is not None:
        return 0, f"proposal refused: {refused}"
    if requirement == "none":
        return 3, "no what-if needed"
    if prediction is None:
        if requirement == "required":
            return 1, f"what-if unavailable ({error or 'no model'}): recommend only"
        return 3, "what-if optional and unavailable"
    cv = constraint_verdict(prediction)
    broken, still, eased = cv.broken, cv.still, cv.eased
    if broken:
        return 0, f"predicted state breaks constraints: {', '.join(broken)}"
    if toward_safety and (still or not prediction.valid):
        left = ", ".join(still) or "; ".join(prediction.invalid_reasons) or "validity range"
        return 3, f"toward safety: every change in its safe direction, nothing worse ({left})"
    if still:
        return 2, f"constraints still broken after the change (not worse): {', '.join(still)}"
    if eased and prediction.valid:
        return 3, f"corrective: every broken constraint moves toward its limit ({', '.join(eased)})"
    if not prediction.valid:
        why = "; ".join(prediction.invalid_reasons) or "outside validity range"
        return 2, f"model outside its validity range: {why}"
    return 3, "what-if: all constraints hold"


# ---- control state ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GateControl:
    """Site-wide switches set by people: ceiling, auto-lock, emergency stop."""

    site_ceiling: int = 2
    locked: bool = False
    lock_reason: str = ""
    estop: bool = False

    def effective_site_ceiling(self) -> tuple[int, str]:
        if self.estop:
            return min(self.site_ceiling, 1), "emergency stop engaged"
        if self.locked:
            return min(self.site_ceiling, 1), f"auto-locked: {self.lock_reason}"
        return (
            self.site_ceiling,
            f"site ceiling {self.site_ceiling} ({LEVEL_NAMES[self.site_ceiling]})",
        )


@dataclass
class AutoLock:
    """A runaway locks the site: more than ``max_actions`` autonomous actions by one policy
    within ``window``, or more than ``max_total`` by all policies together.

    A runaway is a rule acting again and again — a write that never verifies, a condition
    the action does not remove, bad data that keeps a protection firing. Several levers each
    acting once is the plant being run: at start-up six efficiency policies (chilled and
    condenser water, both pumps, CRAH fans, the CDU pump) each write once, and a single
    site-wide count of 5 locked the site at its first optimisation — for the rest of the day,
    until an admin cleared it. So the count is per policy, with a site-wide budget three
    times larger for many rules misbehaving at once.
    """

    max_actions: int = 5
    window: timedelta = timedelta(minutes=10)
    max_total: int = 15
    times: deque[tuple[datetime, str]] = field(default_factory=deque)

    def record(self, t: datetime, key: str = "") -> bool:
        """Count one autonomous action of policy ``key`` at ``t``; True when it crosses a limit."""
        self.times.append((t, key))
        while self.times and t - self.times[0][0] > self.window:
            self.times.popleft()
        return self.reason(key) is not None

    def reason(self, key: str = "") -> str | None:
        """Why the actions counted now lock the site (None: they do not)."""
        own = sum(1 for _, k in self.times if k == key)
        if own > self.max_actions:
            who = f"policy {key}" if key else "one policy"
            return f"{who}: more than {self.max_actions} autonomous actions within {self.window}"
        if len(self.times) > self.max_total:
            return f"more than {self.max_total} autonomous actions within {self.window}"
        return None

    def seed(self, actions: Iterable[tuple[datetime, str]]) -> None:
        self.times = deque(sorted(actions))


# ---- verdict ---------------------------------------------------------------------------------
@pydantic_dataclass(frozen=True)
class GateVerdict:
    """How far one decision may go, which factors set that level, and why (validated: a
    verdict read back from a checkpoint or an audit row has the same types)."""

    decision_id: str
    level: int
    set_by: tuple[Factor, ...]
    caps: dict[Factor, int]
    reasons: dict[str, str]
    writes: bool
    outcome: Outcome

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "level": self.level,
            "level_name": self.level_name,
            "set_by": list(self.set_by),
            "caps": dict(self.caps),
            "reasons": dict(self.reasons),
            "writes": self.writes,
            "outcome": self.outcome,
        }


def evaluate(
    decision_id: str,
    *,
    control: GateControl,
    policy_ceiling: int,
    quality: int,
    whatif: int,
    writes: bool,
    notify_only: bool = False,
    override: bool = False,
    reasons: dict[str, str] | None = None,
) -> GateVerdict:
    """The verdict for one decision. ``writes``: the action changes equipment."""
    site_cap, site_why = control.effective_site_ceiling()
    caps: dict[Factor, int] = {
        "site": site_cap,
        "policy": policy_ceiling,
        "quality": quality,
        "whatif": whatif,
        "override": 1 if override else 3,
    }
    level = min(caps.values())
    set_by = tuple(f for f in FACTORS if caps[f] == level)
    why = {"site": site_why, "policy": f"policy ceiling {policy_ceiling}"}
    if override:
        why["override"] = "an operator override holds the target point"
    why.update(reasons or {})
    return GateVerdict(
        decision_id, level, set_by, caps, why, writes, route(level, writes, notify_only, set_by)
    )


def route(level: int, writes: bool, notify_only: bool, set_by: Sequence[str] = ()) -> Outcome:
    """Where a decision goes: act, ask, recommend — or alarm when it writes nothing."""
    if notify_only:
        return "alarm"
    if not writes:
        return "recommended"
    if level >= 3:
        return "executed"
    if level == 2:
        return "approval_requested"
    if level == 1:
        return "recommended"
    return "rejected_by_gate" if "whatif" in set_by else "blocked"


def refused(decision_id: str, why: str) -> GateVerdict:
    """The verdict on a tool call that never reached the gate's judgement (nothing written)."""
    return GateVerdict(
        decision_id, 0, ("refused",), {"refused": 0}, {"refused": why}, False, "blocked"
    )


def _capped(verdict: GateVerdict, caps: dict[Factor, int], reasons: dict[str, str]) -> GateVerdict:
    """``verdict`` with lower ``caps`` (and their ``reasons``): level, set_by and route follow."""
    new = min(verdict.level, *caps.values())
    set_by = tuple(f for f in caps if caps[f] == new)
    return replace(
        verdict,
        level=new,
        set_by=set_by,
        caps=caps,
        reasons=reasons,
        outcome=route(new, verdict.writes, False, set_by),
    )


def downgrade(verdict: GateVerdict, factor: Factor, level: int, why: str) -> GateVerdict:
    """A later cap (e.g. found at act time): never raises the level."""
    caps = dict(verdict.caps)
    caps[factor] = min(caps.get(factor, 3), level)
    return _capped(verdict, caps, {**verdict.reasons, factor: why})


def nonfinite(changes: Iterable[tuple[str, float]]) -> str | None:
    """Why a set of ``(tag, value)`` changes is refused outright (a NaN or an infinity), or None."""
    bad = [f"{t} = {v}" for t, v in changes if not math.isfinite(v)]
    return f"non-finite value {', '.join(bad)}" if bad else None


def at_write_time(stored: GateVerdict, fresh: GateVerdict) -> GateVerdict:
    """The verdict an approved (or autonomous) decision is written under: the stored one,
    lowered by every cap the fresh verdict (the whole gate on current data) puts lower —
    never raised (an approval of a level-2 request never becomes level-3 authority)."""
    caps = dict(stored.caps)
    reasons = dict(stored.reasons)
    for f, lvl in fresh.caps.items():
        if lvl < caps.get(f, 3):
            reasons[f] = f"at write time: {fresh.reasons.get(f, f'{f} {lvl}')}"
            caps[f] = lvl
    return _capped(stored, caps, reasons)


def why_level(verdict: GateVerdict) -> str:
    """``level N (name), set by f: reason; …`` — what capped a verdict, in words."""
    why = "; ".join(verdict.reasons.get(f, f) for f in verdict.set_by)
    return (
        f"level {verdict.level} ({LEVEL_NAMES[verdict.level]}), "
        f"set by {'/'.join(verdict.set_by)}: {why}"
    )


# ---- authorizations --------------------------------------------------------------------------
_MINT = object()


@dataclass(frozen=True)
class Approval:
    approval_id: str
    decision_id: str
    state: ApprovalState
    by_whom: str = ""
    why: str = ""


@dataclass(frozen=True)
class AuthorizedChange:
    tag: str
    value: float
    previous: float | None = None


class Authorization:
    """Permission for one decision's writes. Only this module can construct one."""

    __slots__ = (
        "_frozen",
        "approval_id",
        "by_whom",
        "changes",
        "decision_id",
        "estop_restore",
        "issued",
        "level",
        "rollback_of",
    )

    def __init__(
        self,
        token: object,
        *,
        decision_id: str,
        changes: Sequence[AuthorizedChange],
        level: int,
        issued: datetime,
        approval_id: str | None = None,
        by_whom: str = "agent",
        rollback_of: str | None = None,
        estop_restore: bool = False,
    ) -> None:
        if token is not _MINT:
            raise WriteRejected("an Authorization is issued by the autonomy gate only")
        self.decision_id = decision_id
        self.changes = tuple(changes)
        self.level = level
        self.issued = issued
        self.approval_id = approval_id
        self.by_whom = by_whom
        self.rollback_of = rollback_of
        self.estop_restore = estop_restore
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError("an Authorization cannot be altered")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Authorization({self.decision_id}, level={self.level}, changes={len(self.changes)})"


def authorize(
    verdict: GateVerdict,
    changes: Sequence[AuthorizedChange],
    *,
    control: GateControl,
    now: datetime,
    approval: Approval | None = None,
) -> Authorization:
    """Mint the permit for a verdict's writes, or raise :class:`WriteRejected` saying why."""
    if control.estop:
        raise WriteRejected(f"{verdict.decision_id}: emergency stop engaged")
    if control.locked:
        raise WriteRejected(f"{verdict.decision_id}: site auto-locked ({control.lock_reason})")
    if not changes:
        raise WriteRejected(f"{verdict.decision_id}: nothing to write")
    bad = nonfinite((c.tag, c.value) for c in changes)
    if bad is not None:
        raise WriteRejected(f"{verdict.decision_id}: {bad}")
    if verdict.level >= 3:
        return Authorization(
            _MINT, decision_id=verdict.decision_id, changes=changes, level=3, issued=now
        )
    if verdict.level == 2:
        if approval is None or approval.state != "approved":
            raise WriteRejected(f"{verdict.decision_id}: level 2 needs an operator's approval")
        if approval.decision_id != verdict.decision_id:
            raise WriteRejected(
                f"{verdict.decision_id}: approval {approval.approval_id} is for {approval.decision_id}"
            )
        return Authorization(
            _MINT,
            decision_id=verdict.decision_id,
            changes=changes,
            level=2,
            issued=now,
            approval_id=approval.approval_id,
            by_whom=approval.by_whom or "operator",
        )
    raise WriteRejected(f"{verdict.decision_id}: refused, {why_level(verdict)}: does not write")


class JournaledWrite(Protocol):
    """A journal row of one of our own writes (``tools.actuation.ActionRow`` is one)."""

    @property
    def action_id(self) -> str: ...
    @property
    def decision_id(self) -> str | None: ...
    @property
    def tag(self) -> str: ...
    @property
    def previous(self) -> float | None: ...


def authorize_rollback(
    row: JournaledWrite, now: datetime, *, control: GateControl, estop_restore: bool = False
) -> Authorization:
    """Permit writing back the journaled value a point had before our own write ``row`` — that
    value and no other. Refused when it is unknown or not finite; during an emergency stop only
    the e-stop's own restore (``estop_restore``) may write, and it only during one."""
    prev = row.previous
    if prev is None or not math.isfinite(prev):
        raise WriteRejected(f"{row.tag}: the value before {row.action_id} is unknown; not restored")
    if control.estop and not estop_restore:
        raise WriteRejected(f"{row.tag}: emergency stop engaged; only its restore writes")
    if estop_restore and not control.estop:
        raise WriteRejected(f"{row.tag}: an e-stop restore needs the emergency stop engaged")
    return Authorization(
        _MINT,
        decision_id=row.decision_id or "",
        changes=[AuthorizedChange(row.tag, prev, prev)],
        level=3,
        issued=now,
        by_whom="estop" if estop_restore else "rollback",
        rollback_of=row.action_id,
        estop_restore=estop_restore,
    )
