"""Replay recorded telemetry into the store: a wide frame + a site → long readings rows.

Importers (``connectors.importers``) give a wide :class:`pandas.DataFrame`
with a ``DatetimeIndex`` and one column per point; this module turns it into
``readings`` rows (``ts, point_id, value, status``) through Arrow, so the rest
of the project cannot tell replayed data from polled data.

* :func:`column_tags` maps frame columns to site tags: a column may already be
  a tag (``chiller_1.power``), or a point name of the site (or the name
  :func:`~connectors.importers._common.safe_name` makes of it, e.g.
  ``"kW/Ton"`` → ``chiller.kW_per_Ton``).
* A NaN cell (a missing or unreadable value in the recording) becomes a row
  with ``status = DECODE_ERROR`` and a NULL value — visible, never a good
  reading. Every other value, however dirty (denormals, 7.9e9 kW, ±inf), is
  stored as recorded with status ok, for the data-quality scorer to judge.
* :class:`ReplaySource` feeds a frame in chunks and moves an injected
  :class:`~connectors.clock.ManualClock` with it, so an eval can replay a
  14-hour recording at thousands of times real speed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from connectors.clock import ManualClock
from connectors.errors import ConfigError
from connectors.importers._common import safe_name
from connectors.site import Site
from connectors.status import Status
from connectors.store import READINGS_SCHEMA, Store


def column_tags(frame: pd.DataFrame, site: Site, strict: bool = False) -> dict[str, str]:
    """{column: tag} for every numeric column of ``frame`` that names a point of ``site``.

    Boolean columns (e.g. a ``fault`` ground truth) are never points. With
    ``strict`` a numeric column that matches no point (or several) raises
    :class:`ConfigError`; otherwise it is skipped.
    """
    by_name: dict[str, list[str]] = {}
    for eq, p in site.iter_points():
        by_name.setdefault(p.name, []).append(f"{eq.id}.{p.name}")
    out: dict[str, str] = {}
    for col in frame.columns:
        key = str(col)
        if pd.api.types.is_bool_dtype(frame[col]) or not pd.api.types.is_numeric_dtype(frame[col]):
            continue
        if key in site.points_by_tag:
            out[key] = key
            continue
        cands = by_name.get(key) or by_name.get(safe_name(key)) or []
        if len(cands) == 1:
            out[key] = cands[0]
        elif strict:
            why = "matches several points " + ", ".join(cands) if cands else "matches no point"
            raise ConfigError(f"site {site.name}: column {key!r} {why}")
    return out


def frame_to_table(frame: pd.DataFrame, point_ids: Mapping[str, int]) -> pa.Table:
    """Wide frame whose columns are tags → long Arrow table in the readings schema.

    Rows are ordered by time, then by column. NaN → NULL value, status DECODE_ERROR.
    """
    cols = [c for c in frame.columns if c in point_ids]
    n, k = len(frame), len(cols)
    if n == 0 or k == 0:
        return READINGS_SCHEMA.empty_table()
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ConfigError("replay frame needs a DatetimeIndex")
    idx = frame.index.tz_convert(None) if frame.index.tz is not None else frame.index
    ts = np.repeat(idx.to_numpy(dtype="datetime64[us]"), k)
    pid = np.tile(np.asarray([point_ids[c] for c in cols], dtype=np.int32), n)
    values = frame[cols].to_numpy(dtype=np.float64).reshape(-1)
    missing = np.isnan(values)
    status = np.where(missing, np.uint8(Status.DECODE_ERROR), np.uint8(Status.OK)).astype(np.uint8)
    return pa.Table.from_arrays(
        [
            pa.array(ts, type=pa.timestamp("us")),
            pa.array(pid),
            pa.array(values, mask=missing),
            pa.array(status),
        ],
        schema=READINGS_SCHEMA,
    )


def replay_frame(store: Store, frame: pd.DataFrame, site: Site, strict: bool = False) -> int:
    """Register ``site`` and append the whole ``frame`` to ``store``. Returns rows written."""
    ids = store.register_site(site)
    mapping = column_tags(frame, site, strict=strict)
    wide = frame[list(mapping)].rename(columns=mapping)
    return store.append_arrow(frame_to_table(wide, ids))


@dataclass(frozen=True)
class ReplayChunk:
    """One slice of a recording: rows with ``start ≤ ts < end`` and the last value of each tag."""

    start: datetime
    end: datetime
    table: pa.Table
    values: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


class ReplaySource:
    """A recording played back in chunks against an injected clock.

    ``start`` re-bases the recording so its first row falls at ``start``
    (default: keep the recorded timestamps). Iterating yields
    :class:`ReplayChunk` objects of ``chunk`` duration, each with the clock
    already set to the chunk's end — "now" is just after the newest replayed
    sample. :meth:`feed` does the same while appending each chunk to
    a store, which is what the eval runner uses::

        clock = ManualClock()
        src = ReplaySource(read_rp1043(path), rp1043_site(), clock, chunk=timedelta(minutes=1))
        for chunk in src.feed(store):
            run_agent(store, clock.now())
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        site: Site,
        clock: ManualClock,
        *,
        chunk: timedelta = timedelta(minutes=1),
        start: datetime | None = None,
        strict: bool = False,
    ) -> None:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise ConfigError("ReplaySource needs a frame with a DatetimeIndex")
        if chunk <= timedelta(0):
            raise ConfigError(f"ReplaySource chunk must be positive, not {chunk}")
        mapping = column_tags(frame, site, strict=strict)
        wide = frame[list(mapping)].rename(columns=mapping).sort_index()
        if start is not None and len(wide):
            wide.index = wide.index - wide.index[0] + pd.Timestamp(start)
        self.frame = wide
        self.site = site
        self.clock = clock
        self.chunk = chunk
        self.tags = list(mapping.values())
        if len(wide):
            clock.set(wide.index[0].to_pydatetime())

    @property
    def span(self) -> tuple[datetime, datetime]:
        """First and last recorded timestamps (after re-basing)."""
        return self.frame.index[0].to_pydatetime(), self.frame.index[-1].to_pydatetime()

    def _slices(self) -> Iterator[tuple[datetime, datetime, int, int]]:
        """(start, end, first row, row after the last) of each chunk."""
        if not len(self.frame):
            return
        first, last = self.span
        t = first
        idx = self.frame.index
        while t <= last:
            end = t + self.chunk
            lo = int(idx.searchsorted(pd.Timestamp(t), side="left"))
            hi = int(idx.searchsorted(pd.Timestamp(end), side="left"))
            yield t, end, lo, hi
            t = end

    def chunks(self, point_ids: Mapping[str, int] | None = None) -> Iterator[ReplayChunk]:
        """Chunks in time order; the clock is at each chunk's end when it is yielded.

        The whole recording becomes one Arrow table up front (rows by time, then column) and
        each chunk is a zero-copy slice of it; a chunk's values are each tag's last non-NaN
        value within the chunk."""
        ids = dict(point_ids) if point_ids is not None else self.site.point_ids
        full = frame_to_table(self.frame, ids)
        per_row = full.num_rows // len(self.frame) if len(self.frame) else 0
        tags = [str(c) for c in self.frame.columns]
        x = self.frame.to_numpy(dtype=np.float64, na_value=np.nan)
        # the row of each column's newest non-NaN value up to each row (-1: none yet)
        seen = np.maximum.accumulate(np.where(np.isnan(x), -1, np.arange(len(x))[:, None]), axis=0)
        for start, end, lo, hi in self._slices():
            values: dict[str, float] = {}
            if hi > lo:
                for j in np.flatnonzero(seen[hi - 1] >= lo):
                    values[tags[j]] = float(x[seen[hi - 1, j], j])
            self.clock.set(end)
            yield ReplayChunk(start, end, full.slice(lo * per_row, (hi - lo) * per_row), values)

    def __iter__(self) -> Iterator[ReplayChunk]:
        return self.chunks()

    def feed(self, store: Store) -> Iterator[ReplayChunk]:
        """Append each chunk to ``store`` (ids from the store's catalogue), then yield it."""
        ids = store.register_site(self.site)
        for ch in self.chunks(ids):
            store.append_arrow(ch.table)
            yield ch

    def replay_all(self, store: Store) -> int:
        """Feed the whole recording; returns rows written (clock ends after the last sample)."""
        return sum(ch.rows for ch in self.feed(store))
