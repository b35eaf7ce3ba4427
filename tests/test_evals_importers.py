"""Dataset importers and `record`: public data / a live store → replayable scenario folders."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import dataset_file

from agent.cli import main
from connectors.errors import ConfigError
from connectors.site import load_site
from connectors.store import Store
from evals.importers import import_lbnl, import_rp1043, record
from evals.runner import read_telemetry
from evals.scenario import ParquetSource, load_scenario
from tools.fdd.chiller import ChillerReference
from twin import default_site_path


def test_import_rp1043_builds_a_scenario(tmp_path: Path) -> None:
    fault = dataset_file("rp1043", "fwc10.xls")
    normal = dataset_file("rp1043", "normal.xls")
    rc = main(
        ["import", "rp1043", str(fault), "--reference", str(normal), "--out", str(tmp_path / "s")]
    )
    assert rc == 0
    scn, folder = load_scenario(tmp_path / "s")
    assert scn.name == "rp1043-fwc10" and scn.site == "rp1043"
    assert [f.fault_class for f in scn.expect.faults] == ["reduced_condenser_flow"]
    assert isinstance(scn.source, ParquetSource) and scn.source.reference == "reference.json"
    ref = ChillerReference.load(folder / "reference.json")
    assert ref.n_rows > 1000 and ref.source == "normal.xls"
    frame = read_telemetry(folder / "telemetry.parquet")
    assert len(frame) == 5190 and "TRC_sub" in frame.columns


def test_import_rp1043_reference_must_be_fault_free(tmp_path: Path) -> None:
    fault = dataset_file("rp1043", "ro10.xls")
    with pytest.raises(ConfigError, match="fault-free"):
        import_rp1043(fault, fault, tmp_path / "s")


def test_import_lbnl_keeps_ground_truth(tmp_path: Path) -> None:
    f = dataset_file("lbnl", "SZCAV.csv")
    folder = import_lbnl(f, tmp_path / "s")
    scn, _ = load_scenario(folder)
    assert isinstance(scn.source, ParquetSource) and scn.source.truth == "fault"
    frame = read_telemetry(folder / "telemetry.parquet")
    assert frame["fault"].dtype == "boolean" and 0.9 < frame["fault"].mean() < 0.95
    assert (folder / "fault_types.json").read_text().count("2017-") >= 10
    # judged with lab-grade tolerances; a commissioned fan heat is carried into the scenario
    assert scn.ahu.grade == "lab" and scn.ahu.settings == {}
    scn2, _ = load_scenario(import_lbnl(f, tmp_path / "t", fan_heat=1.1))
    assert scn2.ahu.config().fan_heat == 1.1


def test_record_captures_a_live_run(tmp_path: Path) -> None:
    site = load_site(default_site_path())
    tags = ["chiller_1.chw_supply_temp", "plant.pue"]
    db = tmp_path / "live.duckdb"
    t0 = datetime(2026, 7, 1, 12, 0)
    with Store(db) as store:
        ids = store.register_site(site)
        n = 120
        ts = np.array(
            [t0 + timedelta(seconds=5 * i) for i in range(n) for _ in tags], dtype="datetime64[us]"
        )
        pid = np.array([ids[t] for _ in range(n) for t in tags])
        val = np.array(
            [7.0 + 0.01 * i if t.startswith("chiller") else 1.3 for i in range(n) for t in tags]
        )
        store.append(ts, pid, val, np.zeros(len(val), np.uint8))
    rc = main(["record", "--duration", "5m", "--db", str(db), "--out", str(tmp_path / "rec")])
    assert rc == 0
    scn, folder = load_scenario(tmp_path / "rec")
    assert scn.site == "site.yaml" and load_site(folder / "site.yaml").name == site.name
    frame = read_telemetry(folder / "telemetry.parquet")
    assert sorted(frame.columns) == sorted(tags)
    assert len(frame) == 60  # the last 5 minutes at 5 s
    assert frame.index[-1] == pd.Timestamp(t0 + timedelta(seconds=5 * 119))


def test_record_from_an_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    site = load_site(default_site_path())
    with Store(tmp_path / "empty.duckdb") as store:
        store.register_site(site)
        with pytest.raises(ConfigError, match="no readings"):
            record(store, site, 60.0, tmp_path / "rec")
