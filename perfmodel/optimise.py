"""Optimiser: the setpoints that use the least total power while every constraint holds.

A vectorised grid search over the what-if model (:func:`perfmodel.whatif.whatif_many`):
every combination of chilled-water supply, condenser-water supply (tower fan
on automatic) or a fixed tower fan speed, number of running chillers, CDU
supply and pump speeds is evaluated in one pass; candidates breaking any
constraint (or, by default, outside the curves' validity range) are dropped,
and the one with the lowest facility power wins. Ties go to the candidate that
changes the fewest setpoints. A grid is exhaustive and its answer reproducible;
the default grid (~10⁴ candidates) costs well under a second.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from perfmodel.chiller import valid_ranges
from perfmodel.plant import solve_state
from perfmodel.whatif import Change, PlantState, Prediction, whatif_many
from perfmodel.whatif import current as whatif_current

__all__ = [
    "LEVER_GRIDS",
    "Grid",
    "OptimiseResult",
    "default_grid",
    "fixed_fan_grid",
    "lever_grid",
    "optimise",
]

#: One sub-grid: field → candidate values; the search space is the union of the
#: Cartesian products of its sub-grids.
Grid = Mapping[str, Sequence[float]]

#: Tie-break: a changed setpoint must save more than this to be worth writing (kW).
CHANGE_PENALTY_KW = 1e-3
#: Condenser pump speeds (%): fine near full speed, where the tower correlation's
#: water-flow range (CoolTools, ratio ≥ 0.75) usually ends, coarse below it.
CW_PUMP_GRID_PCT = [50.0, 60.0, 70.0, 80.0, 85.0, 88.0, 90.0, 92.0, 94.0, 96.0, 98.0, 100.0]
#: CDU pump speeds (%): the GPU throttle margin (the ``gpu_throttle_margin`` constraint)
#: and the site's write minimum decide how low it may go.
CDU_PUMP_GRID_PCT = [50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0]
#: Axes searched only when a caller frees their field (:func:`lever_grid`): the CDU pump
#: barely couples to the rest of the plant (its work is a few kW of chilled-water load),
#: and in the full product its 11 speeds would make the default grid 11 times larger.
LEVER_GRIDS: Mapping[str, Sequence[float]] = {"cdu_pump_speed_pct": CDU_PUMP_GRID_PCT}
#: The warmest chilled water the default grid offers (°C), however far the curves reach.
CHW_GRID_MAX_C = 16.0


@dataclass(frozen=True)
class OptimiseResult:
    """The best candidate as changes from the current state, with its prediction.

    ``changes`` is empty when nothing beats the current state; ``prediction``
    is then the current state's own. ``candidates`` / ``feasible`` count the grid.
    """

    changes: list[Change]
    prediction: Prediction
    candidates: int
    feasible: int

    @property
    def saving_kw(self) -> float:
        return -self.prediction.delta_kw


def default_grid(state: PlantState) -> dict[str, list[float]]:
    """A grid around what the plant can do (field → candidate values).

    CHW from 6 °C up to where the chiller's curves are valid (10 °C for the catalogue
    curves; further once the site's own data validated a calibration there); CW 20–32 °C with
    the tower fan on automatic — each CW setpoint is one fan speed, so this
    searches the fan speed too, through the point operators can write; enough
    chillers for the load up to all available; CDU supply at, 2 K below or 2 K
    above its setpoint; CHW pump 40–100 %, CW pump 50–100 % (the pumps' and the chillers'
    minimum flows decide how low they may go); CRAH fans 60–100 %
    (the airflow and rack-inlet constraints decide how low they may go). For sites that
    expose a tower fan speed setpoint, add :func:`fixed_fan_grid`:
    ``optimise(state, [default_grid(state), fixed_fan_grid(state)])``.
    """
    base = solve_state(state)
    cap = max(float(base.chillers.chiller_capacity_avail_kw[0]), 1e-9)
    need = max(1, math.ceil(float(base.loop.chw_load_kw[0]) / cap))
    n_opts = [float(n) for n in range(need, int(state.chillers_available) + 1)] or [
        state.chillers_running
    ]
    chw_top = max(10.0, min(valid_ranges(state.chiller)[1], CHW_GRID_MAX_C))
    chw = [float(v) for v in np.arange(6.0, 10.01, 0.5)]
    chw += [float(v) for v in np.arange(11.0, chw_top + 0.01, 1.0)]
    return {
        "chw_supply_setpoint_c": chw,
        "chillers_running": n_opts,
        "cdu_supply_setpoint_c": [
            state.cdu_supply_setpoint_c - 2.0,
            state.cdu_supply_setpoint_c,
            state.cdu_supply_setpoint_c + 2.0,
        ],
        "chw_pump_speed_pct": [40.0, 50.0, 60.0, 80.0, 100.0],
        "cw_pump_speed_pct": CW_PUMP_GRID_PCT,
        "crah_fan_speed_pct": [60.0, 70.0, 80.0, 90.0, 100.0],
        "tower_fan_speed_pct": [math.nan],
        "cw_supply_setpoint_c": [float(v) for v in np.arange(20.0, 32.01, 1.0)],
    }


def lever_grid(state: PlantState, fields: Collection[str]) -> dict[str, list[float]]:
    """:func:`default_grid` searching ``fields`` only (the others at their current value),
    with the :data:`LEVER_GRIDS` axes of the freed fields that the default grid leaves out."""
    grid = default_grid(state)
    out = {k: (list(v) if k in fields else [float(getattr(state, k))]) for k, v in grid.items()}
    for k, axis in LEVER_GRIDS.items():
        if k in fields:
            out[k] = sorted({*map(float, axis), float(getattr(state, k))})
    return out


def fixed_fan_grid(state: PlantState) -> dict[str, list[float]]:
    """:func:`default_grid` with the tower fan at fixed speeds 40–100 % instead of automatic."""
    g = default_grid(state)
    g["tower_fan_speed_pct"] = [40.0, 60.0, 80.0, 100.0]
    g["cw_supply_setpoint_c"] = [state.cw_supply_setpoint_c]
    return g


def _expand(state: PlantState, grids: Sequence[Grid]) -> dict[str, np.ndarray]:
    names = sorted({k for g in grids for k in g})
    blocks = []
    for g in grids:
        axes = [list(map(float, g[k])) if k in g else [float(getattr(state, k))] for k in names]
        blocks.append(np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(names)))
    combos = np.concatenate(blocks, axis=0)
    return {k: combos[:, j] for j, k in enumerate(names)}


def _same(a: np.ndarray, b: float) -> np.ndarray:
    return np.asarray((a == b) | (np.isnan(a) & math.isnan(b)))


def optimise(
    state: PlantState,
    grid: Grid | Sequence[Grid] | None = None,
    *,
    require_valid: bool = True,
) -> OptimiseResult:
    """Lowest-power feasible setpoints for ``state`` over ``grid`` (field → candidate values).

    ``grid`` is one sub-grid or a list of them (default :func:`default_grid`).
    Never returns a candidate that breaks a constraint: if none is feasible the
    result has no changes and carries the current state's prediction.
    """
    if grid is None:
        grids: list[Grid] = [default_grid(state)]
    elif isinstance(grid, Mapping):
        grids = [grid]
    else:
        grids = list(grid)
    cols = _expand(state, grids)
    batch = whatif_many(state, cols)
    keep = batch.feasible & (batch.valid if require_valid else True)
    n_feasible = int(np.count_nonzero(keep))
    current = whatif_current(state)
    if n_feasible == 0:
        return OptimiseResult([], current, len(batch), 0)
    n_changed = sum((~_same(v, float(getattr(state, k)))).astype(float) for k, v in cols.items())
    cost = np.where(keep, batch.total_kw + CHANGE_PENALTY_KW * n_changed, np.inf)
    i = int(np.argmin(cost))
    # a feasible current state is never traded for a costlier one, even when it lies
    # outside the curves' ranges: moving into them is not worth power
    if current.ok and cost[i] >= current.total_kw:
        return OptimiseResult([], current, len(batch), n_feasible)
    changes = [
        Change(k, float(v[i]))
        for k, v in cols.items()
        if not _same(v[i : i + 1], float(getattr(state, k)))[0]
    ]
    best = whatif_many(state, [changes]).at(0)
    return OptimiseResult(changes, best, len(batch), n_feasible)
