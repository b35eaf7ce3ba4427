"""The autonomy gate: property tests (hypothesis) and the structural write permit."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import WriteRejected
from connectors.site import QualityThresholds
from tools import gate
from tools.gate import Approval, Authorization, AuthorizedChange, AutoLock, GateControl
from tools.prediction import ConstraintRecord, PredictionRecord

T0 = datetime(2026, 1, 1)
levels = st.integers(0, 3)
scores = st.floats(0.0, 1.0)


@given(
    site=levels,
    policy=levels,
    q=scores,
    min_q=scores,
    w=levels,
    writes=st.booleans(),
    locked=st.booleans(),
    estop=st.booleans(),
    override=st.booleans(),
)
def test_never_exceeds_any_cap(
    site: int,
    policy: int,
    q: float,
    min_q: float,
    w: int,
    writes: bool,
    locked: bool,
    estop: bool,
    override: bool,
) -> None:
    th = QualityThresholds()
    ql = gate.quality_level(q, th, min_q)
    ctl = GateControl(site_ceiling=site, locked=locked, lock_reason="x", estop=estop)
    v = gate.evaluate(
        "d",
        control=ctl,
        policy_ceiling=policy,
        quality=ql,
        whatif=w,
        writes=writes,
        override=override,
    )
    assert v.level <= site and v.level <= policy and v.level <= ql and v.level <= w
    assert v.level == min(v.caps.values())
    assert all(v.caps[f] == v.level for f in v.set_by) and v.set_by
    if locked or estop or override:
        assert v.level <= 1
    if writes and v.level == 3:
        assert v.outcome == "executed"
    if v.outcome == "executed":
        assert v.level == 3


@given(site=levels, policy=levels, q1=scores, q2=scores, min_q=scores, w=levels)
def test_lower_quality_never_raises_the_level(
    site: int, policy: int, q1: float, q2: float, min_q: float, w: int
) -> None:
    lo, hi = sorted((q1, q2))
    th = QualityThresholds()
    ctl = GateControl(site_ceiling=site)

    def lvl(q: float) -> int:
        return gate.evaluate(
            "d",
            control=ctl,
            policy_ceiling=policy,
            quality=gate.quality_level(q, th, min_q),
            whatif=w,
            writes=True,
        ).level

    assert lvl(lo) <= lvl(hi)


@given(level=levels, factor=st.sampled_from(["quality", "whatif", "override", "site"]), cap=levels)
def test_downgrade_never_raises(level: int, factor: str, cap: int) -> None:
    v = gate.evaluate(
        "d",
        control=GateControl(site_ceiling=3),
        policy_ceiling=level,
        quality=3,
        whatif=3,
        writes=True,
    )
    d = gate.downgrade(v, factor, cap, "later")
    assert d.level <= v.level and d.level <= cap


def test_whatif_levels() -> None:
    ok = PredictionRecord((ConstraintRecord("rack_inlet", True, 24.0, 27.0, 3.0, "", 3.0),))
    broken = PredictionRecord(
        (ConstraintRecord("rack_inlet", False, 29.0, 27.0, -2.0, "", 1.0),),
        worsened=("rack_inlet",),
    )
    outside = PredictionRecord(valid=False, invalid_reasons=("wet bulb 35 °C above 30",))
    assert gate.whatif_level(ok, "required")[0] == 3
    lvl, why = gate.whatif_level(broken, "required")
    assert lvl == 0 and "rack_inlet" in why
    assert gate.whatif_level(outside, "optional") == (
        2,
        "model outside its validity range: wet bulb 35 °C above 30",
    )
    assert gate.whatif_level(None, "required")[0] == 1
    assert gate.whatif_level(None, "none")[0] == 3
    v = gate.evaluate(
        "d", control=GateControl(site_ceiling=3), policy_ceiling=3, quality=3, whatif=0, writes=True
    )
    assert v.outcome == "rejected_by_gate" and v.set_by == ("whatif",)


def test_quality_levels_follow_thresholds() -> None:
    th = QualityThresholds()
    assert [gate.quality_level(s, th) for s in (0.99, 0.9, 0.6, 0.2)] == [3, 2, 1, 0]
    assert gate.quality_level(0.99, th, min_quality=0.995) == 1
    assert gate.quality_level(float("nan"), th) == 0


def test_only_the_gate_mints_authorizations() -> None:
    with pytest.raises(WriteRejected):
        Authorization(object(), decision_id="d", changes=[], level=3, issued=T0)
    ch = [AuthorizedChange("gpu.power_cap", 90.0)]
    ctl = GateControl(site_ceiling=3)
    v3 = gate.evaluate("d3", control=ctl, policy_ceiling=3, quality=3, whatif=3, writes=True)
    auth = gate.authorize(v3, ch, control=ctl, now=T0)
    assert auth.level == 3 and auth.changes[0].tag == "gpu.power_cap"
    with pytest.raises(AttributeError):
        auth.level = 9
    v2 = gate.evaluate("d2", control=ctl, policy_ceiling=2, quality=3, whatif=3, writes=True)
    with pytest.raises(WriteRejected, match="approval"):
        gate.authorize(v2, ch, control=ctl, now=T0)
    with pytest.raises(WriteRejected, match="is for"):
        gate.authorize(v2, ch, control=ctl, now=T0, approval=Approval("a1", "other", "approved"))
    with pytest.raises(WriteRejected, match="approval"):
        gate.authorize(v2, ch, control=ctl, now=T0, approval=Approval("a1", "d2", "pending"))
    a2 = gate.authorize(
        v2, ch, control=ctl, now=T0, approval=Approval("a1", "d2", "approved", "ana")
    )
    assert a2.approval_id == "a1" and a2.by_whom == "ana"
    with pytest.raises(WriteRejected, match="emergency stop"):
        gate.authorize(v3, ch, control=GateControl(site_ceiling=3, estop=True), now=T0)
    v1 = gate.evaluate("d1", control=ctl, policy_ceiling=1, quality=3, whatif=3, writes=True)
    with pytest.raises(WriteRejected, match="does not write"):
        gate.authorize(v1, ch, control=ctl, now=T0)


def test_auto_lock_window() -> None:
    lock = AutoLock(max_actions=3, window=timedelta(minutes=10))
    assert [lock.record(T0 + timedelta(minutes=m)) for m in (0, 1, 2)] == [False, False, False]
    assert lock.record(T0 + timedelta(minutes=3))  # 4th within 10 minutes
    lock2 = AutoLock(max_actions=3, window=timedelta(minutes=10))
    assert not any(lock2.record(T0 + timedelta(minutes=m)) for m in (0, 11, 22, 33, 44))


def test_auto_lock_counts_a_runaway_per_policy() -> None:
    # six efficiency levers each acting once at start-up is the plant being run: one site-wide
    # count of 5 locked the site at its first optimisation, for the rest of the day
    lock = AutoLock(max_actions=5, window=timedelta(minutes=10), max_total=15)
    levers = ["chw_reset", "cw_reset", "pumps", "crah_fans", "cdu_pump", "staging"]
    assert not any(lock.record(T0, k) for k in levers)
    # one policy acting again and again is a runaway
    same = [lock.record(T0 + timedelta(minutes=m), "cap") for m in range(6)]
    assert same == [False] * 5 + [True]
    assert "policy cap" in (lock.reason("cap") or "")
    # many policies misbehaving at once: the site-wide budget
    wide = AutoLock(max_actions=5, window=timedelta(minutes=10), max_total=15)
    hits = [wide.record(T0, f"p{i % 8}") for i in range(16)]
    assert hits == [False] * 15 + [True]
    assert (wide.reason("p0") or "").startswith("more than 15")


def test_whatif_toward_safety_acts_on_what_it_cannot_cure() -> None:
    def c(margin: float, before: float, name: str = "rack_inlet") -> ConstraintRecord:
        return ConstraintRecord(name, margin >= 0, 42.0, 27.0, margin, "degC", before)

    outage = PredictionRecord((c(-15.0, -15.0),))  # a utility loss the pump cannot cure
    assert gate.whatif_level(outage, "required")[0] == 2
    lvl, why = gate.whatif_level(outage, "required", toward_safety=True)
    assert lvl == 3 and why.startswith("toward safety")
    invalid = PredictionRecord((), valid=False, invalid_reasons=("no chiller running",))
    assert gate.whatif_level(invalid, "required")[0] == 2
    assert gate.whatif_level(invalid, "required", toward_safety=True)[0] == 3
    # never over a constraint the change breaks or worsens
    worse = PredictionRecord((c(-1.0, 2.0, "gpu_die"),), worsened=("gpu_die",))
    assert gate.whatif_level(worse, "required", toward_safety=True)[0] == 0
    assert gate.whatif_level(None, "required", toward_safety=True)[0] == 1  # no model: no


def test_whatif_corrective_action_on_a_broken_constraint() -> None:
    def c(margin: float, before: float) -> ConstraintRecord:
        return ConstraintRecord("gpu_temp", margin >= 0, 88.0, 85.0, margin, "degC", before)

    improves = PredictionRecord((c(-1.0, -3.0),))
    unchanged = PredictionRecord((c(-3.0, -3.0),))
    partly = PredictionRecord((c(-1.0, -3.0), c(-3.0, -3.0)))
    worsens = PredictionRecord((c(-4.0, -3.0),), worsened=("gpu_temp",))
    breaks = PredictionRecord((c(-1.0, 2.0),), worsened=("gpu_temp",))
    lvl, why = gate.whatif_level(improves, "required")
    assert lvl == 3 and why.startswith("corrective")  # straight toward safety: act
    assert gate.whatif_level(unchanged, "required")[0] == 2  # not addressed: a person decides
    assert gate.whatif_level(partly, "required")[0] == 2  # one addressed, one not
    outside = PredictionRecord((c(-1.0, -3.0),), valid=False, invalid_reasons=("x",))
    assert gate.whatif_level(outside, "required")[0] == 2  # the model is not to be trusted there
    assert gate.whatif_level(worsens, "required")[0] == 0
    assert gate.whatif_level(breaks, "required")[0] == 0


def test_a_constraint_the_model_cannot_evaluate_is_left_to_a_person() -> None:
    """Utility loss: no chiller runs, so chiller load is NaN before and after (stored as null).
    That is not a broken constraint (level 0, rejected) but one nobody can judge: level 2."""
    unknown = ConstraintRecord("chiller_max_load", ok=False, value=None, limit=1.0)
    lvl, why = gate.whatif_level(PredictionRecord(constraints=(unknown,)), "required")
    assert lvl == 2 and "chiller_max_load" in why
    broke = ConstraintRecord("gpu_die_temp", ok=False, value=90.0, limit=85.0, margin=-5.0)
    mixed = PredictionRecord(constraints=(unknown, broke))
    assert gate.whatif_level(mixed, "required")[0] == 0
