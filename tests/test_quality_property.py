"""Property tests (hypothesis): scores stay in [0, 1]; adding a bad sample never raises a score."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.importers._common import PointSpec, build_site
from connectors.status import Status
from connectors.store import Store
from tools.quality import score

SITE = build_site(
    "prop",
    "chiller_1",
    "chiller",
    ["chw_supply_temp", "power"],
    {
        "chw_supply_temp": PointSpec(
            "degC", "Leaving_Chilled_Water_Temperature_Sensor", 0, 30, 0.5
        ),
        "power": PointSpec("kW", "Electric_Power_Sensor", 0, 250, 50),
    },
    poll_interval_s=1.0,
    default=PointSpec("1"),
)
T0 = datetime(2026, 1, 1)
NOW = T0 + timedelta(seconds=90)
WINDOW = timedelta(minutes=2)
SUBS = [
    "score",
    "freshness",
    "completeness",
    "range",
    "flatline",
    "noise",
    "spike",
    "rate",
    "physics",
]

good_value = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)
any_value = st.one_of(
    good_value,
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 1.68e-45, 65535.0, -32768.0, 3.4e38, 45.0, -5.0]
    ),
)
sample = st.tuples(
    st.integers(0, 89), any_value, st.sampled_from([0, 0, 0, 0, int(Status.TIMEOUT)])
)
bad_sample = st.one_of(
    st.tuples(st.integers(0, 89), any_value, st.just(int(Status.TIMEOUT))),
    st.tuples(
        st.integers(0, 89),
        st.sampled_from([float("nan"), float("inf"), 1.68e-45, 65535.0, 3.4e38, 45.0, -5.0]),
        st.just(0),
    ),
)


def _score(samples: list[tuple[int, float, int]]) -> dict[str, float]:
    with Store(":memory:") as store:
        ids = store.register_site(SITE)
        pid = ids["chiller_1.chw_supply_temp"]
        if samples:
            ts = [T0 + timedelta(seconds=s) for s, _, _ in samples]
            vals = np.array([v for _, v, _ in samples])
            stat = np.array([c for _, _, c in samples])
            store.append(ts, np.full(len(samples), pid), np.where(stat > 0, np.nan, vals), stat)
        # the partner point, healthy, so the physics has something to compare
        t = np.arange(90)
        store.append(
            [T0 + timedelta(seconds=int(s)) for s in t],
            np.full(90, ids["chiller_1.power"]),
            100 + np.sin(t / 7.0),
            np.zeros(90),
        )
        rep = score(store, SITE, NOW, WINDOW)
    row = rep.points.set_index("tag").loc["chiller_1.chw_supply_temp"]
    return {k: float(row[k]) for k in SUBS}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sample, min_size=0, max_size=60))
def test_scores_are_within_unit_interval(samples: list[tuple[int, float, int]]) -> None:
    for k, v in _score(samples).items():
        assert 0.0 <= v <= 1.0, (k, v)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sample, min_size=1, max_size=60), bad_sample)
def test_adding_a_bad_sample_never_raises_the_score(
    samples: list[tuple[int, float, int]], bad: tuple[int, float, int]
) -> None:
    before = _score(samples)
    after = _score([*samples, bad])
    assert after["score"] <= before["score"] + 1e-9, (before, after)
    for k in SUBS:
        assert after[k] <= before[k] + 1e-9, (k, before, after)
