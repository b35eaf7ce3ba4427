"""Tunable constants of the data-quality checks, and which checks apply to which point.

Everything the checks compare against lives here, as data, so a site can tighten
or relax them without touching the SQL. Units: samples are counted in the
point's poll interval, fractions are of the point's physical span
(``max - min`` from the site file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.site import Point, Site

# Values devices and gateways serve when they have no reading (raw register markers,
# float32 max). A point whose declared physical range includes one keeps it as a value.
SENTINELS: tuple[float, ...] = (65535.0, -32768.0, 32767.0, -2147483648.0, -9999.0)
FLOAT32_MAX_ISH = 3.0e38  # |value| ≥ this is the float32 "no value" marker 3.4e38
DENORMAL = 1e-30  # 0 < |value| < this: a denormal float (e.g. 1.68e-45 = one ulp of float32)

# Units of discrete values: no flat-line/noise/spike statistics on them.
DISCRETE_UNITS = frozenset({"bool", "code", "count", "zone", "level", "state", "enum"})
# Brick classes of things that legitimately hold still (commands, setpoints, states).
STILL_BRICK_WORDS = ("Setpoint", "Command", "Status", "Alarm", "Limit", "Mode", "Override")
# Shortest credible time between two state changes of a discrete point, by Brick word
# (compressor anti-short-cycle timers are 5–15 min; a pump or fan is not cycled faster
# than every few minutes; an alarm or status may legitimately toggle within a minute).
DWELL_S: tuple[tuple[str, float], ...] = (
    ("Run_Status", 120.0), ("On_Status", 120.0), ("Enable", 120.0), ("Alarm", 30.0),
    ("Fault", 30.0), ("Status", 30.0),
)  # fmt: skip
DEFAULT_DWELL_S = 30.0

# On/off quantities: a jump to or from exactly 0 is a start/stop, not a rate violation.
ONOFF_BRICK_WORDS = ("Power", "Flow", "Current", "Speed", "Load", "Energy")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the per-point checks (see :mod:`tools.quality.subscores` for the curves)."""

    # freshness: newest good reading older than `fresh_polls` polls starts to cost,
    # `stale_step` per extra poll (6 polls → below 0.8).
    fresh_polls: float = 3.0
    stale_step: float = 0.1
    # the running state keeps statistics per bucket of this many polls (tools.quality.tracker)
    bucket_samples: int = 20
    screen: bool = True  # no effect any more: the incremental state sees every sample once
    # completeness: over the window and over the last `recent_samples` polls
    recent_samples: int = 60
    completeness_slope: float = 2.0  # score = 1 - slope * missing share
    # range: any bad value caps the score; the bad share drives it further down
    range_cap: float = 0.9
    range_slope_window: float = 2.0
    range_slope_recent: float = 3.0
    # flat-line: exactly unchanged for `flat_samples` polls after moving earlier in the
    # window, while another point of the same equipment moved
    flat_samples: int = 60
    flat_min_changes: int = 30  # a live signal for at least this many samples first
    flat_min_change_share: float = 0.5  # of samples before the freeze that changed value
    flat_rel_tol: float = 1e-9
    # spikes: an excursion that comes back, `spike_ratio_lo`..`hi` × the noise level
    spike_ratio_lo: float = 10.0
    spike_ratio_hi: float = 50.0
    spike_floor_frac: float = 0.005  # noise level never below 0.5 % of span
    # noise: recent robust noise vs earlier in the window (or the floor)
    noise_ratio_lo: float = 3.0
    noise_ratio_hi: float = 10.0
    noise_floor_frac: float = 0.001
    noise_abs_frac: float = 0.02  # noise σ above 2 % of span is too much whatever the past
    noise_abs_max_poll_s: float = 60.0  # …judged only for points polled at least this often
    # rate: observed |Δ|/Δt over max_rate
    rate_ratio_hi: float = 5.0
    # a jump that other sensors corroborate at the same moment (a state change of its
    # equipment, jumps of its equipment's other sensors, or a site-wide event across
    # ≥ event_min_equipment machines) is the process, not the sensor: floored here
    event_rate_floor: float = 0.95
    event_min_equipment: int = 2
    # physics: share of checked time buckets violated, over the window and recently
    physics_bucket_s: float = 20.0
    physics_recent_buckets: int = 6
    physics_window_share: float = 0.2
    physics_recent_share: float = 0.5
    # stuck against the sensor's own noise: an unchanged run of readings less likely than
    # `stuck_alpha` for a sensor of that noise and resolution (at least `stuck_min_samples`)
    stuck_alpha: float = 1e-9
    stuck_min_samples: int = 8
    stuck_max_p_same: float = 0.8  # a sensor this likely to repeat a reading is not judged
    stuck_floor: float = 0.55
    # flapping: state changes of a discrete point beyond what the equipment can do — at most
    # one per `dwell_s` of its class (see DWELL_S), plus `flap_slack`
    flap_slack: int = 3
    flap_ratio_hi: float = 4.0
    # history: a point with less than this much data in the window is capped
    min_history_s: float = 180.0
    min_history_samples: int = 3
    history_cap: float = 0.9  # level 2 with the default thresholds: ask, never act alone
    # sub-score floor reached at the "hi" end of each curve
    floor: float = 0.3


DEFAULT_CONFIG = QualityConfig()


def point_table(site: Site, tag_ids: dict[str, int], tags: list[str] | None = None) -> pd.DataFrame:
    """One row per scored point: ids, limits and which statistical checks apply.

    ``tag_ids`` is the store's catalogue; a site point missing from it gets
    ``point_id`` −1 (it has no readings and will score 0 with "no readings").
    """
    rows = []
    sensor_rows: list[tuple[float, float, float, float]] = []
    wanted = set(tags) if tags is not None else None
    # (brick, unit, writable) → (stats, flat_check, onoff): a site has few distinct classes
    flags: dict[tuple[str, str, bool], tuple[bool, bool, bool]] = {}
    for eq in site.equipment:
        eq_id, kind = eq.id, eq.kind.value
        for p in eq.points:
            t = f"{eq_id}.{p.name}"
            if wanted is not None and t not in wanted:
                continue
            brick = p.brick or ""
            writable = p.writable
            key = (brick, p.unit, writable)
            f = flags.get(key)
            if f is None:
                discrete = p.unit in DISCRETE_UNITS
                still = writable or any(w in brick for w in STILL_BRICK_WORDS)
                f = flags[key] = (
                    not discrete and not still,  # statistics (spike/noise) apply to measurements
                    not discrete and not still and (brick == "" or brick.endswith("Sensor")),
                    any(w in brick for w in ONOFF_BRICK_WORDS),
                )
            sensor_rows.append(_sensor_row(site, t, p))
            rows.append(
                (
                    tag_ids.get(t, -1),
                    t,
                    eq_id,
                    kind,
                    p.name,
                    p.unit,
                    brick,
                    -np.inf if p.min is None else float(p.min),
                    np.inf if p.max is None else float(p.max),
                    np.nan if p.max_rate is None else float(p.max_rate),
                    float(p.poll_interval_s),
                    *f,
                    writable,
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
            "lo",
            "hi",
            "max_rate",
            "poll_s",
            "stats",
            "flat_check",
            "onoff",
            "writable",
        ],
    )
    sens = np.asarray(sensor_rows, float).reshape(-1, 4)
    df["sensor_sigma"], df["sensor_rel"], df["resolution"], df["dwell_s"] = sens.T
    df["discrete"] = df["unit"].isin(DISCRETE_UNITS).to_numpy(bool)
    # spike unit from the instrument: 1.48 σ, at least two resolution steps (NaN: unknown)
    df["spike_floor"] = np.where(
        np.isnan(df["sensor_sigma"]),
        np.nan,
        np.maximum(1.4826 * df["sensor_sigma"].fillna(0.0), 2.0 * df["resolution"]),
    )
    lo, hi = df["lo"].to_numpy(float), df["hi"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        width = hi - lo
    df.insert(9, "span", np.where(np.isfinite(width) & (hi > lo), width, np.nan))
    if wanted is not None:
        unknown = sorted(wanted - set(df["tag"]))
        if unknown:
            raise KeyError(f"unknown point(s) {unknown[:5]} in site {site.name}")
    return df


_INT_TYPES = ("int16", "uint16", "int32", "uint32")


def _sensor_row(site: Site, tag: str, p: Point) -> tuple[float, float, float, float]:
    """(noise σ, relative σ, resolution, dwell) of a point: its instrument spec (NaN σ when
    unknown), the coarser of the spec's resolution and the register's integer step, and the
    shortest credible time between state changes (discrete points)."""
    spec = site.sensor(tag)
    sig = np.nan if spec is None else spec.noise
    rel = 0.0 if spec is None else spec.noise_rel
    res = 0.0 if spec is None else spec.resolution
    src = p.source
    if src.data_type.value in _INT_TYPES:
        res = max(res, abs(src.scale))
    brick = p.brick or ""
    dwell = next((d for w, d in DWELL_S if w in brick), DEFAULT_DWELL_S)
    return (sig, rel, res, dwell)
