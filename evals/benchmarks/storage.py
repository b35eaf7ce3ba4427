"""Storage per point-day: raw readings in DuckDB, 1-minute roll-ups, and the Parquet lake.

Readings of the twin's simulated plant (every point at its poll interval, with the sensor
noise and resolution of its site file; ``--source synthetic``: a slow wander plus noise
instead) for ``--hours``, appended through the store's Arrow path into a real DuckDB
file; then one retention pass (export to zstd Parquet, verify, roll up, delete). Each
part is measured on its own fresh DuckDB file (CHECKPOINTed, minus an empty file's
size) and on disk for Parquet, and given per point and day. DuckDB files grow by 256 KB
blocks: below a few hours the roll-ups (60 rows per point-hour) are overstated; the
README's figures come from ``--hours 24``.

Result: ``{"bench": "storage", "points", "hours", "rows", "raw_bytes_per_point_day",
"rollup_bytes_per_point_day", "parquet_bytes_per_point_day", ...}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from connectors.lake import retain
from connectors.site import Site
from connectors.store import Store


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", type=float, default=2.0, help="hours of readings (default 2)")
    p.add_argument("--site", type=Path, default=None, help="site file (default: the twin's)")
    p.add_argument(
        "--seed", type=int, default=1, help="random seed of the simulated plant (default 1)"
    )
    p.add_argument(
        "--source", choices=("twin", "synthetic"), default="twin",
        help="readings of the twin's simulated plant (default; ~1 ms a simulated second) "
        "or a synthetic wander",
    )  # fmt: skip


def _site(path: Path | None) -> Site:
    from connectors.site import load_site
    from twin import default_site_path

    return load_site(path or default_site_path())


def synthetic(store: Store, site: Site, start: datetime, hours: float, seed: int) -> int:
    """Append plant-like readings of every point of ``site``; returns rows written."""
    rng = np.random.default_rng(seed)
    rows = 0
    t0 = np.datetime64(start, "us")
    for eq, p in site.iter_points():
        n = int(hours * 3600 / p.poll_interval_s)
        ts = t0 + (np.arange(n) * p.poll_interval_s * 1e6).astype("timedelta64[us]")
        lo = p.min if p.min is not None else 0.0
        hi = p.max if p.max is not None else lo + 100.0
        mid, span = (lo + hi) / 2, (hi - lo)
        wander = np.cumsum(rng.normal(0, span * 1e-4, n))
        v = mid + np.clip(wander, -span / 4, span / 4) + rng.normal(0, span * 1e-3, n)
        if p.unit == "bool" or p.source.data_type.value in ("bit", "coil"):
            v = (rng.random(n) < 0.01).astype(float)
        res = 0.01 if p.unit in ("degC", "kW", "L/s", "%", "kPa") else 0.1
        v = np.round(v / res) * res
        status = np.where(rng.random(n) < 0.001, 3, 0).astype(np.uint8)
        rows += store.append(ts, np.full(n, store.point_id(f"{eq.id}.{p.name}")), v, status)
    return rows


def from_twin(store: Store, site: Site, start: datetime, hours: float, seed: int) -> int:
    """The twin's plant, stepped a second at a time, each point kept at its poll interval
    (sensor noise, lag and resolution as its site file gives them)."""
    from twin.sim import Twin

    tw = Twin(site, seed=seed)
    tags = [f"{eq.id}.{p.name}" for eq, p in site.iter_points()]
    every = np.array([max(1, round(site.point(t).poll_interval_s)) for t in tags])
    n = int(hours * 3600)
    vals = np.full((n, len(tags)), np.nan)
    bad = np.zeros((n, len(tags)), bool)
    for i in range(n):
        tw.step(1.0)
        v, down = tw.values(), tw.unavailable()
        vals[i] = [v.get(t, np.nan) for t in tags]
        bad[i] = [t in down for t in tags]
    t0 = np.datetime64(start, "us")
    rows = 0
    for j, t in enumerate(tags):
        ks = np.arange(0, n, every[j])
        ts = t0 + (ks * 1_000_000).astype("timedelta64[us]")
        st = np.where(bad[ks, j] | np.isnan(vals[ks, j]), 3, 0).astype(np.uint8)
        rows += store.append(ts, np.full(len(ks), store.point_id(t)), vals[ks, j], st)
    return rows


def _size_of(sql_table: str, src: duckdb.DuckDBPyConnection, folder: Path, name: str) -> int:
    """Bytes a table takes in a fresh DuckDB file (minus an empty file's size)."""
    empty = folder / f"{name}-empty.duckdb"
    duckdb.connect(str(empty)).close()
    f = folder / f"{name}.duckdb"
    src.execute(f"ATTACH '{f}' AS m")
    try:
        src.execute(f"CREATE TABLE m.t AS SELECT * FROM {sql_table}")
    finally:
        src.execute("DETACH m")
    return f.stat().st_size - empty.stat().st_size


def run(args: argparse.Namespace) -> dict[str, Any]:
    site = _site(args.site)
    n_points = sum(1 for _ in site.iter_points())
    start = datetime(2026, 1, 1)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        folder = Path(tmp)
        store = Store(folder / "site.duckdb")
        store.register_site(site)
        t = time.perf_counter()
        make = from_twin if args.source == "twin" else synthetic
        rows = make(store, site, start, args.hours, args.seed)
        append_s = time.perf_counter() - t
        raw = _size_of("readings", store.con, folder, "raw")
        t = time.perf_counter()
        now = start + timedelta(hours=args.hours, minutes=1)
        res = retain(store, folder / "lake", site.name, now, timedelta(0))
        retain_s = time.perf_counter() - t
        assert res.deleted == rows, (res.deleted, rows)
        rolled = _size_of("readings_1m", store.con, folder, "rollup")
        parquet = sum(f.bytes for f in res.files)
        rollup_rows = int(store.query("SELECT count(*) AS n FROM readings_1m")["n"][0])
        store.close()
    point_days = n_points * args.hours / 24
    per = {k: v / point_days for k, v in (("raw", raw), ("rollup", rolled), ("parquet", parquet))}
    return {
        "bench": "storage",
        "points": n_points,
        "hours": args.hours,
        "source": args.source,
        "rows": rows,
        "rollup_rows": rollup_rows,
        "raw_bytes_per_point_day": round(per["raw"]),
        "rollup_bytes_per_point_day": round(per["rollup"]),
        "parquet_bytes_per_point_day": round(per["parquet"]),
        "raw_bytes_per_row": round(raw / rows, 2),
        "parquet_bytes_per_row": round(parquet / rows, 2),
        "site_raw_mb_per_day": round(per["raw"] * n_points / 1e6, 1),
        "site_rollup_mb_per_year": round(per["rollup"] * n_points * 365 / 1e6, 1),
        "site_parquet_mb_per_day": round(per["parquet"] * n_points / 1e6, 1),
        "append_s": round(append_s, 2),
        "retention_s": round(retain_s, 2),
    }
