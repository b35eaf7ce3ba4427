"""Closed loop: the twin stepped one agent cycle at a time, the agent's writes applied to it.

The twin (:class:`twin.sim.Twin`) runs the scenario's fault schedule; its values go
into the store, the agent decides, and its writes reach the twin through a
:class:`connectors.writer.RecordingWriter` composed with the twin (``apply=twin.write``:
a write is refused or rounded as the twin's registers would, then applied). The same
twin with its native control and no agent is the baseline; cooling energy, PUE,
envelope and throttle minutes and UPS events are compared.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from connectors.clock import ManualClock
from connectors.errors import ScenarioConfigError
from connectors.site import HEARTBEAT_TAG, Site
from connectors.status import Status
from connectors.store import Store
from connectors.writer import RecordingWriter
from evals import metrics as M
from evals.sampling import QualitySampler, referenced
from evals.scenario import Scenario, TwinSource
from evals.scenario_run import Progress, ScenarioRun
from evals.scoring import rounded, score
from evals.sites import scenario_site, with_poll_floor
from evals.whatif_error import whatif_error
from evals.wiring import agent_context, close_agent, decide, table, write_log, writes_with_decisions
from tools.calibration import Calibration
from tools.whatif import state_from_values
from twin.control import ControlMode
from twin.faults import Fault
from twin.sim import Twin


def twin_faults(scn: Scenario) -> list[Fault]:
    assert isinstance(scn.source, TwinSource)
    out = []
    for i, f in enumerate(scn.source.faults):
        try:
            out.append(Fault(**f.model_dump()))
        except ValueError as err:
            raise ScenarioConfigError(f"scenario.yaml: source.faults[{i}]: {err}") from None
    return out


@dataclass
class TwinRun:
    """One run of the twin: the true plant series and what the agent left (if it ran)."""

    series: pd.DataFrame
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    writes: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    agent: bool = False
    wall_s: float = 0.0
    calibrations: list[Calibration] = field(default_factory=list)
    plant_matches_model: bool = False


class _Recorder:
    """The twin's served values into the store, as the poller would write them: one row per
    tag and sample, appended in batches (:meth:`flush`) — before each agent cycle, and every
    :data:`BASELINE_FLUSH_CYCLES` cycles of a baseline run, which no one reads while it runs.
    The rows are the same as one append per sample; the store's commits are fewer."""

    def __init__(self, store: Store, tags: list[str], ids: np.ndarray) -> None:
        self.store, self.tags, self.ids = store, tags, ids
        self._ts: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._status: list[np.ndarray] = []

    def sample(self, twin: Twin, clock: ManualClock) -> None:
        vals = twin.values()
        down = twin.unavailable()
        v = np.array([vals.get(t, math.nan) for t in self.tags], dtype=float)
        st = np.array(
            [
                Status.NOT_CONNECTED
                if t in down
                else (Status.DECODE_ERROR if math.isnan(x) else Status.OK)
                for t, x in zip(self.tags, v, strict=True)
            ],
            dtype=np.uint8,
        )
        v[st != Status.OK] = np.nan
        self._ts.append(np.full(len(self.tags), np.datetime64(clock.now(), "us")))
        self._values.append(v)
        self._status.append(st)

    def flush(self) -> None:
        if not self._ts:
            return
        n = len(self._ts)
        self.store.append(
            np.concatenate(self._ts),
            np.tile(self.ids, n),
            np.concatenate(self._values),
            np.concatenate(self._status),
        )
        self._ts, self._values, self._status = [], [], []


#: a baseline run (no agent) appends its readings every this many cycles
BASELINE_FLUSH_CYCLES = 60


def twin_plant(scn: Scenario, folder: Path) -> str | Path:
    """The scenario's plant: 'default', 'catalogue', or its file (relative to the scenario)."""
    assert isinstance(scn.source, TwinSource)
    p = scn.source.plant
    return p if p in ("default", "catalogue") else folder / p


async def twin_run(
    scn: Scenario,
    site: Site,
    workdir: Path,
    *,
    with_agent: bool,
    progress: Progress | None,
    control: ControlMode | None = None,
    plant: str | Path = "default",
) -> TwinRun:
    """One run of the scenario's twin; ``control`` is its native control (default: the
    scenario's ``source.control``); ``plant`` its own equipment (default: not the agent's
    model)."""
    src = scn.source
    assert isinstance(src, TwinSource)
    mode = control or src.control
    twin = Twin(
        site, seed=src.seed, control=mode, weather=src.weather, start=src.start, plant=plant
    )
    for f in twin_faults(scn):
        twin.inject(f)
    clock = ManualClock(twin.now.replace(tzinfo=None))
    suffix = "agent" if with_agent else f"baseline-{mode}"
    store = Store(workdir / f"{scn.name}-{suffix}.duckdb")
    ids = store.register_site(site)
    writer = RecordingWriter(
        site, clock, values=lambda tag: twin.values().get(tag, math.nan), echo=False,
        apply=twin.write,
    )  # fmt: skip
    ctx = agent_context(scn, Path("."), site, store, writer, clock) if with_agent else None
    if ctx is not None:
        ctx.state.model.enabled = scn.agent.calibration
    step = scn.clock.cycle
    sample = min(scn.clock.sample, step)
    per_cycle = max(1, round(step / sample))
    sample = step / per_cycle
    n = math.ceil(src.duration / step)
    rows: list[dict[str, float]] = []
    index: list[datetime] = []
    tags = list(ids)
    id_arr = np.array([ids[t] for t in tags], dtype=np.int32)
    sampler = QualitySampler(store, site, n, referenced(ctx, site)) if with_agent else None
    qwall = 0.0
    wall0 = time.perf_counter()
    recorder = _Recorder(store, tags, id_arr)
    for i in range(n):
        for _ in range(per_cycle):
            twin.step(sample)
            clock.set(twin.now.replace(tzinfo=None))
            recorder.sample(twin, clock)
        if ctx is not None or (i + 1) % BASELINE_FLUSH_CYCLES == 0:
            recorder.flush()  # the agent reads the store: every sample is in before it decides
        if ctx is not None:
            twin.write(HEARTBEAT_TAG, float(i + 1))  # the agent process's heartbeat to the BMS
            await decide(ctx)
        if sampler is not None and not sampler.from_agent(ctx):
            q0 = time.perf_counter()
            sampler(clock.now())
            qwall += time.perf_counter() - q0
        rows.append(twin.true_values())
        index.append(clock.now())
        if progress is not None:
            progress((i + 1) / n)
    recorder.flush()
    wall = time.perf_counter() - wall0 - qwall
    out = TwinRun(pd.DataFrame(rows, index=pd.DatetimeIndex(index, name="ts")), wall_s=wall)
    out.decisions = table(store, "decisions_latest")
    out.writes = writes_with_decisions(write_log(writer.frame()), table(store, "actions_latest"))
    out.quality = sampler.frame() if sampler is not None else pd.DataFrame()
    out.plant_matches_model = twin.plant_spec.matches_model()
    if ctx is not None:
        out.agent = True
        out.calibrations = list(ctx.state.model.history)
        await close_agent(ctx)
    store.close()
    return out


async def closed_loop(
    scn: Scenario, folder: Path, workdir: Path, progress: Progress | None
) -> ScenarioRun:
    assert isinstance(scn.source, TwinSource)
    site = with_poll_floor(scenario_site(scn, folder), min(scn.clock.sample, scn.clock.cycle))
    modes = scn.source.baseline_modes()
    share = 0.3 / max(len(modes), 1)
    bases: dict[str, pd.DataFrame] = {}
    for k, mode in enumerate(modes):
        part: Progress | None = None
        if progress is not None:
            part = _part(progress, share * k, share)
        bases[mode] = (
            await twin_run(
                scn, site, workdir, with_agent=False, control=cast(ControlMode, mode),
                progress=part, plant=twin_plant(scn, folder),
            )
        ).series  # fmt: skip
    primary = scn.source.control if scn.source.control in bases else next(iter(bases), None)
    base = bases[primary] if primary is not None else pd.DataFrame()
    res = await twin_run(
        scn, site, workdir, with_agent=scn.agent.enabled,
        progress=(lambda f: progress(0.3 + 0.7 * f)) if progress else None,
        plant=twin_plant(scn, folder),
    )  # fmt: skip
    series = res.series
    t0 = (
        pd.Timestamp(series.index[0]) - pd.Timedelta(seconds=scn.clock.cycle)
        if len(series)
        else pd.Timestamp(0)
    )
    events = M.agent_fault_events(res.decisions, t0)
    run = ScenarioRun(scn, folder, {}, series, res.decisions, res.writes, res.quality, base)
    agent_tot = M.plant_totals(series, scn.clock.cycle)
    throttle = state_from_values(site, {}).gpu_throttle_c  # the nameplate the what-if uses
    base_tot = M.plant_totals(base, scn.clock.cycle) if not base.empty else None
    totals = {m: M.plant_totals(b, scn.clock.cycle) for m, b in bases.items()}
    run.result = score(
        scn, site, run, events, None,
        replay_speedup=scn.source.duration / res.wall_s if res.wall_s > 0 else math.inf,
        energy=(agent_tot, base_tot),
    )  # fmt: skip
    run.result.update(
        {
            "mode": "closed_loop",
            "agent": res.agent,
            "wall_s": round(res.wall_s, 3),
            "simulated_s": scn.source.duration,
            "cycles": len(series),
            "agent_run": totals_dict(agent_tot),
            "baseline_run": totals_dict(base_tot) if base_tot else None,
            "native_control": scn.source.control,
            "weather": scn.source.weather,
            "baseline_control": primary,
            "cooling_energy_saving_vs": {
                m: rounded(M.saving(agent_tot.cooling_kwh, t.cooling_kwh))
                for m, t in totals.items()
            },
            "baseline_runs": {m: totals_dict(t) for m, t in totals.items()},
            "cooling_kwh_by_subsystem": {
                "agent": M.subsystem_kwh(series, scn.clock.cycle),
                **{m: M.subsystem_kwh(b, scn.clock.cycle) for m, b in bases.items()},
            },
            "gpu_throttle_margin_min_k": {
                "agent": M.throttle_margin_min(series, throttle),
                **{m: M.throttle_margin_min(b, throttle) for m, b in bases.items()},
            },
            "throttle_minutes": agent_tot.throttle_minutes,
            "envelope_violation_minutes": agent_tot.envelope_minutes,
            "plant_matches_model": res.plant_matches_model,
            **whatif_error(
                res.decisions,
                series,
                calibrated_since=first_adopted(res.calibrations),
                faults=fault_windows(scn, t0),
            ),
            **calibration_summary(res.calibrations),
        }
    )
    return run


def _part(progress: Progress, offset: float, share: float) -> Progress:
    """``progress`` for one part of a run: its fraction mapped into [offset, offset + share]."""
    return lambda f: progress(offset + share * f)


def fault_windows(scn: Scenario, start: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The scenario's injected faults as (start, end) on the run's clock (open-ended: the run's end)."""
    assert isinstance(scn.source, TwinSource)
    out = []
    for f in twin_faults(scn):
        a = start + pd.Timedelta(seconds=f.start_s)
        dur = f.duration_s if f.duration_s is not None else scn.source.duration
        out.append((a, a + pd.Timedelta(seconds=dur)))
    return out


def first_adopted(cals: list[Calibration]) -> datetime | None:
    return next((c.window_end for c in cals if c.adopted), None)


def calibration_summary(cals: list[Calibration]) -> dict[str, object]:
    """The rolling calibration's tries: how many adopted, and the last adopted one."""
    adopted = [c for c in cals if c.adopted]
    last = adopted[-1] if adopted else None
    return {
        "calibrations_tried": len(cals),
        "calibrations_adopted": len(adopted),
        "calibration_last": None
        if last is None
        else {
            "window_end": f"{last.window_end:%H:%M}",
            "params": last.params.describe(),
            "held_out": {p.name: p.to_dict() for p in last.parts},
        },
    }


def totals_dict(t: M.PlantTotals | None) -> dict[str, float | None] | None:
    if t is None:
        return None
    return {
        k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else None)
        for k, v in t.__dict__.items()
    }
