"""Chiller FDD: the seven RP-1043 faults from physics residuals.

Real data (skipped when ../shared/datasets is absent): normal.xls raises nothing
over its 14 hours, held out (k-fold over hour blocks) from the reference it is scored
against; fwc10 and ro10 are diagnosed with their class; cf12 and rl10 are below the
detection limit — their primary feature moves by less than one held-out sigma (strict
xfail with the measured figure: a change that detects them must say so).
Synthetic physics: each fault imposed on fault-free data made by the same sign table
is named alone — a self-consistency test of the detector, not evidence of detection.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import DATASETS

from connectors.errors import ConfigError
from tools.fdd import chiller as C
from tools.fdd import crossval as X
from tools.fdd import synthetic as S

RP = DATASETS / "rp1043"
EXPECTED = {
    "cf12": "condenser_fouling",
    "fwc10": "reduced_condenser_flow",
    "rl10": "refrigerant_leak",
    "ro10": "refrigerant_overcharge",
}


def test_normal_xls_is_silent_for_14_hours(
    rp: dict[str, pd.DataFrame], rp_ref: C.ChillerReference
) -> None:
    df = rp["normal"]
    assert (df.index[-1] - df.index[0]).total_seconds() > 14 * 3600
    assert C.detect(df, rp_ref) == []


@pytest.mark.parametrize("k", [2, 3])
def test_normal_xls_held_out_is_silent(k: int, rp: dict[str, pd.DataFrame]) -> None:
    """Issue 15: fitted on two thirds (interleaved hour blocks) and tested on the rest,
    normal.xls raised refrigerant_overcharge; on halves, condenser_fouling and a leak."""
    df = rp["normal"]
    diag = X.diagnose_out_of_sample(df, X.fold_references(df, k, source="normal.xls"))
    assert len(X.judged(diag)) >= 60  # most of the 14 h were judged, not skipped
    assert X.alarm_classes(diag) == {}
    assert set(X.judged(diag)["fault"].dropna()) == set()


def test_in_sample_spreads_were_the_cause(rp: dict[str, pd.DataFrame]) -> None:
    """The same k-fold with the fit's own residual spreads (the old reference) alarms."""
    df = rp["normal"]
    folds = [
        X.Fold(f.number, f.held_out, X.fit_without(df, f.held_out, sigma_folds=0))
        for f in X.fold_references(df, 3)
    ]
    assert X.alarm_classes(X.diagnose_out_of_sample(df, folds)) != {}


#: Measured 2026-12-02 (``bench fdd``, "signal against noise"): the fault's primary feature
#: moves by less than the reference's held-out spread of window residuals — cf12's condenser
#: approach by +0.84 sigma on average (sigma 0.29 K; +0.5 to +1.0 K only above ~280 kW, where
#: the held-out spread of normal.xls is ±0.4 K too), rl10's subcooling by +0.19 sigma
#: (−0.6 to −1.5 K only at 4.5 °C chilled water and low load, +0.3 to +1.0 K elsewhere).
#: Features neither fault should move shift as much between recording days (evaporator
#: approach +2.2 sigma in cf12, superheat +1.4 to +1.9 sigma in rl10 and ro10), so a
#: tighter reference would name those day-to-day differences, not the faults. cf12 names
#: fouling in 4 of 65 judged windows, rl10 a leak in 3 of 60: no alarm (3 of 5 windows).
BELOW_LIMIT = {
    "cf12": "condenser approach +0.84 sigma of held-out spread: below the detection limit",
    "rl10": "subcooling +0.19 sigma of held-out spread: below the detection limit",
}


@pytest.mark.parametrize(
    "stem",
    [
        pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=BELOW_LIMIT[s]))
        if s in BELOW_LIMIT
        else s
        for s in sorted(EXPECTED)
    ],
)
def test_rp1043_fault_file_gets_its_class(
    stem: str, rp: dict[str, pd.DataFrame], rp_ref: C.ChillerReference
) -> None:
    df = rp[stem]
    assert C.fault_class_for_label(df.attrs["label"]) == EXPECTED[stem]
    dets = C.detect(df, rp_ref)
    assert C.dominant(dets) == EXPECTED[stem], [(d.fault_class, d.alarm_windows) for d in dets]


def test_below_limit_files_move_their_primary_feature_by_about_one_sigma(
    rp: dict[str, pd.DataFrame], rp_ref: C.ChillerReference
) -> None:
    """The detection limit as measured: the detected files move their primary feature by
    several held-out sigmas, cf12 and rl10 by less than one, and normal.xls held out by none."""
    from evals.fdd_scores import PRIMARY_OF, rp1043_diagnoses, signal_to_noise

    diags, _ = rp1043_diagnoses(rp)
    sn = signal_to_noise(diags, rp_ref).set_index("feature")
    z = {stem: float(sn.loc[feat, stem]) for stem, feat in PRIMARY_OF.items()}
    assert z["fwc10"] >= 5 and z["ro10"] >= 2, z
    assert 0 < z["cf12"] < 1 and abs(z["rl10"]) < 1, z
    assert sn["normal"].abs().max() < 0.5  # held out, fault-free: no shift anywhere


@pytest.mark.parametrize("fault", ["excess_oil", "reduced_evaporator_flow", "non_condensables"])
def test_self_consistency_faults_without_data_on_real_normal_data(
    fault: str, rp: dict[str, pd.DataFrame], rp_ref: C.ChillerReference
) -> None:
    """Self-consistency, not detection: the fault is imposed by tools/fdd/synthetic.py at
    RP-1043's worst level (its models of the faults with a real file agree with the file:
    tests/test_fdd_chiller_signatures.py; these three have none)."""
    df = S.impose(rp["normal"], fault, start_s=4 * 3600)
    dets = C.detect(df, rp_ref)
    assert [d.fault_class for d in dets] == [fault]
    assert dets[0].first_detected_s >= 4 * 3600  # nothing before the fault starts


@pytest.fixture(scope="module")
def syn_ref() -> C.ChillerReference:
    return C.ChillerReference.fit(S.fault_free_chiller(14, seed=1))


def test_synthetic_fault_free_day_is_silent(syn_ref: C.ChillerReference) -> None:
    assert C.detect(S.fault_free_chiller(14, seed=7), syn_ref) == []


@pytest.mark.parametrize("fault", C.FAULT_CLASSES)
def test_each_fault_physics_is_named_alone(fault: str, syn_ref: C.ChillerReference) -> None:
    normal = S.fault_free_chiller(8, seed=3)
    dets = C.detect(S.impose(normal, fault, start_s=2 * 3600), syn_ref)
    assert [d.fault_class for d in dets] == [fault]
    assert 2 * 3600 <= dets[0].first_detected_s <= 3 * 3600


def test_persistence_ignores_a_short_excursion(syn_ref: C.ChillerReference) -> None:
    normal = S.fault_free_chiller(8, seed=4)
    t = (normal.index - normal.index[0]).total_seconds()
    blip = S.impose(normal, "non_condensables", severity=2.0)
    short = normal.copy()
    on = (t >= 3 * 3600) & (t < 3 * 3600 + 600)  # one 10-minute window
    short.loc[on, :] = blip.loc[on, :]
    assert C.detect(short, syn_ref) == []


def test_signature_table_covers_every_class_with_a_primary() -> None:
    assert set(C.SIGNATURES) == set(C.FAULT_CLASSES) == set(C.PRIMARY)
    for fault, prim in C.PRIMARY.items():
        assert all(C.SIGNATURES[fault][p] != 0 for p in prim)


def test_reference_round_trips_through_json(tmp_path: Path, syn_ref: C.ChillerReference) -> None:
    path = tmp_path / "reference.json"
    syn_ref.save(path)
    back = C.ChillerReference.load(path)
    df = S.fault_free_chiller(1, seed=9)
    pd.testing.assert_frame_equal(back.residuals(df), syn_ref.residuals(df))


def test_bad_reference_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ref.json"
    path.write_text('{"coef": {}}')
    with pytest.raises(ConfigError, match=r"ref\.json"):
        C.ChillerReference.load(path)


def test_reference_needs_steady_running_data() -> None:
    idle = S.fault_free_chiller(1, seed=2).assign(kW=0.0)
    with pytest.raises(ConfigError, match="steady"):
        C.ChillerReference.fit(idle, source="idle.xls")


def test_labels_map_to_fault_classes() -> None:
    assert C.fault_class_for_label("Normal") is None
    assert C.fault_class_for_label("CF") == "condenser_fouling"
    assert C.fault_class_for_label("nc3") == "non_condensables"
    # the other RP-1043 files' stems and labels, as they are named in the project's archive
    for label, cls in [
        ("EO14", "excess_oil"),
        ("FWE40", "reduced_evaporator_flow"),
        ("Normal R", None),
        ("normal2", None),
        ("cf45_b", "condenser_fouling"),
    ]:
        assert C.fault_class_for_label(label) == cls, label
    with pytest.raises(ConfigError, match="XYZ"):
        C.fault_class_for_label("XYZ")


def test_missing_refrigerant_side_points_do_not_crash(syn_ref: C.ChillerReference) -> None:
    water_only = S.impose(S.fault_free_chiller(4, seed=5), "reduced_condenser_flow")
    water_only = water_only[["TEI", "TEO", "TCI", "TCO", "kW", "FWC", "FWE"]]
    diag = C.diagnose(water_only, syn_ref)
    assert not diag.empty
    assert "reduced_condenser_flow" in set(diag["alarm"].dropna())
    scores = C.score_faults({"cond_dt": math.nan})
    assert all(math.isnan(v) for v in scores.values())
