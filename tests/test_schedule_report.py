"""The daily report: energy, PUE, quality, decisions from a real DuckDB file; gaps stay gaps."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from agent.schedule.report import gather, make_report, subsystem_tags
from connectors.lake import retain
from connectors.site import Site, load_site
from connectors.store import Store

DAY = date(2026, 3, 1)
POWER_KW = {
    "plant.facility_power": 1000.0,
    "plant.it_power": 800.0,
    "gpu.it_power": 800.0,
    "ct_1.fan_power": 10.0,
}


def _site() -> Site:
    return load_site(Path(__file__).parents[1] / "twin" / "site.yaml")


def _store(tmp_path: Path, site: Site) -> Store:
    """One reading a minute of every power point over DAY (UTC), nothing 10:00–12:00;
    one bad reading in ten on the CRAHs' fan power."""
    store = Store(tmp_path / "site.duckdb")
    store.register_site(site)
    t = np.datetime64(datetime.combine(DAY, datetime.min.time()), "us")
    ts = t + (np.arange(24 * 60) * 60_000_000).astype("timedelta64[us]")
    hour = np.arange(24 * 60) // 60
    ts = ts[(hour < 10) | (hour >= 12)]
    tags = sorted({x for v in subsystem_tags(site).values() for x in v} | set(POWER_KW))
    for tag in tags:
        v = POWER_KW.get(tag, 20.0)
        status = np.zeros(len(ts), np.uint8)
        if tag.startswith("crah_"):
            status[::10] = 3
        store.append(ts, np.full(len(ts), store.point_id(tag)), np.full(len(ts), v), status)
    return store


def test_report_page_has_its_plots_and_the_days_figures(tmp_path: Path) -> None:
    site = _site()
    store = _store(tmp_path, site)
    d = gather(store, site, DAY)
    assert d.energy_kwh["IT"] == pytest.approx(800.0 * 22, rel=1e-9)
    assert d.energy_kwh["towers"] == pytest.approx(10.0 * 22, rel=1e-9)
    # the two-hour gap stays empty: no line is drawn across it, no energy invented
    gap = d.power.loc["2026-03-01 10:00":"2026-03-01 11:55"]
    assert len(gap) == 24 and gap.isna().all().all()
    assert d.coverage == pytest.approx(22 / 24)
    assert d.pue.dropna().to_numpy() == pytest.approx(1.25)
    share = dict(zip(d.quality["equipment"], d.quality["share_ok"], strict=True))
    assert share["crah_1"] == pytest.approx(0.9, abs=0.01) and share["chiller_1"] == 1.0

    path = make_report(store, site, DAY, tmp_path / "reports")
    assert path.name == "report-ai-data-hall-2026-03-01.html"
    page = path.read_text()
    plots = re.findall(r'data-plot="(\w+)" src="data:image/png;base64,([^"]+)"', page)
    assert [p[0] for p in plots] == ["energy", "power", "pue", "quality", "faults", "outcomes"]
    assert all(base64.b64decode(p[1])[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    assert "No approval this day." in page and "Data in 92 %" in page


def test_report_reads_roll_ups_once_raw_rows_are_gone(tmp_path: Path) -> None:
    site = _site()
    store = _store(tmp_path, site)
    before = gather(store, site, DAY).energy_kwh
    now = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=18)
    res = retain(store, tmp_path / "lake", site.name, now, timedelta(hours=4))
    assert res.deleted > 0
    after = gather(store, site, DAY)
    assert after.energy_kwh == pytest.approx(before)
    assert after.coverage == pytest.approx(22 / 24)
