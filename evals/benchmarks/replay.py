"""Replay speed: a recording through the real store and agent graph (open loop), × real time.

Default: a 14-hour synthetic RP-1043-like chiller at 10 s with a non-condensables fault
from 1 h, the agent deciding every 5 simulated minutes with the chiller FDD policies
(the shape of ``facility-agent import rp1043``). ``--rp1043 FILE --reference normal.xls``
replays a real RP-1043 file instead. Target ≥ 1,000× (a 14-hour file well under a minute).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", type=float, default=14.0, help="synthetic recording length")
    p.add_argument("--cycle", default="5m", help="agent decision cycle")
    p.add_argument("--rp1043", type=Path, default=None, help="a real RP-1043 .xls instead")
    p.add_argument("--reference", type=Path, default=None, help="fault-free .xls (with --rp1043)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from connectors.config import yaml_load
    from evals.runner import run_scenario
    from evals.shipped import chiller_scenario

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        root = Path(tmp)
        if args.rp1043 is not None:
            from evals.importers import import_rp1043

            ref = args.reference or args.rp1043.with_name("normal.xls")
            folder = import_rp1043(args.rp1043, ref, root / "scn", cycle=args.cycle)
        else:
            folder = chiller_scenario(
                root / "scn", "bench", "non_condensables", "replay benchmark", hours=args.hours
            )
            doc = yaml_load((folder / "scenario.yaml").read_text())
            doc.setdefault("clock", {})["cycle"] = args.cycle
            (folder / "scenario.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        r = run_scenario(folder, root / "db").result
    return {
        "bench": "replay",
        "scenario": r["name"],
        "simulated_h": round(r["simulated_s"] / 3600, 2),
        "rows": r["rows"],
        "cycles": r["cycles"],
        "wall_s": r["wall_s"],
        "replay_speedup": r["replay_speedup"],
        "detected": [d["fault_class"] for d in r["detected_faults"]],
        "ok": bool(r["replay_speedup"] and r["replay_speedup"] >= 1000 and r["passed"]),
    }
