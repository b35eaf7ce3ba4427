"""DuckDB store: appends, queries, retention roll-up, stable ids, one writer process."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.site import Site, parse_site
from connectors.status import Status
from connectors.store import Store

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _site(names: list[str]) -> Site:
    pts = [
        {"name": n, "unit": "kW",
         "source": {"table": "holding", "address": 2 * i, "data_type": "float32"}}
        for i, n in enumerate(names)
    ]  # fmt: skip
    return parse_site({"name": "s", "equipment": [{"id": "eq", "kind": "other", "points": pts}]})


def _fill(store: Store, ids: dict[str, int], seconds: int = 180) -> None:
    """a = t (seconds since T0), b = 2t; b's every 10th reading is a timeout with no value."""
    t = np.arange(seconds)
    ts = np.array([np.datetime64(T0) + np.timedelta64(int(s), "s") for s in t])
    status_b = np.where(t % 10 == 9, Status.TIMEOUT, Status.OK).astype(np.uint8)
    value_b = np.where(status_b == 0, 2.0 * t, np.nan)
    store.append(
        np.concatenate([ts, ts]),
        np.concatenate([np.full(seconds, ids["eq.a"]), np.full(seconds, ids["eq.b"])]),
        np.concatenate([t.astype(float), value_b]),
        np.concatenate([np.zeros(seconds, np.uint8), status_b]),
    )


@pytest.fixture
def store() -> Any:
    with Store(":memory:") as s:
        yield s


def test_append_latest_window_buckets(store: Store) -> None:
    ids = store.register_site(_site(["a", "b"]))
    _fill(store, ids)
    assert store.row_count() == 360
    latest = store.latest().set_index("tag")
    assert latest.loc["eq.a", "value"] == 179.0
    assert latest.loc["eq.b", "status"] == "timeout"  # the newest b reading is a failure …
    assert np.isnan(latest.loc["eq.b", "value"])  # … with a NULL value, never a zero
    assert store.latest_values() == {"eq.a": 179.0, "eq.b": 2.0 * 178}  # last GOOD value

    w = store.window(["eq.a"], T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
    assert w["value"].tolist() == [float(x) for x in range(10, 20)]
    assert set(w["tag"]) == {"eq.a"}

    b = store.buckets(["eq.b"], T0, T0 + timedelta(minutes=3), timedelta(minutes=1))
    assert len(b) == 3
    first = b.iloc[0]
    assert first["n"] == 54  # 60 readings, 6 timeouts excluded
    assert first["vmin"] == 0.0 and first["vmax"] == 2.0 * 58
    good = [2.0 * x for x in range(60) if x % 10 != 9]
    assert first["vmean"] == pytest.approx(np.mean(good))


def test_retention_rolls_up_whole_minutes(store: Store) -> None:
    ids = store.register_site(_site(["a", "b"]))
    _fill(store, ids)  # 12:00:00 … 12:02:59
    removed = store.retain(
        now=T0 + timedelta(minutes=3, seconds=30), max_age=timedelta(minutes=1, seconds=15)
    )
    # cutoff 12:02:15 → whole minutes before 12:02:00 are rolled up: 2 min × 60 s × 2 points
    assert removed == 240
    assert store.row_count() == 120
    agg = store.query("SELECT * FROM readings_1m ORDER BY point_id, bucket")
    assert len(agg) == 4
    b1 = agg[(agg.point_id == ids["eq.b"]) & (agg.bucket == T0 + timedelta(minutes=1))].iloc[0]
    good = [2.0 * x for x in range(60, 120) if x % 10 != 9]
    assert (b1.vmin, b1.vmax, b1.n, b1.n_bad) == (min(good), max(good), 54, 6)
    assert b1.vmean == pytest.approx(np.mean(good))
    a0 = agg[(agg.point_id == ids["eq.a"]) & (agg.bucket == T0)].iloc[0]
    assert (a0.vmin, a0.vmean, a0.vmax, a0.n, a0.n_bad) == (0.0, 29.5, 59.0, 60, 0)
    # the newest minute is untouched and still queryable raw
    assert store.window(None, T0)["ts"].min() == T0 + timedelta(minutes=2)
    assert (
        store.retain(
            now=T0 + timedelta(minutes=3, seconds=30), max_age=timedelta(minutes=1, seconds=15)
        )
        == 0
    )


def test_ids_are_stable_across_reopen_and_site_changes(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    with Store(db) as s:
        first = s.register_site(_site(["a", "b", "c"]))
    with Store(db) as s:
        assert s.tags == first
        # a point removed and one added: old ids keep their numbers, the new one gets a fresh id
        again = s.register_site(_site(["c", "a", "d"]))
    assert again["eq.a"] == first["eq.a"] and again["eq.c"] == first["eq.c"]
    assert again["eq.d"] not in first.values()
    with Store(db, read_only=True) as s:
        assert s.point_id("eq.d") == again["eq.d"]
        assert s.point_id("eq.b") == first["eq.b"]


def test_second_writer_process_gets_store_error(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    code = (
        "import sys\n"
        "from connectors.store import Store\n"
        "from connectors.errors import StoreError\n"
        "try:\n"
        f"    Store({str(db)!r})\n"
        "except StoreError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    with Store(db) as s:
        s.register_site(_site(["a"]))
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 3, proc.stderr
    assert "another process" in proc.stdout and str(db) in proc.stdout


def test_public_statements_and_transactions() -> None:
    """Other layers write through execute / transaction / query_numpy, never the store's lock."""
    store = Store()
    store.ensure_schema("CREATE TABLE IF NOT EXISTS t (k VARCHAR, v INTEGER)")
    store.execute("INSERT INTO t VALUES (?, ?)", ["a", 1])
    with pytest.raises(RuntimeError), store.transaction() as con:
        con.execute("INSERT INTO t VALUES ('b', 2)")
        raise RuntimeError("half-way")  # nothing of the transaction stays
    with store.transaction() as con:
        con.execute("INSERT INTO t VALUES ('c', 3)")
        con.execute("UPDATE t SET v = v * 10 WHERE k = 'a'")
    cols = store.query_numpy("SELECT k, v FROM t ORDER BY k")
    assert list(cols["k"]) == ["a", "c"] and list(cols["v"]) == [10, 3]
