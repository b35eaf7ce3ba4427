"""Eval report: ``DIR/results.json`` (issue 6's shape plus extra fields), ``DIR/report.md``, PNG plots.

Plots (matplotlib, Agg backend — no display needed), one set per scenario:

* ``<name>-telemetry.png`` — the points that matter for the scenario, with
  detections (agent: solid red, detector: dashed orange) and writes (green) marked;
* ``<name>-quality.png`` — data-quality score over time (mean and weakest point),
  when the agent stored quality scores;
* ``<name>-energy.png`` — closed loop: cumulative cooling energy, agent against the
  twin's native control.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from evals.runner import ScenarioRun, summarise

PREFERRED = (
    # RP-1043 chiller
    "TCO", "TRC", "TEO", "TRE", "TRC_sub", "Tsh_suc", "kW", "FWC", "FWE",
    # LBNL AHU
    "supply_air_temp", "mixed_air_temp", "outdoor_air_temp", "return_air_temp",
    "cooling_valve", "heating_valve", "oa_damper",
    # twin
    "plant.cooling_power", "plant.it_power", "plant.pue", "chiller_1.chw_supply_temp",
    "ct_1.cw_supply_temp", "crah_1.rack_inlet_temp", "gpu.gpu_temp_max", "ups_1.on_battery",
)  # fmt: skip
MAX_POINTS = 4_000  # plotted samples per series (downsampled by striding)


def _columns(frame: pd.DataFrame, limit: int = 6) -> list[str]:
    cols = [c for c in PREFERRED if c in frame.columns]
    if not cols:
        cols = [
            c
            for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
        ]
    return cols[:limit]


def _stride(frame: pd.DataFrame) -> pd.DataFrame:
    step = max(1, len(frame) // MAX_POINTS)
    return frame.iloc[::step]


def plot_telemetry(run: ScenarioRun, path: Path) -> Path | None:
    frame = run.telemetry
    cols = _columns(frame)
    if frame.empty or not cols:
        return None
    t0 = frame.index[0]
    data = _stride(frame[cols])
    fig, axes = plt.subplots(
        len(cols), 1, figsize=(11, 1.6 * len(cols) + 1), sharex=True, squeeze=False
    )
    hours = (data.index - t0).total_seconds() / 3600
    for ax, c in zip(axes[:, 0], cols, strict=True):
        y = pd.to_numeric(data[c], errors="coerce")
        lo, hi = (
            y.quantile(0.01),
            y.quantile(0.99),
        )  # dirty data (1e10 kW) must not flatten the plot
        ax.plot(hours, y.clip(lo, hi) if math.isfinite(lo) and math.isfinite(hi) else y, lw=0.8)
        ax.set_ylabel(c, fontsize=8)
        for d in run.result.get("detected_faults", []):
            ax.axvline(d["first_detected_s"] / 3600, color="tab:orange", ls="--", lw=1)
        for d in run.result.get("agent_detected_faults", []):
            ax.axvline(d["first_detected_s"] / 3600, color="tab:red", lw=1)
        if not run.writes.empty:
            for ts in run.writes["ts"]:
                ax.axvline(
                    (pd.Timestamp(ts) - t0).total_seconds() / 3600,
                    color="tab:green",
                    lw=0.6,
                    alpha=0.6,
                )
    axes[-1, 0].set_xlabel("hours from start")
    labels = ", ".join(
        f"{d['fault_class']} @ {d['first_detected_s'] / 3600:.1f} h"
        for d in run.result.get("detected_faults", [])
    )
    fig.suptitle(f"{run.scenario.name}: detections {labels or 'none'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_quality(run: ScenarioRun, path: Path) -> Path | None:
    q = run.quality
    if q.empty:
        return None
    fig, ax = plt.subplots(figsize=(11, 3))
    ts = pd.to_datetime(q["ts"])
    ax.plot(ts, q["mean"], label="mean point score")
    ax.plot(ts, q["min"], label="weakest point", alpha=0.7)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("data quality")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{run.scenario.name}: data quality over time", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


BASELINE_LABELS = {
    "legacy": "legacy native control (7 °C CHW, 29 °C CW, constant pumps)",
    "g36": "G36 native control (CHW/DP reset, CW = wet bulb + 4 K, fan reset)",
    "None": "legacy native control (7 °C CHW, 29 °C CW, constant pumps)",
}


def plot_energy(run: ScenarioRun, path: Path) -> Path | None:
    col = "plant.cooling_power"
    if run.baseline.empty or col not in run.telemetry or col not in run.baseline:
        return None
    step_h = run.scenario.clock.cycle / 3600
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for frame, label in (
        (
            run.baseline,
            BASELINE_LABELS.get(str(run.result.get("baseline_control")), "native control"),
        ),
        (run.telemetry, "agent"),
    ):
        hours = (frame.index - frame.index[0]).total_seconds() / 3600
        ax.plot(hours, frame[col].cumsum() * step_h, label=label)
    ax.set_xlabel("hours")
    ax.set_ylabel("cooling energy, kWh")
    saving = run.result.get("cooling_energy_saving")
    ax.set_title(
        f"{run.scenario.name}: cooling energy, saving {saving:.1%}"
        if saving is not None
        else run.scenario.name,
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _expected(r: dict[str, Any]) -> str:
    """The expected classes, and those present but measured below the detection limit."""
    below = [f"{c} (below detection limit)" for c in r.get("below_detection_limit") or []]
    return ", ".join([*r["expected_faults"], *below]) or "–"


def _judged(v: Any) -> str:
    """A count that a scenario may not judge at all: ``None`` reads "not judged", not 0."""
    return "not judged" if v is None else str(v)


def markdown(doc: dict[str, Any], plots: dict[str, list[str]]) -> str:
    s = doc["summary"]
    lines = [
        "# Eval report",
        "",
        f"**{s['passed']} / {s['scenarios']} scenarios passed** — unsafe actions: {s['unsafe_actions']}, "
        f"false alarms: {s['false_alarms']} in the {s.get('false_alarms_judged_in', s['scenarios'])} "
        "scenarios that judge them (fault-free data or named faults; "
        f"not judged in {s.get('false_alarms_not_judged_in', 0)}).",
        "",
        "| scenario | passed | expected | detected (first, s) | false alarms | unsafe | max level "
        "| row P / R / spec | energy saving | envelope min | speed-up | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["scenarios"]:
        det = ", ".join(
            f"{d['fault_class']} ({d['first_detected_s']:.0f}, {d.get('source', '')})"
            for d in r["detected_faults"]
        )
        rows = " / ".join(
            _fmt(r.get(k)) for k in ("row_precision", "row_recall", "row_specificity")
        )
        lines.append(
            f"| {r['name']} | {'✅' if r['passed'] else '❌'} | {_expected(r)} | {det or '–'} "
            f"| {_judged(r.get('false_alarms'))} | {r['unsafe_actions']} | {r['max_effective_autonomy']} | {rows} "
            f"| {_fmt(r.get('cooling_energy_saving'))} | {_fmt(r.get('envelope_violation_minutes'))} "
            f"| {_fmt(r.get('replay_speedup'))}× | {_fmt(r.get('scenario_wall_s'))} |"
        )
    lines.append("")
    for r in doc["scenarios"]:
        lines += [f"## {r['name']}", "", r.get("description", "") or ""]
        if r.get("failures"):
            lines += ["", "Failed expectations:", *[f"- {f}" for f in r["failures"]]]
        extra = {
            k: v
            for k, v in r.items()
            if k.endswith(("_rows", "_tpr_fpr", "_windows"))
            or k
            in (
                "agent_run",
                "baseline_run",
                "pue",
                "baseline_pue",
                "cooling_energy_saving_vs",
                "chiller_scored",
            )
            or k.startswith(("whatif_", "calibration", "plant_matches_model"))
        }
        if extra:
            lines += ["", "```json", json.dumps(extra, indent=1), "```"]
        for p in plots.get(r["name"], []):
            lines += ["", f"![{Path(p).stem}]({p})"]
        lines.append("")
    return "\n".join(lines)


def write_report(
    runs: Sequence[ScenarioRun],
    report_dir: str | Path,
    extra_results: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Write results.json, report.md and the plots; returns the results document."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = [r.result for r in runs] + list(extra_results)
    doc = summarise(results)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    plots: dict[str, list[str]] = {}
    for run in runs:
        name = run.scenario.name
        made = [
            plot_telemetry(run, out / f"{name}-telemetry.png"),
            plot_quality(run, out / f"{name}-quality.png"),
            plot_energy(run, out / f"{name}-energy.png"),
        ]
        plots[name] = [p.name for p in made if p is not None]
        if (
            not run.baseline.empty
        ):  # closed loop: keep both twin series for analysis (report dir only)
            run.telemetry.to_parquet(out / f"{name}-agent-series.parquet", compression="zstd")
            run.baseline.to_parquet(out / f"{name}-baseline-series.parquet", compression="zstd")
    (out / "report.md").write_text(markdown(doc, plots))
    return doc
