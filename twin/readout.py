"""The plant's state read out as the twin's site tags (true values, before sensor faults)."""

from __future__ import annotations

import math

from perfmodel import power
from twin import physics as ph
from twin.plant import N_CHILLERS, N_CRAHS, Plant, scalar


def plant_tags(plant: Plant) -> dict[str, float]:
    """True value of every point of the twin's site (agent points excluded)."""
    c = plant.cfg
    b = float
    v: dict[str, float] = {}
    v["gpu.it_power"] = plant.it_kw
    v["gpu.training_util"] = plant.training * 100.0
    v["gpu.inference_util"] = plant.inference * 100.0
    v["gpu.throughput"] = plant.slowdown * 100.0
    v["gpu.gpu_temp_avg"] = plant.die_avg
    v["gpu.gpu_temp_max"] = plant.die_max
    v["gpu.throttling"] = b(plant.throttle_cap < 0.999)
    v["ups_1.input_power"] = plant.ups_in
    v["ups_1.output_power"] = plant.ups_out
    v["ups_1.load_pct"] = plant.ups_out / c.ups_capacity_kw * 100.0
    v["ups_1.efficiency"] = (
        plant.ups_out / (plant.ups_out + plant.ups_loss_kw) * 100.0 if plant.ups_out > 0 else 0.0
    )
    v["ups_1.soc"] = plant.soc
    amps = power.battery_current(max(plant.ups_out, 1.0), c.battery_bus_v)
    ah = c.battery_kwh * 1000.0 / c.battery_bus_v
    full = scalar(power.peukert_runtime_h(amps, ah, c.battery_rated_hours, c.battery_peukert))
    v["ups_1.runtime"] = min(60.0 * full * plant.soc / 100.0, 600.0)
    v["ups_1.on_battery"] = b(plant.utility_lost)
    v["tx_1.load"] = plant.tx_load
    v["tx_1.load_pct"] = plant.tx_load / c.power_factor / c.tx_rated_kva * 100.0
    v["tx_1.winding_temp"] = plant.winding
    v["tx_1.losses"] = plant.tx_loss_kw
    for k in (1, 2):
        p = plant.it_kw / 2.0
        v[f"pdu_{k}.power"] = p
        v[f"pdu_{k}.current"] = p * 1000.0 / (math.sqrt(3.0) * 415.0 * c.power_factor)
        v[f"pdu_{k}.load_pct"] = p / 800.0 * 100.0
    for i in range(N_CHILLERS):
        e = f"chiller_{i + 1}"
        v[f"{e}.chw_supply_temp"] = plant.chiller_leave[i]
        v[f"{e}.chw_return_temp"] = plant.chw_return
        v[f"{e}.cw_entering_temp"] = plant.tower_leave
        v[f"{e}.cw_leaving_temp"] = plant.chiller_cw_leave[i]
        v[f"{e}.chw_flow"] = plant.chiller_chw_flow[i]
        v[f"{e}.cw_flow"] = plant.chiller_cw_flow[i]
        v[f"{e}.power"] = plant.chiller_p[i]
        v[f"{e}.load"] = plant.chiller_q[i] / c.chiller_cap_kw * 100.0
        v[f"{e}.running"] = b(plant.chiller_running[i])
        v[f"{e}.tripped"] = b(i in plant.faults.chiller_tripped)
    v["ct_1.cw_supply_temp"] = plant.tower_leave
    v["ct_1.cw_return_temp"] = plant.cw_return
    v["ct_1.fan_speed"] = plant.tower_fan * 100.0
    v["ct_1.fan_power"] = plant.tower_kw
    v["ct_1.approach"] = plant.tower_leave - plant.wb
    v["ct_1.fan_running"] = b(plant.tower_fan > 0.05)
    for eid, speed, flow, kw, key in (
        (
            "chw_pump_1",
            plant.chw_pump,
            c.chw_flow_ls * plant.chw_pump,
            plant.chw_pump_kw,
            "chw",
        ),
        ("cw_pump_1", plant.cw_pump, c.cw_flow_ls * plant.cw_pump, plant.cw_pump_kw, "cw"),
    ):
        v[f"{eid}.speed"] = speed * 100.0
        v[f"{eid}.flow"] = flow
        v[f"{eid}.power"] = kw
        v[f"{eid}.running"] = b(speed > 0.05)
        v[f"{eid}.fault"] = b(key in plant.faults.pump_failed)
    for i in range(N_CRAHS):
        e = f"crah_{i + 1}"
        v[f"{e}.supply_air_temp"] = plant.crah_supply[i]
        v[f"{e}.return_air_temp"] = plant.crah_return[i]
        v[f"{e}.rack_inlet_temp"] = plant.rack_inlet[i]
        v[f"{e}.fan_speed"] = plant.crah_fan[i] * 100.0
        v[f"{e}.fan_power"] = plant.crah_fan_kw[i]
        v[f"{e}.valve"] = plant.crah_valve[i] * 100.0
        v[f"{e}.fan_running"] = b(plant.crah_fan[i] > 0.05)
        v[f"{e}.fan_fault"] = b(i in plant.faults.crah_fan_failed)
    flow_frac = plant.cdu_pump * (1.0 - plant.faults.cdu_flow_loss)
    v["cdu_1.coolant_supply_temp"] = plant.cdu_supply
    v["cdu_1.coolant_return_temp"] = plant.cdu_return
    v["cdu_1.coolant_flow"] = c.cdu_flow_ls * flow_frac
    v["cdu_1.pump_speed"] = plant.cdu_pump * 100.0
    v["cdu_1.pump_power"] = plant.cdu_pump_kw
    v["cdu_1.heat_load"] = plant.q_liquid
    v["cdu_1.cold_plate_temp"] = plant.cold_plate
    v["cdu_1.pump_fault"] = b("cdu" in plant.faults.pump_failed or plant.faults.cdu_flow_loss > 0.0)
    v["leak_1.leak_detected"] = b(plant.leak_zone > 0)
    v["leak_1.leak_zone"] = float(plant.leak_zone)
    v["leak_1.cable_fault"] = 0.0
    level = sum(plant.smoke >= x for x in (0.05, 0.1, 0.2, 0.4))
    v["vesda_1.smoke_obscuration"] = plant.smoke
    v["vesda_1.alarm_level"] = float(level)
    v["vesda_1.alarm"] = b(level >= 3)
    v["vesda_1.fault"] = 0.0
    v["weather.outdoor_temp"] = plant.t_db
    v["weather.outdoor_rh"] = plant.rh
    v["weather.wet_bulb"] = plant.wb
    v["plant.facility_power"] = plant.facility_kw
    v["plant.it_power"] = plant.it_kw
    v["plant.cooling_power"] = plant.cooling_kw
    total = plant.facility_kw + max(plant.battery_kw, 0.0)
    v["plant.pue"] = ph.clamp(total / plant.it_kw, 1.0, 3.0) if plant.it_kw > 1.0 else 1.0
    v["plant.cooling_load"] = plant.q_chw
    return v
