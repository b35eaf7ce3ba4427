"""Public datasets → eval scenario folders (``scenario.yaml`` + ``telemetry.parquet``).

* :func:`import_rp1043` — one RP-1043 fault file + the fault-free ``normal.xls``: the
  reference the chiller detector compares against is calibrated on the fault-free
  file and stored as ``reference.json``; when the file imported *is* the reference's
  (``normal.xls --reference normal.xls``) it is scored out of sample, each hour block
  by a reference fitted without it (``reference_folds.json``, :mod:`tools.fdd.crossval`); the expected fault class comes from the
  file's ``Y`` label (``CF`` → ``condenser_fouling`` …; ``Normal`` → no fault may be raised).
* :func:`import_lbnl` — an LBNL AHU CSV with its per-row ground truth (``fault``)
  and, when the inventory text sits beside it, the fault type of each date in
  ``fault_types.json``.
* :func:`import_esb` — the ESB chiller recording (no labels): normal operation, for
  replay — nothing may be written at decision support.
* :func:`record` — a live run captured from the store.

Scenario folders are written wherever ``out`` points; the suite builds them in a
temporary directory — the datasets are never copied into the repository.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import yaml

from connectors.errors import ConfigError
from connectors.site import Site
from connectors.store import Store
from evals.scenario import (
    AgentSettings,
    AhuSettings,
    Clock,
    Expect,
    ExpectedFault,
    ParquetSource,
    Scenario,
    dump_scenario,
)

TELEMETRY = "telemetry.parquet"
REFERENCE = "reference.json"
REFERENCE_FOLDS = "reference_folds.json"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _write_frame(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TELEMETRY
    out = frame.copy()
    out.index = pd.DatetimeIndex(out.index, name="ts")
    out.attrs = {}
    out.to_parquet(path, compression="zstd")
    return path


#: RP-1043 files whose fault the chiller detector is not claimed to find, with why (measured
#: by ``facility-agent bench fdd``: the fault's mean shift of its primary feature against the
#: out-of-fold spread of window residuals on normal.xls). Their scenarios judge that no
#: *other* class is raised; finding them is reported, not required.
RP1043_BELOW_LIMIT: dict[str, str] = {
    "cf12": "condenser approach +0.25 K on average (+0.5 to +1.0 K only above ~280 kW) "
    "against a 0.30 K held-out spread: 0.8 sigma",
    "rl10": "subcooling +0.06 K on average (−0.6 to −1.5 K only at 4.5 °C chilled water and "
    "low load) against a 0.30 K held-out spread: 0.2 sigma",
}


def import_rp1043(
    fault_file: str | Path, reference_file: str | Path, out: str | Path, *, cycle: str = "5m"
) -> Path:
    """Build an RP-1043 scenario folder; returns it."""
    from connectors.importers.rp1043 import read_rp1043
    from tools.fdd.chiller import ChillerReference, fault_class_for_label
    from tools.fdd.crossval import FOLDS, fold_references, save_folds

    fault_path, ref_path, folder = Path(fault_file), Path(reference_file), Path(out)
    df = read_rp1043(fault_path)
    normal = read_rp1043(ref_path)
    if fault_class_for_label(normal.attrs.get("label", "")) is not None:
        raise ConfigError(
            f"{ref_path}: --reference must be fault-free data, label is {normal.attrs['label']!r}"
        )
    fault_class = fault_class_for_label(df.attrs.get("label") or fault_path.stem)
    ref = ChillerReference.fit(normal, source=ref_path.name)
    _write_frame(df, folder)
    ref.save(folder / REFERENCE)
    # the reference's own file is scored out of sample: k-fold over hour blocks
    own = _same_file(fault_path, ref_path)
    if own:
        folds = fold_references(normal, FOLDS, source=ref_path.name)
        save_folds(folder / REFERENCE_FOLDS, folds, FOLDS)
    hours = (df.index[-1] - df.index[0]).total_seconds() / 3600
    below = RP1043_BELOW_LIMIT.get(fault_path.stem.lower()) if fault_class is not None else None
    if fault_class is None:
        expect = Expect(no_fault_alarms=True, nothing_written=True, max_autonomy=1)
    elif below is not None:
        expect = Expect(below_detection_limit=[fault_class], nothing_written=True, max_autonomy=1)
    else:
        expect = Expect(
            faults=[ExpectedFault(fault_class=fault_class)], nothing_written=True, max_autonomy=1
        )
    scn = Scenario(
        name=f"rp1043-{fault_path.stem}",
        description=(
            f"ASHRAE RP-1043 {fault_path.name} ({df.attrs.get('label', '')}: "
            f"{fault_class or 'fault-free'}), {hours:.1f} h at 10 s; reference {ref_path.name}"
            + (
                f", scored out of sample ({FOLDS}-fold over hour blocks: each block judged by "
                "a reference fitted without it)"
                if own
                else ""
            )
            + (f"; below the detection limit: {below}" if below else "")
        ),
        site="rp1043",
        source=ParquetSource(
            file=TELEMETRY, reference=REFERENCE, reference_folds=REFERENCE_FOLDS if own else None
        ),
        clock=Clock(cycle=cycle),
        agent=AgentSettings(autonomy=1, policies=["fdd:chiller_fdd"]),
        detectors=["chiller"],
        expect=expect,
    )
    dump_scenario(scn, folder)
    return folder


def import_lbnl(
    csv_file: str | Path,
    out: str | Path,
    *,
    cycle: str = "1h",
    recall_min: float | None = 0.8,
    specificity_min: float | None = 0.9,
    fan_heat: float | None = None,
    commission_days: Sequence[str] = (),
) -> Path:
    """Build an LBNL AHU scenario folder (per-row ground truth ``fault``); returns it.

    The agent judges the unit with lab-grade tolerances: FLEXLAB's sensors are calibrated
    and the simulated units are noise-free. ``fan_heat`` (K) is the unit's supply-fan
    temperature rise, a commissioning value from the unit's documentation or commissioning,
    never read off the file scored; given, the tests across the fan use the lab tolerances
    too. Without it (the LBNL inventory documents none) G36's 1 °F is a guess, and those
    tests keep G36's field tolerances (:func:`tools.fdd.ahu.across_fan_tolerances`).

    ``commission_days`` (``YYYY-MM-DD``) are days the operator declares the unit healthy: the
    fan heat is measured on them (:mod:`tools.fdd.ahu_commission`) and they are left out of
    the scoring (their labels become unlabeled), so nothing is scored on what it learned."""
    from connectors.importers.lbnl import fault_type_by_date, read_lbnl

    path, folder = Path(csv_file), Path(out)
    df = read_lbnl(path)
    settings: dict[str, float | int | bool] = (
        {} if fan_heat is None else {"fan_heat": float(fan_heat), "fan_heat_commissioned": True}
    )
    learned = ""
    if commission_days:
        if fan_heat is not None:
            raise ConfigError(f"{path}: give --fan-heat or --commission-days, not both")
        settings, learned, df = _commission(df, path, commission_days)
        if not (df["fault"] == False).any():  # noqa: E712 — nullable booleans
            # every fault-free day went to commissioning: nothing left to measure it on
            specificity_min = None
            learned += "; specificity not measurable (no fault-free day left to score)"
    _write_frame(df, folder)
    inventory = path.parent / "LBNLDataSynthesisInventory.txt"
    if inventory.is_file():
        try:
            by_date = fault_type_by_date(inventory, path.stem)
        except ConfigError:
            by_date = {}
        (folder / "fault_types.json").write_text(
            json.dumps({d.isoformat(): v for d, v in sorted(by_date.items())}, indent=1)
        )
    share = float(df["fault"].mean()) if "fault" in df else 0.0
    scn = Scenario(
        name=f"lbnl-{path.stem}",
        description=(
            f"LBNL {path.name}: {len(df)} one-minute rows, {share:.0%} faulted (per-row ground truth); "
            "G36 fault conditions scored per row" + learned
        ),
        site="lbnl",
        source=ParquetSource(file=TELEMETRY, truth="fault"),
        clock=Clock(cycle=cycle),
        agent=AgentSettings(autonomy=1, policies=["fdd:ahu_fdd"]),
        detectors=["ahu", "ahu_lab"],
        ahu=AhuSettings(grade="lab", settings=settings),
        expect=Expect(
            nothing_written=True,
            max_autonomy=1,
            row_recall_min=recall_min,
            row_specificity_min=specificity_min,
        ),
    )
    dump_scenario(scn, folder)
    return folder


def _commission(
    df: pd.DataFrame, path: Path, days: Sequence[str]
) -> tuple[dict[str, float | int | bool], str, pd.DataFrame]:
    """The fan heat learned on ``days`` of ``df`` as scenario settings, a description, and
    ``df`` with those days unlabeled (not scored). Errors name the file and the day."""
    from tools.fdd.ahu import LAB_GRADE
    from tools.fdd.ahu_commission import learn_fan_heat

    day = pd.DatetimeIndex(df.index).normalize()
    mask = pd.Series(False, index=df.index)
    for d in days:
        try:
            ts = pd.Timestamp(d).normalize()
        except ValueError as err:
            raise ConfigError(f"{path}: commissioning day {d!r}: {err}") from err
        hit = day == ts
        if not hit.any():
            raise ConfigError(f"{path}: commissioning day {d} is not in the file")
        mask |= hit
    try:
        fh = learn_fan_heat(df.loc[mask.to_numpy()].drop(columns=["fault"]), LAB_GRADE)
    except ValueError as err:
        raise ConfigError(f"{path}: commissioning days {', '.join(days)}: {err}") from err
    out = df.copy()
    out.loc[mask.to_numpy(), "fault"] = pd.NA
    settings: dict[str, float | int | bool] = {
        "fan_heat": round(fh.base, 3),
        "fan_heat_speed2": round(fh.speed2, 3),
        "fan_heat_spread": round(fh.spread, 3),
        "fan_heat_commissioned": True,
    }
    return settings, f"; {fh.describe()} on {', '.join(days)} (not scored)", out


def import_esb(csv_file: str | Path, out: str | Path, *, cycle: str = "1h") -> Path:
    """Build the ESB chiller scenario folder (normal operation, no labels); returns it."""
    from connectors.importers.esb import read_esb

    path, folder = Path(csv_file), Path(out)
    df = read_esb(path)
    _write_frame(df, folder)
    days = (df.index[-1] - df.index[0]).total_seconds() / 86400
    scn = Scenario(
        name=f"esb-{path.stem}",
        description=f"Vanderbilt ESB chiller 1, {days:.0f} days at 5 min, no fault labels: replay only",
        site="esb",
        source=ParquetSource(file=TELEMETRY),
        clock=Clock(cycle=cycle),
        agent=AgentSettings(autonomy=1, policies=[]),
        expect=Expect(nothing_written=True, max_autonomy=1),
    )
    dump_scenario(scn, folder)
    return folder


def record(
    store: Store, site: Site, duration_s: float, out: str | Path, *, now: datetime | None = None
) -> Path:
    """Capture the last ``duration_s`` of the store's readings as a replayable scenario."""
    folder = Path(out)
    end = now or _latest_ts(store)
    start = end - timedelta(seconds=duration_s)
    long = store.query(
        "SELECT r.ts, p.tag, r.value FROM readings r JOIN points p USING (point_id) "
        "WHERE r.ts > ? AND r.ts <= ? AND r.status = 0",
        [start, end],
    )
    tags = set(site.points_by_tag)
    long = long[long["tag"].isin(tags)]
    if long.empty:
        raise ConfigError(
            f"no good readings of site {site.name} between {start} and {end} to record"
        )
    wide = long.pivot_table(index="ts", columns="tag", values="value", aggfunc="last").sort_index()
    wide.columns = [str(c) for c in wide.columns]
    _write_frame(wide, folder)
    (folder / "site.yaml").write_text(
        yaml.safe_dump(
            site.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True
        )
    )
    scn = Scenario(
        name=f"recorded-{end:%Y%m%dT%H%M%S}",
        description=f"live run of {site.name} recorded {start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC",
        site="site.yaml",
        source=ParquetSource(file=TELEMETRY),
        clock=Clock(cycle=60.0),
        agent=AgentSettings(autonomy=1),
        expect=Expect(nothing_written=True, max_autonomy=1),
    )
    dump_scenario(scn, folder)
    return folder


def _latest_ts(store: Store) -> datetime:
    df = store.query("SELECT max(ts) AS ts FROM readings")
    ts = df["ts"].iloc[0] if len(df) else None
    if ts is None or pd.isna(ts):
        raise ConfigError(f"{store.path}: the store holds no readings to record")
    return pd.Timestamp(ts).to_pydatetime()


def public_scenarios(datasets: Path, out: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Every scenario buildable from ``datasets`` (../shared/datasets) into ``out``; absent files skipped."""
    built: list[Path] = []
    rp = datasets / "rp1043"
    want = set(names) if names is not None else None

    def wanted(name: str) -> bool:
        return want is None or name in want

    if (rp / "normal.xls").is_file():
        for f in sorted(rp.glob("*.xls")):
            if wanted(f"rp1043-{f.stem}"):
                built.append(import_rp1043(f, rp / "normal.xls", out / f"rp1043-{f.stem}"))
    # the rules were developed on SZCAV (in sample: reported without a pass mark); the
    # issue's targets (recall and specificity ≥ 0.8) are held on the other dataset
    for name, targets in (("SZCAV.csv", (None, None)), ("MZVAV-2-2.csv", (0.8, 0.8))):
        f = datasets / "lbnl" / name
        if f.is_file() and wanted(f"lbnl-{f.stem}"):
            built.append(import_lbnl(f, out / f"lbnl-{f.stem}", recall_min=targets[0],
                                     specificity_min=targets[1]))  # fmt: skip
    esb = datasets / "esb" / "esb_chiller1.csv"
    if esb.is_file() and wanted(f"esb-{esb.stem}"):
        built.append(import_esb(esb, out / f"esb-{esb.stem}"))
    return built
