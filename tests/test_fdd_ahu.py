"""AHU fault conditions (G36 style): per-row flags, persistence, LBNL row scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_file

from tools.fdd import ahu as A


def _ahu(n: int = 120, start: str = "2026-03-01", **cols: float | np.ndarray) -> pd.DataFrame:
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
    idx = pd.date_range(start, periods=n, freq="1min")
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
    # judged only once the unit settled (mode delay), raised once it held 30 min
    cfg = A.G36_DEFAULTS
    assert first == cfg.mode_delay_min + cfg.persistence_min - 1
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


def _damper_leak_day() -> pd.DataFrame:
    """8 h: damper shut with 30 % outdoor air leaking in (2 h), economizer at 60 % (3 h, where
    FC6 cannot be judged), shut again but leaking (1 h), then repaired and shut (2 h)."""
    n = 8 * 60
    oa = np.zeros(n)
    oa[120:300] = 60.0
    frac = np.full(n, 0.3)
    frac[120:300] = 0.6
    frac[360:] = 0.0  # repaired
    oat, rat = 10.0, 21.0
    mat = rat + frac * (oat - rat)
    return _ahu(n, oa_damper=oa, mixed_air_temp=mat, supply_air_temp=mat + 0.3)


def test_a_raised_fault_holds_while_it_cannot_be_judged_and_clears_on_healthy_evidence() -> None:
    df = _damper_leak_day()
    cfg = A.LAB_GRADE
    latched = A.flags(df, cfg)["fc6"].to_numpy()
    plain = A.flags(df, A.config_with(cfg, {"latch": False}))["fc6"].to_numpy()
    first = cfg.mode_delay_min + cfg.persistence_min - 1
    assert not latched[:first].any() and latched[first:120].all()  # raised after persistence
    # economizer open: FC6 is not judged; without the latch the fault would vanish
    assert not plain[140:300].any()
    assert latched[120:360].all()
    # repaired at 360: cleared after the mode delay and clear_min samples of healthy evidence
    clear_at = 360 + cfg.clear_min + cfg.average_min
    assert latched[360 : 360 + cfg.clear_min].all() and not latched[clear_at:].any()


def test_a_gap_in_the_data_voids_raised_faults() -> None:
    df = _damper_leak_day().iloc[:200]  # raised, then the economizer opens
    later = _ahu(60, oa_damper=60.0, mixed_air_temp=14.4, supply_air_temp=14.7)
    later.index = later.index + pd.Timedelta(days=3)
    fl = A.flags(pd.concat([df, later]), A.LAB_GRADE)["fc6"].to_numpy()
    assert fl[199] and not fl[200:].any()


def test_a_raised_fault_goes_stale_when_never_judged_again() -> None:
    df = _damper_leak_day().iloc[:200]
    cfg = A.config_with(A.LAB_GRADE, {"hold_max_min": 60.0})
    fl = A.flags(df, cfg)["fc6"].to_numpy()
    # judged last when the damper opened at 120 (plus the settling average): stale ~60 min on
    assert fl[170] and not fl[190:].any()


def test_a_passing_cooling_coil_raised_while_heating_is_cleared_when_both_coils_shut() -> None:
    n = 240
    hc = np.where(np.arange(n) < 120, 40.0, 0.0)
    sat = np.where(np.arange(n) < 120, 19.5, 21.3)  # colder than mixed air while heating
    lab = A.config_with(A.LAB_GRADE, {"fan_heat_commissioned": True})
    fl = A.flags(_ahu(n, heating_valve=hc, supply_air_temp=sat), lab)
    assert fl["fc5"].iloc[110] and not fl["fc5"].iloc[-60:].any()
    assert not fl["fc14"].any()


def test_config_with_names_unknown_settings() -> None:
    given = A.config_with(A.LAB_GRADE, {"fan_heat": 1.1})
    assert given.fan_heat == 1.1 and given.fan_heat_commissioned  # a site's own value
    assert not A.config_with(A.LAB_GRADE, {"eps_sat": 0.2}).fan_heat_commissioned
    with pytest.raises(ValueError, match="fan_hot"):
        A.config_with(A.LAB_GRADE, {"fan_hot": 1.1})


_LAB_FAN_HEAT_GUESSED = A.config_with(A.LAB_GRADE, {"fan_heat_commissioned": True})


def _free_cooling(n: int, rise: float) -> pd.DataFrame:
    """Economizer, both coils shut: supply air ``rise`` K above mixed air."""
    mat = 14.0
    return _ahu(n, oa_damper=60.0, outdoor_air_temp=10.0, mixed_air_temp=mat,
                supply_air_temp=mat + rise)  # fmt: skip


def test_an_uncommissioned_fan_heat_is_not_a_leaking_heating_coil() -> None:
    """Issue 15, MZVAV-2-2 at 0.736 specificity: a healthy unit whose fan warms the air by
    1.3 K (MZVAV-2-2 shows 1.1–1.75 K) against G36's default 0.56 K and lab tolerances
    (±0.42 K) raised FC15 in free cooling. Without a commissioned fan heat the tests
    across the fan keep G36's field tolerances; a real leak (+4 K) is still raised."""
    healthy = _free_cooling(180, 1.3)
    guessed = A.config_with(A.LAB_GRADE, {"fan_heat_commissioned": True})
    assert A.flags(healthy, guessed)["fc15"].any()  # the false alarm, as on main
    assert not A.flags(healthy, A.LAB_GRADE)["any"].any()
    measured = A.config_with(A.LAB_GRADE, {"fan_heat": 1.3})
    assert not A.flags(healthy, measured)["any"].any()
    assert A.flags(_free_cooling(180, 1.3 + 4.0), A.LAB_GRADE)["fc15"].iloc[-1]
    assert A.across_fan_tolerances(measured) == (0.3, 0.3, measured.eps_mat_mixing)


@pytest.mark.parametrize(
    ("name", "cfg", "min_recall", "min_specificity"),
    [
        # measured 2026-12-01, latched fault states (before them, 2026-11-22: G36 0.42 / 1.00,
        # lab 0.69 / 0.93 on SZCAV; G36 0.41 / 1.00, lab 0.55 / 0.97 on MZVAV-2-2)
        # 0.614 / 0.976 until issue 15's propagated FC6 tolerance: with G36's ±5 °F mixed-air
        # sensor the outdoor-air fraction is not resolved to 0.05 (the OA damper days go)
        ("SZCAV.csv", A.G36_DEFAULTS, 0.45, 0.97),  # 0.486 / 0.976 (2026-12-02)
        # lab tolerances were developed on SZCAV (in sample there): 0.888 / 0.964 with
        # G36's 0.56 K taken as if it were the unit's commissioned fan heat (2026-12-02) …
        ("SZCAV.csv", _LAB_FAN_HEAT_GUESSED, 0.80, 0.90),
        # … which nobody measured: across the fan G36's tolerances stay, 0.628 / 0.976
        ("SZCAV.csv", A.LAB_GRADE, 0.60, 0.95),
        ("MZVAV-2-2.csv", A.G36_DEFAULTS, 0.68, 0.99),  # 0.700 / 1.000
        # the other dataset, out of sample: with the guessed fan heat 0.943 / 0.736 (FC15 in
        # free cooling, latched, on 4 of 13 fault-free days) …
        ("MZVAV-2-2.csv", _LAB_FAN_HEAT_GUESSED, 0.90, 0.70),
        # … and as shipped, the target (≥ 0.8 both): 0.836 / 1.000 (2026-12-02)
        ("MZVAV-2-2.csv", A.LAB_GRADE, 0.80, 0.80),
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
