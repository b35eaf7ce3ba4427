"""The daily report: one self-contained HTML page (PNG plots inlined) per site-local day.

Sections: energy by subsystem (IT, chillers, towers, pumps, CRAH/CDU) and their power
over the day, PUE over the day, data quality by equipment (share of readings stored ok,
and the mean quality score where ``quality`` holds scores), faults raised and cleared
(``faults``, :mod:`tools.policies.faults`: every fault open at some time of the day, with
its duration, on a timeline), the decisions on faults, decisions by outcome, approvals and
who answered, writes with their read-back.

Readings come from raw rows and, for minutes retention already moved, from the
``readings_1m`` roll-ups, in 5-minute buckets. A bucket without data stays empty (NaN),
so no line is drawn across a gap; energy counts only the buckets with data and the
page says how much of the day that is.

:func:`make_report` writes ``<dir>/report-<site>-<date>.html`` and returns its path.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from connectors.site import EquipmentKind, Site
from connectors.store import Store
from tools.policies.faults import faults as fault_rows

BUCKET = timedelta(minutes=5)

#: subsystem → (equipment kinds, power point names) — tables, not branches
SUBSYSTEMS: dict[str, tuple[frozenset[EquipmentKind], frozenset[str]]] = {
    "IT": (frozenset({EquipmentKind.GPU_CLUSTER}), frozenset({"it_power"})),
    "chillers": (frozenset({EquipmentKind.CHILLER}), frozenset({"power"})),
    "towers": (frozenset({EquipmentKind.COOLING_TOWER}), frozenset({"fan_power", "power"})),
    "pumps": (frozenset({EquipmentKind.PUMP}), frozenset({"power"})),
    "CRAH/CDU": (
        frozenset({EquipmentKind.CRAH, EquipmentKind.CDU}),
        frozenset({"fan_power", "pump_power", "power"}),
    ),
}
#: a site-wide meter's total (PUE numerator) and IT (denominator), when the site has them
FACILITY_POWER = "facility_power"
IT_POWER = "it_power"


def report_name(site: str, day: date) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in site)
    return f"report-{safe}-{day.isoformat()}.html"


def report_path(folder: str | Path, site: str, day: date) -> Path:
    return Path(folder) / report_name(site, day)


def subsystem_tags(site: Site) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, (kinds, points) in SUBSYSTEMS.items():
        out[name] = [
            f"{eq.id}.{p.name}"
            for eq, p in site.iter_points()
            if eq.kind in kinds and p.name in points and p.unit == "kW"
        ]
    return out


def meter_tags(site: Site) -> tuple[str, str] | None:
    """(facility, IT) power of one meter that has both, if the site has one."""
    for eq in site.equipment:
        names = {p.name for p in eq.points}
        if eq.kind is EquipmentKind.METER and {FACILITY_POWER, IT_POWER} <= names:
            return f"{eq.id}.{FACILITY_POWER}", f"{eq.id}.{IT_POWER}"
    return None


# ---- data ----------------------------------------------------------------------------------
def bucketed(store: Store, tags: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    """5-minute means of good values, raw rows and roll-ups together: index = every bucket of
    the day (NaN where nothing was stored), one column per tag."""
    grid = pd.date_range(start, end, freq=BUCKET, inclusive="left")
    known = [t for t in tags if t in store.tags]
    if not known:
        return pd.DataFrame(index=grid, columns=tags, dtype=float)
    ids = store.ids(known)
    secs = int(BUCKET.total_seconds())
    df = store.query(
        f"""
        WITH raw AS (
            SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b, point_id,
                   sum(value) AS s, count(*) AS n
            FROM readings WHERE status = 0 AND ts >= ? AND ts < ?
              AND point_id IN (SELECT unnest(?::INTEGER[])) GROUP BY ALL),
        ru AS (
            SELECT time_bucket(INTERVAL '{secs} seconds', bucket) AS b, point_id,
                   sum(vmean * n) AS s, sum(n) AS n
            FROM readings_1m WHERE n > 0 AND bucket >= ? AND bucket < ?
              AND point_id IN (SELECT unnest(?::INTEGER[])) GROUP BY ALL)
        SELECT b, point_id, sum(s) / sum(n) AS v
        FROM (SELECT * FROM raw UNION ALL SELECT * FROM ru) GROUP BY ALL""",
        [start, end, ids, start, end, ids],
    )
    by_id = dict(zip(ids, known, strict=True))
    if df.empty:
        return pd.DataFrame(index=grid, columns=tags, dtype=float)
    df["tag"] = df["point_id"].map(by_id)
    wide = df.pivot_table(index="b", columns="tag", values="v", aggfunc="mean")
    return wide.reindex(index=grid, columns=tags).astype(float)


def share_ok(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Per equipment: readings stored ok / all readings of the day (raw and roll-ups)."""
    return store.query(
        """
        WITH c AS (
            SELECT point_id, count(*) FILTER (WHERE status = 0) AS ok, count(*) AS n
            FROM readings WHERE ts >= ? AND ts < ? GROUP BY ALL
            UNION ALL
            SELECT point_id, sum(n), sum(n + n_bad) FROM readings_1m
            WHERE bucket >= ? AND bucket < ? GROUP BY ALL)
        SELECT p.equipment, sum(ok) / sum(n) AS share_ok, sum(n) AS n
        FROM c JOIN points p USING (point_id) GROUP BY ALL ORDER BY p.equipment""",
        [start, end, start, end],
    )


def _table(store: Store, name: str) -> bool:
    return bool(
        len(store.query("SELECT 1 FROM duckdb_tables() WHERE table_name = ?", [name]))
        or len(store.query("SELECT 1 FROM duckdb_views() WHERE view_name = ?", [name]))
    )


def _rows(store: Store, view: str, sql: str, params: list[Any]) -> pd.DataFrame:
    return store.query(sql, params) if _table(store, view) else pd.DataFrame()


@dataclass
class DayData:
    site: str
    day: date
    start: datetime  # UTC, naive
    end: datetime
    power: pd.DataFrame  # columns: subsystems, kW
    pue: pd.Series
    coverage: float  # share of the day's buckets with IT power
    quality: pd.DataFrame
    scores: pd.DataFrame
    faults: pd.DataFrame  # faults_latest rows open at some time of the day
    fault_decisions: pd.DataFrame
    outcomes: pd.DataFrame
    approvals: pd.DataFrame
    writes: pd.DataFrame

    @property
    def energy_kwh(self) -> dict[str, float]:
        h = BUCKET.total_seconds() / 3600
        return {c: float(self.power[c].sum(min_count=1) * h) for c in self.power.columns}


def gather(store: Store, site: Site, day: date) -> DayData:
    tz = site.schedule.tz
    start_l = datetime.combine(day, time(), tzinfo=tz)
    start = pd.Timestamp(start_l).tz_convert("UTC").tz_localize(None).to_pydatetime()
    end_l = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    end = pd.Timestamp(end_l).tz_convert("UTC").tz_localize(None).to_pydatetime()
    groups = subsystem_tags(site)
    meter = meter_tags(site)
    all_tags = sorted({t for ts in groups.values() for t in ts} | set(meter or ()))
    wide = bucketed(store, all_tags, start, end)
    power = pd.DataFrame(
        {g: wide[ts].sum(axis=1, min_count=len(ts)) if ts else np.nan for g, ts in groups.items()},
        index=wide.index,
    )
    if meter is not None:
        pue = wide[meter[0]] / wide[meter[1]]
    else:
        pue = power.sum(axis=1, min_count=len(power.columns)) / power["IT"]
    pue = pue.where(np.isfinite(pue) & (pue > 0))
    coverage = float(power["IT"].notna().mean()) if len(power) else 0.0
    day_rows = [start, end]
    return DayData(
        site=site.name,
        day=day,
        start=start,
        end=end,
        power=power,
        pue=pue,
        coverage=coverage,
        quality=share_ok(store, start, end),
        scores=_rows(
            store,
            "quality",
            "SELECT equipment, avg(score) AS score, min(score) AS worst FROM quality "
            "WHERE ts >= ? AND ts < ? GROUP BY ALL ORDER BY equipment",
            day_rows,
        ),
        faults=fault_rows(store, start, end, limit=10_000).sort_values("raised_at"),
        fault_decisions=_rows(
            store,
            "decisions_latest",
            "SELECT ts, policy_id, fault_class, severity, outcome, explanation "
            "FROM decisions_latest WHERE ts >= ? AND ts < ? "
            "AND (kind = 'fault' OR fault_class IS NOT NULL) ORDER BY ts",
            day_rows,
        ),
        outcomes=_rows(
            store,
            "decisions_latest",
            "SELECT outcome, count(*) AS n FROM decisions_latest WHERE ts >= ? AND ts < ? "
            "GROUP BY ALL ORDER BY n DESC",
            day_rows,
        ),
        approvals=_rows(
            store,
            "approvals_latest",
            "SELECT ts, approval_id, decision_id, state, by_whom, why FROM approvals_latest "
            "WHERE ts >= ? AND ts < ? ORDER BY ts",
            day_rows,
        ),
        writes=_rows(
            store,
            "actions_latest",
            "SELECT ts, tag, requested, written, read_back, state FROM actions_latest "
            "WHERE ts >= ? AND ts < ? ORDER BY ts",
            day_rows,
        ),
    )


# ---- plots ---------------------------------------------------------------------------------
def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def plot_power(d: DayData, tzname: str) -> str:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    x = d.power.index.tz_localize("UTC").tz_convert(tzname)
    for c in d.power.columns:
        ax.plot(x, d.power[c].to_numpy(), label=c, linewidth=1.2)  # NaN breaks the line
    ax.set_title("Power by subsystem", fontsize=10)
    ax.set_ylabel("power (kW)")
    ax.set_xlabel(f"time ({tzname})")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=x.tz))
    ax.set_xlim(x[0], x[-1] + BUCKET)  # the whole day: missing hours show as gaps
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.28))
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_energy(d: DayData) -> str:
    e = d.energy_kwh
    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    names = list(e)
    vals = [0.0 if np.isnan(v) else v for v in e.values()]
    ax.barh(names, vals, color="#4c78a8")
    for i, v in enumerate(e.values()):
        label = "  no data" if np.isnan(v) else f" {v:,.0f} kWh"
        ax.text(0 if np.isnan(v) else v, i, label, va="center", fontsize=8)
    ax.set_xlim(0, 1.2 * max(vals) if max(vals, default=0) > 0 else 1)
    ax.set_title("Energy by subsystem", fontsize=10)
    ax.set_xlabel("energy (kWh)")
    ax.invert_yaxis()
    return _png(fig)


def plot_pue(d: DayData, tzname: str) -> str:
    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    x = d.pue.index.tz_localize("UTC").tz_convert(tzname)
    ax.plot(x, d.pue.to_numpy(), color="#e45756", linewidth=1.2)  # NaN breaks the line
    ax.set_title("PUE (facility / IT power)", fontsize=10)
    ax.set_ylabel("PUE (-)")
    ax.set_xlabel(f"time ({tzname})")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=x.tz))
    ax.set_xlim(x[0], x[-1] + BUCKET)  # the whole day: missing hours show as gaps
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_quality(d: DayData) -> str:
    q = d.quality
    fig = Figure(figsize=(8, max(2.4, 0.22 * len(q) + 0.8)))
    ax = fig.subplots()
    if len(q):
        ax.barh(q["equipment"], 100 * q["share_ok"].astype(float), color="#54a24b")
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Readings stored ok, by equipment", fontsize=10)
    ax.set_xlabel("share ok (%)")
    return _png(fig)


def plot_outcomes(d: DayData) -> str:
    o = d.outcomes
    fig = Figure(figsize=(8, 2.4))
    ax = fig.subplots()
    if len(o):
        ax.barh(o["outcome"].astype(str), o["n"].astype(int), color="#f58518")
        ax.invert_yaxis()
    ax.set_title("Decisions by outcome", fontsize=10)
    ax.set_xlabel("decisions (count)")
    return _png(fig)


SEVERITY_COLOURS = {
    "critical": "#d62728",
    "high": "#ff7f0e",
    "medium": "#bcbd22",
    "low": "#17becf",
    "info": "#7f7f7f",
}
MIN_BAR = timedelta(minutes=3)  # a fault of seconds still shows on a day's axis


def _local(ts: Any, tzname: str) -> pd.Timestamp:
    return pd.Timestamp(ts).tz_localize("UTC").tz_convert(tzname)


def _is_open(r: dict[str, Any], end: datetime) -> bool:
    """Open at the end of the day: not cleared, or cleared after the day."""
    c = r["cleared_at"]
    return r["event"] != "cleared" or pd.isna(c) or pd.Timestamp(c) >= pd.Timestamp(end)


def plot_faults(d: DayData, tzname: str) -> str:
    """One row per fault instance, a bar from raised to cleared (hatched: still open at the
    end of the day); colour = severity."""
    f = d.faults
    keys = list(dict.fromkeys(f["instance_key"].astype(str))) if len(f) else []
    fig = Figure(figsize=(8, max(2.2, 0.35 * len(keys) + 1.4)))
    ax = fig.subplots()
    day0, day1 = _local(d.start, tzname), _local(d.end, tzname)
    for r in f.to_dict("records"):
        y = keys.index(str(r["instance_key"]))
        a = max(_local(r["raised_at"], tzname), day0)
        still = _is_open(r, d.end)
        b = day1 if still else min(_local(r["cleared_at"], tzname), day1)
        b = max(b, a + MIN_BAR)
        x0 = date2num(a.to_pydatetime())
        ax.broken_barh(
            [(x0, date2num(b.to_pydatetime()) - x0)],
            (y - 0.35, 0.7),
            facecolors=SEVERITY_COLOURS.get(str(r["severity"]), "#4c78a8"),
            edgecolor="black" if still else "none",
            hatch="//" if still else None,
            linewidth=0.5,
        )
    if keys:
        ax.set_yticks(range(len(keys)), labels=keys, fontsize=7)
        ax.set_ylim(len(keys) - 0.5, -0.5)
        sev = list(dict.fromkeys(f["severity"].astype(str)))
        ax.legend(
            handles=[Patch(color=SEVERITY_COLOURS.get(s, "#4c78a8"), label=s) for s in sev],
            fontsize=7,
            title="severity",
            title_fontsize=7,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
        )
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no fault this day", transform=ax.transAxes, ha="center", color="#777")
    ax.set_title("Faults: raised → cleared (hatched: open at the day's end)", fontsize=10)
    ax.set_xlabel(f"time ({tzname})")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=day0.tz))
    ax.set_xlim(day0.to_pydatetime(), day1.to_pydatetime())
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def fault_table(d: DayData, tzname: str) -> pd.DataFrame:
    """The day's faults for the page: times in site time (with the date when not this day),
    durations h:mm:ss, what raised and what cleared each."""

    def when(t: pd.Timestamp) -> str:
        return t.strftime("%H:%M:%S") if t.date() == d.day else t.strftime("%Y-%m-%d %H:%M:%S")

    rows = []
    for r in d.faults.to_dict("records"):
        cleared = r["event"] == "cleared" and not pd.isna(r["cleared_at"])
        raised = _local(r["raised_at"], tzname)
        if cleared:
            dur = _hms(float(r["duration_s"]))
        else:
            dur = f"open (≥ {_hms((pd.Timestamp(d.end) - pd.Timestamp(r['raised_at'])).total_seconds())})"
        rows.append(
            {
                "raised": when(raised),
                "cleared": when(_local(r["cleared_at"], tzname)) if cleared else "— (open)",
                "duration": dur,
                "equipment": r["equipment"] if isinstance(r["equipment"], str) else "site",
                "fault": r["fault_class"] if isinstance(r["fault_class"], str) else r["policy_id"],
                "severity": r["severity"],
                "raised on": r["evidence"],
                "cleared on": r["cleared_evidence"] if cleared else "",
            }
        )
    return pd.DataFrame(rows)


def fault_summary(d: DayData) -> str:
    f = d.faults
    if not len(f):
        return "No fault raised or open this day."
    start, end = pd.Timestamp(d.start), pd.Timestamp(d.end)
    raised = int(((f["raised_at"] >= start) & (f["raised_at"] < end)).sum())
    cl = f["cleared_at"]
    cleared = int((cl.notna() & (cl >= start) & (cl < end)).sum())
    still = sum(_is_open(r, d.end) for r in f.to_dict("records"))
    return (
        f"{raised} raised and {cleared} cleared this day; {still} open at the end of the day "
        "(a fault clears once its condition has been false for its policy's clear_after)."
    )


# ---- page ----------------------------------------------------------------------------------
def _html_table(df: pd.DataFrame, empty: str) -> str:
    if df is None or df.empty:
        return f"<p class=empty>{html.escape(empty)}</p>"
    return df.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}", border=0)


def render(d: DayData, tzname: str) -> str:
    plots = {
        "power": plot_power(d, tzname),
        "energy": plot_energy(d),
        "pue": plot_pue(d, tzname),
        "quality": plot_quality(d),
        "faults": plot_faults(d, tzname),
        "outcomes": plot_outcomes(d),
    }

    def img(name: str, alt: str) -> str:
        return f'<img alt="{alt}" data-plot="{name}" src="data:image/png;base64,{plots[name]}">'

    pue = d.pue.dropna()
    pue_txt = (
        f"mean {pue.mean():.3f}, min {pue.min():.3f}, max {pue.max():.3f}"
        if len(pue)
        else "no data"
    )
    title = f"{d.site} — daily report {d.day.isoformat()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}}
table{{border-collapse:collapse;font-size:.85rem}}td,th{{padding:.2rem .5rem;border-bottom:1px solid #ddd}}
img{{max-width:100%}}.empty{{color:#777}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Site time {html.escape(tzname)}: {d.start:%Y-%m-%d %H:%M} → {d.end:%Y-%m-%d %H:%M} UTC.
Data in {100 * d.coverage:.0f} % of the day's 5-minute buckets (energy counts those only).</p>
<h2>Energy by subsystem</h2>{img("energy", "energy by subsystem")}{img("power", "power by subsystem")}
<h2>PUE</h2><p>{pue_txt}</p>{img("pue", "PUE over the day")}
<h2>Data quality by equipment</h2>{img("quality", "readings stored ok by equipment")}
{_html_table(d.scores, "No quality scores stored this day.")}
<h2>Faults raised and cleared</h2><p>{html.escape(fault_summary(d))}</p>
{img("faults", "faults raised and cleared over the day")}
{_html_table(fault_table(d, tzname), "No fault raised or open this day.")}
<h3>Decisions on faults</h3>{_html_table(d.fault_decisions, "No fault decision this day.")}
<h2>Decisions by outcome</h2>{img("outcomes", "decisions by outcome")}
<h2>Approvals and who answered</h2>{_html_table(d.approvals, "No approval this day.")}
<h2>Writes and their read-back</h2>{_html_table(d.writes, "No write this day.")}
</body></html>
"""


def make_report(store: Store, site: Site, day: date, folder: str | Path) -> Path:
    """Write the report of site-local ``day`` under ``folder``; returns its path."""
    d = gather(store, site, day)
    page = render(d, site.schedule.timezone)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = report_path(folder, site.name, day)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
