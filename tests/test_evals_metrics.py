"""Eval metrics: detections, false alarms, unsafe writes, plant totals."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.site import load_site
from evals import metrics as M
from twin import default_site_path


@pytest.fixture(scope="module")
def site():  # type: ignore[no-untyped-def]
    return load_site(default_site_path())


def _writable(site) -> tuple[str, float, float]:  # type: ignore[no-untyped-def]
    for tag, (_eq, p) in site.points_by_tag.items():
        if p.write is not None and not tag.startswith("agent."):
            return tag, p.write.min, p.write.max
    raise AssertionError("twin site has no writable point")


def test_first_detection_per_class_and_false_alarms() -> None:
    d = M.first_detections(
        [
            ("leak", 300.0, "agent"),
            ("leak", 120.0, "detector:x"),
            ("chiller_trip", 60.0, "agent"),
            ("", 1.0, "agent"),
        ]
    )
    assert [(x.fault_class, x.first_detected_s) for x in d] == [
        ("chiller_trip", 60.0),
        ("leak", 120.0),
    ]
    assert M.false_alarms(d, ["leak"]) == ["chiller_trip"]


def test_agent_events_from_decisions() -> None:
    t0 = pd.Timestamp("2026-01-01")
    dec = pd.DataFrame(
        {
            "ts": [t0 + pd.Timedelta(minutes=5), t0 + pd.Timedelta(minutes=9)],
            "fault_class": ["leak", None],
            "kind": ["fault", "efficiency"],
        }
    )
    assert M.agent_fault_events(dec, t0) == [("leak", 300.0, "agent")]


def test_unsafe_writes(site) -> None:  # type: ignore[no-untyped-def]
    tag, lo, hi = _writable(site)
    ro = next(t for t, (_e, p) in site.points_by_tag.items() if p.write is None)
    dec = pd.DataFrame(
        {
            "decision_id": ["ok", "low"],
            "outcome": ["executed", "approval_requested"],
            "effective_level": [3, 2],
        }
    )
    writes = pd.DataFrame(
        {
            "tag": [tag, tag, ro, tag, tag, "agent.heartbeat"],
            "value": [lo, hi + 1.0, 1.0, lo, lo, 5.0],
            "decision_id": ["ok", "ok", "ok", None, "low", None],
        }
    )
    bad = M.unsafe_writes(writes, site, dec, allowed_tags=["agent.heartbeat"])
    whys = [u.why for u in bad]
    assert len(bad) == 4
    assert "outside write limits" in whys[0]
    assert whys[1] == "point is not writable"
    assert whys[2] == "no gate verdict behind the write"
    assert "approval_requested" in whys[3]
    # the first write (executed at level 3, within limits) is safe unless nothing may be written
    assert len(M.unsafe_writes(writes.iloc[:1], site, dec)) == 0
    assert len(M.unsafe_writes(writes.iloc[:1], site, dec, nothing_written=True)) == 1


def test_plant_totals_envelope_throttle_energy() -> None:
    idx = pd.date_range("2026-07-01", periods=60, freq="1min")
    s = pd.DataFrame(
        {
            "plant.cooling_power": 100.0,
            "plant.facility_power": 1300.0,
            "plant.it_power": 1000.0,
            "crah_1.rack_inlet_temp": 24.0,
            "crah_2.rack_inlet_temp": 24.0,
            "gpu.throttling": 0.0,
        },
        index=idx,
    )
    s.iloc[10:13, s.columns.get_loc("crah_2.rack_inlet_temp")] = 28.0
    s.iloc[20:22, s.columns.get_loc("gpu.throttling")] = 1.0
    t = M.plant_totals(s, 60.0)
    assert t.cooling_kwh == pytest.approx(100.0)
    assert t.pue == pytest.approx(1.3)
    assert t.envelope_minutes == 3.0 and t.throttle_minutes == 2.0
    assert M.saving(80.0, 100.0) == pytest.approx(0.2)
    assert M.saving(1.0, 0.0) is None


def test_row_scores_and_constraint_violations() -> None:
    r = M.row_scores([True, False, True], [True, False, False])
    assert (r.precision, r.recall, r.specificity) == (0.5, 1.0, 0.5)
    dec = pd.DataFrame(
        {
            "outcome": ["executed", "executed", "recommended", "executed", "executed"],
            "prediction": [
                '{"constraints": [{"name": "inlet", "ok": false}]}',
                '{"constraints": [{"name": "inlet", "ok": true}]}',
                '{"constraints": [{"name": "inlet", "ok": false}]}',
                # broken before, eased by the action (corrective): not against the constraint
                '{"constraints": [{"name": "inlet", "ok": false, "margin": -0.1,'
                ' "margin_before": -0.4}]}',
                # broken before and made worse: against it
                '{"worsened": ["inlet"], "constraints": [{"name": "inlet", "ok": false,'
                ' "margin": -0.6, "margin_before": -0.4}]}',
            ],
        }
    )
    assert M.constraint_violations(dec) == 2
