"""Open loop: a recording replayed through the real store and agent; writes recorded, not applied.

The scenario's Parquet telemetry is fed by :class:`connectors.replay.ReplaySource`
into a real DuckDB store in chunks of one agent cycle, the
:class:`~connectors.clock.ManualClock` moving with it; after each chunk the agent runs
one decision cycle — skipped for a chunk with no rows, a gap between recorded days —
with a :class:`connectors.writer.RecordingWriter` that answers reads with the replayed
values. The offline detectors named by the scenario (``tools.fdd``) also run on the
whole recording. ``replay_speedup`` = simulated span / wall time of the replay loop
(ingest of the recorded rows, data quality, decide cycles; not the set-up, the report's
own quality sampling or the offline detectors); ``cpu_s`` the process's CPU time over it.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.clock import ManualClock
from connectors.errors import FacilityError, ScenarioConfigError
from connectors.replay import ReplaySource
from connectors.store import Store
from connectors.writer import RecordingWriter
from evals import metrics as M
from evals.fdd_scores import rates_rows_days
from evals.sampling import QualitySampler, referenced
from evals.scenario import ParquetSource, Scenario
from evals.scenario_run import Progress, ScenarioRun
from evals.scoring import rounded, score
from evals.sites import scenario_site, with_poll_floor
from evals.wiring import agent_context, close_agent, decide, table, write_log, writes_with_decisions
from tools.fdd import ahu, chiller, crossval
from tools.fdd.chiller import ChillerReference
from tools.fdd.crossval import Fold, fold_at, load_folds


def read_telemetry(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise ScenarioConfigError(f"{path}: cannot read telemetry: {err}") from None
    if "ts" in frame.columns:
        frame = frame.set_index("ts")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ScenarioConfigError(f"{path}: telemetry needs a DatetimeIndex or a ts column")
    return frame.sort_index()


def period_s(frame: pd.DataFrame) -> float:
    if len(frame) < 2:
        return 0.0
    return float(pd.Series(frame.index).diff().dt.total_seconds().median())


def _truth(
    scn: Scenario, folder: Path, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The telemetry without its ground-truth column, and that column (None when absent)."""
    assert isinstance(scn.source, ParquetSource)
    if scn.source.truth is None:
        return frame, None
    if scn.source.truth not in frame.columns:
        raise ScenarioConfigError(
            f"{folder.name}/scenario.yaml: source.truth: no column {scn.source.truth!r}"
        )
    # nullable: a missing label stays <NA> (unlabeled), the scores leave it out
    return frame.drop(columns=[scn.source.truth]), frame[scn.source.truth].astype("boolean")


async def open_loop(
    scn: Scenario, folder: Path, workdir: Path, progress: Progress | None
) -> ScenarioRun:
    assert isinstance(scn.source, ParquetSource)
    frame, truth = _truth(scn, folder, read_telemetry(folder / scn.source.file))
    site = scenario_site(
        scn, folder, [str(c) for c in frame.columns] if scn.site != "twin" else None
    )
    site = with_poll_floor(site, period_s(frame))
    ref = None
    if scn.source.reference is not None:
        ref = ChillerReference.load(folder / scn.source.reference)
    folds: list[Fold] | None = None
    if scn.source.reference_folds is not None:
        folds = load_folds(folder / scn.source.reference_folds, pd.DatetimeIndex(frame.index))
        ref = folds[0].reference

    store = Store(workdir / f"{scn.name}.duckdb")
    clock = ManualClock()
    seen: dict[str, float] = {}
    writer = RecordingWriter(site, clock, values=lambda tag: seen.get(tag, math.nan))
    src = ReplaySource(frame, site, clock, chunk=timedelta(seconds=scn.clock.cycle))
    ctx = agent_context(scn, folder, site, store, writer, clock, ref) if scn.agent.enabled else None
    t0 = pd.Timestamp(src.span[0]) if len(src.frame) else pd.Timestamp(clock.now())
    span_s = (
        (src.span[1] - src.span[0]).total_seconds() + float(period_s(frame))
        if len(src.frame)
        else 0.0
    )

    n_cycles = math.ceil(span_s / scn.clock.cycle) if span_s else 0
    sampler = QualitySampler(store, site, n_cycles, referenced(ctx, site))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    agent_errors: list[str] = []
    qwall = qcpu = 0.0
    for chunk in src.feed(store):
        seen.update(chunk.values)
        if ctx is not None and folds is not None:  # judged by the fold holding this hour out
            fold = fold_at(folds, pd.DatetimeIndex(frame.index), pd.Timestamp(clock.now()))
            if fold is not None:
                ctx.state.fdd.set_chiller_reference(fold.reference)
        # a chunk with no rows is a gap between recorded days: no telemetry, no cycle
        if ctx is not None and chunk.rows:
            try:
                await decide(ctx)
            except FacilityError as err:
                agent_errors.append(f"{clock.now()}: {err}")
                if len(agent_errors) > 20:
                    raise
        if ctx is None or not sampler.from_agent(ctx):
            q0, c0 = time.perf_counter(), time.process_time()
            sampler(clock.now())
            qwall += time.perf_counter() - q0
            qcpu += time.process_time() - c0
        if progress is not None and span_s > 0:
            progress(min(1.0, (clock.now() - src.span[0]).total_seconds() / span_s))
    wall = time.perf_counter() - wall0 - qwall  # the report's quality sampling is not replay
    cpu = time.process_time() - cpu0 - qcpu  # this process's CPU (all threads) over the same

    decisions = table(store, "decisions_latest")
    actions = table(store, "actions_latest")
    quality = sampler.frame()
    writes = writes_with_decisions(write_log(writer.frame()), actions)

    events = M.agent_fault_events(decisions, t0)
    detector_rows, extra = _detectors(scn, folder, frame, truth, ref, events, folds)
    if ctx is not None:
        await close_agent(ctx)
    store.close()

    run = ScenarioRun(
        scn, folder, {}, frame, decisions, writes, quality, detector_rows=detector_rows
    )
    run.result = score(
        scn, site, run, events, truth, replay_speedup=span_s / wall if wall > 0 else math.inf
    )
    run.result.update(
        {
            "mode": "open_loop",
            "agent": ctx is not None,
            "agent_errors": agent_errors[:5],
            "quality_error": sampler.error,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "simulated_s": span_s,
            "cycles": math.ceil(span_s / scn.clock.cycle) if span_s else 0,
            "rows": len(frame),
            **extra,
        }
    )
    return run


def _detectors(
    scn: Scenario,
    folder: Path,
    frame: pd.DataFrame,
    truth: pd.Series | None,
    ref: ChillerReference | None,
    events: list[tuple[str, float, str]],
    folds: list[Fold] | None = None,
) -> tuple[pd.Series | None, dict[str, Any]]:
    """Run the scenario's offline detectors on the whole recording; their events go into
    ``events``. Returns the AHU detector's per-row flags and the extra result fields."""
    detector_rows: pd.Series | None = None
    extra: dict[str, Any] = {}
    for det in scn.detectors:
        if det == "chiller":
            if ref is None:
                raise ScenarioConfigError(
                    f"{folder.name}/scenario.yaml: detectors: chiller needs source.reference"
                )
            if folds is not None:  # the reference's own file: out of sample, fold by fold
                diag = crossval.diagnose_out_of_sample(frame, folds)
                dets = chiller.detections(diag, pd.Timestamp(frame.index[0]))
                extra["chiller_scored"] = f"out of sample, {len(folds)}-fold over hour blocks"
            else:
                diag = chiller.diagnose(frame, ref)
                dets = chiller.detections(diag, pd.Timestamp(frame.index[0]))
            events += [(d.fault_class, d.first_detected_s, "detector:chiller") for d in dets]
            extra["chiller_alarm_windows"] = {d.fault_class: d.alarm_windows for d in dets}
            extra["chiller_windows"] = {
                "judged": len(crossval.judged(diag)),
                "named": {
                    str(k): int(v) for k, v in crossval.judged(diag)["fault"].value_counts().items()
                },
            }
        elif det in ("ahu", "ahu_lab"):
            cfg = scn.ahu.config("lab" if det == "ahu_lab" else "field")
            fl = ahu.flags(frame, cfg)
            if detector_rows is None or det == "ahu_lab":
                detector_rows = fl["any"]
            extra[f"{det}_flag_counts"] = {c: int(fl[c].sum()) for c in ahu.FC_NAMES}
            if truth is not None:
                rs = M.row_scores(fl["any"], truth)
                extra[f"{det}_rows"] = {
                    k: rounded(v) if isinstance(v, float) else v for k, v in rs.__dict__.items()
                }
                # row- and day-level TPR / FPR, with the latch and without it
                unlatched = ahu.flags(frame, replace(cfg, latch=False))["any"]
                extra[f"{det}_tpr_fpr"] = {
                    "latched" if cfg.latch else "as configured": rates_rows_days(fl["any"], truth),
                    "unlatched": rates_rows_days(unlatched, truth),
                }
    return detector_rows, extra
