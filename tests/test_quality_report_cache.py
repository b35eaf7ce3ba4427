"""The scorer keeps every point's sub-scores of its last (instant, window, rows folded) so a
second report on the same data — a decision's wider scope in the gate — only selects from
them. The cache must never serve stale scores: a new instant, a new reading at the same
instant, or a rebuilt state (a changed point catalogue) scores again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _quality_synth import end_of, make_frame, make_site

from agent.context import default_quality
from connectors.replay import replay_frame
from connectors.site import Site
from connectors.store import Store
from tools.quality import IncrementalScorer, score

T = "chiller_1.chw_return_temp"
OTHER = "cdu_1.coolant_flow"


@pytest.fixture(scope="module")
def site() -> Site:
    return make_site()


def _counting(sc: IncrementalScorer) -> list[int]:
    """Count the scorer's full scorings (the expensive part the cache saves)."""
    calls: list[int] = []
    inner = sc._subscores

    def counted(*a: object, **k: object) -> dict[str, np.ndarray]:
        calls.append(1)
        return inner(*a, **k)  # type: ignore[arg-type]

    sc._subscores = counted  # type: ignore[method-assign]
    return calls


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_a_wider_report_at_the_same_instant_reuses_the_scores(site: Site, tmp_path: Path) -> None:
    fr = make_frame(900)
    now = end_of(fr)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        sc = IncrementalScorer(store, site)
        calls = _counting(sc)
        sc.refresh(now)
        narrow = sc.report(now, [T]).points
        wide = sc.report(now, [OTHER, T]).points
        assert len(calls) == 1  # the second report selected from the first's scores
        _same(wide[wide["tag"] == T], narrow)
        # and both are what a cold scorer says
        _same(wide, score(store, site, now, tags=[OTHER, T]).points)


def test_a_new_reading_at_the_same_instant_is_scored(site: Site, tmp_path: Path) -> None:
    fr = make_frame(900)
    now = end_of(fr)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        sc = IncrementalScorer(store, site)
        calls = _counting(sc)
        sc.refresh(now)
        before = sc.report(now, [T]).points
        assert before["range"].iloc[0] == 1.0
        # a corrupt reading lands at `now` after the first report (a poller flushing late)
        store.append([now], [store.point_id(T)], [1e6], [0])
        assert sc.refresh(now) == 1
        after = sc.report(now, [T]).points
        assert len(calls) == 2
        assert after["range"].iloc[0] < 1.0 and "above max" in after["worst_reason"].iloc[0]
        _same(after, score(store, site, now, tags=[T]).points)


def test_a_new_instant_is_scored_again(site: Site, tmp_path: Path) -> None:
    fr = make_frame(900)
    now = end_of(fr)
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        sc = IncrementalScorer(store, site)
        calls = _counting(sc)
        sc.refresh(now)
        assert sc.report(now, [T]).points["freshness"].iloc[0] == 1.0
        later = now + timedelta(minutes=2)  # no reading since: the point goes stale
        sc.refresh(later)
        stale = sc.report(later, [T]).points
        assert len(calls) == 2
        assert stale["freshness"].iloc[0] < 1.0
        fresh = IncrementalScorer(store, site)  # the same history, never asked at `now`
        fresh.refresh(now)
        fresh.refresh(later)
        _same(stale, fresh.report(later, [T]).points)


def test_the_agent_seam_sees_a_write_at_the_same_instant(site: Site, tmp_path: Path) -> None:
    """:func:`agent.context.default_quality` (one scorer per context): the gate's wider
    second call at the same instant gets the new reading, not the cycle's first scores."""
    fr = make_frame(900)
    now = end_of(fr)
    q = default_quality()
    with Store(tmp_path / "q.duckdb") as store:
        replay_frame(store, fr, site)
        first = q(store, site, now, [T])
        assert first.scores[T] >= 0.95
        store.append([now], [store.point_id(T)], [1e6], [0])
        second = q(store, site, now, [T, OTHER])
        assert second.scores[T] < first.scores[T]
        assert any("above max" in r for r in second.reasons[T])
        assert second.scores[OTHER] == pytest.approx(first_scores(store, site, now)[OTHER])


def first_scores(store: Store, site: Site, now: object) -> dict[str, float]:
    pts = score(store, site, now).points  # type: ignore[arg-type]
    return dict(zip(pts["tag"], pts["score"].astype(float), strict=True))
