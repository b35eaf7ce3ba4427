"""Writing raw readings to hive-partitioned Parquet (one file per UTC day and range).

A file is written under a temporary name, its row count read back from the
Parquet itself and compared with the database's, and only then renamed into place:
a file with its final name is always complete.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb

from connectors.errors import StoreError

#: subfolder of the lake holding raw readings
READINGS = "readings"


class LakeError(StoreError):
    """An export did not verify (the Parquet's row count differs from the database's)."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    day: date
    ts_from: datetime
    ts_to: datetime
    rows: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "date": self.day.isoformat(),
            "from": self.ts_from.isoformat(),
            "to": self.ts_to.isoformat(),
            "rows": self.rows,
            "bytes": self.bytes,
        }


def _safe(name: str) -> str:
    """A site name as a partition value (no path separators)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def partition_dir(lake: str | Path, site: str, day: date) -> Path:
    return Path(lake) / READINGS / f"site={_safe(site)}" / f"date={day.isoformat()}"


def site_dir(lake: str | Path, site: str) -> Path:
    return Path(lake) / READINGS / f"site={_safe(site)}"


def _sql_str(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def export_day(
    con: duckdb.DuckDBPyConnection,
    lake: str | Path,
    site: str,
    ts_from: datetime,
    ts_to: datetime,
) -> ExportedFile | None:
    """Export raw readings in ``[ts_from, ts_to)`` (within one UTC day) to one Parquet file.

    Returns None when the range holds no rows. Raises :class:`LakeError` when the written
    file does not hold exactly the database's rows (the file is removed)."""
    day = ts_from.date()
    n_db = int(
        con.execute(  # type: ignore[index]
            "SELECT count(*) FROM readings WHERE ts >= ? AND ts < ?", [ts_from, ts_to]
        ).fetchone()[0]
    )
    if n_db == 0:
        return None
    folder = partition_dir(lake, site, day)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{ts_from:%H%M%S}-{ts_to:%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
    final = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        con.execute(
            f"""COPY (SELECT r.ts, r.point_id, p.tag, r.value, r.status
                      FROM readings r LEFT JOIN points p USING (point_id)
                      WHERE r.ts >= ? AND r.ts < ? ORDER BY r.point_id, r.ts)
                TO {_sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd)""",
            [ts_from, ts_to],
        )
        n_file = int(
            con.execute(f"SELECT count(*) FROM read_parquet({_sql_str(tmp)})").fetchone()[0]  # type: ignore[index]
        )
        if n_file != n_db:
            raise LakeError(f"{final}: export holds {n_file} rows, the database {n_db}: not kept")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except duckdb.Error as err:
        raise LakeError(f"{final}: export failed: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return ExportedFile(final, day, ts_from, ts_to, n_db, final.stat().st_size)


def day_ranges(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at UTC midnights."""
    out = []
    lo = start
    while lo < end:
        hi = min(datetime.combine(lo.date() + timedelta(days=1), time()), end)
        out.append((lo, hi))
        lo = hi
    return out


def export_range(
    con: duckdb.DuckDBPyConnection,
    lake: str | Path,
    site: str,
    since: datetime,
    until: datetime | None = None,
) -> list[ExportedFile]:
    """Export raw readings in ``[since, until)`` (default: up to the newest), one file per day.

    Nothing is deleted: this is the on-demand ``export`` command."""
    row = con.execute("SELECT min(ts), max(ts) FROM readings WHERE ts >= ?", [since]).fetchone()
    if row is None or row[0] is None:
        return []
    lo = max(since, row[0])
    hi = until if until is not None else row[1] + timedelta(microseconds=1)
    out = []
    for a, b in day_ranges(lo, hi):
        f = export_day(con, lake, site, a, b)
        if f is not None:
            out.append(f)
    return out


def read_lake(
    con: duckdb.DuckDBPyConnection, lake: str | Path, site: str | None = None
) -> duckdb.DuckDBPyRelation:
    """The lake's readings as a relation (columns of the files plus ``site``, ``date``)."""
    glob = Path(lake) / READINGS / (f"site={_safe(site)}" if site else "*") / "*" / "*.parquet"
    return con.sql(f"SELECT * FROM read_parquet({_sql_str(glob)}, hive_partitioning = true)")
