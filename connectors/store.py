"""The DuckDB store: one file, long-format readings, and every table the agent writes.

Tables owned here:

``points``       catalogue: ``point_id`` (stable integer), ``tag`` (``equipment.point``),
                 equipment, kind, unit, Brick class, physical range, poll interval.
``readings``     ``ts TIMESTAMP`` (UTC), ``point_id INTEGER``, ``value DOUBLE``,
                 ``status UTINYINT`` (see :mod:`connectors.status`; 0 = ok). Raw samples.
``readings_1m``  1-minute roll-ups of raw rows older than the retention age:
                 ``bucket, point_id, vmin, vmean, vmax, n, n_bad``.
``statuses``     status code → name, for humans writing SQL.
``readings_v``   view joining readings to tags and status names.

Other layers add their own tables with :meth:`Store.ensure_schema` (quality,
decisions, approvals, actions, runs), so the store never imports upward.

Ingestion is batched through Arrow (``INSERT … SELECT`` from a registered Arrow
table): millions of rows per second, where ``executemany`` manages about a
thousand. One process owns the file read-write; a second writer gets a
:class:`~connectors.errors.StoreError` that says so.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from connectors.errors import StoreError
from connectors.site import Site
from connectors.status import all_status_names

# the table a single INSERT / UPDATE / DELETE writes (Store.versions)
_WRITE_TARGET = re.compile(
    r"\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+(\w+)[^;]*;?\s*$", re.I | re.S
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    point_id INTEGER PRIMARY KEY,
    tag VARCHAR NOT NULL UNIQUE,
    equipment VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    brick VARCHAR,
    min DOUBLE,
    max DOUBLE,
    max_rate DOUBLE,
    poll_interval_s DOUBLE NOT NULL,
    writable BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    ts TIMESTAMP NOT NULL,
    point_id INTEGER NOT NULL,
    value DOUBLE,
    status UTINYINT NOT NULL
);
CREATE TABLE IF NOT EXISTS readings_1m (
    bucket TIMESTAMP NOT NULL,
    point_id INTEGER NOT NULL,
    vmin DOUBLE,
    vmean DOUBLE,
    vmax DOUBLE,
    n INTEGER NOT NULL,
    n_bad INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS statuses (status UTINYINT PRIMARY KEY, name VARCHAR NOT NULL);
CREATE OR REPLACE VIEW readings_v AS
    SELECT r.ts, p.tag, r.value, s.name AS status, r.point_id
    FROM readings r JOIN points p USING (point_id) LEFT JOIN statuses s USING (status);
"""

READINGS_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us")),
        ("point_id", pa.int32()),
        ("value", pa.float64()),
        ("status", pa.uint8()),
    ]
)


def _connect(path: str | Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as err:
        msg = str(err)
        if "lock" in msg.lower():
            raise StoreError(
                f"{path}: the database is open read-write in another process "
                "(one process owns it: use the running site's API, or stop it)"
            ) from err
        raise StoreError(f"{path}: {msg}") from err


class Store:
    """The project's DuckDB database.

    Thread-safety: DuckDB connections are not shared across threads; use
    :meth:`cursor` for a per-thread cursor. Every statement on the shared connection
    serialises on one lock: other layers use :meth:`execute`, :meth:`query`,
    :meth:`query_numpy` or :meth:`transaction`, never the lock itself.
    """

    def __init__(self, path: str | Path = ":memory:", read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.con = _connect(self.path, read_only)
        self._lock = threading.RLock()
        self._tag_to_id: dict[str, int] = {}
        # writes per table through execute()/transaction() (readings appends excluded),
        # for readers that cache a small table's query until it changes (see versions())
        self._writes: dict[str, int] = {}
        self._epoch = 0
        if not read_only:
            self.con.execute(_SCHEMA)
            self.con.execute("DELETE FROM statuses")
            self.con.executemany(
                "INSERT INTO statuses VALUES (?, ?)", list(all_status_names().items())
            )
        self._load_catalogue()

    # ---- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def ensure_schema(self, ddl: str) -> None:
        """Create tables/views another layer owns (idempotent DDL)."""
        if not self.read_only:
            with self._lock:
                self._epoch += 1
                self.con.execute(ddl)

    # ---- catalogue -----------------------------------------------------------
    def _load_catalogue(self) -> None:
        try:
            rows = self.con.execute("SELECT tag, point_id FROM points").fetchall()
        except duckdb.CatalogException:
            rows = []
        self._tag_to_id = {t: int(i) for t, i in rows}

    def register_site(self, site: Site) -> dict[str, int]:
        """Add the site's points to the catalogue; ids are stable across restarts.

        A point already known keeps its id (its metadata is refreshed); a new
        point gets the next free id. Returns {tag: point_id} for the site.
        """
        with self._lock:
            next_id = max(self._tag_to_id.values(), default=-1) + 1
            rows = []
            for eq, p in site.iter_points():
                t = f"{eq.id}.{p.name}"
                pid = self._tag_to_id.get(t)
                if pid is None:
                    pid = next_id
                    next_id += 1
                    self._tag_to_id[t] = pid
                rows.append(
                    (
                        pid,
                        t,
                        eq.id,
                        eq.kind.value,
                        p.name,
                        p.unit,
                        p.brick,
                        p.min,
                        p.max,
                        p.max_rate,
                        p.poll_interval_s,
                        p.writable,
                    )
                )
            df = pd.DataFrame(
                rows,
                columns=[
                    "point_id",
                    "tag",
                    "equipment",
                    "kind",
                    "name",
                    "unit",
                    "brick",
                    "min",
                    "max",
                    "max_rate",
                    "poll_interval_s",
                    "writable",
                ],
            )
            self.con.register("_new_points", df)
            try:
                self.con.execute(
                    "DELETE FROM points WHERE point_id IN (SELECT point_id FROM _new_points)"
                )
                self.con.execute("INSERT INTO points SELECT * FROM _new_points")
            finally:
                self.con.unregister("_new_points")
            return {
                f"{eq.id}.{p.name}": self._tag_to_id[f"{eq.id}.{p.name}"]
                for eq, p in site.iter_points()
            }

    def point_id(self, tag: str) -> int:
        try:
            return self._tag_to_id[tag]
        except KeyError:
            raise KeyError(f"point {tag!r} is not in the catalogue") from None

    def ids(self, tags: Iterable[str]) -> list[int]:
        return [self.point_id(t) for t in tags]

    @property
    def tags(self) -> dict[str, int]:
        return dict(self._tag_to_id)

    # ---- ingestion -----------------------------------------------------------
    def append(
        self,
        ts: npt.NDArray[np.datetime64] | Sequence[datetime],
        point_id: npt.ArrayLike,
        value: npt.ArrayLike,
        status: npt.ArrayLike,
    ) -> int:
        """Append readings column-wise through Arrow. Returns rows written."""
        ts_arr = np.asarray(ts, dtype="datetime64[us]")
        table = pa.Table.from_arrays(
            [
                pa.array(ts_arr, type=pa.timestamp("us")),
                pa.array(np.asarray(point_id, dtype=np.int32)),
                pa.array(np.asarray(value, dtype=np.float64), from_pandas=True),
                pa.array(np.asarray(status, dtype=np.uint8)),
            ],
            schema=READINGS_SCHEMA,
        )
        return self.append_arrow(table)

    def append_arrow(self, table: pa.Table) -> int:
        if table.num_rows == 0:
            return 0
        with self._lock:
            try:
                self.con.register("_batch", table)
                try:
                    self.con.execute(
                        "INSERT INTO readings SELECT ts, point_id, value, status FROM _batch"
                    )
                finally:
                    self.con.unregister("_batch")
            except duckdb.Error as err:
                raise StoreError(f"{self.path}: cannot append readings: {err}") from err
        return int(table.num_rows)

    def append_frame(self, df: pd.DataFrame) -> int:
        """Append a long frame with columns ts, tag or point_id, value[, status]."""
        if "point_id" not in df.columns:
            df = df.assign(point_id=df["tag"].map(self._tag_to_id))
            if df["point_id"].isna().any():
                missing = sorted(set(df.loc[df["point_id"].isna(), "tag"]))[:5]
                raise KeyError(f"unknown tags: {missing}")
        status = df["status"] if "status" in df.columns else np.zeros(len(df), np.uint8)
        return self.append(
            df["ts"].to_numpy(), df["point_id"].to_numpy(), df["value"].to_numpy(), status
        )

    # ---- statements ----------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        """Run one statement (an insert, an update) under the store's lock."""
        with self._lock:
            try:
                self.con.execute(sql, params or [])
            finally:
                self._count_write(sql)

    def execute_all(
        self, statements: Sequence[tuple[str, Sequence[Any] | dict[str, Any] | None]]
    ) -> None:
        """Run statements (inserts, updates) in one transaction under the store's lock: all
        commit together, or none on an error. One commit instead of one per statement; each
        counts for :meth:`versions` like :meth:`execute`."""
        if not statements:
            return
        with self._lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    self.con.execute(sql, params or [])
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            finally:
                for sql, _ in statements:
                    self._count_write(sql)
            self.con.execute("COMMIT")

    def _count_write(self, sql: str) -> None:
        m = _WRITE_TARGET.match(sql)
        if m is None:
            self._epoch += 1  # DDL or anything else: every table may have changed
        else:
            t = m.group(1).lower()
            self._writes[t] = self._writes.get(t, 0) + 1

    def versions(self, *tables: str) -> tuple[int, ...]:
        """A key that changes whenever one of ``tables`` may have changed through this store
        (:meth:`execute`, :meth:`transaction`, DDL): a reader may keep a query's result on a
        small table until its key changes. Writes on ``con`` directly are not seen."""
        with self._lock:
            return (self._epoch, *(self._writes.get(t.lower(), 0) for t in tables))

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Statements on the yielded connection commit together, or not at all on an error."""
        with self._lock:
            self._epoch += 1  # statements on the yielded connection are not parsed
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            finally:
                self._epoch += 1
            self.con.execute("COMMIT")

    # ---- queries -------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        with self._lock:
            return self.con.execute(sql, params or []).df()

    def query_numpy(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """A query's columns as numpy arrays (no DataFrame: for the hot paths)."""
        with self._lock:
            res: dict[str, npt.NDArray[Any]] = self.con.execute(sql, params or []).fetchnumpy()
            return res

    def latest(
        self,
        tags: Sequence[str] | None = None,
        since: datetime | None = None,
        good_only: bool = False,
    ) -> pd.DataFrame:
        """Newest reading per point: columns tag, ts, value, status (name).

        ``since`` bounds the scan (use it on large stores); ``good_only`` skips
        rows whose status is not ok, giving the last trustworthy value.
        """
        where, params = self._where(tags, since, None)
        if good_only:
            where.append("r.status = 0")
        sql = f"""
            SELECT p.tag, max(r.ts) AS ts, arg_max_null(r.value, r.ts) AS value,
                   arg_max(r.status, r.ts) AS status_code
            FROM readings r JOIN points p USING (point_id)
            {"WHERE " + " AND ".join(where) if where else ""}
            GROUP BY p.tag ORDER BY p.tag"""
        df = self.query(sql, params)
        names = all_status_names()
        df["status"] = df["status_code"].map(lambda c: names.get(int(c), str(c)))
        return df.drop(columns="status_code")

    def latest_values(
        self, tags: Sequence[str] | None = None, since: datetime | None = None
    ) -> dict[str, float]:
        """{tag: newest good value}."""
        df = self.latest(tags, since, good_only=True)
        return dict(zip(df["tag"], df["value"].astype(float), strict=True))

    def window(
        self, tags: Sequence[str] | None, start: datetime, end: datetime | None = None
    ) -> pd.DataFrame:
        """Raw readings in [start, end): columns ts, tag, value, status (code)."""
        where, params = self._where(tags, start, end)
        sql = f"""
            SELECT r.ts, p.tag, r.value, r.status
            FROM readings r JOIN points p USING (point_id)
            WHERE {" AND ".join(where)} ORDER BY p.tag, r.ts"""
        return self.query(sql, params)

    def buckets(
        self, tags: Sequence[str] | None, start: datetime, end: datetime, width: timedelta
    ) -> pd.DataFrame:
        """Time buckets of good readings: bucket, tag, vmin, vmean, vmax, n."""
        where, params = self._where(tags, start, end)
        where.append("r.status = 0")
        secs = int(width.total_seconds())
        sql = f"""
            SELECT time_bucket(INTERVAL '{secs} seconds', r.ts) AS bucket, p.tag,
                   min(r.value) AS vmin, avg(r.value) AS vmean, max(r.value) AS vmax,
                   count(*) AS n
            FROM readings r JOIN points p USING (point_id)
            WHERE {" AND ".join(where)}
            GROUP BY ALL ORDER BY p.tag, bucket"""
        return self.query(sql, params)

    def _where(
        self, tags: Sequence[str] | None, start: datetime | None, end: datetime | None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if tags is not None:
            where.append("r.point_id IN (SELECT unnest(?::INTEGER[]))")
            params.append(self.ids(tags))
        if start is not None:
            where.append("r.ts >= ?")
            params.append(start)
        if end is not None:
            where.append("r.ts < ?")
            params.append(end)
        if not where:
            where.append("TRUE")
        return where, params

    def row_count(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]

    # ---- retention -----------------------------------------------------------
    def retain(self, now: datetime, max_age: timedelta) -> int:
        """Roll raw rows older than ``now - max_age`` into 1-minute aggregates, then drop them.

        Only whole minutes are rolled up, so a minute is never split between
        the two tables. Returns the raw rows removed.
        """
        cutoff = (now - max_age).replace(second=0, microsecond=0)
        with self.transaction() as con:
            con.execute(
                """
                    INSERT INTO readings_1m (bucket, point_id, vmin, vmean, vmax, n, n_bad)
                    SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, point_id,
                           min(value) FILTER (WHERE status = 0),
                           avg(value) FILTER (WHERE status = 0),
                           max(value) FILTER (WHERE status = 0),
                           count(*) FILTER (WHERE status = 0),
                           count(*) FILTER (WHERE status <> 0)
                FROM readings WHERE ts < ? GROUP BY ALL
                """,
                [cutoff],
            )
            row = con.execute("DELETE FROM readings WHERE ts < ?", [cutoff]).fetchone()
        return int(row[0]) if row else 0
