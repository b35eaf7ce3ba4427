"""The current state's own prediction is kept for the last state asked (the agent asks for it
on one snapshot for the model residuals and again in the optimiser). It must never be served
for another state: a new snapshot (a load, a weather value) or new calibrated parameters (a
COP, a flow factor) are fields of the state and solve afresh."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from perfmodel.optimise import optimise
from perfmodel.state import PlantState

W = sys.modules["perfmodel.whatif"]  # the module (the package exports a function of that name)
OPT = sys.modules["perfmodel.optimise"]


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    inner = W.whatif_many

    def counted(state: PlantState, batch: object) -> object:
        calls.append(1)
        return inner(state, batch)

    monkeypatch.setattr(W, "whatif_many", counted)
    monkeypatch.setattr(OPT, "whatif_many", counted)
    monkeypatch.setattr(W, "_last_current", None)
    return calls


def test_the_same_state_is_solved_once(solves: list[int]) -> None:
    s = PlantState()
    a = W.whatif(s)
    b = W.current(PlantState())  # an equal state built again
    assert b is a and len(solves) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"gpu_demand_kw": 950.0},  # a new snapshot
        {"outdoor_drybulb_c": 33.0},
        {"chiller_cop": 5.2},  # a new calibration
        {"cw_pump_flow_factor": 0.9},
    ],
)
def test_another_state_is_solved_afresh(solves: list[int], change: dict[str, float]) -> None:
    s = PlantState()
    before = W.whatif(s)
    t = replace(s, **change)
    after = W.whatif(t)
    assert len(solves) == 2 and after is not before
    fresh = W.whatif_many(t, [[]]).at(0)
    assert after.after == fresh.after and after.before == fresh.before
    assert after.after != before.after
    assert W.whatif(s).after == before.after  # and back: the first state's own numbers


def test_the_optimiser_reuses_the_states_own_prediction(solves: list[int]) -> None:
    s = PlantState()
    own = W.whatif(s)
    res = optimise(s, {"chw_supply_setpoint_c": [7.0, 8.0, 9.0]})
    assert len(solves) in (2, 3)  # the own prediction (cached), the grid, the best if any
    if not res.changes:
        assert res.prediction is own
