"""AHU fault conditions (G36 style): per-row flags, persistence, LBNL row scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_file

from tools.fdd import ahu as A


def _ahu(n: int = 120, **cols: float | np.ndarray) -> pd.DataFrame:
    base: dict[str, float | np.ndarray] = {
        "supply_air_temp": 21.3,
        "mixed_air_temp": 20.9,
        "outdoor_air_temp": 10.0,
        "return_air_temp": 21.0,
        "oa_damper": 0.0,
        "cooling_valve": 0.0,
        "heating_valve": 0.0,
        "supply_fan_speed": 50.0,
        "supply_fan_status": 1.0,
        "supply_air_temp_heating_setpoint": 10.0,
        "supply_air_temp_cooling_setpoint": 30.0,
    }
    base.update(cols)
    idx = pd.date_range("2026-03-01", periods=n, freq="1min")
    return pd.DataFrame(
        {k: np.broadcast_to(v, n).astype(float) for k, v in base.items()}, index=idx
    )


def test_healthy_unit_raises_nothing() -> None:
    for cfg in (A.G36_DEFAULTS, A.LAB_GRADE):
        assert not A.flags(_ahu(), cfg)["any"].any()


def test_leaking_heating_valve_is_fc15_after_persistence() -> None:
    # valve commanded shut, yet the air warms 6 K across the coil
    fl = A.flags(_ahu(supply_air_temp=27.0))
    assert fl["fc15"].iloc[-1]
    first = int(np.argmax(fl["fc15"].to_numpy()))
    assert first == A.G36_DEFAULTS.persistence_min - 1  # not before the condition held 30 min
    assert not fl.drop(columns=["os", "any", "fc15"]).any().any()


def test_leaking_cooling_valve_is_fc14() -> None:
    fl = A.flags(_ahu(supply_air_temp=17.0))
    assert fl["fc14"].iloc[-1] and not fl["fc15"].any()


def test_mixed_air_outside_outdoor_and_return_is_fc2_or_fc3() -> None:
    assert A.flags(_ahu(mixed_air_temp=4.0, supply_air_temp=4.4))["fc2"].iloc[-1]
    assert A.flags(_ahu(mixed_air_temp=27.0, supply_air_temp=27.4))["fc3"].iloc[-1]


def test_stuck_closed_heating_valve_is_fc7() -> None:
    fl = A.flags(
        _ahu(heating_valve=100.0, supply_air_temp_heating_setpoint=30.0, supply_air_temp=21.2)
    )
    assert fl["fc7"].iloc[-1] and (fl["os"] == 1).all()


def test_open_damper_reading_closed_is_fc6() -> None:
    # damper commanded shut but mixed air is half-way to outdoor air
    fl = A.flags(_ahu(mixed_air_temp=15.5, supply_air_temp=15.9))
    assert fl["fc6"].iloc[-1]


def test_duct_static_low_at_full_fan_is_fc1() -> None:
    fl = A.flags(
        _ahu(
            supply_fan_speed=100.0, duct_static_pressure=100.0, duct_static_pressure_setpoint=350.0
        )
    )
    assert fl["fc1"].iloc[-1]


def test_fan_off_is_never_evaluated() -> None:
    fl = A.flags(_ahu(supply_fan_status=0.0, supply_air_temp=30.0))
    assert not fl["any"].any() and (fl["os"] == 0).all()


def test_short_excursion_is_not_flagged() -> None:
    sat = np.full(120, 21.3)
    sat[40:55] = 28.0  # 15 minutes
    assert not A.flags(_ahu(supply_air_temp=sat))["any"].any()


def test_row_scores() -> None:
    s = A.row_scores([True, True, False, False], [True, False, True, False])
    assert (s.precision, s.recall, s.specificity) == (0.5, 0.5, 0.5)
    assert A.row_scores([False], [False]).recall is None


@pytest.mark.parametrize(
    ("name", "cfg", "min_recall", "min_specificity"),
    [
        # measured 2026-11-22: G36 defaults recall 0.42 / specificity 1.00;
        # lab-grade tolerances recall 0.69 / specificity 0.93 (target 0.8 / 0.9: recall short)
        ("SZCAV.csv", A.G36_DEFAULTS, 0.40, 0.99),
        ("SZCAV.csv", A.LAB_GRADE, 0.65, 0.90),
        # MZVAV-2-2: G36 0.41 / 1.00, lab-grade 0.55 / 0.97
        ("MZVAV-2-2.csv", A.G36_DEFAULTS, 0.40, 0.99),
        ("MZVAV-2-2.csv", A.LAB_GRADE, 0.50, 0.95),
    ],
)
def test_lbnl_row_scores(
    name: str, cfg: A.AhuFddConfig, min_recall: float, min_specificity: float
) -> None:
    from connectors.importers.lbnl import read_lbnl

    df = read_lbnl(dataset_file("lbnl", name))
    s = A.row_scores(A.flags(df, cfg)["any"], df["fault"])
    assert s.recall is not None and s.specificity is not None
    assert s.recall >= min_recall and s.specificity >= min_specificity, s
