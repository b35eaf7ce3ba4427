"""The Parquet lake: raw readings leave the database as hive-partitioned Parquet files.

Layout (DuckDB, Spark and Trino read it as it is: ``site`` and ``date`` are hive
partition columns)::

    <lake>/readings/site=<site name>/date=YYYY-MM-DD/part-<from>-<to>-<id>.parquet

Each file holds ``ts`` (UTC, µs), ``point_id``, ``tag``, ``value``, ``status`` (0 = ok),
zstd-compressed. :mod:`connectors.lake.export` writes files (the ``export`` command,
and the retention pass); :mod:`connectors.lake.retention` is the nightly pass: export,
verify the file's row count, then in one transaction roll the rows up into
``readings_1m`` and delete them, recording the file in ``lake_files``. A file that is
not recorded there is an interrupted pass's leftover (its rows are still in the
database) and is removed by the next pass, so a kill between any two steps loses
nothing and duplicates nothing.
"""

from connectors.lake.export import ExportedFile, export_range, partition_dir, read_lake
from connectors.lake.retention import RetentionResult, retain

__all__ = [
    "ExportedFile",
    "RetentionResult",
    "export_range",
    "partition_dir",
    "read_lake",
    "retain",
]
