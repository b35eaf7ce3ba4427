"""What-if on the twin: the performance model's predicted steady state after a setpoint
change matches the settled state of a twin whose plant *is* the model (``plant="catalogue"``:
these tests hold the twin's dynamics to the model's physics; the default twin's plant
departs from the model on purpose, see tests/test_plant_model.py).

The twin runs on the performance model's physics with first-order dynamics, with the
weather and the IT work held (``hold_conditions``) so "settled" means something. Each
case: settle 1 h, predict with ``tools.whatif.check`` from the served values (sensor noise
included, as the agent would), write the change (heartbeat kept), let the twin settle 2 h,
compare the prediction with the twin's true settled state.

Tolerances (stated): facility and cooling power within 1 %, chiller power within 2 %
(see condenser water below), PUE within 0.005,
IT power within 0.5 %; chilled-water return, CDU supply, GPU die and rack inlet within
0.1 K; condenser water within 0.6 K (the twin's tower fan cycles between off and its
minimum speed where the model averages the cycle); the predicted change in facility
power within 10 % (+1 kW) of the twin's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tools.whatif import TagChange, check
from twin.sim import Twin

MIDNIGHT = datetime(2026, 7, 1, 0, tzinfo=UTC)  # cool: tower on free convection
AFTERNOON = datetime(2026, 7, 1, 14, tzinfo=UTC)  # hot: tower fan running

CHW_10 = [(f"chiller_{i}.chw_supply_setpoint", 10.0) for i in (1, 2, 3)]
CASES = [
    pytest.param(MIDNIGHT, CHW_10, id="chw-setpoint-7-to-10-night"),
    pytest.param(AFTERNOON, CHW_10, id="chw-setpoint-7-to-10-afternoon"),
    pytest.param(AFTERNOON, [("ct_1.cw_supply_setpoint", 25.0)], id="cw-setpoint-29-to-25"),
    pytest.param(MIDNIGHT, [("chw_pump_1.speed_setpoint", 70.0)], id="chw-pump-100-to-70"),
    pytest.param(AFTERNOON, [("gpu.power_cap", 70.0)], id="gpu-power-cap-70"),
    pytest.param(MIDNIGHT, [("cdu_1.coolant_supply_setpoint", 32.0)], id="cdu-supply-27-to-32"),
]


def _chiller_kw(v: dict[str, float]) -> float:
    return sum(v[f"chiller_{i}.power"] for i in (1, 2, 3))


@pytest.mark.parametrize(("start", "writes"), CASES)
def test_predicted_steady_state_matches_the_settled_twin(
    start: datetime, writes: list[tuple[str, float]]
) -> None:
    twin = Twin(seed=7, start=start, hold_conditions=True, plant="catalogue")
    twin.step(3600)
    before = twin.values()  # what the agent reads: served, with sensor noise
    true_before = twin.true_values()
    pred = check(twin.site, before, [TagChange(t, x) for t, x in writes])
    assert pred.valid, pred.invalid_reasons

    beat = 1
    twin.write("agent.heartbeat", beat)
    for tag, value in writes:
        twin.write(tag, value)
    for _ in range(120):  # two hours, heartbeat every minute
        twin.step(60)
        beat += 1
        twin.write("agent.heartbeat", beat)
    after = twin.true_values()  # the plant's settled state (served values add sensor noise)
    for _ in range(10):  # ten more minutes: it has settled
        twin.step(60)
        beat += 1
        twin.write("agent.heartbeat", beat)
    later = twin.true_values()
    assert later["plant.facility_power"] == pytest.approx(after["plant.facility_power"], rel=2e-3)

    p = pred.after
    assert after["plant.facility_power"] == pytest.approx(p["facility_kw"], rel=0.01)
    assert after["plant.cooling_power"] == pytest.approx(p["cooling_kw"], rel=0.01)
    assert _chiller_kw(after) == pytest.approx(p["chiller_kw"], rel=0.02, abs=1.0)
    assert after["plant.it_power"] == pytest.approx(p["it_kw"], rel=0.005)
    assert after["plant.pue"] == pytest.approx(p["pue"], abs=0.005)
    assert after["chiller_1.chw_return_temp"] == pytest.approx(p["chw_return_c"], abs=0.1)
    assert after["cdu_1.coolant_supply_temp"] == pytest.approx(p["cdu_supply_c"], abs=0.1)
    assert after["gpu.gpu_temp_avg"] == pytest.approx(p["gpu_die_c"], abs=0.1)
    assert after["crah_1.rack_inlet_temp"] == pytest.approx(p["rack_inlet_c"], abs=0.1)
    assert after["ct_1.cw_supply_temp"] == pytest.approx(p["cw_supply_c"], abs=0.6)

    d_pred = p["facility_kw"] - pred.before["facility_kw"]
    d_twin = after["plant.facility_power"] - true_before["plant.facility_power"]
    assert abs(d_twin - d_pred) <= 0.1 * abs(d_pred) + 1.0, (d_pred, d_twin)


def test_fouled_condenser_costs_what_the_chiller_model_says() -> None:
    """Fouling f raises the condenser approach by 6·f K: the chiller's kW is the EIR model's
    at that higher lift, and the what-if from the fouled state sees the extra kW."""
    import numpy as np

    from perfmodel.chiller import chiller_performance
    from perfmodel.curves_data import DEFAULT_CHILLER
    from twin.faults import Fault, FaultKind

    twin = Twin(seed=7, start=MIDNIGHT, hold_conditions=True, plant="catalogue")
    twin.step(3600)
    clean = twin.values()
    twin.inject(Fault(kind=FaultKind.CONDENSER_FOULING, target="chiller_1", magnitude=0.5))
    twin.step(3600)
    v = twin.values()
    assert v["chiller_1.power"] > clean["chiller_1.power"] * 1.05
    assert v["chiller_2.power"] == pytest.approx(clean["chiller_2.power"], rel=0.02)
    q = v["chiller_1.load"] / 100.0 * 700.0
    ref = chiller_performance(
        DEFAULT_CHILLER, q, v["chiller_1.chw_supply_temp"], v["ct_1.cw_supply_temp"] + 3.0,
        capacity_kw=700.0, cop=6.1,
    )  # fmt: skip
    assert v["chiller_1.power"] == pytest.approx(float(np.asarray(ref.power_kw)), rel=0.01)
    # the model, fed the served (fouled) values, starts from the plant's real kW
    pred = check(twin.site, v, [TagChange("ct_1.cw_supply_setpoint", 29.0)])
    assert pred.before["chiller_kw"] < _chiller_kw(v)  # it cannot see fouling: flagged by FDD
