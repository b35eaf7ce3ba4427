"""``facility-agent eval SCENARIO_DIR… --report DIR`` and ``facility-agent eval --suite --report DIR``.

Runs each scenario (open-loop replay or closed loop on the twin) through the real
store and agent, writes ``DIR/results.json``, ``DIR/report.md`` and plots, shows a
progress bar, and exits 1 when any expectation fails (2 on a bad scenario file).

``--suite`` runs the shipped scenarios (``evals/scenarios/``) plus every public-data
scenario it can build from ``--datasets`` (default ``../shared/datasets``), built in a
temporary directory — never copied into the repository. ``--fast`` keeps only
scenarios tagged ``fast`` (what ``make test`` exercises).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError, ScenarioConfigError

SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="run eval scenarios and write a report (exit 1 when one fails)")
    p.add_argument("scenarios", nargs="*", type=Path, help="scenario folders (with scenario.yaml)")
    p.add_argument("--report", type=Path, default=Path("eval-report"), help="report folder")
    p.add_argument(
        "--suite", action="store_true", help="the shipped suite plus public-data scenarios"
    )
    p.add_argument("--fast", action="store_true", help="only scenarios tagged fast")
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="public datasets folder")
    p.add_argument(
        "--only", action="append", default=None, help="only scenarios with this name (repeatable)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def shipped_scenarios(fast: bool = False) -> list[Path]:
    from evals.scenario import load_scenario

    out = []
    for d in sorted(SCENARIOS_DIR.iterdir()) if SCENARIOS_DIR.is_dir() else []:
        if (d / "scenario.yaml").is_file():
            scn, _ = load_scenario(d)
            if not fast or "fast" in scn.tags:
                out.append(d)
    return out


def run(args: argparse.Namespace) -> int:
    from evals.importers import public_scenarios
    from evals.report import write_report
    from evals.runner import ScenarioRun, error_result, run_scenario
    from evals.scenario import load_scenario

    with tempfile.TemporaryDirectory(prefix="facility-eval-") as tmp:
        work = Path(tmp)
        folders: list[Path] = list(args.scenarios)
        if args.suite:
            folders += shipped_scenarios(args.fast)
            if args.datasets.is_dir() and not args.fast:
                folders += public_scenarios(args.datasets, work / "public")
        if not folders:
            raise ConfigError("no scenarios: name scenario folders or use --suite")
        # validate every file first: a typo fails fast, before minutes of replay
        names = {f: load_scenario(f)[0].name for f in folders}
        if args.only:
            folders = [f for f in folders if names[f] in set(args.only)]
        runs: list[ScenarioRun] = []
        errors: list[dict[str, Any]] = []
        progress = _progress(args.no_progress)
        with progress as bar:
            total = bar.add_task("scenarios", total=len(folders))
            for f in folders:
                task = bar.add_task(names[f], total=1.0)

                def advance(x: float, t: Any = task) -> None:
                    bar.update(t, completed=x)

                try:
                    runs.append(run_scenario(f, work / "db", advance))
                except ScenarioConfigError:
                    raise
                except Exception as err:  # one broken scenario must not hide the others
                    errors.append(error_result(names[f], err))
                bar.update(task, completed=1.0)
                bar.update(total, advance=1)
        doc = write_report(runs, args.report, errors)
    s = doc["summary"]
    print(
        f"{s['passed']}/{s['scenarios']} scenarios passed; unsafe actions {s['unsafe_actions']}, "
        f"false alarms {s['false_alarms']} (judged in {s['false_alarms_judged_in']}, not judged "
        f"in {s['false_alarms_not_judged_in']}) — report in {args.report}/report.md"
    )
    for r in doc["scenarios"]:
        if not r["passed"]:
            print(f"  FAILED {r['name']}: {'; '.join(r.get('failures', []))}")
    line = replay_line(runs)
    if line:
        print(line)
    return 0 if s["passed"] == s["scenarios"] else 1


REPLAY_TARGET = 3000.0  # × real time, every 1-hour twin recording


def replay_line(runs: list[Any]) -> str | None:
    """The replay speed of the twin recordings in this run (open loop on the twin's site):
    simulated s / wall s of the replay loop (ingest + quality + decide cycles), the slowest
    one against the target, and the same over CPU seconds (what machine load does not
    inflate). None when no twin recording ran."""
    twin = [
        r.result
        for r in runs
        if r.scenario.site == "twin" and r.result.get("mode") == "open_loop"
        and r.result.get("wall_s") and r.result.get("cpu_s")
    ]  # fmt: skip
    if not twin:
        return None
    slow = min(twin, key=lambda r: r["simulated_s"] / r["wall_s"])
    cpu = min(r["simulated_s"] / r["cpu_s"] for r in twin)
    low = slow["simulated_s"] / slow["wall_s"]
    verdict = "met" if low >= REPLAY_TARGET else "NOT met"
    return (
        f"replay of the {len(twin)} twin recordings (ingest + quality + decide, × real time): "
        f"slowest {low:,.0f}× ({slow['name']}), over CPU seconds {cpu:,.0f}× — "
        f"target {REPLAY_TARGET:,.0f}× {verdict}"
    )


def _progress(disabled: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        disable=disabled,
        transient=False,
    )
