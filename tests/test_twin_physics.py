"""The twin's plant: energy balances, setpoint tracking, native control on a fault-free day."""

from __future__ import annotations

import itertools
import math

import pytest

from perfmodel.pumps import electric_power
from twin.plant import RHO_CP_WATER
from twin.sim import Twin


def _hb(twin: Twin, n: int) -> None:
    twin.write("agent.heartbeat", n)


def test_same_seed_same_values_and_time_advances() -> None:
    a, b = Twin(seed=5), Twin(seed=5)
    a.step(900)
    b.step(900)
    assert a.values() == b.values()
    assert a.now.isoformat() == "2026-07-01T00:15:00+00:00"
    c = Twin(seed=6)
    c.step(5 * 3600)
    a.step(5 * 3600 - 900)
    assert c.values()["gpu.training_util"] != a.values()["gpu.training_util"]


def test_every_site_tag_is_served_and_fits_its_register() -> None:
    twin = Twin(seed=1)
    twin.step(60)
    v = twin.values()
    assert set(v) == set(twin.site.points_by_tag)
    for tag, (_, p) in twin.site.points_by_tag.items():
        assert math.isfinite(v[tag]), tag
        if p.min is not None and p.max is not None:
            assert p.min <= v[tag] <= p.max, (tag, v[tag], p.min, p.max)
        if p.source.data_type.value in ("int16", "uint16"):
            steps = v[tag] / p.source.scale
            assert abs(steps - round(steps)) < 1e-6, tag


def test_energy_balances_at_steady_state() -> None:
    twin = Twin(seed=2)
    twin.step(1800)
    v = twin.true_values()
    chillers = [f"chiller_{i}" for i in (1, 2, 3)]
    cap = twin.plant.cfg.chiller_cap_kw
    # evaporators remove the heat the CDU and the CRAHs collect
    q_evap = sum(v[f"{c}.load"] / 100.0 * cap for c in chillers)
    assert q_evap == pytest.approx(v["plant.cooling_load"], rel=0.02)
    # heat into the CHW loop: CDU (GPU heat + pump work), CRAH coils, CHW pump work
    cdu = v["cdu_1.heat_load"] + v["cdu_1.pump_power"]
    crah = sum(twin.plant.crah_q)
    assert cdu + crah + v["chw_pump_1.power"] == pytest.approx(v["plant.cooling_load"], rel=1e-6)
    # ... which is all IT power plus PDU/UPS losses and the fans' and pumps' work
    ups_loss = v["ups_1.input_power"] - v["ups_1.output_power"]
    fans = sum(v[f"crah_{i}.fan_power"] for i in (1, 2, 3, 4))
    pdu_loss = v["ups_1.output_power"] - v["plant.it_power"] - v["cdu_1.pump_power"]
    assert 0.0 < pdu_loss < 0.02 * v["plant.it_power"]
    expected = v["plant.it_power"] + pdu_loss + ups_loss + fans + v["cdu_1.pump_power"]
    assert v["plant.cooling_load"] == pytest.approx(expected + v["chw_pump_1.power"], rel=1e-3)
    # chilled-water side: flow × cp × ΔT per running chiller
    for c in chillers:
        if v[f"{c}.running"]:
            q = (
                v[f"{c}.chw_flow"]
                * RHO_CP_WATER
                * (v[f"{c}.chw_return_temp"] - v[f"{c}.chw_supply_temp"])
            )
            assert q == pytest.approx(v[f"{c}.load"] / 100.0 * cap, rel=0.03)
    # condenser side: the tower rejects evaporator heat plus compressor work
    q_rej = sum(v[f"{c}.load"] / 100.0 * cap + v[f"{c}.power"] for c in chillers)
    q_tower = (
        v["cw_pump_1.flow"] * RHO_CP_WATER * (v["ct_1.cw_return_temp"] - v["ct_1.cw_supply_temp"])
    )
    assert q_tower == pytest.approx(q_rej, rel=0.03)
    # electrical: facility = IT + cooling + losses; PUE = total / IT
    it_and_cooling = v["plant.it_power"] + v["plant.cooling_power"]
    losses = pdu_loss + ups_loss + v["tx_1.losses"]
    assert v["plant.facility_power"] == pytest.approx(it_and_cooling + losses, rel=1e-3)
    assert v["plant.pue"] == pytest.approx(
        v["plant.facility_power"] / v["plant.it_power"], rel=1e-6
    )
    assert 1.15 < v["plant.pue"] < 1.6


def test_native_control_keeps_the_envelope_on_a_fault_free_day() -> None:
    twin = Twin(seed=3)
    samples = []
    for _ in range(24 * 6):  # every 10 minutes for a day, 10 s physics steps inside
        twin.step(600)
        samples.append(twin.values())
    for v in samples:
        for i in (1, 2, 3, 4):
            assert 18.0 <= v[f"crah_{i}.rack_inlet_temp"] <= 27.0  # ASHRAE recommended
        assert v["gpu.gpu_temp_max"] < 85.0
        assert v["gpu.throttling"] == 0.0
        assert v["gpu.throughput"] == 100.0
        running = [c for c in (1, 2, 3) if v[f"chiller_{c}.running"]]
        assert running, "no chiller running"
        for c in running:
            assert v[f"chiller_{c}.chw_supply_temp"] == pytest.approx(7.0, abs=0.3)
        assert v["ct_1.cw_supply_temp"] < 29.8
        assert 1.15 < v["plant.pue"] < 1.6
        assert v["ups_1.on_battery"] == 0.0 and v["ups_1.soc"] > 99.0
    wb = [v["weather.wet_bulb"] for v in samples]
    assert max(wb) - min(wb) > 2.0  # the weather has a diurnal cycle
    inf = [v["gpu.inference_util"] for v in samples]
    assert max(inf) - min(inf) > 5.0  # inference follows the day
    fan = [v["ct_1.fan_speed"] for v in samples]
    assert max(fan) > 0.0  # the tower fan works in the afternoon


@pytest.mark.parametrize(
    ("tag", "value", "watch", "tol"),
    [
        ("chiller_1.chw_supply_setpoint", 9.0, "chiller_1.chw_supply_temp", 0.2),
        ("crah_2.supply_air_setpoint", 21.0, "crah_2.supply_air_temp", 0.2),
        ("cdu_1.coolant_supply_setpoint", 31.0, "cdu_1.coolant_supply_temp", 0.2),
        ("chw_pump_1.speed_setpoint", 60.0, "chw_pump_1.speed", 0.1),
        ("crah_3.fan_speed_setpoint", 60.0, "crah_3.fan_speed", 0.1),
    ],
)
def test_setpoint_tracking(tag: str, value: float, watch: str, tol: float) -> None:
    twin = Twin(seed=4)
    _hb(twin, 1)
    twin.write(tag, value)
    for k in range(2, 12):  # 20 minutes, heartbeat every 2
        twin.step(120)
        _hb(twin, k)
    v = twin.values()
    assert v[tag] == value
    assert v[watch] == pytest.approx(value, abs=tol)


def test_pump_speed_follows_affinity_laws() -> None:
    twin = Twin(seed=4)
    p100 = twin.values()["chw_pump_1.power"]
    _hb(twin, 1)
    twin.write("chw_pump_1.speed_setpoint", 60.0)
    twin.step(120)
    v = twin.values()
    c = twin.plant.cfg  # the twin's own pump: its flow and power factors against the nameplate
    assert v["chw_pump_1.flow"] == pytest.approx(0.6 * 60.0 * c.chw_pump_flow_factor, rel=0.01)
    # cube law on the shaft, divided by motor and VFD efficiency at that speed
    assert p100 * 0.6**3 < v["chw_pump_1.power"] < p100 * 0.6**3 * 1.3
    rated = 30.0 * c.chw_pump_power_factor
    assert v["chw_pump_1.power"] == pytest.approx(float(electric_power(rated, 0.6)), rel=0.01)


def test_gpu_power_cap_trades_power_for_throughput() -> None:
    twin = Twin(seed=4)
    before = twin.values()
    _hb(twin, 1)
    twin.write("gpu.power_cap", 60.0)
    twin.step(60)
    after = twin.values()
    assert after["gpu.it_power"] < before["gpu.it_power"] - 50.0
    assert 50.0 < after["gpu.throughput"] < 99.0


def test_raising_chw_setpoint_saves_chiller_power() -> None:
    twin = Twin(seed=4)
    twin.step(600)
    before = twin.values()
    _hb(twin, 1)
    for c in (1, 2, 3):
        twin.write(f"chiller_{c}.chw_supply_setpoint", 10.0)
    for k in range(2, 12):
        twin.step(120)
        _hb(twin, k)
    after = twin.values()
    kw = lambda v: sum(v[f"chiller_{c}.power"] for c in (1, 2, 3))  # noqa: E731
    assert kw(after) < kw(before) * 0.95
    assert after["crah_1.rack_inlet_temp"] <= 27.0


def test_served_readings_carry_a_sensor_noise_floor() -> None:
    """The site's instruments (twin/site.yaml sensor_defaults): RTD σ 0.02 K at 0.01 K."""
    twin = Twin(seed=8, hold_conditions=True)
    served, true = [], []
    for _ in range(200):
        twin.step(1)
        served.append(twin.values())
        true.append(twin.true_values())
    sup = [v["chiller_1.chw_supply_temp"] for v in served]
    assert len(set(sup)) >= 8  # a live signal is never perfectly flat…
    runs, n = [], 1
    for a, b in itertools.pairwise(sup):
        n = n + 1 if a == b else 1
        runs.append(n)
    assert max(runs) < 8  # …nor held for long
    assert all(abs(x * 100 - round(x * 100)) < 1e-3 for x in sup)  # 0.01 K resolution
    err = [
        s["chiller_1.chw_supply_temp"] - t["chiller_1.chw_supply_temp"]
        for s, t in zip(served, true, strict=True)
    ]
    sd = math.sqrt(sum(e * e for e in err) / len(err))
    assert 0.01 < sd < 0.03
    last = served[-1]
    assert last["chiller_3.power"] == 0.0  # an exact zero stays zero
    assert last["chiller_1.chw_supply_setpoint"] == 7.0  # setpoints are not measured
    assert last["gpu.throughput"] == 100.0


def test_native_staging_adds_and_sheds_chillers_on_load() -> None:
    from twin.control import NATIVE_DEFAULTS, NativeControl
    from twin.plant import EquipmentFaults, Plant, PlantConfig

    plant, bms = Plant(PlantConfig()), NativeControl()
    sp, eq = dict(NATIVE_DEFAULTS), EquipmentFaults()
    plant.q_chw = 1350.0  # above 90 % of two chillers
    for _ in range(29):
        bms.commands(plant, sp, eq, 10.0)
    assert bms.chiller_on == [True, True, False]  # not before 5 minutes
    bms.commands(plant, sp, eq, 10.0)
    assert bms.chiller_on == [True, True, True]
    plant.q_chw = 400.0  # fits in one chiller fewer below 70 %
    for _ in range(89):
        bms.commands(plant, sp, eq, 10.0)
    assert sum(bms.chiller_on) == 3  # not before 15 minutes
    bms.commands(plant, sp, eq, 10.0)
    assert bms.chiller_on == [True, True, False]
    sp["chiller_1.enable"] = 0.0  # the agent (or operator) takes chiller 1 out
    bms.commands(plant, sp, eq, 10.0)
    assert bms.chiller_on == [False, True, True]
