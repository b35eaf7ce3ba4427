"""The retention pass: raw rows older than a cut-off go to the lake, then out of the database.

Per UTC day older than the cut-off, in this order:

1. **export** the day's raw rows to a Parquet file (written under a temporary name,
   renamed when complete — :func:`connectors.lake.export.export_day`);
2. **verify**: the file's row count equals the database's for that range;
3. in **one transaction**: roll the rows up into ``readings_1m`` (min, mean, max, last,
   count, bad count per point and minute), delete them, and record the file in
   ``lake_files``; the delete must remove exactly the exported count, or the
   transaction rolls back.

A kill before step 3 commits leaves a file not recorded in ``lake_files`` while its
rows are still in ``readings``: the next pass deletes such leftovers before exporting
again, so the lake never holds a row twice and the database never loses one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.lake.export import ExportedFile, LakeError, day_ranges, export_day, site_dir
from connectors.store import Store

log = logging.getLogger(__name__)

LAKE_DDL = """
ALTER TABLE readings_1m ADD COLUMN IF NOT EXISTS vlast DOUBLE;
CREATE TABLE IF NOT EXISTS lake_files (
    path VARCHAR NOT NULL, site VARCHAR NOT NULL, day DATE NOT NULL,
    ts_from TIMESTAMP NOT NULL, ts_to TIMESTAMP NOT NULL, n BIGINT NOT NULL,
    bytes BIGINT NOT NULL, exported TIMESTAMP NOT NULL);
CREATE OR REPLACE VIEW readings_1m_v AS
    SELECT r.bucket, p.tag, r.vmin, r.vmean, r.vmax, r.vlast, r.n, r.n_bad,
           r.n / nullif(r.n + r.n_bad, 0) AS share_ok, r.point_id
    FROM readings_1m r JOIN points p USING (point_id);
"""

_ROLLUP = """
INSERT INTO readings_1m (bucket, point_id, vmin, vmean, vmax, n, n_bad, vlast)
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, point_id,
       min(value) FILTER (WHERE status = 0),
       avg(value) FILTER (WHERE status = 0),
       max(value) FILTER (WHERE status = 0),
       count(*) FILTER (WHERE status = 0),
       count(*) FILTER (WHERE status <> 0),
       arg_max(value, ts) FILTER (WHERE status = 0)
FROM readings WHERE ts >= ? AND ts < ? GROUP BY ALL
"""


@dataclass
class RetentionResult:
    cutoff: datetime
    files: list[ExportedFile] = field(default_factory=list)
    deleted: int = 0
    rolled_up: int = 0
    leftovers_removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "files": [f.as_json() for f in self.files],
            "deleted": self.deleted,
            "rolled_up": self.rolled_up,
            "leftovers_removed": self.leftovers_removed,
        }


def ensure_lake_schema(store: Store) -> None:
    store.ensure_schema(LAKE_DDL)


def remove_leftovers(store: Store, lake: str | Path, site: str) -> list[str]:
    """Delete files of ``site`` in the lake that no committed pass recorded (and temp files)."""
    root = site_dir(lake, site)
    if not root.exists():
        return []
    known = {str(p) for p in store.query("SELECT path FROM lake_files")["path"]}
    gone = []
    for f in sorted(root.glob("date=*/*")):
        if f.is_file() and (f.name.endswith(".tmp") or str(f) not in known):
            f.unlink()
            gone.append(str(f))
            log.warning("lake: removed %s, left by an interrupted retention pass", f)
    return gone


def retain(
    store: Store,
    lake: str | Path,
    site: str,
    now: datetime,
    max_age: timedelta,
    *,
    after_export: Any = None,
) -> RetentionResult:
    """Move raw readings older than ``now - max_age`` (whole minutes) to the lake; see the module.

    ``after_export(file)``: called between the verified export and the delete (a test's
    seam to kill the pass there)."""
    ensure_lake_schema(store)
    lake = Path(lake).resolve()
    cutoff = (now - max_age).replace(second=0, microsecond=0)
    res = RetentionResult(cutoff)
    res.leftovers_removed = remove_leftovers(store, lake, site)
    cur = store.cursor()  # the export reads on its own cursor: ingest keeps appending meanwhile
    try:
        row = cur.execute("SELECT min(ts) FROM readings WHERE ts < ?", [cutoff]).fetchone()
        if row is None or row[0] is None:
            return res
        for lo, hi in day_ranges(row[0], cutoff):
            f = export_day(cur, lake, site, lo, hi)
            if f is None:
                continue
            if after_export is not None:
                after_export(f)
            try:
                deleted, n_up = _commit(store, f, site, lo, hi, now)
            except BaseException:
                f.path.unlink(missing_ok=True)  # not recorded: the rows stay in the database
                raise
            res.files.append(f)
            res.deleted += deleted
            res.rolled_up += n_up
    finally:
        cur.close()
    return res


def _commit(
    store: Store, f: ExportedFile, site: str, lo: datetime, hi: datetime, now: datetime
) -> tuple[int, int]:
    """Roll up, delete and record one exported range, in one transaction."""
    with store.transaction() as con:
        n_up = con.execute(_ROLLUP, [lo, hi]).fetchone()
        d = con.execute("DELETE FROM readings WHERE ts >= ? AND ts < ?", [lo, hi]).fetchone()
        deleted = int(d[0]) if d else 0
        if deleted != f.rows:
            raise LakeError(
                f"{f.path}: {deleted} raw rows to delete, {f.rows} exported "
                "(rows arrived meanwhile): nothing deleted, the next pass retries"
            )
        con.execute(
            "INSERT INTO lake_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [str(f.path), site, f.day, lo, hi, f.rows, f.bytes, now],
        )
    return deleted, int(n_up[0]) if n_up else 0
