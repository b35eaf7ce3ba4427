"""Replay: wide frame → long readings in a real DuckDB store, chunked against a ManualClock."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.clock import ManualClock
from connectors.errors import ConfigError
from connectors.importers._common import PointSpec, build_site
from connectors.replay import ReplaySource, column_tags, replay_frame
from connectors.status import Status
from connectors.store import Store


def _frame() -> pd.DataFrame:
    idx = pd.date_range("2026-01-01", periods=30, freq="10s")
    return pd.DataFrame(
        {
            "kW/Ton": np.linspace(0.5, 0.7, 30),
            "TEO": np.r_[np.full(10, 7.0), np.nan, np.full(19, 7.5)],
            "fault": np.zeros(30, bool),
        },
        index=idx,
    )


def _site():  # type: ignore[no-untyped-def]
    specs = {"kW/Ton": PointSpec("kW/ton", lo=0, hi=5), "TEO": PointSpec("degC", lo=0, hi=35)}
    return build_site("t", "chiller", "chiller", ["kW/Ton", "TEO"], specs, 10.0, PointSpec("1"))


def test_column_tags_and_strict() -> None:
    site = _site()
    assert column_tags(_frame(), site) == {"kW/Ton": "chiller.kW_per_Ton", "TEO": "chiller.TEO"}
    extra = _frame().assign(other=1.0)
    assert "other" not in column_tags(extra, site)
    with pytest.raises(ConfigError, match="other"):
        column_tags(extra, site, strict=True)


def test_replay_frame_into_duckdb_file(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as store:
        n = replay_frame(store, _frame(), _site())
        assert n == 60
        df = store.window(["chiller.TEO"], datetime(2026, 1, 1))
        assert len(df) == 30
        bad = df[df["status"] != Status.OK]
        assert len(bad) == 1 and bad["value"].isna().all()
        assert bad["status"].iloc[0] == Status.DECODE_ERROR
        assert store.latest_values(["chiller.kW_per_Ton"])["chiller.kW_per_Ton"] == pytest.approx(
            0.7
        )


def test_replay_source_moves_clock_in_chunks(tmp_path: Path) -> None:
    clock = ManualClock()
    start = datetime(2030, 5, 1, 12)
    src = ReplaySource(_frame(), _site(), clock, chunk=timedelta(minutes=1), start=start)
    assert clock.now() == start
    with Store(tmp_path / "r.duckdb") as store:
        seen = []
        for ch in src.feed(store):
            assert clock.now() == ch.end
            # everything replayed so far is in the store, nothing beyond the clock
            newest = store.query("SELECT max(ts) AS t FROM readings")["t"].iloc[0]
            assert newest < clock.now()
            seen.append(ch.rows)
        assert seen == [12, 12, 12, 12, 12]  # 6 rows × 2 points per minute
        assert clock.now() == start + timedelta(minutes=5)
        assert ch.values["chiller.TEO"] == pytest.approx(7.5)


def test_replay_needs_datetime_index() -> None:
    with pytest.raises(ConfigError, match="DatetimeIndex"):
        ReplaySource(_frame().reset_index(drop=True), _site(), ManualClock())
