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
import time
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
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N scenarios at a time, each in its own process (default 1)",
    )
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
    from evals.runner import ScenarioRun
    from evals.scenario import load_scenario

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {args.jobs}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facility-eval-") as tmp:
        work = Path(tmp)
        folders: list[Path] = list(args.scenarios)
        if args.suite:
            folders += shipped_scenarios(args.fast)
            if args.datasets.is_dir() and not args.fast:
                # with --only, only the public scenarios named are built (imports take a while)
                folders += public_scenarios(args.datasets, work / "public", args.only)
        if not folders:
            raise ConfigError("no scenarios: name scenario folders or use --suite")
        # validate every file first: a typo fails fast, before minutes of replay
        names = {f: load_scenario(f)[0].name for f in folders}
        if args.only:
            folders = [f for f in folders if names[f] in set(args.only)]
        progress = _progress(args.no_progress)
        with progress as bar:
            if args.jobs > 1:
                outcomes = _run_parallel(folders, names, work / "db", args.jobs, bar)
            else:
                outcomes = _run_serial(folders, names, work / "db", bar)
        runs: list[ScenarioRun] = [o for o in outcomes if not isinstance(o, dict)]
        errors: list[dict[str, Any]] = [o for o in outcomes if isinstance(o, dict)]
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
    n = len(folders)
    print(f"wall time {_minutes(time.perf_counter() - started)} for {n} scenario{'s' * (n != 1)}")
    return 0 if s["passed"] == s["scenarios"] else 1


def run_timed(folder: Path, workdir: Path, name: str, progress: Any = None) -> Any:
    """One scenario: its :class:`~evals.runner.ScenarioRun` with ``scenario_wall_s`` (set-up,
    baselines, run, detectors), or the failed result of a scenario that could not run. A bad
    scenario file (:class:`ScenarioConfigError`) raises. Module level: a worker process of
    ``--jobs`` runs it."""
    from evals.runner import error_result, run_scenario

    t0 = time.perf_counter()
    try:
        run = run_scenario(folder, workdir, progress)
    except ScenarioConfigError:
        raise
    except Exception as err:  # one broken scenario must not hide the others
        return error_result(name, err)
    run.result["scenario_wall_s"] = round(time.perf_counter() - t0, 1)
    return run


def _run_serial(folders: list[Path], names: dict[Path, str], workdir: Path, bar: Any) -> list[Any]:
    total = bar.add_task("scenarios", total=len(folders))
    out = []
    for f in folders:
        task = bar.add_task(names[f], total=1.0)

        def advance(x: float, t: Any = task) -> None:
            bar.update(t, completed=x)

        out.append(run_timed(f, workdir, names[f], advance))
        bar.update(task, completed=1.0)
        bar.update(total, advance=1)
    return out


def _run_parallel(
    folders: list[Path], names: dict[Path, str], workdir: Path, jobs: int, bar: Any
) -> list[Any]:
    """Scenarios in ``jobs`` worker processes (each its own databases: a folder per
    scenario); results in the order of ``folders``. Scenarios share nothing else: the twin
    runs in-process, without ports."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    total = bar.add_task("scenarios", total=len(folders))
    tasks = {i: bar.add_task(names[f], total=1.0) for i, f in enumerate(folders)}
    ctx = multiprocessing.get_context("spawn")  # no forked DuckDB / asyncio state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [
            pool.submit(run_timed, f, workdir / str(i), names[f]) for i, f in enumerate(folders)
        ]
        out = []
        try:
            for i, fut in enumerate(futures):
                out.append(fut.result())
                bar.update(tasks[i], completed=1.0)
                bar.update(total, advance=1)
        except BaseException:  # a bad scenario file: the others not yet started never start
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s"


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
