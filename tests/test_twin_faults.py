"""Every fault has its physical (or served) effect; scenarios and --fault specs load or fail clearly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from connectors.errors import ScenarioConfigError
from twin.faults import Fault, FaultKind, load_scenario, parse_fault_spec
from twin.sim import Twin


def _run(
    kind: str, target: str, magnitude: float | None = None, after_s: float = 1800
) -> tuple[dict[str, float], dict[str, float], Twin]:
    twin = Twin(seed=2)
    twin.step(600)
    before = twin.values()
    twin.inject(Fault(kind=FaultKind(kind), target=target, magnitude=magnitude))
    twin.step(after_s)
    return before, twin.values(), twin


def test_chiller_trip_brings_in_the_standby() -> None:
    b, a, _ = _run("chiller_trip", "chiller_1")
    assert (b["chiller_1.running"], b["chiller_3.running"]) == (1.0, 0.0)
    assert (a["chiller_1.running"], a["chiller_1.tripped"], a["chiller_3.running"]) == (
        0.0,
        1.0,
        1.0,
    )
    assert a["chiller_3.chw_supply_temp"] == pytest.approx(7.0, abs=0.3)


def test_condenser_fouling_costs_chiller_power() -> None:
    b, a, _ = _run("condenser_fouling", "chiller_1", 0.8)
    ratio_1 = a["chiller_1.power"] / b["chiller_1.power"]
    ratio_2 = a["chiller_2.power"] / b["chiller_2.power"]
    assert ratio_1 > 1.1 and ratio_1 > ratio_2 + 0.1
    assert a["plant.pue"] > b["plant.pue"]


def test_chw_pump_failure_stops_chillers_and_heats_the_hall() -> None:
    b, a, _ = _run("pump_failure", "chw_pump_1", after_s=900)
    assert a["chw_pump_1.flow"] == 0.0 and a["chw_pump_1.fault"] == 1.0
    assert a["chiller_1.running"] == a["chiller_2.running"] == 0.0
    assert a["cdu_1.coolant_supply_temp"] > b["cdu_1.coolant_supply_temp"] + 5.0
    assert a["crah_1.rack_inlet_temp"] > 27.0


def test_cw_pump_failure_stops_chillers() -> None:
    _, a, _ = _run("pump_failure", "cw_pump_1", after_s=300)
    assert a["cw_pump_1.flow"] == 0.0
    assert sum(a[f"chiller_{c}.running"] for c in (1, 2, 3)) == 0.0


def test_cdu_pump_degradation_heats_gpus_and_throttles() -> None:
    b, a, _ = _run("cdu_pump_degradation", "cdu_1")  # default: 75 % of flow lost
    assert a["cdu_1.coolant_flow"] == pytest.approx(0.25 * b["cdu_1.coolant_flow"], rel=0.02)
    assert a["gpu.gpu_temp_max"] > b["gpu.gpu_temp_max"] + 15.0
    assert a["gpu.throttling"] == 1.0
    assert a["gpu.throughput"] < 99.0 and a["gpu.it_power"] < b["gpu.it_power"]


def test_crah_fan_failure_raises_its_zone_and_boosts_the_others() -> None:
    b, a, _ = _run("crah_fan_failure", "crah_1", after_s=600)
    assert a["crah_1.fan_speed"] == 0.0 and a["crah_1.fan_fault"] == 1.0
    assert a["crah_1.rack_inlet_temp"] > b["crah_1.rack_inlet_temp"] + 4.0
    assert a["crah_2.fan_speed"] == pytest.approx(100.0, abs=0.5)


def test_utility_loss_runs_on_battery() -> None:
    b, a, _ = _run("utility_loss", "ups_1", after_s=300)
    assert a["ups_1.on_battery"] == 1.0 and a["ups_1.input_power"] == 0.0
    assert a["ups_1.soc"] < b["ups_1.soc"] - 10.0
    assert a["ups_1.runtime"] < b["ups_1.runtime"]
    assert a["chiller_1.running"] == 0.0  # mechanical plant is not on the UPS


def test_leak_vesda_and_surge() -> None:
    _, a, _ = _run("leak", "leak_1", 5, after_s=10)
    assert (a["leak_1.leak_detected"], a["leak_1.leak_zone"]) == (1.0, 5.0)
    _, a, _ = _run("vesda_alarm", "vesda_1", after_s=120)
    assert a["vesda_1.alarm"] == 1.0 and a["vesda_1.alarm_level"] >= 3
    b, a, _ = _run("it_load_surge", "gpu", 0.3, after_s=300)
    assert a["gpu.it_power"] > b["gpu.it_power"] + 100.0
    assert a["plant.cooling_load"] > b["plant.cooling_load"] + 100.0


def test_fault_start_duration_and_clear() -> None:
    twin = Twin(seed=1)
    fid = twin.inject(
        Fault(kind=FaultKind.CHILLER_TRIP, target="chiller_2", start_s=300, duration_s=600)
    )
    twin.step(290)
    assert twin.values()["chiller_2.tripped"] == 0.0
    twin.step(20)
    assert twin.values()["chiller_2.tripped"] == 1.0
    twin.step(600)
    assert twin.values()["chiller_2.tripped"] == 0.0
    twin.clear(fid)
    with pytest.raises(KeyError):
        twin.clear(fid)


def test_sensor_faults_change_only_the_served_value() -> None:
    twin = Twin(seed=1)
    tag = "chiller_1.chw_return_temp"
    fids = {
        "stuck": twin.inject(Fault(kind=FaultKind.STUCK, target="ct_1.cw_return_temp")),
        "drift": twin.inject(Fault(kind=FaultKind.DRIFT, target=tag, magnitude=2.0)),
        "noise": twin.inject(
            Fault(kind=FaultKind.NOISE, target="crah_1.supply_air_temp", magnitude=1.0)
        ),
        "spike": twin.inject(Fault(kind=FaultKind.SPIKE, target="gpu.it_power", magnitude=300.0)),
        "dropout": twin.inject(
            Fault(kind=FaultKind.DROPOUT, target="chiller_3.cw_flow", magnitude=0.5)
        ),
    }
    stuck, noise, spikes, drops = [], [], 0, 0
    for _ in range(360):  # one hour at 10 s
        twin.step(10)
        v, t = twin.values(), twin.true_values()
        stuck.append(v["ct_1.cw_return_temp"])
        noise.append(v["crah_1.supply_air_temp"] - t["crah_1.supply_air_temp"])
        spikes += abs(v["gpu.it_power"] - t["gpu.it_power"]) > 200.0
        drops += v["chiller_3.cw_flow"] == -3276.8  # int16 "no value" marker × scale 0.1
    assert len(set(stuck)) == 1 and twin.true_values()["ct_1.cw_return_temp"] != stuck[0]
    v, t = twin.values(), twin.true_values()
    assert v[tag] - t[tag] == pytest.approx(2.0, abs=0.1)  # 2 K/h for an hour (+ noise floor)
    sd = math.sqrt(sum(x * x for x in noise) / len(noise))
    assert 0.7 < sd < 1.3
    assert 3 <= spikes <= 30  # 3 % of 360
    assert 120 <= drops <= 240  # 50 % of 360
    for fid in fids.values():
        twin.clear(fid)
    twin.step(10)
    assert twin.values()[tag] == pytest.approx(twin.true_values()[tag], abs=0.1)  # noise floor


def test_comm_loss_freezes_the_device_and_marks_it_unavailable() -> None:
    twin = Twin(seed=1)
    twin.step(60)
    twin.inject(Fault(kind=FaultKind.COMM_LOSS, target="chiller_2"))
    twin.step(10)
    frozen = twin.values()["chiller_2.power"]
    assert twin.unavailable() == {t for t in twin.site.points_by_tag if t.startswith("chiller_2.")}
    assert (twin.site.point("chiller_2.power").source.port, 11) in twin.offline_devices()
    twin.inject(Fault(kind=FaultKind.CONDENSER_FOULING, target="chiller_2", magnitude=1.0))
    twin.step(900)
    assert twin.values()["chiller_2.power"] == frozen
    assert twin.true_values()["chiller_2.power"] != pytest.approx(frozen, rel=0.01)


def test_fault_specs_and_scenarios(tmp_path: Path) -> None:
    f = parse_fault_spec("condenser_fouling:chiller_1:600:0.5")
    assert (f.kind, f.target, f.start_s, f.magnitude) == (
        FaultKind.CONDENSER_FOULING,
        "chiller_1",
        600,
        0.5,
    )
    assert parse_fault_spec("leak:leak_1").start_s == 0
    for bad, msg in (
        ("nope:x", "kind"),
        ("stuck", "KIND:TARGET"),
        ("drift:a.b:x", "could not convert"),
    ):
        with pytest.raises(ScenarioConfigError, match=msg):
            parse_fault_spec(bad)
    twin = Twin(seed=1)
    with pytest.raises(ScenarioConfigError, match="not an equipment id"):
        twin.inject(parse_fault_spec("chiller_trip:chiller_9"))
    with pytest.raises(ScenarioConfigError, match="must be one of"):
        twin.inject(parse_fault_spec("chiller_trip:crah_1"))
    good = tmp_path / "s.yaml"
    good.write_text(
        "name: s\nfaults:\n  - {kind: chiller_trip, target: chiller_1, start_s: 60}\n"
        "  - {kind: drift, target: ct_1.cw_supply_temp, magnitude: 2}\n"
    )
    sc = load_scenario(good)
    assert [x.kind for x in sc.faults] == [FaultKind.CHILLER_TRIP, FaultKind.DRIFT]
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("faults:\n  - {kind: chiller_trip, target: chiller_1, start_s: -5}\n")
    with pytest.raises(ScenarioConfigError, match=r"bad\.yaml: faults\[0\]\.start_s"):
        load_scenario(bad_file)


def test_without_native_control_nothing_replaces_a_tripped_chiller() -> None:
    twin = Twin(seed=2, native_control=False)
    twin.inject(Fault(kind=FaultKind.CHILLER_TRIP, target="chiller_1"))
    twin.step(900)
    v = twin.values()
    assert (v["chiller_1.running"], v["chiller_3.running"]) == (0.0, 0.0)
    assert v["chiller_2.chw_supply_temp"] > 7.5  # one chiller alone cannot hold 7 °C
