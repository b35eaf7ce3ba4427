"""The scorer on real recordings (skipped when ../shared/datasets is absent).

RP-1043 cf12.xls carries corrupt kW readings (up to 4.1e13, mean ≈ 7.9e9) and every
file has denormal values (~1e-45) when the chiller is off; both must be flagged.
normal.xls and the ESB chiller in steady operation must score high on healthy points.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import dataset_file

from connectors.importers.rp1043 import read_rp1043, rp1043_site
from connectors.replay import replay_frame
from connectors.site import Site
from connectors.store import Store
from tools.quality import QualityReport, score

HEALTHY_RP1043 = ["chiller.TEI", "chiller.TEO", "chiller.TCI", "chiller.TCO", "chiller.FWC", "chiller.FWE", "chiller.PRE", "chiller.PRC"]  # fmt: skip


def _replayed(frame: pd.DataFrame, site: Site, tmp_path: Path) -> Store:
    store = Store(tmp_path / "real.duckdb")
    replay_frame(store, frame, site)
    return store


@pytest.fixture(scope="module")
def cf12() -> pd.DataFrame:
    return read_rp1043(dataset_file("rp1043", "cf12.xls"))


def _corrupt_at(frame: pd.DataFrame) -> pd.Timestamp:
    return frame.index[int((frame["kW"] > 1e3).to_numpy().argmax())]


def test_cf12_corrupt_kw_is_flagged(cf12: pd.DataFrame, tmp_path: Path) -> None:
    site = rp1043_site(cf12.columns)
    t_bad = _corrupt_at(cf12)
    now = (t_bad + pd.Timedelta(minutes=5)).to_pydatetime()
    with _replayed(cf12, site, tmp_path) as store:
        rep = score(store, site, now, timedelta(minutes=15))
    kw = rep.point_score("chiller.kW")
    assert kw < 0.95, rep.reasons("chiller.kW")
    assert "above max 200 kW" in rep.reasons("chiller.kW")[0]
    assert "corrupt" in rep.reasons("chiller.kW")[0]
    # the derived kW/ton inherits the corruption
    assert rep.point_score("chiller.kW_per_Ton") < 0.95


def test_whole_cf12_file_flags_kw_and_denormals(cf12: pd.DataFrame, tmp_path: Path) -> None:
    site = rp1043_site(cf12.columns)
    end = (cf12.index[-1] + pd.Timedelta(seconds=10)).to_pydatetime()
    with _replayed(cf12, site, tmp_path) as store:
        rep: QualityReport = score(store, site, end, timedelta(hours=15))
    reasons = " ".join(rep.reasons("chiller.kW"))
    assert "denormal" in reasons and "1.68e-45" in reasons
    assert "above max" in reasons
    assert rep.point_score("chiller.kW") < 0.8
    assert rep.point_score("chiller.FWE") < 0.95  # denormal flows when the plant is off
    assert "denormal" in " ".join(rep.reasons("chiller.FWE"))


def test_normal_steady_operation_scores_high(tmp_path: Path) -> None:
    normal = read_rp1043(dataset_file("rp1043", "normal.xls"))
    site = rp1043_site(normal.columns)
    now = (normal.index[0] + pd.Timedelta(hours=3)).to_pydatetime()  # running, mid-test
    with _replayed(normal, site, tmp_path) as store:
        rep = score(store, site, now, timedelta(minutes=15), tags=HEALTHY_RP1043)
    low = rep.points[rep.points["score"] < 0.95]
    assert low.empty, low[["tag", "score", "worst_reason"]].to_string()


def test_esb_chiller_scores_high(tmp_path: Path) -> None:
    esb = pytest.importorskip("connectors.importers.esb")
    frame = esb.read_esb(dataset_file("esb", "esb_chiller1.csv"))
    site = esb.esb_site(frame.columns)
    # steady operation inside the longest unbroken 5-minute run (2018-06-01 … 06-06)
    now = pd.Timestamp("2018-06-02 12:00").to_pydatetime()
    with _replayed(frame, site, tmp_path) as store:
        rep = score(store, site, now, timedelta(hours=2))
    healthy = [
        t
        for t in rep.points["tag"]
        if t.split(".")[-1] in ("TempCondIn", "TempCondOut", "TempEvapIn", "TempEvapOut", "PowChi")
    ]
    assert healthy, list(rep.points["tag"])
    low = rep.points[rep.points["tag"].isin(healthy) & (rep.points["score"] < 0.95)]
    assert low.empty, low[["tag", "score", "worst_reason"]].to_string()
