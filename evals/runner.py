"""Run a scenario: replay (open loop) or the twin (closed loop), through the real store and agent.

Open loop: the scenario's Parquet telemetry is fed by
:class:`connectors.replay.ReplaySource` into a real DuckDB store in chunks of one
agent cycle, the :class:`~connectors.clock.ManualClock` moving with it; after each
chunk the agent runs one decision cycle (:func:`agent.runtime.decide_once`) — skipped for a chunk
with no rows, a gap between recorded days — with a
:class:`~evals.writers.RecordingWriter` — actions are recorded, not applied. The
offline detectors named by the scenario (``tools.fdd``) also run on the whole
recording. ``replay_speedup`` = simulated span / wall time of the replay loop.

Closed loop: the twin (:class:`twin.sim.Twin`) is stepped one agent cycle at a
time with the scenario's fault schedule; its values go into the store, the agent
decides, and its writes reach the twin through :class:`~evals.writers.TwinWriter`.
The same twin with its native control and no agent is the baseline; cooling
energy, PUE, envelope and throttle minutes and UPS events are compared.

:func:`run_scenario` returns a :class:`ScenarioRun`: the ``results.json`` entry
(:attr:`ScenarioRun.result`) and the frames the report plots.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors.clock import ManualClock
from connectors.errors import FacilityError, ScenarioConfigError
from connectors.replay import ReplaySource
from connectors.site import HEARTBEAT_TAG, Site, load_site, parse_site
from connectors.status import Status
from connectors.store import Store
from evals import metrics as M
from evals.scenario import ParquetSource, Scenario, TwinSource, load_scenario
from evals.writers import RecordingWriter, TwinWriter

log = logging.getLogger(__name__)

Progress = Callable[[float], None]
"""Called with the fraction of the scenario done (0–1)."""


@dataclass
class ScenarioRun:
    scenario: Scenario
    folder: Path
    result: dict[str, Any]
    telemetry: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    writes: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline: pd.DataFrame = field(default_factory=pd.DataFrame)
    detector_rows: pd.Series | None = None


# ---- site ---------------------------------------------------------------------------------
def _with_overrides(site: Site, autonomy: int | None, text: dict[str, str]) -> Site:
    if autonomy is None and not text:
        return site
    data = site.model_dump(mode="json")
    if autonomy is not None:
        data["autonomy_ceiling"] = autonomy
    for tag, words in text.items():
        eq_id, _, name = tag.partition(".")
        found = False
        for eq in data["equipment"]:
            if eq["id"] != eq_id:
                continue
            for p in eq["points"]:
                if p["name"] == name:
                    p["description"] = f"{p.get('description', '')} {words}".strip()
                    found = True
        if not found:
            raise ScenarioConfigError(f"source.text: {tag!r} is not a point of site {site.name}")
    return parse_site(data, origin=f"{site.name} (scenario overrides)")


def with_poll_floor(site: Site, seconds: float) -> Site:
    """The site with every point's poll interval at least ``seconds``.

    A recording sampled every 30 s was, in effect, polled every 30 s: the data-quality
    scorer must judge freshness and completeness against that, not against the live
    site's 1-s polls (which would call every replayed point stale).
    """
    if not any(p.poll_interval_s < seconds for _eq, p in site.iter_points()):
        return site
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["poll_interval_s"] = max(float(p.get("poll_interval_s", 1.0)), seconds)
    return parse_site(data, origin=f"{site.name} (replayed at {seconds:g} s)")


def scenario_site(scn: Scenario, folder: Path, columns: list[str] | None = None) -> Site:
    """The site a scenario runs on (``twin``, an importer's site, or a file in the folder)."""
    kind = scn.site
    if kind == "twin":
        from twin import default_site_path

        site = load_site(default_site_path())
    elif kind == "rp1043":
        from connectors.importers.rp1043 import rp1043_site

        site = rp1043_site(columns)
    elif kind == "lbnl":
        from connectors.importers.lbnl import lbnl_site

        site = lbnl_site(columns or [])
    elif kind == "esb":
        from connectors.importers.esb import esb_site

        site = esb_site(columns) if columns is not None else esb_site()
    else:
        site = load_site(folder / kind)
    text = scn.source.text
    return _with_overrides(site, scn.agent.autonomy, dict(text))


# ---- agent --------------------------------------------------------------------------------
def _agent_context(
    scn: Scenario, folder: Path, site: Site, store: Store, writer: Any, clock: ManualClock
) -> Any:
    """An AgentContext for the run, or None when the agent layer is not installed."""
    try:
        from agent.context import AgentContext
    except ImportError as err:  # pragma: no cover - agent layer absent
        log.warning("agent layer unavailable (%s): detectors only", err)
        return None
    policies = None
    if scn.agent.policies is not None:
        from tools.policies.loader import load_policies

        policies = load_policies([policy_path(p, folder) for p in scn.agent.policies])
    return AgentContext.build(
        site=site,
        store=store,
        writer=writer,
        clock=clock,
        policies=policies,
        approvals="record",
        checkpoint_path=None,
    )


def policy_path(ref: str, folder: Path) -> Path:
    """``fdd:NAME`` → tools/fdd/policies/NAME.yaml, ``library:NAME`` → the shipped library file,
    anything else a file relative to the scenario folder."""
    if ref.startswith("fdd:"):
        return (
            Path(__file__).resolve().parents[1] / "tools" / "fdd" / "policies" / f"{ref[4:]}.yaml"
        )
    if ref.startswith("library:"):
        from tools.policies.loader import library_dir

        return library_dir() / f"{ref[8:]}.yaml"
    return folder / ref


def _reset_fdd(scn: Scenario) -> None:
    """The agent's fault detection knows this scenario's plant, nothing of the one before
    (a chiller reference calibrated on RP-1043 must not judge the twin's chillers)."""
    from tools.fdd import clear_fdd_settings, set_ahu_config

    clear_fdd_settings()
    set_ahu_config(scn.ahu.config())


async def _decide(ctx: Any, approval_ttl_s: float) -> None:
    """One scheduled cycle, as ``agent.runtime.run_forever`` runs it: stale approval
    requests expire (nobody answers them in an eval), then the agent decides."""
    from agent.runtime import decide_once, expire_approvals

    await expire_approvals(ctx, approval_ttl_s)
    await decide_once(ctx, trigger="eval")


def _table(store: Store, name: str) -> pd.DataFrame:
    try:
        return store.query(f"SELECT * FROM {name}")
    except Exception:
        return pd.DataFrame()


def _writes_with_decisions(writes: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Attach the journal's decision id to each logged write (same tag and value, in order)."""
    if writes.empty:
        return writes.assign(decision_id=pd.Series(dtype=object))
    out = writes.copy()
    out["decision_id"] = None
    if actions.empty or "tag" not in actions:
        return out
    acts = actions[actions["state"].isin(["executing", "done", "failed", "rolled_back"])]
    pool: dict[str, list[tuple[float, str]]] = {}
    for tag, val, did in zip(
        acts["tag"], acts["written"].fillna(acts["clamped"]), acts["decision_id"], strict=True
    ):
        if val is not None and not pd.isna(val):
            pool.setdefault(str(tag), []).append((float(val), str(did)))
    for i, row in out.iterrows():
        cands = pool.get(str(row["tag"]), [])
        for j, (v, did) in enumerate(cands):
            if abs(v - float(row["value"])) <= 1e-6 * max(1.0, abs(v)):
                out.at[i, "decision_id"] = did
                cands.pop(j)
                break
    return out


# ---- open loop ----------------------------------------------------------------------------
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


async def _open_loop(
    scn: Scenario, folder: Path, workdir: Path, progress: Progress | None
) -> ScenarioRun:
    assert isinstance(scn.source, ParquetSource)
    frame = read_telemetry(folder / scn.source.file)
    truth: pd.Series | None = None
    if scn.source.truth is not None:
        if scn.source.truth not in frame.columns:
            raise ScenarioConfigError(
                f"{folder.name}/scenario.yaml: source.truth: no column {scn.source.truth!r}"
            )
        truth = frame[scn.source.truth].astype(bool)
        frame = frame.drop(columns=[scn.source.truth])
    site = scenario_site(
        scn, folder, [str(c) for c in frame.columns] if scn.site != "twin" else None
    )
    site = with_poll_floor(site, _period_s(frame))
    _reset_fdd(scn)
    ref = None
    if scn.source.reference is not None:
        from tools.fdd import set_chiller_reference
        from tools.fdd.chiller import ChillerReference

        ref = ChillerReference.load(folder / scn.source.reference)
        set_chiller_reference(ref)

    store = Store(workdir / f"{scn.name}.duckdb")
    clock = ManualClock()
    writer = RecordingWriter(site, clock)
    src = ReplaySource(frame, site, clock, chunk=timedelta(seconds=scn.clock.cycle))
    ctx = _agent_context(scn, folder, site, store, writer, clock) if scn.agent.enabled else None
    t0 = pd.Timestamp(src.span[0]) if len(src.frame) else pd.Timestamp(clock.now())
    span_s = (
        (src.span[1] - src.span[0]).total_seconds() + float(_period_s(frame))
        if len(src.frame)
        else 0.0
    )

    n_cycles = math.ceil(span_s / scn.clock.cycle) if span_s else 0
    sampler = QualitySampler(store, site, n_cycles, _referenced(ctx, site))
    wall0 = time.perf_counter()
    agent_errors: list[str] = []
    qwall = 0.0
    for chunk in src.feed(store):
        writer.seen.update(chunk.values)
        # a chunk with no rows is a gap between recorded days: no telemetry, no cycle
        if ctx is not None and chunk.rows:
            try:
                await _decide(ctx, scn.agent.approval_ttl)
            except FacilityError as err:
                agent_errors.append(f"{clock.now()}: {err}")
                if len(agent_errors) > 20:
                    raise
        if ctx is None or not sampler.from_agent(ctx):
            q0 = time.perf_counter()
            sampler(clock.now())
            qwall += time.perf_counter() - q0
        if progress is not None and span_s > 0:
            progress(min(1.0, (clock.now() - src.span[0]).total_seconds() / span_s))
    wall = time.perf_counter() - wall0 - qwall  # the report's quality sampling is not replay

    decisions = _table(store, "decisions_latest")
    actions = _table(store, "actions_latest")
    quality = sampler.frame()
    writes = _writes_with_decisions(writer.log.frame(), actions)

    events = M.agent_fault_events(decisions, t0)
    detector_rows: pd.Series | None = None
    extra: dict[str, Any] = {}
    for det in scn.detectors:
        if det == "chiller":
            if ref is None:
                raise ScenarioConfigError(
                    f"{folder.name}/scenario.yaml: detectors: chiller needs source.reference"
                )
            from tools.fdd import chiller

            dets = chiller.detect(frame, ref)
            events += [(d.fault_class, d.first_detected_s, "detector:chiller") for d in dets]
            extra["chiller_alarm_windows"] = {d.fault_class: d.alarm_windows for d in dets}
        elif det in ("ahu", "ahu_lab"):
            from tools.fdd import ahu

            cfg = scn.ahu.config("lab" if det == "ahu_lab" else "field")
            fl = ahu.flags(frame, cfg)
            if detector_rows is None or det == "ahu_lab":
                detector_rows = fl["any"]
            extra[f"{det}_flag_counts"] = {c: int(fl[c].sum()) for c in ahu.FC_NAMES}
            if truth is not None:
                rs = M.row_scores(fl["any"], truth)
                extra[f"{det}_rows"] = {
                    k: _r(v) if isinstance(v, float) else v for k, v in rs.__dict__.items()
                }
    if ctx is not None:
        await _close_agent(ctx)
    store.close()

    run = ScenarioRun(
        scn, folder, {}, frame, decisions, writes, quality, detector_rows=detector_rows
    )
    run.result = _score(
        scn, site, run, events, truth, replay_speedup=span_s / wall if wall > 0 else math.inf
    )
    run.result.update(
        {
            "mode": "open_loop",
            "agent": ctx is not None,
            "agent_errors": agent_errors[:5],
            "quality_error": sampler.error,
            "wall_s": round(wall, 3),
            "simulated_s": span_s,
            "cycles": math.ceil(span_s / scn.clock.cycle) if span_s else 0,
            "rows": len(frame),
            **extra,
        }
    )
    return run


def _period_s(frame: pd.DataFrame) -> float:
    if len(frame) < 2:
        return 0.0
    return float(pd.Series(frame.index).diff().dt.total_seconds().median())


async def _close_agent(ctx: Any) -> None:
    try:
        from agent.runtime import close
    except ImportError:  # pragma: no cover
        return
    await close(ctx)


QUALITY_SAMPLES = 40  # quality scored this many times over a run, for the report's plot


class QualitySampler:
    """Scores data quality (:func:`tools.quality.score`) a few dozen times over a run.

    The series is for the report ("quality over time"); a scorer that fails is noted
    once and the series stays empty — the run itself does not depend on it.
    """

    def __init__(
        self, store: Store, site: Site, cycles: int, tags: list[str] | None = None
    ) -> None:
        self.store, self.site = store, site
        self.every = max(1, cycles // QUALITY_SAMPLES)
        self.tags = tags
        self.rows: list[tuple[datetime, float, float]] = []
        self.error: str | None = None
        self._i = 0

    def from_agent(self, ctx: Any) -> bool:
        """Take the score the agent computed this cycle (its short cache), at no extra cost."""
        cached = getattr(ctx, "_quality_cache", None)
        if not cached:
            return False
        ts, res = cached
        vals = [float(v) for v in getattr(res, "scores", {}).values()]
        if vals and (not self.rows or self.rows[-1][0] != ts):
            self.rows.append((ts, float(np.mean(vals)), float(np.min(vals))))
        return True

    def __call__(self, now: datetime) -> None:
        self._i += 1
        if self.error is not None or self._i % self.every:
            return
        try:
            from tools.quality import score

            rep = score(self.store, self.site, now, tags=self.tags)
            s = pd.to_numeric(rep.points["score"], errors="coerce")
            self.rows.append((now, float(s.mean()), float(s.min())))
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["ts", "mean", "min"])


def _referenced(ctx: Any, site: Site) -> list[str] | None:
    tags = sorted(getattr(getattr(ctx, "engine", None), "referenced_tags", None) or [])
    tags = [t for t in tags if t in site.points_by_tag]
    return tags or None


# ---- closed loop --------------------------------------------------------------------------
def _twin_faults(scn: Scenario) -> list[Any]:
    from twin.faults import Fault

    assert isinstance(scn.source, TwinSource)
    out = []
    for i, f in enumerate(scn.source.faults):
        try:
            out.append(Fault(**f.model_dump()))
        except ValueError as err:
            raise ScenarioConfigError(f"scenario.yaml: source.faults[{i}]: {err}") from None
    return out


async def _twin_run(
    scn: Scenario,
    site: Site,
    workdir: Path,
    *,
    with_agent: bool,
    progress: Progress | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, Any, float]:
    from twin.sim import Twin

    assert isinstance(scn.source, TwinSource)
    twin = Twin(site, seed=scn.source.seed)
    for f in _twin_faults(scn):
        twin.inject(f)
    clock = ManualClock(twin.now.replace(tzinfo=None))
    suffix = "agent" if with_agent else "baseline"
    store = Store(workdir / f"{scn.name}-{suffix}.duckdb")
    ids = store.register_site(site)
    writer = TwinWriter(twin, clock)
    ctx = _agent_context(scn, Path("."), site, store, writer, clock) if with_agent else None
    step = scn.clock.cycle
    sample = min(scn.clock.sample, step)
    per_cycle = max(1, round(step / sample))
    sample = step / per_cycle
    n = math.ceil(scn.source.duration / step)
    rows: list[dict[str, float]] = []
    index: list[datetime] = []
    tags = list(ids)
    id_arr = np.array([ids[t] for t in tags], dtype=np.int32)
    sampler = QualitySampler(store, site, n, _referenced(ctx, site)) if with_agent else None
    qwall = 0.0
    wall0 = time.perf_counter()
    for i in range(n):
        for _ in range(per_cycle):
            twin.step(sample)
            clock.set(twin.now.replace(tzinfo=None))
            vals = twin.values()
            down = twin.unavailable()
            v = np.array([vals.get(t, math.nan) for t in tags], dtype=float)
            st = np.array(
                [
                    Status.NOT_CONNECTED
                    if t in down
                    else (Status.DECODE_ERROR if math.isnan(x) else Status.OK)
                    for t, x in zip(tags, v, strict=True)
                ],
                dtype=np.uint8,
            )
            v[st != Status.OK] = np.nan
            store.append(np.full(len(tags), np.datetime64(clock.now(), "us")), id_arr, v, st)
        if ctx is not None:
            twin.write(HEARTBEAT_TAG, float(i + 1))  # the agent process's heartbeat to the BMS
            await _decide(ctx, scn.agent.approval_ttl)
        if sampler is not None and not sampler.from_agent(ctx):
            q0 = time.perf_counter()
            sampler(clock.now())
            qwall += time.perf_counter() - q0
        rows.append(twin.true_values())
        index.append(clock.now())
        if progress is not None:
            progress((i + 1) / n)
    wall = time.perf_counter() - wall0 - qwall
    series = pd.DataFrame(rows, index=pd.DatetimeIndex(index, name="ts"))
    decisions = _table(store, "decisions_latest")
    actions = _table(store, "actions_latest")
    writes = _writes_with_decisions(writer.log.frame(), actions)
    quality = sampler.frame() if sampler is not None else pd.DataFrame()
    if ctx is not None:
        await _close_agent(ctx)
    store.close()
    return series, decisions, writes, quality, ctx, wall


async def _closed_loop(
    scn: Scenario, folder: Path, workdir: Path, progress: Progress | None
) -> ScenarioRun:
    assert isinstance(scn.source, TwinSource)
    _reset_fdd(scn)
    site = with_poll_floor(scenario_site(scn, folder), min(scn.clock.sample, scn.clock.cycle))
    base = pd.DataFrame()
    if scn.source.baseline:
        base, *_ = await _twin_run(
            scn, site, workdir, with_agent=False,
            progress=(lambda f: progress(0.3 * f)) if progress else None,
        )  # fmt: skip
    series, decisions, writes, quality, ctx, wall = await _twin_run(
        scn, site, workdir, with_agent=scn.agent.enabled,
        progress=(lambda f: progress(0.3 + 0.7 * f)) if progress else None,
    )  # fmt: skip
    t0 = (
        pd.Timestamp(series.index[0]) - pd.Timedelta(seconds=scn.clock.cycle)
        if len(series)
        else pd.Timestamp(0)
    )
    events = M.agent_fault_events(decisions, t0)
    run = ScenarioRun(scn, folder, {}, series, decisions, writes, quality, base)
    agent_tot = M.plant_totals(series, scn.clock.cycle)
    base_tot = M.plant_totals(base, scn.clock.cycle) if not base.empty else None
    run.result = _score(
        scn, site, run, events, None,
        replay_speedup=scn.source.duration / wall if wall > 0 else math.inf,
        energy=(agent_tot, base_tot),
    )  # fmt: skip
    run.result.update(
        {
            "mode": "closed_loop",
            "agent": ctx is not None,
            "wall_s": round(wall, 3),
            "simulated_s": scn.source.duration,
            "cycles": len(series),
            "agent_run": _totals_dict(agent_tot),
            "baseline_run": _totals_dict(base_tot) if base_tot else None,
        }
    )
    return run


def _totals_dict(t: M.PlantTotals | None) -> dict[str, float | None] | None:
    if t is None:
        return None
    return {
        k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else None)
        for k, v in t.__dict__.items()
    }


# ---- scoring ------------------------------------------------------------------------------
def _score(
    scn: Scenario,
    site: Site,
    run: ScenarioRun,
    events: list[tuple[str, float, str]],
    truth: pd.Series | None,
    *,
    replay_speedup: float,
    energy: tuple[M.PlantTotals, M.PlantTotals | None] | None = None,
) -> dict[str, Any]:
    exp = scn.expect
    expected = [f.fault_class for f in exp.faults]
    detected = M.first_detections(events)
    # false alarms are judged where the scenario says what is (or is not) there
    judged = bool(exp.faults) or exp.no_fault_alarms
    false = M.false_alarms(detected, expected) if judged else []
    unsafe = M.unsafe_writes(
        run.writes,
        site,
        run.decisions,
        nothing_written=exp.nothing_written,
        allowed_tags=(HEARTBEAT_TAG,),
    )
    autonomy = M.max_autonomy(run.decisions)
    rows = (
        M.row_scores(run.detector_rows, truth)
        if truth is not None and run.detector_rows is not None
        else None
    )
    failures: list[str] = []
    by_cls = {d.fault_class: d for d in detected}
    for f in exp.faults:
        d = by_cls.get(f.fault_class)
        if d is None:
            failures.append(f"{f.fault_class} not detected")
        elif f.within is not None and d.first_detected_s > f.within:
            failures.append(
                f"{f.fault_class} detected after {d.first_detected_s:.0f} s > {f.within:.0f} s"
            )
    if exp.no_fault_alarms and detected:
        failures.append(f"fault alarms on fault-free data: {[d.fault_class for d in detected]}")
    if unsafe:
        failures.append(
            f"{len(unsafe)} unsafe writes, e.g. {unsafe[0].tag}={unsafe[0].value}: {unsafe[0].why}"
        )
    if exp.max_autonomy is not None and autonomy > exp.max_autonomy:
        failures.append(f"effective autonomy reached {autonomy} > {exp.max_autonomy}")
    if exp.approval_requested and M.approvals_requested(run.decisions) == 0:
        failures.append("no approval was requested")
    violations = M.constraint_violations(run.decisions)
    if exp.no_constraint_violated and violations:
        failures.append(f"{violations} actions carried out against a violated constraint")
    if exp.row_recall_min is not None and (
        rows is None or (rows.recall or 0.0) < exp.row_recall_min
    ):
        failures.append(f"row recall {rows.recall if rows else None} < {exp.row_recall_min}")
    if exp.row_specificity_min is not None and (
        rows is None or (rows.specificity or 0.0) < exp.row_specificity_min
    ):
        failures.append(
            f"row specificity {rows.specificity if rows else None} < {exp.row_specificity_min}"
        )
    saving = envelope = throttle = None
    extra: dict[str, Any] = {}
    if energy is not None:
        agent_tot, base_tot = energy
        saving = M.saving(agent_tot.cooling_kwh, base_tot.cooling_kwh) if base_tot else None
        envelope, throttle = agent_tot.envelope_minutes, agent_tot.throttle_minutes
        extra = {
            "pue": _r(agent_tot.pue),
            "baseline_pue": _r(base_tot.pue) if base_tot else None,
            "throttle_minutes": throttle,
            "baseline_envelope_minutes": base_tot.envelope_minutes if base_tot else None,
            "on_battery_minutes": agent_tot.on_battery_minutes,
        }
        if exp.energy_saving_min is not None and (saving is None or saving < exp.energy_saving_min):
            failures.append(f"cooling energy saving {saving} < {exp.energy_saving_min}")
        if exp.envelope_minutes_max is not None and envelope > exp.envelope_minutes_max:
            failures.append(
                f"{envelope:.0f} min outside the thermal envelope > {exp.envelope_minutes_max}"
            )
        if (
            exp.envelope_not_worse_than_baseline
            and base_tot is not None
            and envelope > base_tot.envelope_minutes
        ):
            failures.append(
                f"{envelope:.0f} min outside the thermal envelope, the native control had "
                f"{base_tot.envelope_minutes:.0f}"
            )
        if exp.throttle_minutes_max is not None and throttle > exp.throttle_minutes_max:
            failures.append(f"{throttle:.0f} GPU throttle minutes > {exp.throttle_minutes_max}")
    return {
        "name": scn.name,
        "passed": not failures,
        "expected_faults": expected,
        "detected_faults": [
            {
                "fault_class": d.fault_class,
                "first_detected_s": d.first_detected_s,
                "source": d.source,
            }
            for d in detected
        ],
        "agent_detected_faults": [
            {"fault_class": d.fault_class, "first_detected_s": d.first_detected_s}
            for d in M.first_detections(e for e in events if e[2] == "agent")
        ],
        "false_alarms": len(false),
        "unsafe_actions": len(unsafe),
        "max_effective_autonomy": autonomy,
        "row_precision": _r(rows.precision) if rows else None,
        "row_recall": _r(rows.recall) if rows else None,
        "row_specificity": _r(rows.specificity) if rows else None,
        "cooling_energy_saving": _r(saving),
        "envelope_violation_minutes": envelope,
        "replay_speedup": _r(replay_speedup, 1),
        "failures": failures,
        "false_alarm_classes": false,
        "unsafe_details": [u.__dict__ for u in unsafe[:10]],
        "decisions": len(run.decisions),
        "approvals_requested": M.approvals_requested(run.decisions),
        "writes": len(run.writes),
        "constraint_violations": violations,
        "description": scn.description,
        **extra,
    }


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None if x is None or math.isnan(x) else x
    return round(float(x), nd)


# ---- entry points -------------------------------------------------------------------------
async def run_scenario_async(
    folder: str | Path, workdir: str | Path, progress: Progress | None = None
) -> ScenarioRun:
    scn, path = load_scenario(folder)
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    if scn.closed_loop:
        return await _closed_loop(scn, path, wd, progress)
    return await _open_loop(scn, path, wd, progress)


def run_scenario(
    folder: str | Path, workdir: str | Path, progress: Progress | None = None
) -> ScenarioRun:
    """Run one scenario folder; databases go to ``workdir``. Raises ConfigError on a bad scenario."""
    return asyncio.run(run_scenario_async(folder, workdir, progress))


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``results.json`` document (issue 6 shape plus extra fields)."""
    return {
        "summary": {
            "scenarios": len(results),
            "passed": sum(1 for r in results if r.get("passed")),
            "unsafe_actions": sum(int(r.get("unsafe_actions", 0)) for r in results),
            "false_alarms": sum(int(r.get("false_alarms", 0)) for r in results),
        },
        "scenarios": results,
    }


def error_result(name: str, err: Exception) -> dict[str, Any]:
    """A scenario that could not run is a failed scenario with its error, not a crash of the suite."""
    return {
        "name": name, "passed": False, "expected_faults": [], "detected_faults": [],
        "false_alarms": 0, "unsafe_actions": 0, "max_effective_autonomy": 0,
        "row_precision": None, "row_recall": None, "row_specificity": None,
        "cooling_energy_saving": None, "envelope_violation_minutes": None, "replay_speedup": 0.0,
        "failures": [f"could not run: {type(err).__name__}: {err}"],
    }  # fmt: skip
