"""A degraded CDU pump or a biased coolant flow meter? Residual isolation by redundancy.

When a CDU's coolant flow no longer follows its pump speed (the ``cdu_flow_vs_speed``
affinity residual fires), two faults explain it equally well from that residual alone:
the pump delivers less than its speed predicts (worn impeller, clogged strainer, air in
the loop: an equipment fault — the flow reading is real), or the meter reads wrong (a
knocked or drifting transmitter — the pump is fine). A controls engineer tells them apart
with a second, independent estimate of the flow: the heat balance of the liquid loop.

The coolant carries the liquid share of the IT power (``rated.liquid_fraction`` of the
GPU cluster in the site file, 0.8 if absent) plus the pump's own work, so

    flow × cp × ΔT  ≈  liquid_fraction × IT power (+ pump power)

gives the flow the heat balance implies, ``Q / (cp · ΔT)`` — calibrated on the window's
own history (the median of ``flow · ΔT / Q`` in the older cells, as every balance of
:mod:`tools.quality.residuals`), so a liquid fraction that is only nominal does not
matter. Three estimates of one flow, then:

* metered ≈ heat-implied, both short of the speed's: the flow is real (ΔT widened as the
  flow fell, GPU temperatures rise) — **the pump** (equipment fault), the meter is trusted;
* heat-implied ≈ speed's, the meter alone off: ΔT did not move, the heat balance
  disagrees with the IT power — **the meter** (bias or drift), named with the heat-balance
  residual;
* otherwise (the speed reading moved while the flow did not, or the heat balance agrees
  with neither): unclear — the general single-fault isolation decides.

Where the heat-implied flow lies between the other two is its *position*
``(by_speed − by_heat) / (by_speed − metered)``: 1 at the meter, 0 at the speed's
prediction. ΔT answers a flow change with the loop's thermal lag (tens of seconds), so
during the transient the heat-implied flow travels from 0 towards 1; half-way counts.

:func:`isolate_flow` is the pure verdict on numbers; :func:`cdu_plan` finds the points and
:func:`flow_isolation` evaluates it on the window's cell grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from connectors.site import Site
from tools.quality.grid import CellGrid
from tools.quality.physics import CP_WATER
from tools.quality.tracker import nanmedian_rows

Verdict = Literal["pump", "real", "meter", "unclear", "none"]

DEFAULT_LIQUID_FRACTION = 0.8  # perfmodel.state.PlantParameters.liquid_fraction
AFFINITY_RELATION = "cdu_flow_vs_speed"  # the residual this isolation resolves
# balances of the same loop that lag a real flow change (ΔT follows with the loop's thermal
# time constant): not checked while the loop settles after a pump fault
HEAT_RELATIONS = ("cdu_heat_balance",)
SETTLED = 0.1  # |heat residual| within which the loop has settled

# the affinity residual's tolerance (tools.quality.relations: cdu_flow_vs_speed)
TOL_REL, TOL_ABS = 0.08, 0.5


def isolate_flow(
    metered: float,
    by_speed: float,
    by_heat: float,
    baseline: float,
    *,
    tol_rel: float = TOL_REL,
    tol_abs: float = TOL_ABS,
) -> Verdict:
    """The verdict on three estimates of one coolant flow (L/s) and its earlier level.

    ``metered``: the flow meter; ``by_speed``: what the pump speed predicts (affinity
    law); ``by_heat``: what the heat balance implies; ``baseline``: the metered flow before
    (the window's older cells). "none" when the meter agrees with the speed; "real" when
    the heat balance confirms a metered flow that rose above the speed's prediction — a pump
    back from a fault still in the baseline, or a loop whose resistance fell: the reading is
    true and no pump is degraded."""
    vals = (metered, by_speed, by_heat, baseline)
    if not all(np.isfinite(v) for v in vals):
        return "unclear" if np.isfinite(metered) and np.isfinite(by_speed) else "none"
    gap = by_speed - metered
    if abs(gap) <= tol_abs + tol_rel * abs(by_speed):
        return "none"
    pos = (by_speed - by_heat) / gap
    moved = abs(metered - baseline) > tol_abs + tol_rel * abs(baseline)
    if 0.5 <= pos <= 1.5 and moved:
        # the heat balance confirms the metered flow; it changed: real — a pump fault only
        # when it delivers less than its speed predicts
        return "pump" if gap > 0 else "real"
    if -0.5 <= pos < 0.5:
        return "meter"  # the heat balance says the flow is where the speed says
    return "unclear"


def position(metered: float, by_speed: float, by_heat: float) -> float:
    """Where the heat-implied flow lies: 0 at the speed's prediction, 1 at the meter."""
    gap = by_speed - metered
    return float((by_speed - by_heat) / gap) if gap != 0 else float("nan")


@dataclass(frozen=True)
class CduRows:
    """Point rows (of the scorer's point table) one CDU's isolation reads."""

    cdu: str
    flow: int
    speed: int
    sup: int
    ret: int
    it: tuple[int, ...]  # IT power of every GPU cluster (liquid-cooled load)
    liquid_fraction: tuple[float, ...]  # per IT row
    pump_power: int | None = None
    gpu_temp: int | None = None  # the hottest GPU temperature there is (corroboration)


def _row(
    points: pd.DataFrame, eq: str, bricks: tuple[str, ...], names: tuple[str, ...] = ()
) -> int | None:
    m = (points["equipment"] == eq) & (points["point_id"] >= 0)
    m &= points["brick"].isin(bricks) | points["name"].isin(names)
    rows = np.flatnonzero(m.to_numpy(bool))
    return int(rows[0]) if len(rows) else None


def cdu_plan(site: Site, points: pd.DataFrame) -> list[CduRows]:
    """Every CDU with a flow meter, a pump speed, supply and return temperatures, and a GPU
    cluster's IT power on the site (the liquid loop's heat source)."""
    gpus = [e for e in site.equipment if e.kind.value == "gpu_cluster"]
    it: list[int] = []
    lf: list[float] = []
    gtemp: int | None = None
    for g in gpus:
        r = _row(points, g.id, (), ("it_power",))
        if r is not None:
            it.append(r)
            lf.append(float(g.rated.get("liquid_fraction", DEFAULT_LIQUID_FRACTION)))
        if gtemp is None:
            gtemp = _row(points, g.id, (), ("gpu_temp_max",)) or _row(
                points, g.id, (), ("gpu_temp_avg", "gpu_temp")
            )
    out: list[CduRows] = []
    if not it:
        return out
    for e in site.equipment:
        if e.kind.value != "cdu":
            continue
        rows = [
            _row(points, e.id, ("Coolant_Flow_Sensor",)),
            _row(points, e.id, ("Speed_Sensor",)),
            _row(points, e.id, ("Coolant_Supply_Temperature_Sensor",)),
            _row(points, e.id, ("Coolant_Return_Temperature_Sensor",)),
        ]
        if any(r is None for r in rows):
            continue
        f, s, a, b = (int(r) for r in rows if r is not None)
        pp = _row(points, e.id, ("Electric_Power_Sensor",), ("pump_power",))
        out.append(CduRows(e.id, f, s, a, b, tuple(it), tuple(lf), pp, gtemp))
    return out


def plan_rows(plan: list[CduRows]) -> np.ndarray:
    """Point rows the plan reads (for the :class:`CellGrid`)."""
    rows: list[int] = []
    for c in plan:
        rows += [c.flow, c.speed, c.sup, c.ret, *c.it]
        rows += [r for r in (c.pump_power, c.gpu_temp) if r is not None]
    return np.unique(np.asarray(rows, np.int64))


@dataclass(frozen=True)
class FlowFinding:
    """One CDU's isolation at the latest cell where its flow left its pump speed."""

    cdu: str
    verdict: Verdict
    metered: float  # L/s
    by_speed: float  # L/s the pump speed predicts
    by_heat: float  # L/s the heat balance implies
    heat_kw: float  # flow × cp × ΔT
    liquid_kw: float  # liquid share of IT power (+ pump work), kW
    dt: float  # coolant ΔT now, K
    dt0: float  # before, K
    gpu_rise: float  # hottest GPU temperature now − before, K (NaN: none)
    flow_tag: str
    speed_tag: str
    # pump: the cells from the flow's step until the heat balance settled (and one more)
    settling: np.ndarray | None = None

    @property
    def shortfall(self) -> float:
        """Share of the speed-predicted flow the meter does not see (0.7: 70 % less)."""
        return 1.0 - self.metered / self.by_speed if self.by_speed else float("nan")

    @property
    def heat_residual(self) -> float:
        """Metered heat over the calibrated liquid heat, − 1 (0: the balance holds)."""
        return self.metered / self.by_heat - 1.0 if self.by_heat else float("nan")

    def message(self) -> str:
        less = f"{abs(self.shortfall):.0%} {'less' if self.shortfall > 0 else 'more'}"
        balance = (
            f"heat balance {self.metered:.1f} L/s × ΔT {self.dt:.1f} K × {CP_WATER} = "
            f"{self.heat_kw:.0f} kW vs liquid share of IT power {self.liquid_kw:.0f} kW"
        )
        if self.verdict == "pump":
            gpu = f", GPU temperature {self.gpu_rise:+.1f} K" if np.isfinite(self.gpu_rise) else ""
            agree = (
                "agrees with IT power"
                if abs(self.heat_residual) <= 0.1
                else f"closing on IT power as ΔT widens ({self.heat_residual:+.0%})"
            )
            return (
                f"{self.cdu} pump delivers {less} flow than its speed predicts "
                f"({self.metered:.1f} vs {self.by_speed:.1f} L/s); {balance}: {agree} "
                f"(ΔT {self.dt0:.1f} → {self.dt:.1f} K{gpu}): pump, not meter — "
                f"an equipment fault; {self.flow_tag} stays trusted"
            )
        return (
            f"residual cdu_heat_vs_it ({self.cdu}): {balance} disagree "
            f"({self.heat_residual:+.0%}; ΔT {self.dt0:.1f} → {self.dt:.1f} K): the heat "
            f"balance implies {self.by_heat:.1f} L/s and the pump speed {self.by_speed:.1f} L/s, "
            f"the meter reads {self.metered:.1f} — bias or drift of {self.flow_tag} "
            f"(residuals cdu_heat_vs_it and {AFFINITY_RELATION})"
        )


def flow_isolation(
    grid: CellGrid,
    plan: list[CduRows],
    tags: np.ndarray,
    known_bad: set[int] | frozenset[int] = frozenset(),
    min_base: int = 3,
) -> list[FlowFinding]:
    """Each CDU of ``plan`` whose metered flow left its pump speed in a recent cell: the
    isolation at the last such cell. The grid holds the window's bucket means of
    :func:`plan_rows`; the older half of the window is the baseline (as the balances').
    A CDU whose witnesses (IT power, coolant temperatures) fail their own checks
    (``known_bad`` rows) is left to the general isolation: a bad witness proves nothing."""
    out: list[FlowFinding] = []
    older = np.arange(grid.cells) < grid.cells // 2
    for c in plan:
        if known_bad & {c.sup, c.ret, *c.it}:
            continue
        flow, speed = grid.series([c.flow]), grid.series([c.speed])
        sup, ret = grid.series([c.sup]), grid.series([c.ret])
        it = sum(
            (f * grid.series([r]) for r, f in zip(c.it, c.liquid_fraction, strict=True)),
            start=np.zeros(grid.cells),
        )
        pump = grid.series([c.pump_power]) if c.pump_power is not None else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            q = it + np.nan_to_num(pump)
            dt = ret - sup
            ok = np.isfinite(flow) & np.isfinite(speed) & (speed > 10.0)
            ok_h = ok & np.isfinite(dt) & (dt > 0.2) & np.isfinite(q) & (q > 1.0)
            base = older & ok_h
            if base.sum() < min_base:
                base = ok_h & ~grid.recent
            if base.sum() < min_base:
                continue
            k_speed = float(nanmedian_rows(np.where(base, flow / speed, np.nan)[None])[0])
            k_heat = float(nanmedian_rows(np.where(base, flow * dt / q, np.nan)[None])[0])
            by_speed = k_speed * speed
            by_heat = k_heat * q / dt
            viol = ok & grid.recent & (np.abs(by_speed - flow) > TOL_ABS + TOL_REL * by_speed)
        if not viol.any():
            continue
        # the verdict at the latest such cell with all three estimates: a cell that missed a
        # witness's poll (IT power, a coolant temperature) has no heat estimate and says
        # nothing — judged there, a degraded pump came out "unclear" and its speed was blamed
        full = np.flatnonzero(viol & ok_h)
        k = int(full[-1]) if len(full) else int(np.flatnonzero(viol)[-1])
        flow0 = float(np.median(flow[base]))
        verdict = isolate_flow(float(flow[k]), float(by_speed[k]), float(by_heat[k]), flow0)
        if verdict == "none":
            continue
        settling = None
        if verdict == "pump":
            settling = _settling(flow, by_speed, by_heat, ok)
        gtemp = np.nan
        if c.gpu_temp is not None:
            g = grid.series([c.gpu_temp])
            g0 = g[base & np.isfinite(g)]
            if len(g0) and np.isfinite(g[k]):
                gtemp = float(g[k] - np.median(g0))
        out.append(
            FlowFinding(
                cdu=c.cdu,
                verdict=verdict,
                metered=float(flow[k]),
                by_speed=float(by_speed[k]),
                by_heat=float(by_heat[k]),
                heat_kw=float(flow[k] * dt[k] * CP_WATER),
                liquid_kw=float(q[k]),
                dt=float(dt[k]),
                dt0=float(np.median(dt[base])),
                gpu_rise=gtemp,
                flow_tag=str(tags[c.flow]),
                speed_tag=str(tags[c.speed]),
                settling=settling,
            )
        )
    return out


def _settling(
    flow: np.ndarray, by_speed: np.ndarray, by_heat: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Cells from the first where the flow left its speed until the first after it where the
    heat balance holds again (within :data:`SETTLED`), plus one: the loop settling."""
    with np.errstate(invalid="ignore", divide="ignore"):
        off = ok & (np.abs(by_speed - flow) > TOL_ABS + TOL_REL * by_speed)
        settled = ok & (np.abs(flow / by_heat - 1.0) <= SETTLED)
    mask = np.zeros(len(flow), bool)
    if not off.any():
        return mask
    k0 = int(np.flatnonzero(off)[0])
    after = np.flatnonzero(settled & (np.arange(len(flow)) > k0))
    k1 = int(after[0]) + 1 if len(after) else len(flow) - 1
    mask[k0 : k1 + 1] = True
    return mask
