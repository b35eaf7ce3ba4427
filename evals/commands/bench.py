"""``facility-agent bench NAME``: one benchmark, its JSON result as the last line.

Each benchmark is a module ``evals/benchmarks/NAME.py`` with
``add_arguments(parser)`` (optional) and ``run(args) -> dict``; the dict is
printed as one JSON line, last, so scripts can ``tail -1``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from typing import Any

import evals.benchmarks as benchmarks


def _names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_")
    )


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark; prints a JSON line last")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in _names():
        mod = importlib.import_module(f"evals.benchmarks.{name}")
        bp = bsub.add_parser(
            name, help=(mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else None
        )
        add = getattr(mod, "add_arguments", None)
        if add is not None:
            add(bp)
        bp.set_defaults(func=_runner(mod))


def _runner(mod: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        result: dict[str, Any] = mod.run(args)
        print(json.dumps(result), flush=True)
        return 0 if result.get("ok", True) else 1

    return run
