"""Data-quality scoring: 10,000 points, a 15-minute window at 1 s (9 M rows) in a real DuckDB file.

The plant (generated through Arrow, not timed): chillers whose temperatures, flows, load
and power obey the heat balance and hold their supply setpoint, pumps on the affinity
laws, UPSs (input = output + losses, load %), and plain CRAH temperature sensors. Every
analog reading carries the noise and resolution of its instrument (the site's
``sensor_defaults``: RTD 0.02 K σ at 0.01 K resolution, meters 0.2 % σ), so the
generator and the site file describe the same instruments — the detectors never see
the fault generator's numbers.

Faults, 20 points each, at most one per equipment (isolation assumes a single fault per
equipment), magnitudes drawn from stated ranges (seeded):

==========  ==================================================================
stuck        frozen at its reading for the last 60–300 s
spike        3–8 excursions of 2–10 % of span, random sign
dropout      NaN readings with probability 0.1–0.5
denormal     1–5 readings of 1.68e-45
drift        from 10 min before the end, 1–2 × (10 % of span per 10 min)
bias         a step of 10–15 % of span appearing 3–10 min before the end
flapping     a run status toggling every 2–20 s for the last 3–10 min
==========  ==================================================================

Drift and bias victims are drawn from the sensors the site's relations can *isolate*
(structurally: every other member of the relations it sits in is also in a relation
without it) — a drift on a sensor no relation ties to another cannot be seen in one
window, by design; the count of isolable sensors is reported.

Timing: the state is built from the first 15 min (``cold_s``: a cold start, every row
read once), then ``--cycles`` agent cycles at ``--cycle-s`` steps each read the new rows
from DuckDB, fold them in and report every point over the 15-min window (9 M rows
in it): ``seconds`` is the best cycle, ``cycles_s`` all of them. The CPU time of the
best cycle and the 1-minute load average are reported because the 2-core machine is
shared. ``caught`` counts injected faults whose point scored below 0.95 at the last
cycle; ``other_flagged`` counts healthy points that did.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from connectors.site import Site, parse_site
from connectors.store import READINGS_SCHEMA, Store
from tools.quality.residuals import DEFAULT_RELATIONS, instances
from tools.quality.scorer import IncrementalScorer

START = datetime(2026, 1, 1)
SENSORS = {
    "degC": {"noise": 0.02, "resolution": 0.01},
    "kW": {"noise_rel": 0.002},
    "L/s": {"noise_rel": 0.002},
    "%": {"noise": 0.05},
}

# kind → [(name, unit, brick, min, max, max_rate, table)]
_CHILLER = [
    ("chw_supply_temp", "degC", "Leaving_Chilled_Water_Temperature_Sensor", 0, 30, 0.5),
    ("chw_return_temp", "degC", "Entering_Chilled_Water_Temperature_Sensor", 0, 40, 0.5),
    ("cw_entering_temp", "degC", "Entering_Condenser_Water_Temperature_Sensor", 0, 50, 0.5),
    ("cw_leaving_temp", "degC", "Leaving_Condenser_Water_Temperature_Sensor", 0, 60, 0.5),
    ("chw_flow", "L/s", "Chilled_Water_Flow_Sensor", 0, 60, 10),
    ("cw_flow", "L/s", "Condenser_Water_Flow_Sensor", 0, 70, 10),
    ("power", "kW", "Electric_Power_Sensor", 0, 250, 50),
    ("load", "%", "Load_Sensor", 0, 120, 10),
    ("running", "bool", "Run_Status", 0, 1, None),
    ("chw_supply_setpoint", "degC", "Chilled_Water_Supply_Temperature_Setpoint", 4, 18, None),
]
_PUMP = [
    ("flow", "L/s", "Chilled_Water_Flow_Sensor", 0, 100, 10),
    ("speed", "%", "Speed_Sensor", 0, 100, 10),
    ("running", "bool", "Run_Status", 0, 1, None),
    ("power", "kW", "Electric_Power_Sensor", 0, 60, 10),
]
_UPS = [
    ("input_power", "kW", "Electric_Power_Sensor", 0, 2000, 300),
    ("output_power", "kW", "Electric_Power_Sensor", 0, 1600, 300),
    ("load_pct", "%", "Load_Sensor", 0, 120, 30),
]
_CRAH = [(f"temp_{i}", "degC", "Air_Temperature_Sensor", 0, 60, 1.0) for i in range(10)]
FAULTS = ("stuck", "spike", "dropout", "denormal", "drift", "bias", "flapping")
PER_FAULT = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", type=int, default=10_000, help="points in the synthetic site")
    p.add_argument("--seconds", type=int, default=900, help="window length at 1 s")
    p.add_argument("--cycles", type=int, default=6, help="timed agent cycles after the window")
    p.add_argument("--cycle-s", type=int, default=10, help="seconds of new readings per cycle")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--db", type=Path, default=None, help="keep the DuckDB file here")


def build_site(n_points: int) -> Site:
    """About ``n_points`` points: 25 % chillers, 10 % pumps, 5 % UPS, the rest 10-sensor CRAHs."""
    plan: list[tuple[str, list[tuple[Any, ...]], float]] = [
        ("chiller", _CHILLER, 0.25),
        ("pump", _PUMP, 0.10),
        ("ups", _UPS, 0.05),
    ]
    equipment: list[dict[str, Any]] = []
    total = 0
    for kind, pts, share in plan:
        for i in range(max(1, int(n_points * share) // len(pts))):
            equipment.append(_eq(f"{kind}_{i}", kind, pts, len(equipment)))
            total += len(pts)
    i = 0
    while total < n_points:
        take = _CRAH[: min(len(_CRAH), n_points - total)]
        equipment.append(_eq(f"crah_{i}", "crah", take, len(equipment)))
        total += len(take)
        i += 1
    data = {"name": "bench", "sensor_defaults": SENSORS, "equipment": equipment}
    return parse_site(data, "<bench>")


def _eq(eq_id: str, kind: str, pts: list[tuple[Any, ...]], n: int) -> dict[str, Any]:
    """One equipment on its own Modbus device (port 5020 + n // 250, id n % 250 + 1)."""
    points = []
    for j, (name, unit, brick, lo, hi, rate) in enumerate(pts):
        sp = "Setpoint" in brick
        p: dict[str, Any] = {
            "name": name, "unit": unit, "brick": brick, "min": lo, "max": hi,
            "source": {"port": 5020 + n // 250, "device_id": n % 250 + 1,
                       "table": "holding" if sp else "input", "address": 2 * j,
                       "data_type": "float32"},
        }  # fmt: skip
        if sp:
            p["write"] = {"min": lo, "max": hi}
        if rate is not None:
            p["max_rate"] = rate
        points.append(p)
    return {"id": eq_id, "kind": kind, "points": points}


def _values(site: Site, seconds: int, rng: np.random.Generator) -> np.ndarray:
    """(seconds, points) matrix of healthy, physically consistent values with sensor noise."""
    t = np.arange(seconds, dtype=float)
    cols: list[np.ndarray] = []
    for eq in site.equipment:
        phase = rng.uniform(0, 2 * np.pi)
        load = 0.6 + 0.1 * np.sin(2 * np.pi * t / 1800.0 + phase)
        k = eq.kind.value
        if k == "chiller":
            q = 700.0 * load
            sp = 7.0 + 0 * t
            sup = sp + 0.05 * np.sin(2 * np.pi * t / 600.0 + phase)
            flow = 30.0 + 0 * t
            ret = sup + q / (flow * 4.19)
            pw = q / (5.5 - 0.2 * np.sin(2 * np.pi * t / 3600.0 + phase))
            cw_in = 26.0 + 0.3 * np.sin(2 * np.pi * t / 1200.0 + phase)
            cw_out = cw_in + (q + pw) / (36.0 * 4.19)
            base = [sup, ret, cw_in, cw_out, flow, 36.0 + 0 * t, pw, q / 7.0, 1.0 + 0 * t, sp]
        elif k == "pump":
            speed = 80.0 * load / 0.6
            base = [60.0 * speed / 80.0, speed, 1.0 + 0 * t, 30.0 * (speed / 80.0) ** 3]
        elif k == "ups":
            out = 600.0 * load / 0.6
            base = [out / 0.95, out, out / 1500.0 * 100.0]
        else:
            base = [22.0 + 3 * load + j * 0.5 for j in range(len(eq.points))]
        for b, p in zip(base, eq.points, strict=False):
            tag = f"{eq.id}.{p.name}"
            cols.append(_measure(site, tag, np.broadcast_to(b, (seconds,)).astype(float), rng))
    return np.column_stack(cols)


def _measure(site: Site, tag: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the instrument reads: + its noise, rounded to its resolution."""
    spec = site.sensor(tag)
    if spec is None:
        return x
    y = x + rng.normal(0.0, 1.0, len(x)) * (spec.noise + spec.noise_rel * np.abs(x))
    if spec.resolution > 0:
        y = np.round(y / spec.resolution) * spec.resolution
    return y


def isolable(site: Site, tag_ids: dict[str, int]) -> set[str]:
    """Sensors the site's balance relations can single out (structural, no data): every other
    member of every relation it sits in is also in some relation without it."""
    from tools.quality.config import point_table

    pts = point_table(site, tag_ids)
    tags = pts["tag"].tolist()
    insts = instances(pts, DEFAULT_RELATIONS)
    sets = []
    for inst in insts:
        roles = {r.name: r for r in inst.rel.roles}
        sets.append({tags[i] for n, rows in inst.roles.items() if roles[n].involved for i in rows})
    out = set()
    for t in {x for s in sets for x in s}:
        mine = [s for s in sets if t in s]
        others = set().union(*(s for s in sets if t not in s))
        partners = set().union(*mine) - {t}
        # single-fault reasoning: relations with t break, relations without t hold and
        # vouch for their members; t is singled out when every partner is vouched for, or
        # when it alone sits in all of its broken relations
        common = set.intersection(*mine) - others
        if partners <= others or common == {t}:
            out.add(t)
    return out


def _inject(
    v: np.ndarray,
    site: Site,
    tags: list[str],
    iso: set[str],
    rng: np.random.Generator,
    window: int,
) -> dict[int, str]:
    """Give PER_FAULT points each fault in place, inside the last ``window`` samples (the
    window the last cycle scores); returns {column: fault}."""
    n_t, _ = v.shape
    first = max(0, n_t - window)
    pts = [site.point(t) for t in tags]
    analog = [j for j, p in enumerate(pts) if p.unit != "bool" and not p.writable]
    bools = [j for j, p in enumerate(pts) if p.unit == "bool"]
    iso_cols = [j for j in analog if tags[j] in iso]
    taken: set[str] = set()  # one fault per equipment: single-fault isolation is the premise

    def pick(pool: list[int]) -> list[int]:
        free = [j for j in pool if tags[j].split(".")[0] not in taken]
        out = [int(j) for j in rng.choice(free, size=PER_FAULT, replace=False)]
        free_eq = {tags[j].split(".")[0] for j in out}
        if len(free_eq) < len(out):  # two in one equipment: draw again, one each
            out, seen = [], set()
            for j in rng.permutation(free):
                e = tags[int(j)].split(".")[0]
                if e not in seen:
                    out.append(int(j))
                    seen.add(e)
                if len(out) == PER_FAULT:
                    break
        taken.update(tags[j].split(".")[0] for j in out)
        return out

    out: dict[int, str] = {}
    for kind in FAULTS:
        pool = iso_cols if kind in ("drift", "bias") else bools if kind == "flapping" else analog
        for j in pick(pool):
            p = pts[j]
            span = float((p.max or 0.0) - (p.min or 0.0))
            if kind == "stuck":
                k = int(rng.uniform(60, 300))
                v[-k:, j] = v[-k - 1, j]
            elif kind == "spike":
                at = first + rng.choice(n_t - first, int(rng.integers(3, 9)), replace=False)
                v[at, j] += rng.uniform(0.02, 0.10, len(at)) * span * rng.choice([-1, 1], len(at))
            elif kind == "dropout":
                miss = np.asarray(rng.random(n_t - first) < rng.uniform(0.1, 0.5))
                v[first:, j][miss] = np.nan
            elif kind == "denormal":
                at = first + rng.choice(n_t - first, int(rng.integers(1, 6)), replace=False)
                v[at, j] = 1.68e-45
            elif kind == "drift":
                rate = rng.uniform(1.0, 2.0) * 0.10 * span / 600.0
                v[-600:, j] += rate * np.arange(1, 601) * rng.choice([-1, 1])
            elif kind == "bias":
                k = int(rng.uniform(180, 600))
                v[-k:, j] += rng.uniform(0.10, 0.15) * span * rng.choice([-1, 1])
            else:  # flapping
                k, period = int(rng.uniform(180, 600)), int(rng.uniform(2, 21))
                state = (np.arange(k) // period) % 2
                v[-k:, j] = np.where(state == 1, 1.0 - v[-k - 1, j], v[-k - 1, j])
            out[j] = kind
    return out


def write(
    store: Store, site: Site, seconds: int, seed: int = 0, window: int = 900
) -> tuple[int, dict[int, str], int]:
    """Generate and append the readings (time-major, as a poller writes them)."""
    rng = np.random.default_rng(seed)
    ids = store.register_site(site)
    tags = list(site.point_ids)
    pid = np.asarray([ids[t] for t in tags], dtype=np.int32)
    v = _values(site, seconds, rng)
    iso = isolable(site, ids)
    faulty = _inject(v, site, tags, iso, rng, window)
    ts0 = np.datetime64(START, "us")
    rows = 0
    for lo in range(0, seconds, 60):
        hi = min(seconds, lo + 60)
        k = hi - lo
        ts = np.repeat(ts0 + np.arange(lo, hi).astype("timedelta64[s]"), len(pid))
        vals = v[lo:hi].reshape(-1)
        table = pa.Table.from_arrays(
            [
                pa.array(ts, type=pa.timestamp("us")),
                pa.array(np.tile(pid, k)),
                pa.array(vals),  # NaN stays a NaN value with status ok: a dropout
                pa.array(np.zeros(len(vals), np.uint8)),
            ],
            schema=READINGS_SCHEMA,
        )
        rows += store.append_arrow(table)
    return rows, faulty, len(iso)


def run(args: argparse.Namespace) -> dict[str, Any]:
    site = build_site(int(args.points))
    window_s, cycles, step = int(args.seconds), max(1, int(args.cycles)), int(args.cycle_s)
    total_s = window_s + cycles * step
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "quality-bench.duckdb"
        if path.exists():
            path.unlink()
        with Store(path) as store:
            t0 = time.perf_counter()
            rows, faulty, n_iso = write(store, site, total_s, int(args.seed), window_s)
            gen_s = time.perf_counter() - t0
            store.con.execute("CHECKPOINT")
            window = timedelta(seconds=window_s)
            sc = IncrementalScorer(store, site, window)
            t_warm = START + timedelta(seconds=window_s)
            t0 = time.perf_counter()
            sc.refresh(t_warm)
            sc.report(t_warm)
            cold_s = time.perf_counter() - t0
            times, cpu, in_window = [], [], []
            for c in range(1, cycles + 1):
                now = t_warm + timedelta(seconds=c * step)
                t0, c0 = time.perf_counter(), time.process_time()
                sc.refresh(now)
                rep = sc.report(now)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                n_win = store.con.execute(
                    "SELECT count(*) FROM readings WHERE ts > ? AND ts <= ?",
                    [now - window, now],
                ).fetchone()
                in_window.append(int(n_win[0]) if n_win else 0)
    low = rep.points["score"].to_numpy() < 0.95
    caught: dict[str, list[int]] = {f: [0, 0] for f in FAULTS}
    for j, f in faulty.items():
        caught[f][1] += 1
        caught[f][0] += int(low[j])
    false_alarms = int(low.sum()) - sum(c for c, _ in caught.values())
    best = int(np.argmin(times))
    return {
        "bench": "quality",
        "points": len(site.point_ids),
        "rows": rows,
        "rows_in_window": in_window[best],
        "seconds": round(times[best], 3),
        "cycles_s": [round(t, 3) for t in times],
        "cycle_s": step,
        "cpu_s": round(cpu[best], 3),  # all threads; > seconds means parallel
        "cold_s": round(cold_s, 3),  # state built from the whole window (a start)
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other processes competing for 2 cores
        "generate_s": round(gen_s, 2),
        "faulty_points": len(faulty),
        "isolable_sensors": n_iso,
        "flagged_points": int(low.sum()),
        "caught": {f: f"{c}/{n}" for f, (c, n) in caught.items()},
        "other_flagged": false_alarms,
        "target_s": 0.3,
    }
