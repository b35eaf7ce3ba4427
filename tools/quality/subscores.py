"""Window statistics → sub-scores in [0, 1] with human-readable reasons (pure, vectorised).

Every curve is monotone: more badness never gives a higher score. Readings
that fail the range check (or carry a bad status) are left out of every other
statistic, so adding a bad sample can only lower the range (or freshness /
completeness) score and leaves the rest unchanged — the property the tests
check with hypothesis.

Curves (``floor`` = :attr:`QualityConfig.floor`, 0.3 by default):

* freshness — 1 while the newest good reading is ≤ ``fresh_polls`` polls old, then
  −``stale_step`` per poll (below 0.8 after 6 polls), to 0;
* completeness — ``1 − 2 × missing share``, over the window and over the last
  ``recent_samples`` polls (the worse of the two);
* range — 1 without a bad value; otherwise at most ``range_cap`` (0.9) and
  ``1 − 2 × bad share`` (window), ``1 − 3 × bad share`` (recent);
* flat-line — 0.75 once a point that changed on most samples earlier in the window
  (a live analog signal) has been exactly unchanged for ``flat_samples`` polls while a sibling moved, falling to ``floor`` at 4×;
* spike — ratio of the largest come-back excursion to 1.48 × the noise σ (at
  least 0.5 % of span): 1 up to 10×, ``floor`` at 50× (log-linear);
* noise — recent σ over the earlier σ (at least 0.1 % of span), or σ against
  2 % of span for densely polled points: 1 up to 3×, ``floor`` at 10×
  (log-linear); σ from bucket wiggles, confirmed by second differences;
* rate — 1 within ``max_rate`` (+ 6 σ of the point's noise per poll); any faster
  change 0.75, down to ``floor`` at 5×
  (a jump into a spike, or within 4 σ of a noise rise, is reported as that).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from connectors.status import status_name
from tools.quality.config import QualityConfig

MAD_TO_SIGMA = 1.4826  # spike threshold unit: 1.48 σ (the MAD-to-σ factor)
# median |v − (prev+next)/2| of white noise σ = 0.6745 · √1.5 σ
E_TO_SIGMA = 1.0 / (0.6745 * np.sqrt(1.5))


def _f(x: float, unit: str = "") -> str:
    """Short number with unit: 7.9e+09 kW, 12.3 degC."""
    s = f"{x:.3g}" if np.isfinite(x) else str(x)
    return f"{s} {unit}".strip() if unit else s


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def log_curve(ratio: np.ndarray, lo: float, hi: float, floor: float) -> np.ndarray:
    """1 for ratio ≤ lo, ``floor`` for ratio ≥ hi, linear in log(ratio) between; NaN → 1."""
    r = np.nan_to_num(np.asarray(ratio, dtype=float), nan=0.0, posinf=np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.log(np.maximum(r, 1e-300)) - np.log(lo)) / (np.log(hi) - np.log(lo))
    return 1.0 - (1.0 - floor) * np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)


_NAT = np.iinfo(np.int64).min


Columns = Mapping[str, Any]
"""Columns by name, each a numpy array, times as int64 µs (NaT: int64 min) — the point table
and window statistics as the scorer's hot path hands them over (:func:`columns`)."""


def columns(st: pd.DataFrame | Columns) -> Columns:
    """A frame's columns as numpy arrays, datetime columns as int64 µs (a mapping as it is)."""
    if not isinstance(st, pd.DataFrame):
        return st
    out: dict[str, np.ndarray] = {}
    for c in st.columns:
        col = st[c]
        if col.dtype.kind == "M":
            out[str(c)] = as_us(col)
        elif isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and col.dtype.kind in "fiu":
            out[str(c)] = col.to_numpy(float, na_value=np.nan)
        else:
            out[str(c)] = col.to_numpy()
    return out


def nrows(st: Columns) -> int:
    """The number of rows of :func:`columns`."""
    return len(next(iter(st.values()))) if len(st) else 0


def as_us(col: pd.Series | np.ndarray) -> np.ndarray:
    """A datetime column as int64 µs (NaT: int64 min), without Series arithmetic; an int64
    array is taken to be µs already."""
    if isinstance(col, np.ndarray):
        if col.dtype == np.int64:
            return col
        if col.dtype.kind == "M":
            return col.astype("datetime64[us]").view(np.int64)
        col = pd.Series(col)
    if col.dtype.kind != "M":
        col = pd.to_datetime(col)
    return col.to_numpy("datetime64[us]").view(np.int64)


def ts_of(us: int) -> pd.Timestamp:
    """An int64 µs time as a Timestamp (NaT for int64 min)."""
    return pd.NaT if int(us) == _NAT else pd.Timestamp(int(us), unit="us")


def filled(col: pd.Series | np.ndarray, fill: float) -> np.ndarray:
    """``col.fillna(fill).to_numpy(float)`` without the intermediate Series."""
    if isinstance(col, pd.Series):
        a = col.to_numpy(float, na_value=np.nan)
    else:
        a = np.asarray(col, float)
    return np.where(np.isnan(a), fill, a)


def seconds_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a − b) in seconds for int64 µs times; NaN where either is NaT."""
    with np.errstate(invalid="ignore"):
        return np.where((a == _NAT) | (b == _NAT), np.nan, (a - b) / 1e6)


def subscores(
    st: pd.DataFrame, now: datetime, window: timedelta, cfg: QualityConfig
) -> pd.DataFrame:
    """Columns freshness, completeness, range, flatline, noise, spike, rate (+ ``*_reason``).

    ``st`` is the point table merged with the window statistics; a point with no
    readings has NaN statistics and scores 0 on freshness and completeness.
    """
    return pd.DataFrame(subscore_arrays(st, now, window, cfg), index=st.index)


def subscore_arrays(
    st: pd.DataFrame | Columns, now: datetime, window: timedelta, cfg: QualityConfig
) -> dict[str, np.ndarray]:
    """:func:`subscores` as one array per column (no DataFrame: for the scorer's hot path);
    ``st`` a frame or its :func:`columns`."""
    st = columns(st)
    n = nrows(st)
    out: dict[str, np.ndarray] = {}  # one DataFrame at the end
    poll = np.asarray(st["poll_s"], float)
    unit = np.asarray(st["unit"]).astype(str)
    start = now - window
    now_us = int(pd.Timestamp(now).value // 1000)
    now_col = np.full(n, now_us, np.int64)

    # ---- freshness ------------------------------------------------------------------
    last_good = as_us(st["last_good"])
    age = seconds_between(now_col, last_good)
    polls = age / poll
    fresh = np.where(
        np.isnan(age), 0.0, np.clip(1.0 - cfg.stale_step * (polls - cfg.fresh_polls), 0.0, 1.0)
    )
    fresh = np.minimum(fresh, 1.0)
    out["freshness"] = fresh
    last_status = filled(st["last_status"], 0).astype(int)
    n_rows = filled(st["n_rows"], 0)
    last_ts = as_us(st["last_ts"])
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(fresh < 1.0):
        if n_rows[i] == 0:
            reason[i] = f"no readings in the last {_dur(window.total_seconds())}"
        elif np.isnan(age[i]):
            reason[i] = f"no good reading in the last {_dur(window.total_seconds())}" + (
                f": comm loss, device answers {status_name(int(last_status[i]))}"
                if last_status[i]
                else ""
            )
        elif last_status[i] != 0:
            reason[i] = (
                f"comm loss: no good reading for {_dur(age[i])} ({polls[i]:.0f} polls), "
                f"device answers {status_name(int(last_status[i]))}"
            )
        elif last_ts[i] != _NAT and last_ts[i] > last_good[i]:
            reason[i] = (
                f"stale: newest good reading {_dur(age[i])} old ({polls[i]:.0f} polls); "
                "the readings since are bad values"
            )
        else:
            reason[i] = f"stale: newest good reading {_dur(age[i])} old ({polls[i]:.0f} polls)"
    out["freshness_reason"] = reason

    # ---- completeness ---------------------------------------------------------------
    start_us = int(pd.Timestamp(start).value // 1000)
    first = as_us(st["first_ts"])
    first = np.maximum(np.where(first == _NAT, start_us, first), start_us)
    span_s = (now_us - first) / 1e6
    expected = np.maximum(np.floor(span_s / poll + 1e-6), 1.0)
    exp_recent = np.minimum(expected, float(cfg.recent_samples))
    if "exp_recent" in st:  # the incremental state's recent part is bucket-aligned
        exp_recent = np.minimum(expected, np.asarray(st["exp_recent"], float))
    n_good = filled(st["n_good"], 0)
    n_good_recent = filled(st["n_good_recent"], 0)
    c_win = np.minimum(n_good / expected, 1.0)
    c_rec = np.minimum(n_good_recent / exp_recent, 1.0)
    comp = np.clip(1.0 - cfg.completeness_slope * (1.0 - np.minimum(c_win, c_rec)), 0.0, 1.0)
    out["completeness"] = comp
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(comp < 1.0):
        reason[i] = (
            f"dropout: {n_good[i]:.0f} of {expected[i]:.0f} expected samples good "
            f"({c_win[i]:.0%}), last {exp_recent[i]:.0f}: {c_rec[i]:.0%}"
        )
    out["completeness_reason"] = reason

    # ---- physical range -------------------------------------------------------------
    kinds = ["n_nan", "n_inf", "n_sentinel", "n_denormal", "n_low", "n_high"]
    counts = np.column_stack([filled(st[k], 0) for k in kinds])
    n_bad = counts.sum(axis=1)
    n_ok_status = n_rows - filled(st["n_status"], 0)
    frac_w = n_bad / np.maximum(n_ok_status, 1.0)
    frac_r = filled(st["n_badval_recent"], 0) / np.maximum(filled(st["n_okstatus_recent"], 0), 1.0)
    rng = np.where(
        n_bad > 0,
        np.clip(
            np.minimum.reduce(
                [
                    np.full(n, cfg.range_cap),
                    1.0 - cfg.range_slope_window * frac_w,
                    1.0 - cfg.range_slope_recent * frac_r,
                ]
            ),
            0.0,
            1.0,
        ),
        1.0,
    )
    out["range"] = rng
    reason = np.full(n, "", dtype=object)
    lo, hi = np.asarray(st["lo"], float), np.asarray(st["hi"], float)
    n_nan, n_inf, n_sentinel, n_denormal, n_low, n_high = counts.T
    v_sentinel, v_denormal, v_low, v_high = (
        np.asarray(st[c], float) for c in ("v_sentinel", "v_denormal", "v_low", "v_high")
    )
    for i in np.flatnonzero(n_bad > 0):
        parts = []
        if n_nan[i]:
            parts.append(f"no value (NaN) ×{n_nan[i]:.0f} — sensor dropout")
        if n_inf[i]:
            parts.append(f"infinite ×{n_inf[i]:.0f}")
        if n_sentinel[i]:
            parts.append(f"no-value marker {_f(v_sentinel[i])} ×{n_sentinel[i]:.0f}")
        if n_denormal[i]:
            parts.append(f"denormal {v_denormal[i]:.3g} ×{n_denormal[i]:.0f} (corrupt float)")
        if n_high[i]:
            parts.append(
                f"above max {_f(hi[i], unit[i])}: {_f(v_high[i], unit[i])} ×{n_high[i]:.0f}"
                + (" (corrupt)" if abs(v_high[i]) > 1e3 * max(abs(hi[i]), 1.0) else "")
            )
        if n_low[i]:
            parts.append(f"below min {_f(lo[i], unit[i])}: {_f(v_low[i], unit[i])} ×{n_low[i]:.0f}")
        reason[i] = f"range: {frac_w[i]:.1%} of readings bad — " + "; ".join(parts)
    out["range_reason"] = reason

    # ---- flat-line (stuck) ----------------------------------------------------------
    flat = np.ones(n)
    reason = np.full(n, "", dtype=object)
    if "flat_check" in st:
        first_good = as_us(st["first_good"])
        last_change = as_us(st["last_change"])
        since = np.where(last_change == _NAT, first_good, last_change)
        flat_s = seconds_between(last_good, since)
        flat_n = flat_s / poll
        # did a sibling (same equipment, analog, not a setpoint) move after this point froze?
        moving = np.asarray(st["stats"], bool) & ~np.asarray(st["writable"], bool)
        lc = np.where(moving, as_us(st["moved_at"]), _NAT)
        eq = np.asarray(st["equipment"])
        sib_max = _max_excluding_self(eq, lc)
        own = np.where(since == _NAT, np.iinfo(np.int64).max, since)
        sibling_moved = sib_max > own + (poll * 1e6).astype(np.int64)
        at_setpoint = (
            np.asarray(st["at_setpoint"], bool) if "at_setpoint" in st else np.zeros(n, bool)
        )
        zero_off = np.asarray(st["onoff"], bool) & (filled(st["last_value"], 1.0) == 0.0)
        # only a point that moved nearly every sample before is judged: a quantised,
        # slowly varying point legitimately holds a value for minutes
        n_changes = filled(st["n_changes"], 0)
        before_n = seconds_between(last_change, first_good) / poll
        share = n_changes / np.maximum(np.nan_to_num(before_n), 1.0)
        cand = (
            np.asarray(st["flat_check"], bool)
            & (n_changes >= cfg.flat_min_changes)
            & (share >= cfg.flat_min_change_share)
            & (flat_n >= cfg.flat_samples)
            & sibling_moved
            & ~at_setpoint
            & ~zero_off
        )
        nflat = float(cfg.flat_samples)
        t = np.clip((flat_n - nflat) / (3.0 * nflat), 0.0, 1.0)
        flat = np.where(cand, 0.75 - (0.75 - cfg.floor) * t, 1.0)
        lastv = filled(st["last_value"], np.nan)
        pinned = (lastv <= np.asarray(st["lo"], float)) | (lastv >= np.asarray(st["hi"], float))
        for i in np.flatnonzero(cand & pinned):
            reason[i] = (
                f"saturated: held at its range limit {_f(lastv[i], unit[i])} for "
                f"{flat_n[i]:.0f} samples ({_dur(flat_s[i])}) while the rest of {eq[i]} "
                "moved; the true value may lie beyond it"
            )
        for i in np.flatnonzero(cand & ~pinned):
            reason[i] = (
                f"flat-line: stuck at {_f(st['last_value'][i], unit[i])} for "
                f"{flat_n[i]:.0f} samples ({_dur(flat_s[i])}) while the rest of "
                f"{eq[i]} moved"
            )
    out["flatline"] = flat
    out["flatline_reason"] = reason

    # ---- spikes and noise -----------------------------------------------------------
    stats = np.asarray(st["stats"], bool)
    span = np.asarray(st["span"], float)
    scale = np.where(np.isfinite(span), span, np.abs(filled(st["last_value"], 1.0)) + 1.0)
    sig_early = np.asarray(st["sigma_early"], float)
    sig_recent = np.asarray(st["sigma_recent"], float)
    level = np.fmax(np.fmax(sig_early, sig_recent), 0.0)
    level = np.where(np.isnan(level), 0.0, level)
    # the smallest excursion worth calling a spike: from the instrument's own noise and
    # resolution when the site file gives them, else a fraction of the span
    floor = cfg.spike_floor_frac * scale
    if "spike_floor" in st:
        floor = np.where(
            np.isnan(np.asarray(st["spike_floor"], float)),
            floor,
            np.asarray(st["spike_floor"], float),
        )
    if "sensor_rel" in st and "abs_max" in st:
        # a meter whose noise is a share of its reading: that share of the largest reading in
        # the window (a UPS input that drops to 0 on battery keeps its running noise level)
        rel = MAD_TO_SIGMA * filled(st["sensor_rel"], 0.0) * filled(st["abs_max"], 0.0)
        floor = np.fmax(floor, rel)
    den = np.maximum(MAD_TO_SIGMA * level, floor)
    spike_ratio = np.where(stats, np.asarray(st["spike_max"], float) / den, np.nan)
    spike = log_curve(spike_ratio, cfg.spike_ratio_lo, cfg.spike_ratio_hi, cfg.floor)
    out["spike"] = spike
    reason = np.full(n, "", dtype=object)
    spike_us = as_us(st["spike_ts"])
    for i in np.flatnonzero(spike < 1.0):
        reason[i] = (
            f"spike: {_f(st['spike_max'][i], unit[i])} excursion that came back at "
            f"{ts_of(spike_us[i]):%H:%M:%S}, {spike_ratio[i]:.0f}× the noise level"
        )
    out["spike_reason"] = reason

    enough_early = filled(st["n_sigma_early"], 0) >= 3
    enough_recent = filled(st["n_sigma_recent"], 0) >= 2
    ratio_b, base_b = noise_ratio(
        sig_early, sig_recent, enough_early, enough_recent, scale, poll, cfg
    )
    # confirmed points also have the exact high-frequency noise (second differences):
    # a process that merely moves more (a load step, a control loop hunting slowly) has
    # a large bucket wiggle but small second differences — the smaller ratio wins
    e_sig_early = (
        np.asarray(st["e_early"], float) * E_TO_SIGMA if "e_early" in st else np.full(n, np.nan)
    )
    e_sig_recent = (
        np.asarray(st["e_recent"], float) * E_TO_SIGMA if "e_recent" in st else np.full(n, np.nan)
    )
    ratio_e, base_e = noise_ratio(
        e_sig_early, e_sig_recent, enough_early, enough_recent, scale, poll, cfg
    )
    has_e = ~np.isnan(e_sig_recent)
    use_e = has_e & (ratio_e < ratio_b)
    ratio = np.where(use_e, ratio_e, ratio_b)
    base = np.where(use_e, base_e, base_b)
    shown = np.where(use_e, e_sig_recent, sig_recent)
    ratio = np.where(stats, ratio, np.nan)
    noise = log_curve(ratio, cfg.noise_ratio_lo, cfg.noise_ratio_hi, cfg.floor)
    # a machine that stops or starts swings its readings once, and the recent buckets see
    # that as noise; with a state change of the machine (or a site-wide one) in that time,
    # it is the event
    eq = np.asarray(st["equipment"], object)
    tags = np.asarray(st["tag"], object)
    discrete = np.asarray(st["discrete"], bool)
    chg_us = as_us(st["last_change"])
    n_chg = filled(st["n_changes"], 0)
    recent_us = (poll * (cfg.recent_samples + cfg.bucket_samples) * 1e6).astype(np.int64)
    noise_event = corroborating_events(
        tags, eq, discrete, chg_us, n_chg, noise < 1.0, now_col, poll,
        cfg.event_min_equipment, tol_us=recent_us, states_only=True,
    )  # fmt: skip
    calm = noise_event != ""
    noise = np.where(calm, np.maximum(noise, cfg.event_rate_floor), noise)
    out["noise"] = noise
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(noise < 1.0):
        reason[i] = (
            f"noise: σ ≈ {_f(shown[i], unit[i])} recently vs {_f(base[i], unit[i])} normal "
            f"({ratio[i]:.0f}×)"
        ) + (f", with {noise_event[i]} in that time: an equipment event" if calm[i] else "")
    out["noise_reason"] = reason

    # ---- rate of change -------------------------------------------------------------
    onoff = np.asarray(st["onoff"], bool)
    rate_obs = np.where(
        onoff, np.asarray(st["rate_max_nz"], float), np.asarray(st["rate_max"], float)
    )
    rate_us = np.where(onoff, as_us(st["rate_ts_nz"]), as_us(st["rate_ts"]))
    max_rate = np.asarray(st["max_rate"], float)
    # physics bounds the process; the sensor's own noise (up to ~6 σ between two samples)
    # comes on top of it
    allowed = max_rate + 6.0 * level / poll
    ratio = rate_obs / allowed
    viol = np.isfinite(ratio) & (ratio > 1.0)
    t = np.clip((np.nan_to_num(ratio) - 1.0) / (cfg.rate_ratio_hi - 1.0), 0.0, 1.0)
    rate = np.where(viol, 0.75 - (0.75 - cfg.floor) * t, 1.0)
    # a spike explains the jumps into and out of it: report the spike, not the rate
    gap = np.abs(seconds_between(rate_us, as_us(st["spike_ts"])))
    explained = viol & (spike < 1.0) & (gap <= 1.5 * poll)
    rate = np.where(explained, np.maximum(rate, spike), rate)
    # so does noise: a jump within 4 σ of the recent noise is the noise, not the process
    noisy = viol & (noise < 1.0) & (rate_obs * poll <= 4.0 * np.nan_to_num(sig_recent))
    rate = np.where(noisy, np.maximum(rate, noise), rate)
    witness = corroborating_events(
        tags, eq, discrete, chg_us, n_chg, viol & ~explained, rate_us, poll,
        cfg.event_min_equipment,
    )  # fmt: skip
    event = witness != ""
    rate = np.where(event, np.maximum(rate, cfg.event_rate_floor), rate)
    out["rate"] = rate
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(viol & event):
        reason[i] = (
            f"rate: {_f(rate_obs[i], unit[i] + '/s')} at {ts_of(rate_us[i]):%H:%M:%S} "
            f"beyond the point's {_f(max_rate[i], unit[i] + '/s')}, together with {witness[i]}: "
            "an equipment event, not the sensor"
        )
    for i in np.flatnonzero(viol & ~event):
        reason[i] = (
            f"rate: jumped {_f(rate_obs[i], unit[i] + '/s')} at {ts_of(rate_us[i]):%H:%M:%S}, "
            f"faster than physics allows ({_f(max_rate[i], unit[i] + '/s')}"
            + (
                f" + noise: {_f(allowed[i], unit[i] + '/s')})"
                if allowed[i] > 1.01 * max_rate[i]
                else ")"
            )
        )
    out["rate_reason"] = reason
    return out


def corroborating_events(
    tag: np.ndarray,
    equipment: np.ndarray,
    discrete: np.ndarray,
    last_change_us: np.ndarray,
    n_changes: np.ndarray,
    jumped: np.ndarray,
    jump_us: np.ndarray,
    poll: np.ndarray,
    min_equipment: int,
    *,
    tol_us: np.ndarray | None = None,
    states_only: bool = False,
) -> np.ndarray:
    """For each point that ``jumped`` faster than its rate limit, what else moved at the same
    moment ("" when nothing did): a state change (running, on battery…) of its own equipment,
    a jump of another sensor of its equipment, or state changes / jumps on at least
    ``min_equipment`` other machines (a site-wide event such as a utility loss).

    A failing sensor is alone in its jump; a machine that trips or loses power moves its
    power, flow, speed and temperatures together and flips its status. "The same moment" is
    within two polls of either point (at least 3 s), or ``tol_us`` of the point when given;
    ``states_only`` counts state changes only (not other points' jumps)."""
    out = np.full(len(jumped), "", dtype=object)
    rows = np.flatnonzero(jumped)
    if len(rows) == 0:
        return out
    changed = discrete & (n_changes > 0) & (last_change_us != _NAT)
    movers = np.flatnonzero(changed if states_only else changed | jumped)
    if len(movers) == 0:
        return out
    when = np.where(changed[movers], last_change_us[movers], jump_us[movers])
    m_eq, m_poll, m_state = equipment[movers], poll[movers], changed[movers]
    for i in rows:
        tol = (
            np.maximum(np.maximum(2.0 * poll[i], 2.0 * m_poll), 3.0) * 1e6
            if tol_us is None
            else float(tol_us[i])
        )
        near = (np.abs(when - jump_us[i]) <= tol) & (movers != i)
        if not near.any():
            continue
        own = near & (m_eq == equipment[i])
        if own.any():
            j = np.flatnonzero(own & m_state)
            k = j[0] if len(j) else np.flatnonzero(own)[0]
            what = "a state change of" if m_state[k] else "a jump of"
            out[i] = f"{what} {tag[movers[k]]}"
            continue
        others = set(m_eq[near].tolist()) - {equipment[i]}
        if len(others) >= min_equipment:
            names = ", ".join(sorted(str(e) for e in others)[:4])
            out[i] = f"a site-wide event ({len(others)} machines moved: {names})"
    return out


def noise_ratio(
    sig_early: np.ndarray,
    sig_recent: np.ndarray,
    enough_early: np.ndarray,
    enough_recent: np.ndarray,
    scale: np.ndarray,
    poll: np.ndarray,
    cfg: QualityConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(noise ratio, normal level): recent σ over the earlier σ (floored at a fraction of the
    span), or overall σ over ``noise_abs_frac`` of the span scaled so that that much is the
    threshold — the absolute part only for densely polled points, where sample-to-sample
    variation is sensor noise rather than the process itself."""
    base = np.maximum(
        np.where(enough_early, np.nan_to_num(sig_early), 0.0), cfg.noise_floor_frac * scale
    )
    r_rel = np.where(enough_recent & enough_early, np.nan_to_num(sig_recent) / base, 0.0)
    level = np.nan_to_num(np.fmax(sig_early, sig_recent))
    dense = poll <= cfg.noise_abs_max_poll_s
    r_abs = np.where(dense, level / (cfg.noise_abs_frac * scale) * cfg.noise_ratio_lo, 0.0)
    return np.fmax(r_rel, r_abs), base


def _max_excluding_self(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each row, the max of ``values`` over the other rows of its group (int64 min if none)."""
    codes, uniq = pd.factorize(groups, use_na_sentinel=False)
    m = len(uniq)
    lowest = np.iinfo(np.int64).min
    v = np.asarray(values, dtype=np.int64)
    top = np.full(m, lowest, np.int64)
    np.maximum.at(top, codes, v)
    top_row = top[codes]
    is_top = v == top_row
    n_top = np.bincount(codes[is_top], minlength=m)[codes]
    second = np.full(m, lowest, np.int64)
    np.maximum.at(second, codes[~is_top], v[~is_top])
    return np.where(is_top & (n_top == 1), second[codes], top_row).astype(np.int64)
