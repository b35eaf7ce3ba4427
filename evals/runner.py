"""Run a scenario: replay (open loop) or the twin (closed loop), through the real store and agent.

The parts, each in its own module:

* :mod:`evals.sites` — the site a scenario runs on, with its overrides;
* :mod:`evals.wiring` — the agent's context, cycle and what it left in the store;
* :mod:`evals.open_loop` — a recording replayed, writes recorded and not applied;
* :mod:`evals.closed_loop` — the twin with the agent's writes applied, against its
  native control;
* :mod:`evals.sampling` — data quality over the run, for the report;
* :mod:`evals.scoring` — the run judged against the scenario's expectations.

:func:`run_scenario` returns a :class:`~evals.scenario_run.ScenarioRun`: the
``results.json`` entry (:attr:`ScenarioRun.result`) and the frames the report plots.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from evals.closed_loop import closed_loop
from evals.open_loop import open_loop, read_telemetry
from evals.scenario import load_scenario
from evals.scenario_run import Progress, ScenarioRun
from evals.scoring import error_result, summarise
from evals.sites import policy_path, scenario_site, with_poll_floor

__all__ = [
    "Progress",
    "ScenarioRun",
    "error_result",
    "policy_path",
    "read_telemetry",
    "run_scenario",
    "run_scenario_async",
    "scenario_site",
    "summarise",
    "with_poll_floor",
]


async def run_scenario_async(
    folder: str | Path, workdir: str | Path, progress: Progress | None = None
) -> ScenarioRun:
    scn, path = load_scenario(folder)
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    if scn.closed_loop:
        return await closed_loop(scn, path, wd, progress)
    return await open_loop(scn, path, wd, progress)


def run_scenario(
    folder: str | Path, workdir: str | Path, progress: Progress | None = None
) -> ScenarioRun:
    """Run one scenario folder; databases go to ``workdir``. Raises ConfigError on a bad scenario."""
    return asyncio.run(run_scenario_async(folder, workdir, progress))
