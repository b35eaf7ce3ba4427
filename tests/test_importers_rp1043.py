"""RP-1043 importer: SI conversion, 10 s index, labels, dirty values kept dirty, a valid site."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_file

from connectors.importers._common import safe_name
from connectors.importers.rp1043 import read_rp1043, rp1043_site


@pytest.fixture(scope="module")
def normal() -> pd.DataFrame:
    return read_rp1043(dataset_file("rp1043", "normal.xls"))


@pytest.fixture(scope="module")
def cf12() -> pd.DataFrame:
    return read_rp1043(dataset_file("rp1043", "cf12.xls"))


def test_shape_index_label(normal: pd.DataFrame) -> None:
    assert normal.shape == (5190, 64)  # 65 columns minus the Y label
    assert normal.index[0] == pd.Timestamp(datetime(2026, 1, 1))
    assert (normal.index.to_series().diff().dropna() == pd.Timedelta(seconds=10)).all()
    assert normal.attrs["label"] == "Normal"
    assert normal.attrs["units"]["TEO"] == "degC"
    assert normal.attrs["units"]["FWE"] == "L/s"
    assert normal.attrs["units"]["PRC"] == "kPa"
    assert normal.attrs["units"]["Evap Tons"] == "kW"


def test_si_conversion_matches_first_row(normal: pd.DataFrame) -> None:
    row = normal.iloc[3]  # raw: TEI 62.52 °F, FWC 251 gpm, PRE 63.8 psig, Evap Tons 6.132, TEA 0
    assert row["TEI"] == pytest.approx((62.52 - 32) * 5 / 9)
    assert row["FWC"] == pytest.approx(251 * 0.0630902)
    assert row["PRE"] == pytest.approx(63.8 * 6.894757)
    assert row["Evap Tons"] == pytest.approx(6.132 * 3.516853)
    # chilled water in steady operation: a few °C, supply below return
    steady = normal.iloc[1000:4000]
    assert 3 < steady["TEO"].median() < 12
    assert (steady["TEO"] < steady["TEI"]).mean() > 0.99
    assert 10 < steady["FWE"].median() < 15  # ≈ 215 gpm


def test_dirty_values_are_not_cleaned(cf12: pd.DataFrame, normal: pd.DataFrame) -> None:
    assert cf12.attrs["label"] == "CF"
    assert cf12["kW"].mean() == pytest.approx(7.9e9, rel=0.05)
    kw = normal["kW"].to_numpy()
    denormal = (np.abs(kw) > 0) & (np.abs(kw) < 1e-30)
    assert denormal.any()


def test_site_has_physical_limits_for_every_column(normal: pd.DataFrame) -> None:
    site = rp1043_site(normal.columns)
    assert [e.id for e in site.equipment] == ["chiller"]
    assert len(site.point_ids) == 64
    teo = site.point("chiller.TEO")
    assert (teo.min, teo.max, teo.unit) == (0, 35, "degC")
    assert teo.max_rate is not None and teo.max_rate <= 0.5
    assert teo.brick == "Leaving_Chilled_Water_Temperature_Sensor"
    kw = site.point("chiller.kW")
    assert kw.max is not None and kw.max < 1e3  # the 7.9e9 kW cannot be in range
    for _, p in site.iter_points():
        assert p.min is not None and p.max is not None, p.name
        assert p.poll_interval_s == 10.0
    # healthy steady water temperatures sit inside the limits
    for col in ("TEI", "TEO", "TCI", "TCO"):
        p = site.point(f"chiller.{safe_name(col)}")
        assert normal[col].between(p.min, p.max).all()


def test_safe_names() -> None:
    assert safe_name("kW/Ton") == "kW_per_Ton"
    assert safe_name("RLA%") == "RLA_pct"
    assert safe_name("Heat Balance (kW)") == "Heat_Balance_kW"
    assert safe_name("Cond Tons") == "Cond_Tons"
    assert safe_name("9lives") == "_9lives"


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    from connectors.errors import ConfigError

    bad = tmp_path / "nope.xls"
    bad.write_text("not a spreadsheet")
    with pytest.raises(ConfigError, match=r"nope\.xls"):
        read_rp1043(bad)
