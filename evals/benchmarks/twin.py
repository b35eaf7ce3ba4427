"""Twin offline speed: a simulated day at 10 s steps (target: a few seconds).

Prints ``{"bench": "twin", "sim_days": …, "wall_s_per_sim_day": …, "steps_per_s": …,
"values_per_s": …, "speedup": …}``: wall seconds per simulated day of physics and
native control, steps per wall second, and :meth:`Twin.values` calls per second.
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=float, default=1.0, help="simulated days (default 1)")
    p.add_argument("--dt", type=float, default=10.0, help="step in seconds (default 10)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from twin.sim import Twin

    twin = Twin(seed=1)
    steps = int(args.days * 86400 / args.dt)
    t0 = time.perf_counter()
    for _ in range(steps):
        twin.step(args.dt)
    wall = time.perf_counter() - t0
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        twin.step(args.dt)
        twin.values()
    with_values = time.perf_counter() - t0
    per_values = max(with_values - n * wall / steps, 1e-9) / n
    return {
        "bench": "twin",
        "sim_days": args.days,
        "dt_s": args.dt,
        "wall_s_per_sim_day": round(wall / args.days, 3),
        "steps_per_s": round(steps / wall, 1),
        "values_per_s": round(1.0 / per_values, 1),
        "speedup": round(args.days * 86400 / wall, 1),
        "ok": wall / args.days < 5.0,
    }
