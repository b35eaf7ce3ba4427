"""Issue 15: AHU rules that stay silent on a healthy unit they were not developed on.

Each test is a healthy condition seen on FLEXLAB's experimental unit (SZCAV, the lab rules'
development set, whose VAV twin SZVAV is scored as held-out data) or expected on a VAV unit,
that the lab tolerances used to flag — and the fault the rule is for, still raised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_fdd_ahu import _ahu as ahu_frame

from tools.fdd import ahu as A


def _ahu(n: int = 120, **cols: float | np.ndarray) -> pd.DataFrame:
    """test_fdd_ahu's healthy unit, in September."""
    return ahu_frame(n, start="2026-09-01", **cols)


def _economizer_cooling(mat: float, oat: float = 18.0) -> pd.DataFrame:
    """OS3: damper 100 %, cooling valve modulating, supply air on its setpoint."""
    return _ahu(
        oa_damper=100.0,
        cooling_valve=40.0,
        outdoor_air_temp=oat,
        mixed_air_temp=mat,
        return_air_temp=23.0,
        supply_air_temp=13.0,
        supply_air_temp_cooling_setpoint=13.0,
    )


def test_mixed_air_stratification_at_full_outdoor_air_is_not_a_damper_fault() -> None:
    """Healthy SZCAV at 100 % outdoor air reads MAT 1.0 K (median) to 1.8 K (95th pct) off
    OAT: stratification in the mixing box, which calibrated sensors do not remove. FC10 at
    lab tolerance (±1.15 K) fired on it; the mixing tests keep G36's ε_MAT (5 °F)."""
    assert not A.flags(_economizer_cooling(mat=18.0 + 1.8), A.LAB_GRADE)["any"].any()
    # a damper stuck shut while commanded open: mixed air is return air, 5 K off outdoor air
    stuck = A.flags(_economizer_cooling(mat=23.0), A.LAB_GRADE)
    assert stuck["fc10"].iloc[-1]


def test_outdoor_air_fraction_is_judged_within_what_the_sensors_resolve() -> None:
    """Damper shut, 4 K between outdoor and return air: MAT 0.3 K off RAT is a fraction of
    0.075 — within two lab sensors' ±0.3 K, so not a leak (±0.04 flagged it). The same
    0.3 K over a 20 K span is resolvable; a real leak there (fraction 0.1) is raised."""
    small_span = _ahu(outdoor_air_temp=17.0, return_air_temp=21.0, mixed_air_temp=20.7,
                      supply_air_temp=21.1)  # fmt: skip
    assert not A.flags(small_span, A.LAB_GRADE)["fc6"].any()
    leak = _ahu(outdoor_air_temp=1.0, return_air_temp=21.0, mixed_air_temp=19.0,
                supply_air_temp=19.4)  # fmt: skip
    assert A.flags(leak, A.LAB_GRADE)["fc6"].iloc[-1]


def test_a_saturated_loop_trailing_a_reset_setpoint_is_not_a_capacity_fault() -> None:
    """A cooling valve at 100 % while supply air trails its (reset) setpoint by 0.8 K is a
    loop catching up, whatever the sensor grade: FC13 keeps G36's ε_SAT. A valve stuck shut
    (supply air 9 K above setpoint at full command) is raised."""
    trailing = _ahu(oa_damper=15.0, cooling_valve=100.0, outdoor_air_temp=28.0,
                    mixed_air_temp=24.0, return_air_temp=23.5, supply_air_temp=13.6,
                    supply_air_temp_cooling_setpoint=12.8)  # fmt: skip
    assert not A.flags(trailing, A.LAB_GRADE)["any"].any()
    stuck = _ahu(oa_damper=15.0, cooling_valve=100.0, outdoor_air_temp=28.0,
                 mixed_air_temp=24.0, return_air_temp=23.5, supply_air_temp=21.8,
                 supply_air_temp_cooling_setpoint=12.8)  # fmt: skip
    assert A.flags(stuck, A.LAB_GRADE)["fc13"].iloc[-1]


def test_temperature_differences_are_not_judged_at_idle_airflow() -> None:
    """A VAV unit idling at 10 % speed (SZVAV's unoccupied mode): heat gained through the
    casing and idle coils warms the slow air by several K with both valves shut. Not judged
    below ``min_fan_speed``; the same rise at 50 % speed is a leaking heating coil."""
    idle = _ahu(supply_fan_speed=10.0, supply_air_temp=20.9 + 4.0)
    fl = A.flags(idle, A.LAB_GRADE)
    assert not fl["any"].any() and (fl["os"] > 0).all()
    assert A.flags(_ahu(supply_air_temp=20.9 + 4.0), A.LAB_GRADE)["fc15"].iloc[-1]
    # an unknown speed (no speed point) is judged as before
    no_speed = _ahu(supply_air_temp=20.9 + 4.0).drop(columns=["supply_fan_speed"])
    assert A.flags(no_speed, A.LAB_GRADE)["fc15"].iloc[-1]


def test_a_daily_rearm_carries_no_verdict_over_midnight() -> None:
    """A leak raised in the evening, then the economizer opens until morning (FC6 not
    judged): the default latch holds it into the next day; ``rearm_daily`` drops it at
    midnight (the next day must show it again), and re-raises it once it shows."""
    n = 10 * 60
    oa = np.full(n, 60.0)
    oa[:120] = 0.0  # 20:00–22:00 shut and leaking, then economizer
    oa[480:] = 0.0  # 04:00 shut again, still leaking
    frac = np.where(oa > 0, 0.6, 0.3)
    mat = 21.0 + frac * (10.0 - 21.0)
    df = _ahu(n, oa_damper=oa, mixed_air_temp=mat, supply_air_temp=mat + 0.3)
    df.index = pd.date_range("2026-09-01 20:00", periods=n, freq="1min")
    held = A.flags(df, A.LAB_GRADE)["fc6"]
    rearmed = A.flags(df, A.config_with(A.LAB_GRADE, {"rearm_daily": True}))["fc6"]
    night = slice("2026-09-01 23:00", "2026-09-02 04:00")
    assert held[night].all() and held.iloc[-1]
    assert rearmed["2026-09-01 23:00":"2026-09-01 23:59"].all()
    assert not rearmed["2026-09-02 00:00":"2026-09-02 04:00"].any() and rearmed.iloc[-1]
