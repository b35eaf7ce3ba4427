"""Per-point checks on synthetic telemetry written into a real DuckDB store.

Each test starts from healthy, physically consistent data (tests/_quality_synth.py),
applies one defect and checks that the right point — and only the points that
should — lose score, with a reason that names the defect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _quality_synth import end_of, make_frame, make_site

from connectors.replay import replay_frame
from connectors.site import Site
from connectors.status import Status
from connectors.store import Store
from tools.quality import QualityReport, score

T = "chiller_1.chw_return_temp"


@pytest.fixture(scope="module")
def site() -> Site:
    return make_site()


def scored(
    site: Site, tmp_path: Path, mutate: Callable[[pd.DataFrame], None] | None = None
) -> QualityReport:
    fr = make_frame(900)
    if mutate is not None:
        mutate(fr)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        return score(store, site, end_of(fr))


def test_healthy_data_scores_high(site: Site, tmp_path: Path) -> None:
    rep = scored(site, tmp_path)
    assert len(rep.points) == len(site.point_ids)
    assert (rep.points["score"] >= 0.95).all(), rep.points[rep.points["score"] < 0.95]
    assert rep.level(list(site.point_ids)) == 3
    assert rep.decision_score([T]) == (pytest.approx(rep.point_score(T)), [])


def _last(fr: pd.DataFrame, n: int) -> pd.Index:
    return fr.index[-n:]


@pytest.mark.parametrize(
    ("defect", "mutate", "words"),
    [
        ("stuck", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-80], [fr[T].iloc[-81]] * 80]), "flat-line"),
        ("spike", lambda fr: fr.__setitem__(T, fr[T] + np.r_[np.zeros(850), 10.0, np.zeros(49)]), "spike"),
        ("noise", lambda fr: fr.__setitem__(T, fr[T] + np.r_[np.zeros(840), np.random.default_rng(3).normal(0, 0.5, 60)]), "noise"),
        ("rate", lambda fr: fr.__setitem__(T, fr[T] + np.r_[np.zeros(850), np.full(50, 5.0)]), "rate"),
        ("nan", lambda fr: fr.__setitem__(T, np.where(np.arange(900) % 4 == 0, np.nan, fr[T])), "dropout"),
        ("denormal", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], 1.68e-45, fr[T].to_numpy()[-4:]]), "denormal"),
        ("sentinel", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], 65535.0, fr[T].to_numpy()[-4:]]), "no-value marker"),
        ("float32 max", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], 3.4e38, fr[T].to_numpy()[-4:]]), "no-value marker"),
        ("infinity", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], np.inf, fr[T].to_numpy()[-4:]]), "infinite"),
        ("above max", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], 45.0, fr[T].to_numpy()[-4:]]), "above max"),
        ("below min", lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], -73.0, fr[T].to_numpy()[-4:]]), "below min"),
    ],
)  # fmt: skip
def test_each_defect_is_caught_and_named(
    site: Site, tmp_path: Path, defect: str, mutate: Callable[[pd.DataFrame], None], words: str
) -> None:
    rep = scored(site, tmp_path, mutate)
    s = rep.point_score(T)
    threshold = (
        0.95
        if defect in ("denormal", "sentinel", "float32 max", "infinity", "above max", "below min")
        else 0.8
    )
    assert s < threshold, (defect, s, rep.reasons(T))
    assert words in " ".join(rep.reasons(T)), rep.reasons(T)
    # the defect stays on its point (bad values are left out of the physics); a lasting
    # +5 K step is different: it also breaks the chiller's heat balance
    if defect == "rate":
        return
    others = rep.points[(rep.points["tag"] != T) & (rep.points["score"] < 0.95)]
    assert others.empty, others[["tag", "score", "worst_reason"]]


def test_single_bad_value_caps_below_level_3(site: Site, tmp_path: Path) -> None:
    rep = scored(
        site,
        tmp_path,
        lambda fr: fr.__setitem__(
            "chiller_1.power",
            np.r_[
                fr["chiller_1.power"].to_numpy()[:-3], 7.9e9, fr["chiller_1.power"].to_numpy()[-2:]
            ],
        ),
    )
    assert 0.8 <= rep.point_score("chiller_1.power") < 0.95
    assert "corrupt" in rep.reasons("chiller_1.power")[0]
    assert rep.level(["chiller_1.power", T]) == 2


def test_comm_loss_rows_make_the_point_stale(site: Site, tmp_path: Path) -> None:
    fr = make_frame(900)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr.iloc[:-20], site)
        replay_frame(store, fr.iloc[-20:].drop(columns=["chiller_1.power", T]), site)
        ids = store.register_site(site)
        ts = fr.index[-20:].to_numpy()
        for tag in ("chiller_1.power", T):
            store.append(
                ts, np.full(20, ids[tag]), np.full(20, np.nan), np.full(20, Status.TIMEOUT)
            )
        rep = score(store, site, end_of(fr))
    assert rep.point_score(T) < 0.8
    assert rep.reasons(T)[0].startswith("comm loss")
    assert "timeout" in rep.reasons(T)[0]
    assert rep.point_score("chiller_1.cw_flow") >= 0.95  # silent tags only: the others still answer


def test_dropout_of_rows_lowers_completeness(site: Site, tmp_path: Path) -> None:
    def drop(fr: pd.DataFrame) -> None:
        fr.loc[fr.index[-60::2], T] = np.nan  # half the last minute missing

    fr = make_frame(900)
    drop(fr)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr.dropna(), site)  # rows absent, not NaN
        replay_frame(store, fr[fr[T].isna()].drop(columns=T), site)
        rep = score(store, site, end_of(fr))
    p = rep.points.set_index("tag")
    assert p.at[T, "completeness"] < 0.8
    assert "dropout" in p.at[T, "worst_reason"]


def test_empty_store_scores_zero(site: Site) -> None:
    with Store(":memory:") as store:
        rep = score(store, site, make_frame(1).index[0].to_pydatetime())
    assert (rep.points["score"] == 0).all()
    assert rep.level(["gpu.it_power"]) == 0


def test_no_readings_scores_zero(site: Site, tmp_path: Path) -> None:
    fr = make_frame(900)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr.drop(columns=["gpu.it_power"]), site)
        rep = score(store, site, end_of(fr))
    assert rep.point_score("gpu.it_power") == 0.0
    assert "no readings" in rep.reasons("gpu.it_power")[0]
    assert rep.level(["gpu.it_power"]) == 0


@pytest.mark.parametrize(
    ("rule", "mutate", "involved"),
    [
        (
            "chiller_supply_below_return",
            lambda fr: fr.__setitem__("chiller_1.chw_supply_temp", fr["chiller_1.chw_return_temp"] + 1.0),
            ["chiller_1.chw_supply_temp", "chiller_1.chw_return_temp"],
        ),
        (
            "chiller_heat_balance",
            lambda fr: fr.__setitem__("chiller_1.cw_flow", fr["chiller_1.cw_flow"] * 0.5),
            ["chiller_1.cw_flow", "chiller_1.power"],
        ),
        ("pump_on_without_flow", lambda fr: fr.__setitem__("chw_pump_1.flow", fr["chw_pump_1.flow"] * 0.0 + 0.01), ["chw_pump_1.flow"]),
        ("cdu_pump_without_flow", lambda fr: fr.__setitem__("cdu_1.coolant_flow", fr["cdu_1.coolant_flow"] * 0.0 + 0.1), ["cdu_1.coolant_flow"]),
        ("ups_output_not_above_input", lambda fr: fr.__setitem__("ups_1.output_power", fr["ups_1.input_power"] * 1.1), ["ups_1.output_power", "ups_1.input_power"]),
        ("gpu_above_coolant", lambda fr: fr.__setitem__("gpu.gpu_temp_avg", fr["cdu_1.coolant_supply_temp"] - 3.0), ["gpu.gpu_temp_avg", "cdu_1.coolant_supply_temp"]),
    ],
)  # fmt: skip
def test_physics_rules(
    site: Site,
    tmp_path: Path,
    rule: str,
    mutate: Callable[[pd.DataFrame], None],
    involved: list[str],
) -> None:
    rep = scored(site, tmp_path, mutate)
    for tag in involved:
        assert rep.point_score(tag) < 0.8, (tag, rep.reasons(tag))
        assert any(rule in r for r in rep.reasons(tag)), rep.reasons(tag)
    # the running flag is a condition, not a suspect
    if rule.startswith("chiller"):
        assert rep.point_score("chiller_1.running") >= 0.95


def test_physics_needs_the_chiller_running(site: Site, tmp_path: Path) -> None:
    def off(fr: pd.DataFrame) -> None:
        fr["chiller_1.running"] = 0.0
        fr["chiller_1.power"] = 0.0
        fr["chiller_1.chw_supply_temp"] = fr["chiller_1.chw_return_temp"] + 0.5  # idle: no ΔT rule

    rep = scored(site, tmp_path, off)
    assert rep.point_score("chiller_1.chw_supply_temp") >= 0.95


def test_rollups_take_the_weakest_link(site: Site, tmp_path: Path) -> None:
    rep = scored(
        site,
        tmp_path,
        lambda fr: fr.__setitem__(T, np.r_[fr[T].to_numpy()[:-5], 65535.0, fr[T].to_numpy()[-4:]]),
    )
    eq = rep.equipment().set_index("equipment")
    assert rep.equipment_score("chiller_1") == pytest.approx(rep.point_score(T))
    assert eq.at["chiller_1", "weakest"] == T
    assert eq.at["chiller_1", "mean"] > eq.at["chiller_1", "score"]
    s, why = rep.decision_score(["chiller_1.power", T, "gpu.it_power"])
    assert s == pytest.approx(rep.point_score(T))
    assert len(why) == 1 and why[0].startswith(f"{T}: range")
    assert rep.level([T]) == site.quality.level(s) == 2
    with pytest.raises(KeyError):
        rep.point_score("nope.nope")


def test_tags_subset_and_unknown_tag(site: Site, tmp_path: Path) -> None:
    fr = make_frame(300)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        rep = score(store, site, end_of(fr), timedelta(minutes=5), tags=[T, "gpu.it_power"])
        assert list(rep.points["tag"]) == [T, "gpu.it_power"]
        with pytest.raises(KeyError, match="nope"):
            score(store, site, end_of(fr), tags=["nope.x"])


def test_save_appends_to_quality_table(site: Site, tmp_path: Path) -> None:
    from tools.quality import save

    fr = make_frame(300)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        rep = score(store, site, end_of(fr), timedelta(minutes=5))
        save(store, rep)
        save(store, rep)
        df = store.query("SELECT * FROM quality ORDER BY tag")
    assert len(df) == 2 * len(site.point_ids)
    assert set(df["level"]) <= {0, 1, 2, 3}
    assert df["window_s"].iloc[0] == 300
    assert isinstance(list(df["reasons"].iloc[0]), list)


@pytest.mark.parametrize("defect", ["none", "stuck", "spike", "rate", "noise"])
def test_screening_never_changes_a_score(site: Site, tmp_path: Path, defect: str) -> None:
    """The screen only decides which points get the exact pass; scores must be identical."""
    from dataclasses import replace

    from tools.quality import DEFAULT_CONFIG

    rng = np.random.default_rng(7)
    fr = make_frame(900)
    if defect == "stuck":
        fr.iloc[-90:, 1] = fr.iloc[-91, 1]
    elif defect == "spike":
        fr.iloc[rng.choice(900, 4, replace=False), [0, 2, 13]] += 8.0
    elif defect == "rate":
        fr.iloc[-30:, 3] += 4.0
    elif defect == "noise":
        fr.iloc[-60:, 15] += rng.normal(0, 0.4, 60)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        fast = score(store, site, end_of(fr)).points
        exact = score(store, site, end_of(fr), config=replace(DEFAULT_CONFIG, screen=False)).points
    cols = [
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
    pd.testing.assert_frame_equal(fast[["tag", *cols]], exact[["tag", *cols]])
    assert list(fast["worst_reason"]) == list(exact["worst_reason"])


@pytest.mark.parametrize("seconds", [900, 120])
def test_a_pump_coasting_down_is_the_process_not_noise(
    site: Site, tmp_path: Path, seconds: int
) -> None:
    """A utility loss stops the pump: speed and flow fall on the pump's own time constant
    (first order, τ = 10 s here, inside the synthetic site's 10 %/s rate limit), sampled at
    1 s. Second differences are large, but they all have
    one sign — a smooth curve, not a noisy sensor (found on the demo: the coast-down was
    called "noise σ ≈ 0.47 % vs 0.1 % normal" and held the GPU power cap at level 1)."""
    fr = make_frame(seconds)
    k = np.arange(60, dtype=float)
    decay = np.exp(-k / 10.0)
    rng = np.random.default_rng(7)
    for tag, v0, sigma in (("chw_pump_1.speed", 80.0, 0.05), ("chw_pump_1.flow", 60.0, 0.1)):
        col = fr[tag].to_numpy().copy()
        col[-60:] = np.clip(v0 * decay + rng.normal(0, sigma, 60), 0.0, None)
        fr[tag] = col
    fr["chw_pump_1.running"] = np.r_[np.ones(seconds - 60), np.zeros(60)]
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        rep = score(store, site, end_of(fr))
    for tag in ("chw_pump_1.speed", "chw_pump_1.flow"):
        reasons = " ".join(rep.reasons(tag))
        assert "noise:" not in reasons, reasons
        assert rep.point_score(tag) >= 0.8, (tag, rep.point_score(tag), reasons)


def _stop_at(fr: pd.DataFrame, k: int, lag_s: float) -> None:
    """chiller_1 stops at row ``k``: the status opens at once, the meter follows (τ = lag_s)."""
    n = len(fr)
    run = np.r_[np.ones(k), np.zeros(n - k)]
    decay = np.r_[np.ones(k), np.exp(-np.arange(n - k) / lag_s) if lag_s > 0 else np.zeros(n - k)]
    fr["chiller_1.running"] = run
    fr["chiller_1.power"] = fr["chiller_1.power"] * decay


def _start_at(fr: pd.DataFrame, k: int) -> None:
    """chiller_1 off until row ``k``, then starting: the meter reads before the status."""
    n = len(fr)
    fr["chiller_1.running"] = np.r_[np.zeros(k), np.ones(n - k)]
    fr["chiller_1.power"] = fr["chiller_1.power"] * np.r_[np.zeros(k - 3), np.ones(n - k + 3)]


def test_a_start_is_no_status_contradiction(site: Site, tmp_path: Path) -> None:
    # a chiller staged on: in the cell where its status closes, the cell's means are "not
    # running (0.3), drawing 8 kW" — judged against the off cells only, one such cell cost
    # the status 0.65 and a chat proposal its approval (tests/test_gate_write_time.py)
    rep = scored(site, tmp_path, lambda fr: _start_at(fr, 855))
    assert rep.point_score("chiller_1.running") >= 0.95, rep.reasons("chiller_1.running")


@pytest.mark.parametrize(("stop_at", "lag_s"), [(845, 0.0), (855, 5.0)])
def test_a_stop_is_no_status_contradiction(
    site: Site, tmp_path: Path, stop_at: int, lag_s: float
) -> None:
    # the twin's utility loss: chillers stop. The cell where the status opens averages the
    # running part of it (status 0.25, meter 19 kW), and a meter may lag the contact — judged
    # a contradiction (score 0.65, 0.30), the status point capped the whole site's autonomy in
    # the middle of the event, and the CDU pump's protection waited for an approval
    rep = scored(site, tmp_path, lambda fr: _stop_at(fr, stop_at, lag_s=lag_s))
    assert rep.point_score("chiller_1.running") >= 0.95, rep.reasons("chiller_1.running")


def test_status_off_while_drawing_power_is_a_contradiction(site: Site, tmp_path: Path) -> None:
    def stuck_open(fr: pd.DataFrame) -> None:
        fr["chiller_1.running"] = np.r_[np.ones(600), np.zeros(300)]  # the meter still reads load

    rep = scored(site, tmp_path, stuck_open)
    assert rep.point_score("chiller_1.running") < 0.8, rep.reasons("chiller_1.running")
    assert any("chiller_off_but_drawing_power" in r for r in rep.reasons("chiller_1.running"))
