"""Fault detection out of sample: RP-1043 k-fold + confusion + sensitivity grid, LBNL cross-dataset.

``facility-agent bench fdd [--datasets DIR] [--report DIR]``: the measured numbers as a
JSON line last; with ``--report`` also ``DIR/fdd-report.md`` (confusion matrices per
file, the threshold grid, the synthetic-model check, LBNL row/day TPR/FPR with and
without latching). See :mod:`evals.fdd_scores`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from evals.fdd_scores import run_all, summary_json

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--datasets", type=Path, default=DEFAULT_DATASETS, help="../shared/datasets (default)"
    )
    p.add_argument("--report", type=Path, default=None, help="write DIR/fdd-report.md")


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    ds = Path(args.datasets)
    if not ds.is_dir():
        return {"bench": "fdd", "ok": False, "error": f"{ds}: no datasets folder"}
    result = run_all(ds, args.report)
    return {
        "bench": "fdd",
        "seconds": round(time.perf_counter() - t0, 1),
        **summary_json(result),
        "report": str(Path(args.report) / "fdd-report.md") if args.report else None,
    }
