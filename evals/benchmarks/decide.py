"""Decision cycle without LLM: a 10,000-point site, 200 policies; p50/p95 of one cycle.

The synthetic site has ``--equipment`` units of ``--points`` points each; the store
holds ``--history`` seconds of 1 Hz readings of every point. Policies mix point
conditions (some with hold times and hysteresis), scoped policies (one instance
per unit of a kind), derived values and quality conditions; about a tenth fire
each cycle. Each timed cycle is the whole graph (observe → … → report) with the
clock advanced one second, so the quality score is recomputed whenever its cache
(30 s) lapses — p95 includes those cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from connectors.clock import ManualClock
from connectors.site import Site, parse_site
from connectors.store import Store
from connectors.writer import RecordingWriter
from tools.policies import policies_from_dicts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--equipment", type=int, default=100, help="equipment in the synthetic site")
    p.add_argument("--points", type=int, default=100, help="points per equipment")
    p.add_argument("--policies", type=int, default=200, help="policies evaluated each cycle")
    p.add_argument("--cycles", type=int, default=60, help="timed decision cycles")
    p.add_argument("--history", type=int, default=60, help="seconds of 1 Hz history per point")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def synthetic_site(n_eq: int, n_pts: int) -> Site:
    kinds = ["crah", "pump", "pdu", "other"]
    eqs = []
    for e in range(n_eq):
        pts = [
            {
                "name": f"p{i}",
                "unit": "degC",
                "min": -50,
                "max": 150,
                "poll_interval_s": 1.0,
                "source": {
                    "host": "127.0.0.1",
                    "port": 5020,
                    "device_id": e % 250 + 1,
                    "table": "holding" if i == 0 else "input",
                    "address": (e // 250) * 2 * n_pts + 2 * i,
                    "data_type": "float32",
                },
                **(
                    {"write": {"min": 0, "max": 100, "max_step": 5, "min_interval_s": 60}}
                    if i == 0
                    else {}
                ),
            }
            for i in range(n_pts)
        ]
        eqs.append({"id": f"eq{e}", "kind": kinds[e % len(kinds)], "points": pts})
    return parse_site({"name": "bench", "autonomy_ceiling": 2, "equipment": eqs}, "bench")


def synthetic_policies(site: Site, n: int, rng: random.Random) -> list[dict[str, Any]]:
    tags = list(site.point_ids)
    out: list[dict[str, Any]] = []
    for k in range(n):
        r = k % 10
        if r == 0:  # scoped: one instance per crah
            out.append(
                {
                    "id": f"s{k}",
                    "description": "scoped",
                    "scope": {"kind": "crah"},
                    "when": {
                        "all": [
                            {
                                "point": f"p{rng.randrange(1, 50)}",
                                "op": ">",
                                "value": 95.0,
                                "hysteresis": 0.5,
                            }
                        ]
                    },
                    "then": {
                        "action": "write_setpoint",
                        "target": "p0",
                        "delta": -1,
                        "min": 0,
                        "max": 100,
                    },
                    "ceiling": 1,
                    "whatif": "none",
                }
            )
            continue
        conds: list[dict[str, Any]] = []
        for _ in range(rng.randint(2, 5)):
            t = rng.choice(tags)
            kind = rng.random()
            if kind < 0.7:
                conds.append(
                    {
                        "point": t,
                        "op": rng.choice([">", "<", ">=", "<="]),
                        "value": rng.uniform(10, 90),
                        "hysteresis": 0.5,
                        "for": rng.choice([0, 5, 30]),
                    }
                )
            elif kind < 0.85:
                conds.append(
                    {"point": t, "op": rng.choice(["outside", "inside"]), "value": [20.0, 80.0]}
                )
            elif kind < 0.95:
                conds.append({"quality": t, "op": "<", "value": 0.5})
            else:
                conds.append(
                    {
                        "derived": "const",
                        "args": {"value": rng.uniform(0, 1)},
                        "op": ">",
                        "value": 0.5,
                    }
                )
        mode = "any" if r in (1, 2) else "all"
        out.append(
            {
                "id": f"p{k}",
                "description": "bench",
                "severity": "low",
                "kind": "alarm",
                "when": {mode: conds},
                "cooldown": "1m",
                "then": {"action": "alarm", "message": "bench"},
                "ceiling": 1,
            }
        )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    site = synthetic_site(args.equipment, args.points)
    store = Store()
    store.register_site(site)
    t0 = datetime(2026, 1, 1, 12)
    n = len(site.point_ids)
    ids = np.asarray([store.point_id(t) for t in site.point_ids], np.int32)
    base = np.random.default_rng(args.seed).uniform(0, 100, n)
    steps = args.history + args.cycles + 1
    for s in range(steps):
        ts = np.full(n, np.datetime64(t0 + timedelta(seconds=s), "us"))
        store.append(
            ts, ids, base + np.random.default_rng(s).normal(0, 0.5, n), np.zeros(n, np.uint8)
        )
    clock = ManualClock(t0 + timedelta(seconds=args.history))
    try:
        from tools.quality import score  # type: ignore[attr-defined,unused-ignore]  # noqa: F401

        scorer = "tools.quality"
    except ImportError:
        scorer = "freshness"
    quality: Any = "auto"
    from agent.context import AgentContext
    from agent.runtime import decide_once

    ctx = AgentContext.build(
        site,
        store,
        RecordingWriter(site, clock, values=lambda _tag: 0.0),  # alarms only: nothing written
        clock,
        policies=policies_from_dicts(synthetic_policies(site, args.policies, rng), "bench"),
        approvals="record",
        quality=quality,
        whatif=None,
        optimise=None,
    )

    async def cycles() -> tuple[list[float], int]:
        times: list[float] = []
        fired = 0
        await decide_once(ctx, "eval")  # warm-up (first quality score, lazy imports)
        for _ in range(args.cycles):
            clock.advance(1.0)
            t = time.perf_counter()
            res = await decide_once(ctx, "eval")
            times.append((time.perf_counter() - t) * 1000)
            fired += len(res.decisions)
        return times, fired

    times, fired = asyncio.run(cycles())
    times.sort()
    return {
        "bench": "decide",
        "points": n,
        "policies": ctx.engine.n_policies,
        "instances": len(ctx.engine.c.instances),
        "atoms": ctx.engine.c.n_atoms,
        "cycles": len(times),
        "decisions": fired,
        "quality": scorer,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }
