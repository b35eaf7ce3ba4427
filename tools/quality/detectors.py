"""Detectors on the incremental state: stuck against the sensor's noise, flapping states,
insufficient history (pure, vectorised over points; reasons only for the few that fail).

* **stuck** — a run of ``k`` exactly identical readings from a sensor of noise σ and
  resolution q happens by chance with probability at most ``p_same^k``, where ``p_same``
  is the chance that a reading of a constant quantity stays in its resolution step when
  the quantity sits mid-step: ``erf(q / (2√2 σ))``. The point is stuck once ``p_same^k``
  drops below ``stuck_alpha``. σ is the sensor's datasheet noise (``sensor:`` in the site
  file) or, when lower, the noise it showed before the run began; q the coarser of the
  datasheet resolution, the register's integer step and float32's step at that value.
  A sensor that repeats a reading more often than ``stuck_max_p_same`` (coarse steps,
  a quiet process) is left to the peer-based flat-line check.
* **flapping** — a discrete point changing state more often than the equipment can: one
  change per ``dwell_s`` of its class (compressor anti-short-cycle, alarm hold) plus slack.
* **history** — a point with less than ``min_history_s`` of data in the window cannot be
  judged stuck or drifting yet: its score is capped at ``history_cap`` (level 2 by
  default: an operator decides) with the reason "insufficient history".
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from tools.quality.config import QualityConfig
from tools.quality.subscores import (
    Columns,
    as_us,
    columns,
    filled,
    nrows,
    seconds_between,
    ts_of,
)

FLOAT32_EPS = 2.0**-23


def p_same(sigma: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Probability that a reading repeats the previous one when the quantity holds still,
    for the worst place of the true value — the middle of a resolution step, where the
    noise must carry the reading half a step: ``P(|n| < q/2) = erf(q / (2√2 σ))``
    (conservative: consecutive repeats are then independent of where the value sits)."""
    sigma = np.asarray(sigma, float)
    q = np.asarray(q, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, q / (2.0 * np.sqrt(2.0) * sigma), np.inf)
    erf = np.vectorize(math.erf, otypes=[float])(np.minimum(np.nan_to_num(z, nan=np.inf), 50.0))
    return np.clip(erf, 0.0, 1.0)


def stuck(st: pd.DataFrame | Columns, cfg: QualityConfig) -> tuple[np.ndarray, np.ndarray]:
    """(score, reason) of the noise-based stuck test per point (``st`` a frame or its
    :func:`~tools.quality.subscores.columns`)."""
    st = columns(st)
    n = nrows(st)
    run_n = filled(st["run_n"], 0)
    last = np.asarray(st["last_value"], float)
    spec = np.asarray(st["sensor_sigma"], float) + np.asarray(st["sensor_rel"], float) * np.abs(
        np.nan_to_num(last)
    )
    seen = np.where(
        filled(st["n_sigma_before"], 0) >= 3,
        np.asarray(st["sigma_before"], float),
        np.nan,
    )
    sigma = np.fmin(spec, seen)  # NaN-aware: whichever is known, the smaller if both
    q = np.fmax(np.asarray(st["resolution"], float), FLOAT32_EPS * np.abs(np.nan_to_num(last)))
    p = p_same(np.nan_to_num(sigma), q)
    with np.errstate(divide="ignore"):
        k_need = np.ceil(np.log(cfg.stuck_alpha) / np.log(np.maximum(p, 1e-300)))
    k_need = np.maximum(k_need, cfg.stuck_min_samples)
    lo, hi = np.asarray(st["lo"], float), np.asarray(st["hi"], float)
    clamped = (last <= lo) | (last >= hi)
    zero_off = np.asarray(st["onoff"], bool) & (last == 0.0)
    cand = (
        np.asarray(st["stats"], bool)
        & ~np.isnan(sigma)
        & (p <= cfg.stuck_max_p_same)
        & (run_n >= k_need)
        & ~clamped
        & ~zero_off
    )
    # 0.75 at the threshold, down to `stuck_floor` (level 1 by default: a person checks the
    # sensor and decides) at 4× the run
    t = np.clip((run_n - k_need) / np.maximum(3.0 * k_need, 1.0), 0.0, 1.0)
    score = np.where(cand, 0.75 - (0.75 - cfg.stuck_floor) * t, 1.0)
    reason = np.full(n, "", dtype=object)
    unit = np.asarray(st["unit"]).astype(str)
    since = as_us(st["run_since"])
    for i in np.flatnonzero(cand):
        reason[i] = (
            f"stuck: {run_n[i]:.0f} identical readings of {last[i]:.6g} {unit[i]} since "
            f"{ts_of(since[i]):%H:%M:%S}; a sensor with noise σ ≈ {sigma[i]:.2g} {unit[i]} and "
            f"resolution {q[i]:.2g} repeats a reading with p ≈ {p[i]:.2g} "
            f"(≥ {k_need[i]:.0f} in a row is not chance)"
        )
    return score, reason


def flapping(
    st: pd.DataFrame | Columns, window: timedelta, cfg: QualityConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(score, reason): state changes of discrete points against what the equipment can do."""
    st = columns(st)
    n = nrows(st)
    disc = np.asarray(st["discrete"], bool) & ~np.asarray(st["writable"], bool)
    changes = filled(st["n_changes"], 0)
    span = np.nan_to_num(seconds_between(as_us(st["last_good"]), as_us(st["first_good"])))
    span = np.minimum(span, window.total_seconds())
    dwell = np.asarray(st["dwell_s"], float)
    allowed = cfg.flap_slack + span / dwell
    ratio = np.where(disc, changes / np.maximum(allowed, 1.0), 0.0)
    bad = ratio > 1.0
    t = np.clip(np.log(np.maximum(ratio, 1.0)) / np.log(cfg.flap_ratio_hi), 0.0, 1.0)
    score = np.where(bad, 0.75 - (0.75 - cfg.floor) * t, 1.0)
    reason = np.full(n, "", dtype=object)
    tags = np.asarray(st["tag"])
    for i in np.flatnonzero(bad):
        reason[i] = (
            f"flapping: {changes[i]:.0f} state changes in {span[i]:.0f} s; "
            f"{tags[i].split('.')[0]} cannot change state more than once per "
            f"{dwell[i]:.0f} s (a loose contact, a dropout served as 0, or a failing input)"
        )
    return score, reason


def history(
    st: pd.DataFrame | Columns, now: datetime, window: timedelta, cfg: QualityConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(cap, reason): too little data in the window to judge stuck or drift yet."""
    st = columns(st)
    n = nrows(st)
    now_us = np.full(n, int(pd.Timestamp(now).value // 1000), np.int64)
    have = seconds_between(now_us, as_us(st["first_ts"]))
    need = min(cfg.min_history_s, window.total_seconds())
    n_good = filled(st["n_good"], 0)
    short = ~np.isnan(have) & ((have < need) | (n_good < cfg.min_history_samples))
    short &= n_good > 0  # no reading at all is "no readings", not this
    short &= ~np.asarray(st["writable"], bool)  # a setpoint has nothing to judge over time
    score = np.where(short, cfg.history_cap, 1.0)
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(short):
        reason[i] = (
            f"insufficient history: {have[i]:.0f} s / {n_good[i]:.0f} good readings in the "
            f"window, {need:.0f} s needed to judge stuck or drift"
        )
    return score, reason
