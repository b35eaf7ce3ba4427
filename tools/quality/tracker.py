"""Incremental per-point running state of the data-quality scorer (numpy, no SQL per cycle).

Each batch of new readings updates the state once; a report over the window reads
the state, never the raw readings again. State per point:

* the last row (time, status) and the last two good samples (value, time) — the
  carry that lets a sample's second difference, spike test and rate be computed
  when its neighbour arrives in a later batch;
* the unchanged run at the tail (how many consecutive good samples repeated the
  same value, since when) — the stuck detector's input;
* a ring of time buckets (``bucket_samples`` polls wide, aligned to the epoch so a
  bucket means the same thing in every batch) holding counts of every class of
  reading (the classes below), first/last/min/max/sum
  of the good values, the largest spike and rate with their times, the number of
  value changes and the last one, and the mean second difference (noise).

A window statistic is a reduction over the buckets inside the window; buckets that
fall out of the window are overwritten when their slot is reused. Cost: one sort of
the batch by point (a stable radix sort when the batch is in time order) and a few
``reduceat`` passes — ~O(rows) with small constants; the report is O(points ×
buckets per window).

Classes of a reading (:func:`classify`): 0 good (status ok, finite, not a sentinel, not
denormal, inside min/max); 1 bad status (timeout, connection lost, decode error, Modbus
exception); 2 NaN / NULL with status ok; 3 ±infinity; 4 sentinel (float32 max ≈ 3.4e38,
or a raw marker 65535, −32768, … that the point's range does not include); 5 denormal
(0 < |v| < 1e-30, e.g. 1.68e-45); 6 below the point's min; 7 above its max.

Ingest order: rows of one point must arrive in time order (a poller writes them so);
rows at or before a point's newest seen row are ignored, so overlapping fetches are safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tools.quality.config import DENORMAL, FLOAT32_MAX_ISH, SENTINELS, QualityConfig

I64_MIN = np.iinfo(np.int64).min
# the window statistics that are times (int64 µs in :meth:`PointTracker.window_arrays`)
TIME_STATS = ("first_ts", "last_ts", "first_good", "last_good", "spike_ts", "rate_ts",
              "rate_ts_nz", "last_change", "run_since", "moved_at")  # fmt: skip
# mean |v − (prev + next)/2| of white noise σ is σ·√1.5·√(2/π)
MEAN_E_TO_SIGMA = 1.0 / (np.sqrt(1.5) * np.sqrt(2.0 / np.pi))

# E|Σe| of white noise over a bucket, in units of E|e| (Σe telescopes: σ vs σ·√1.5)
_ONE_SIGN = 1.0 / np.sqrt(1.5)

_COUNTS = ("n_good", "n_status", "n_nan", "n_inf", "n_sentinel", "n_denormal", "n_low", "n_high")
_I64 = ("bno", "t0", "t1", "tf", "tl", "spike_t", "rate_t", "rate_nz_t", "t_chg")
_F64 = ("vf", "vl", "vmin", "vmax", "vsum", "vlow", "vhigh", "vsent", "vden", "spike", "rate",
        "rate_nz", "esum", "ssum", "n_e", "n_chg")  # fmt: skip
# identity of each field when a slot starts a new bucket
_RESET: dict[str, float] = {
    "bno": -1, "t0": np.iinfo(np.int64).max, "t1": I64_MIN, "tf": np.iinfo(np.int64).max,
    "tl": I64_MIN, "spike_t": I64_MIN, "rate_t": I64_MIN, "rate_nz_t": I64_MIN, "t_chg": I64_MIN,
    "vf": np.nan, "vl": np.nan, "vmin": np.inf, "vmax": -np.inf, "vsum": 0.0, "vlow": np.inf,
    "vhigh": -np.inf, "vsent": -np.inf, "vden": -np.inf, "spike": 0.0, "rate": -np.inf,
    "rate_nz": -np.inf, "esum": 0.0, "ssum": 0.0, "n_e": 0.0, "n_chg": 0.0,
}  # fmt: skip

_SENT = np.asarray(SENTINELS, float)


def classify(v: np.ndarray, status: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Class 0–7 of each reading (0 good; see the module docstring)."""
    cls = np.zeros(len(v), np.int8)
    with np.errstate(invalid="ignore"):
        inside = (v >= lo) & (v <= hi)
        av = np.abs(v)
        bad_status = status != 0
        nan = np.isnan(v) & ~bad_status
        inf = np.isinf(v) & ~bad_status
        sentinel = (
            ~bad_status & ~nan & ~inf & ((av >= FLOAT32_MAX_ISH) | (np.isin(v, _SENT) & ~inside))
        )
        den = ~bad_status & (v != 0) & (av < DENORMAL)
        low = ~bad_status & (v < lo)
        high = ~bad_status & (v > hi)
    cls[high] = 7
    cls[low] = 6
    cls[den] = 5
    cls[sentinel] = 4
    cls[inf] = 3
    cls[nan] = 2
    cls[bad_status] = 1
    return cls


@dataclass
class Batch:
    """Readings in engineering units: ``ts`` in µs since the epoch (naive UTC)."""

    ts: np.ndarray  # int64 µs
    point_id: np.ndarray  # int32, the store's ids
    value: np.ndarray  # float64
    status: np.ndarray  # uint8

    @classmethod
    def from_arrow(cls, t: pa.Table) -> Batch:
        ts = t.column("ts").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
        return cls(
            np.asarray(ts, np.int64),
            t.column("point_id").to_numpy().astype(np.int32, copy=False),
            t.column("value").fill_null(np.nan).to_numpy().astype(float, copy=False),
            t.column("status").to_numpy().astype(np.uint8, copy=False),
        )


def to_us(t: datetime) -> int:
    return int(pd.Timestamp(t).value // 1000)


class PointTracker:
    """Running state of ``n`` points (see the module docstring).

    ``point_id``, ``lo``, ``hi``, ``poll_s`` are per point (arrays of length n);
    ``horizon`` is the longest window a report may ask for.
    """

    def __init__(
        self,
        point_id: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        poll_s: np.ndarray,
        cfg: QualityConfig,
        horizon: timedelta,
        discrete: np.ndarray | None = None,
    ) -> None:
        n = len(point_id)
        self.n = n
        self.cfg = cfg
        self.point_id = np.asarray(point_id, np.int64)
        self.lo = np.asarray(lo, float)
        self.hi = np.asarray(hi, float)
        self.poll_s = np.asarray(poll_s, float)
        self.discrete = np.zeros(n, bool) if discrete is None else np.asarray(discrete, bool)
        self.bw_us = np.maximum((self.poll_s * cfg.bucket_samples * 1e6).round(), 1).astype(
            np.int64
        )
        self.horizon_us = int(horizon.total_seconds() * 1e6)
        self.nb = int(np.max(self.horizon_us // self.bw_us, initial=0)) + 3
        valid = self.point_id >= 0
        size = int(self.point_id[valid].max(initial=-1)) + 1
        self.lut = np.full(size, -1, np.int64)
        self.lut[self.point_id[valid]] = np.flatnonzero(valid)
        self.b: dict[str, np.ndarray] = {}
        # counts of every class of reading, one array: (point, slot, class)
        self.counts = np.zeros((n, self.nb, len(_COUNTS)), np.int32)
        for f in _I64:
            self.b[f] = np.full((n, self.nb), int(_RESET[f]), np.int64)
        for f in _F64:
            self.b[f] = np.full((n, self.nb), _RESET[f], float)
        # per point
        self.last_t = np.full(n, I64_MIN, np.int64)  # newest row of any class
        self.last_status = np.zeros(n, np.int64)
        self.v1 = np.full(n, np.nan)  # last good value and its time
        self.t1 = np.full(n, I64_MIN, np.int64)
        self.v2 = np.full(n, np.nan)  # the good value before it, and its time
        self.t2 = np.full(n, I64_MIN, np.int64)
        self.run_n = np.zeros(n, np.int64)  # consecutive unchanged good samples at the tail
        self.run_since = np.full(n, I64_MIN, np.int64)  # time of the run's first sample
        self.rows = 0
        self.watermark = I64_MIN  # newest row time seen (any point)

    # ---- ingest -----------------------------------------------------------------------------
    def update(self, batch: Batch) -> int:
        """Fold a batch of readings into the state; returns the rows used."""
        pid = batch.point_id.astype(np.int64, copy=False)
        ok = (pid >= 0) & (pid < len(self.lut))
        idx = np.full(len(pid), -1, np.int64)
        idx[ok] = self.lut[pid[ok]]
        ts = batch.ts
        keep = idx >= 0
        keep[keep] = ts[keep] > self.last_t[idx[keep]]
        if not keep.any():
            return 0
        idx, ts = idx[keep], ts[keep]
        v, st = batch.value[keep], batch.status[keep].astype(np.int64)
        if len(ts) > 1 and bool(np.all(ts[1:] >= ts[:-1])):
            order = np.argsort(idx, kind="stable")
        else:
            order = np.lexsort((ts, idx))
        idx, ts, v, st = idx[order], ts[order], v[order], st[order]
        self.watermark = max(self.watermark, int(ts.max()))
        self.rows += len(ts)
        cls = classify(v, st, self.lo[idx], self.hi[idx])

        # per point: newest row
        seg_end = np.flatnonzero(np.r_[idx[1:] != idx[:-1], True])
        self.last_t[idx[seg_end]] = ts[seg_end]
        self.last_status[idx[seg_end]] = st[seg_end]

        bno = ts // self.bw_us[idx]
        key_change = np.r_[True, (idx[1:] != idx[:-1]) | (bno[1:] != bno[:-1])]
        gs = np.flatnonzero(key_change)
        gi, gb = idx[gs], bno[gs]
        slot = gb % self.nb
        self._claim(gi, slot, gb)
        B = self.b
        onehot = np.zeros((len(cls), len(_COUNTS)), np.int32)
        onehot[np.arange(len(cls)), cls] = 1
        self.counts[gi, slot] += np.add.reduceat(onehot, gs, axis=0)
        ge = np.r_[gs[1:], len(ts)] - 1
        B["t0"][gi, slot] = np.minimum(B["t0"][gi, slot], ts[gs])
        B["t1"][gi, slot] = np.maximum(B["t1"][gi, slot], ts[ge])
        for c, f, red, neutral in (
            (6, "vlow", np.minimum, np.inf),
            (7, "vhigh", np.maximum, -np.inf),
            (4, "vsent", np.maximum, -np.inf),
            (5, "vden", np.maximum, -np.inf),
        ):
            m = cls == c
            if m.any():
                x = np.where(m, np.abs(v) if c == 5 else v, neutral)
                B[f][gi, slot] = red(B[f][gi, slot], red.reduceat(x, gs))

        g = cls == 0
        if g.any():
            self._update_good(idx[g], ts[g], v[g])
        return len(ts)

    def _claim(self, gi: np.ndarray, slot: np.ndarray, gb: np.ndarray) -> None:
        """Reset the slots that now start a new bucket."""
        fresh = self.b["bno"][gi, slot] != gb
        if fresh.any():
            fi, fs = gi[fresh], slot[fresh]
            for f, arr in self.b.items():
                arr[fi, fs] = _RESET[f]
            self.counts[fi, fs] = 0
            self.b["bno"][fi, fs] = gb[fresh]

    def _update_good(self, idx: np.ndarray, ts: np.ndarray, v: np.ndarray) -> None:
        n = len(v)
        first = np.r_[True, idx[1:] != idx[:-1]]
        second = np.r_[False, first[:-1]] & ~first
        # previous and the one before, carried across batches
        p1 = np.r_[np.nan, v[:-1]]
        t1 = np.r_[I64_MIN, ts[:-1]]
        p1[first] = self.v1[idx[first]]
        t1[first] = self.t1[idx[first]]
        p2 = np.r_[np.nan, np.nan, v[:-2]][:n]
        t2 = np.r_[I64_MIN, I64_MIN, ts[:-2]][:n]
        p2[first] = self.v2[idx[first]]
        t2[first] = self.t2[idx[first]]
        p2[second] = self.v1[idx[second]]
        t2[second] = self.t1[idx[second]]
        has1 = ~np.isnan(p1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dt = (ts - t1) / 1e6
            rate = np.where(has1 & (dt > 0), np.abs(v - p1) / dt, -np.inf)
            nz = (v != 0) & (p1 != 0)
            changed = has1 & (np.abs(v - p1) > self.cfg.flat_rel_tol * np.maximum(np.abs(v), 1.0))
            # the previous sample's second difference and spike (its neighbours are known now)
            has2 = has1 & ~np.isnan(p2)
            # the middle sample against the line through its neighbours, at its own time
            # (polls jitter: on a steep slope the midpoint of unequal steps is not the line)
            t2s = np.where(has2, t2, ts)
            t1s = np.where(has2, t1, ts)
            span = ts - t2s
            w = np.where(span > 0, (t1s - t2s) / np.maximum(span, 1), 0.5)
            w = np.clip(w, 0.0, 1.0)
            es = np.where(has2, p1 - (p2 * (1.0 - w) + v * w), 0.0)
            e = np.abs(es)
            ext = has2 & ((p1 - p2) * (p1 - v) > 0)
            spike = np.where(ext, np.minimum(np.abs(p1 - p2), np.abs(p1 - v)), 0.0)
        # carry
        seg_end = np.flatnonzero(np.r_[idx[1:] != idx[:-1], True])
        pe = idx[seg_end]
        self.v1[pe] = v[seg_end]
        self.t1[pe] = ts[seg_end]
        self.v2[pe] = p1[seg_end]
        self.t2[pe] = t1[seg_end]
        # unchanged run at the tail
        pos = np.arange(n)
        seg_start = np.flatnonzero(first)
        last_chg = np.maximum.reduceat(np.where(changed | first & ~has1, pos, -1), seg_start)
        seg_len = seg_end - seg_start + 1
        any_chg = last_chg >= 0
        run_n = np.where(any_chg, seg_end - last_chg, self.run_n[pe] + seg_len)
        since = np.where(any_chg, ts[np.maximum(last_chg, 0)], self.run_since[pe])
        self.run_n[pe] = run_n
        self.run_since[pe] = since

        # bucket aggregates of the good samples
        B = self.b
        bno = ts // self.bw_us[idx]
        gs = np.flatnonzero(np.r_[True, (idx[1:] != idx[:-1]) | (bno[1:] != bno[:-1])])
        ge = np.r_[gs[1:], n] - 1
        gi, gb = idx[gs], bno[gs]
        slot = gb % self.nb
        empty = B["tf"][gi, slot] > ts[gs]
        B["vf"][gi, slot] = np.where(empty, v[gs], B["vf"][gi, slot])
        B["tf"][gi, slot] = np.minimum(B["tf"][gi, slot], ts[gs])
        B["vl"][gi, slot] = v[ge]
        B["tl"][gi, slot] = np.maximum(B["tl"][gi, slot], ts[ge])
        B["vmin"][gi, slot] = np.minimum(B["vmin"][gi, slot], np.minimum.reduceat(v, gs))
        B["vmax"][gi, slot] = np.maximum(B["vmax"][gi, slot], np.maximum.reduceat(v, gs))
        B["vsum"][gi, slot] += np.add.reduceat(v, gs)
        B["esum"][gi, slot] += np.add.reduceat(e, gs)
        B["ssum"][gi, slot] += np.add.reduceat(es, gs)
        B["n_e"][gi, slot] += np.add.reduceat(has2.astype(float), gs)
        B["n_chg"][gi, slot] += np.add.reduceat(changed.astype(float), gs)
        t_chg = np.maximum.reduceat(np.where(changed, ts, I64_MIN), gs)
        B["t_chg"][gi, slot] = np.maximum(B["t_chg"][gi, slot], t_chg)
        self._argmax_into("spike", "spike_t", gi, slot, gs, spike, t1)
        self._argmax_into("rate", "rate_t", gi, slot, gs, rate, ts)
        self._argmax_into("rate_nz", "rate_nz_t", gi, slot, gs, np.where(nz, rate, -np.inf), ts)

    def _argmax_into(
        self,
        f: str,
        ft: str,
        gi: np.ndarray,
        slot: np.ndarray,
        gs: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
    ) -> None:
        mx = np.maximum.reduceat(x, gs)
        # time of the group's max: the last position holding it
        hit = x == np.repeat(mx, np.diff(np.r_[gs, len(x)]))
        tpos = np.maximum.reduceat(np.where(hit, np.arange(len(x)), -1), gs)
        better = mx > self.b[f][gi, slot]
        self.b[f][gi, slot] = np.where(better, mx, self.b[f][gi, slot])
        self.b[ft][gi, slot] = np.where(better, t[np.maximum(tpos, 0)], self.b[ft][gi, slot])

    # ---- window statistics ------------------------------------------------------------------
    def window_stats(self, now: datetime, window: timedelta) -> pd.DataFrame:
        """Per-point statistics of ``[now − window, now]`` in the columns the sub-scores read
        (see :func:`tools.quality.subscores.subscores`)."""
        out: dict[str, Any] = dict(self.window_arrays(now, window))
        for c in TIME_STATS:
            x = out[c]
            out[c] = pd.to_datetime(
                np.where(x == I64_MIN, np.datetime64("NaT"), x.astype("datetime64[us]"))
            )
        return pd.DataFrame(out)  # one DataFrame at the end (setting columns one by one is slow)

    def window_arrays(self, now: datetime, window: timedelta) -> dict[str, np.ndarray]:
        """:meth:`window_stats` as one array per column, times (:data:`TIME_STATS`) as int64 µs
        with ``I64_MIN`` for none — no DataFrame: the scorer's hot path."""
        cfg = self.cfg
        now_us, start_us = to_us(now), to_us(now - window)
        B = self.b
        bw = self.bw_us[:, None]
        bstart = B["bno"] * bw
        inwin = (B["bno"] >= 0) & (bstart + bw > start_us) & (bstart <= now_us)
        recent_from = now_us - (self.poll_s * cfg.recent_samples * 1e6).astype(np.int64)
        recent = inwin & (bstart >= recent_from[:, None])
        early = inwin & ~recent

        def s(f: str, m: np.ndarray = inwin) -> np.ndarray:
            return np.where(m, B[f], 0).sum(axis=1)

        out: dict[str, np.ndarray] = {"point_id": self.point_id}
        cw = np.einsum("ijk,ij->ik", self.counts, inwin.astype(np.int32)).astype(float)
        cr = np.einsum("ijk,ij->ik", self.counts, recent.astype(np.int32)).astype(float)
        for k, f in enumerate(_COUNTS):
            out[f] = cw[:, k]
        out["n_rows"] = cw.sum(axis=1)
        rc = {f: cr[:, k] for k, f in enumerate(_COUNTS)}
        out["n_good_recent"] = rc["n_good"]
        out["n_badval_recent"] = sum(rc[f] for f in _COUNTS[2:])
        out["n_okstatus_recent"] = out["n_good_recent"] + out["n_badval_recent"]
        out["n_recent"] = out["n_okstatus_recent"] + rc["n_status"]
        # the recent part's span in polls (bucket-aligned): what completeness expects there
        first_recent = np.where(recent, bstart, np.iinfo(np.int64).max).min(axis=1)

        def tmin(f: str) -> np.ndarray:
            x = np.where(inwin, B[f], np.iinfo(np.int64).max).min(axis=1)
            return np.where(x == np.iinfo(np.int64).max, I64_MIN, x)

        def tmax(f: str) -> np.ndarray:
            return np.where(inwin, B[f], I64_MIN).max(axis=1)

        first_ts, last_ts = tmin("t0"), tmax("t1")
        first_good, last_good = tmin("tf"), tmax("tl")
        out["first_ts"] = first_ts
        out["last_ts"] = last_ts
        out["first_good"] = first_good
        out["last_good"] = last_good
        has_recent = first_recent < np.iinfo(np.int64).max
        span_recent = np.where(has_recent, (now_us - np.maximum(first_recent, first_ts)) / 1e6, 0.0)
        out["exp_recent"] = np.maximum(np.floor(span_recent / self.poll_s + 1e-6), 1.0)
        out["last_status"] = np.where(last_ts >= start_us, self.last_status, 0).astype(float)
        good_now = (self.t1 >= start_us) & (self.t1 <= now_us)
        out["last_value"] = np.where(good_now, self.v1, np.nan)
        with np.errstate(invalid="ignore"):
            big = np.fmax(
                np.abs(np.where(inwin, B["vmin"], 0.0)), np.abs(np.where(inwin, B["vmax"], 0.0))
            )
            big = np.where(np.isfinite(big), big, 0.0).max(axis=1)
            out["abs_max"] = np.where(out["n_good"] > 0, big, np.nan)
            out["v_low"] = np.where(
                out["n_low"] > 0, np.where(inwin, B["vlow"], np.inf).min(1), np.nan
            )
            for f, col in (("vhigh", "v_high"), ("vsent", "v_sentinel"), ("vden", "v_denormal")):
                x = np.where(inwin, B[f], -np.inf).max(1)
                out[col] = np.where(np.isfinite(x), x, np.nan)
        # exact statistics (every sample was seen once)
        for f, ft, col, colt in (
            ("spike", "spike_t", "spike_max", "spike_ts"),
            ("rate", "rate_t", "rate_max", "rate_ts"),
            ("rate_nz", "rate_nz_t", "rate_max_nz", "rate_ts_nz"),
        ):
            x = np.where(inwin, B[f], -np.inf)
            j = x.argmax(axis=1)
            mx = x[np.arange(self.n), j]
            out[col] = np.where(np.isfinite(mx), mx, np.nan)
            out[colt] = np.where(np.isfinite(mx), B[ft][np.arange(self.n), j], I64_MIN)
        out["n_changes"] = s("n_chg")
        out["last_change"] = tmax("t_chg")
        # noise: median over buckets of each bucket's mean second difference, less the part
        # of one sign: a smooth curve (a pump coasting down, a loop settling) bends one way
        # for many samples, white noise alternates. The signed sum telescopes to half the
        # change of slope across the bucket, which for white noise is one |e| of size
        # σ·√(2/π); dividing by n − 1/√1.5 keeps the estimate unbiased for white noise.
        with np.errstate(invalid="ignore", divide="ignore"):
            n_e = B["n_e"]
            e_b = np.where(
                n_e >= 4,
                np.maximum(B["esum"] - np.abs(B["ssum"]), 0.0) / np.maximum(n_e - _ONE_SIGN, 1.0),
                np.nan,
            )
        e_early = nanmedian_rows(np.where(early, e_b, np.nan))
        e_recent = nanmedian_rows(np.where(recent, e_b, np.nan))
        out["sigma_early"] = e_early * MEAN_E_TO_SIGMA
        out["sigma_recent"] = e_recent * MEAN_E_TO_SIGMA
        out["n_sigma_early"] = (early & ~np.isnan(e_b)).sum(1).astype(float)
        out["n_sigma_recent"] = (recent & ~np.isnan(e_b)).sum(1).astype(float)
        # the unchanged tail run (stuck detector)
        out["run_n"] = np.where(good_now, self.run_n, 0).astype(float)
        out["run_since"] = np.where(good_now, self.run_since, I64_MIN)
        # noise before the run began: buckets that ended before it (a stuck sensor's own
        # quiet buckets must not vouch for it)
        before = inwin & ((bstart + bw) <= self.run_since[:, None])
        out["sigma_before"] = nanmedian_rows(np.where(before, e_b, np.nan)) * MEAN_E_TO_SIGMA
        out["n_sigma_before"] = (before & ~np.isnan(e_b)).sum(1).astype(float)
        for c in TIME_STATS[:-1]:
            out[c] = out[c].astype(np.int64)
        out["moved_at"] = out["last_change"]
        out["e_early"] = out["sigma_early"] / MEAN_E_TO_SIGMA
        out["e_recent"] = out["sigma_recent"] / MEAN_E_TO_SIGMA
        return out

    def bucket_means(
        self, now: datetime, window: timedelta, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean good value, bucket start µs) per slot of the points ``rows``, NaN outside
        the window."""
        bno = self.b["bno"][rows]
        n = self.counts[rows, :, 0]
        bw = self.bw_us[rows][:, None]
        bstart = bno * bw
        now_us, start_us = to_us(now), to_us(now - window)
        m = (bno >= 0) & (bstart + bw > start_us) & (bstart <= now_us) & (n > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(m, self.b["vsum"][rows] / n, np.nan)
        return mean, np.where(m, bstart, I64_MIN)


def nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise median ignoring NaN (NaN for an all-NaN row), without the all-NaN warning."""
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    s = np.sort(x, axis=1)  # NaN sort last
    k = (~np.isnan(x)).sum(1)
    rows = np.arange(x.shape[0])
    lo = s[rows, np.maximum((k - 1) // 2, 0)]
    hi = s[rows, np.maximum(k // 2, 0)]
    return np.where(k > 0, (lo + hi) / 2.0, np.nan)
