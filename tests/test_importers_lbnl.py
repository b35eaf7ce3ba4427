"""LBNL AHU importer: 1-minute index, SI columns, ground truth, fault types from the inventory."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from conftest import dataset_file

from connectors.importers.lbnl import fault_labels, fault_type_by_date, lbnl_site, read_lbnl


@pytest.fixture(scope="module")
def szcav() -> pd.DataFrame:
    return read_lbnl(dataset_file("lbnl", "SZCAV.csv"))


def test_read_szcav(szcav: pd.DataFrame) -> None:
    assert isinstance(szcav.index, pd.DatetimeIndex)
    assert szcav.index.to_series().diff().mode()[0] == pd.Timedelta(minutes=1)
    assert szcav["fault"].dtype == "boolean" and szcav["fault"].notna().all()
    assert szcav["fault"].any() and not szcav["fault"].all()
    # °F → °C: return air in a conditioned test cell
    assert 15 < szcav["return_air_temp"].median() < 27
    assert szcav.attrs["units"]["return_air_temp"] == "degC"
    # control signals 0..1 → %
    assert szcav["oa_damper"].max() == pytest.approx(100)
    # spreadsheet error cells (#VALUE!) are NaN, counted, not dropped
    assert szcav.attrs["bad_cells"].get("mixed_air_temp", 0) > 0
    assert szcav["mixed_air_temp"].isna().sum() == szcav.attrs["bad_cells"]["mixed_air_temp"]


def test_mzvav_static_pressure_in_pa() -> None:
    df = read_lbnl(dataset_file("lbnl", "MZVAV-2-2.csv"))
    assert df["duct_static_pressure_setpoint"].iloc[0] == pytest.approx(1.4 * 249.089)
    site = lbnl_site(df.columns)
    assert "ahu.duct_static_pressure" in site.point_ids
    assert "ahu.fault" not in site.point_ids


def test_fault_types_from_inventory(szcav: pd.DataFrame) -> None:
    inv = dataset_file("lbnl", "LBNLDataSynthesisInventory.txt")
    by = fault_type_by_date(inv, "SZCAV")
    assert by[date(2017, 3, 11)] == "cooling coil valve stuck: fully closed (0%)"
    assert by[date(2017, 3, 18)] == "OA damper stuck: fully open (100%)"
    assert by[date(2017, 3, 20)] == "OA damper leaking: 20% of max damper flow"
    assert by[date(2017, 3, 23)] == "heating coil valve leaking: 40% of max coil valve flow"
    assert by[date(2017, 3, 26)] == "heating coil valve stuck: partially open (50%)"
    assert by[date(2017, 4, 1)] == "unfaulted"
    # every day of the CSV is described, and the ground truth agrees with the inventory
    assert set(szcav.index.date) <= set(by)
    labels = fault_labels(szcav, by)
    day_truth = szcav["fault"].groupby(szcav.index.date).max()
    for d, faulted in day_truth.items():
        assert faulted == (by[d] != "unfaulted"), d
    assert (labels[~szcav["fault"]] == "unfaulted").all()

    mz = fault_type_by_date(inv, "MZVAV-2-2")
    assert mz[date(2007, 8, 28)] == "heating coil valve leaking: stage 1: 0.4 gpm"
    assert mz[date(2008, 5, 8)] == "OA damper stuck: 40% open"


def test_site_limits(szcav: pd.DataFrame) -> None:
    site = lbnl_site(szcav.columns)
    assert [e.id for e in site.equipment] == ["ahu"]
    sat = site.point("ahu.supply_air_temp")
    assert sat.brick == "Supply_Air_Temperature_Sensor"
    assert sat.min is not None and sat.max is not None and sat.max_rate is not None
    assert sat.poll_interval_s == 60.0


HEADER = (
    "Datetime,AHU: Supply Air Temperature,AHU: Mixed Air Temperature,"
    "AHU: Supply Air Fan Status,Fault Detection Ground Truth\n"
)


@pytest.mark.parametrize(
    "stamps",
    [
        ("3/11/2017 0:00", "3/11/2017 0:01"),  # the shipped files' spreadsheet export
        ("2017-03-11 00:00:00", "2017-03-11 00:01:00"),  # ISO, as other LBNL units come
        ("3/11/2017 0:00:00", "3/11/2017 0:01:00"),  # with seconds
    ],
)
def test_other_lbnl_units_timestamps_are_read(tmp_path, stamps) -> None:  # type: ignore[no-untyped-def]
    """Another unit of the LBNL inventory (scored by someone else) may be exported with other
    timestamp formats: read, not refused."""
    f = tmp_path / "OTHER.csv"
    f.write_text(HEADER + "".join(f"{s},55.0,60.0,1,0\n" for s in stamps))
    df = read_lbnl(f)
    assert list(df.index) == [pd.Timestamp("2017-03-11 00:00"), pd.Timestamp("2017-03-11 00:01")]
    assert df["supply_air_temp"].iloc[0] == pytest.approx((55.0 - 32) * 5 / 9)


def test_an_unreadable_timestamp_names_file_and_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "BAD.csv"
    f.write_text(HEADER + "yesterday,55.0,60.0,1,0\n")
    with pytest.raises(Exception, match=r"BAD\.csv.*'Datetime'"):
        read_lbnl(f)
