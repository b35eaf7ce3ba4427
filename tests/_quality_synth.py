"""Synthetic, physically consistent plant telemetry for the quality tests (no twin needed).

A chiller (supply/return, condenser in/out, flows, power, running), a pump, a UPS,
a GPU cluster and a CDU, sampled every second with small Gaussian sensor noise and
slow process variation, so every healthy point moves and every physics rule holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.site import Site, parse_site

START = datetime(2026, 3, 1, 12, 0, 0)

# (equipment, kind, point, unit, brick, min, max, max_rate)
POINTS = [
    (
        "chiller_1",
        "chiller",
        "chw_supply_temp",
        "degC",
        "Leaving_Chilled_Water_Temperature_Sensor",
        0,
        30,
        0.5,
    ),
    (
        "chiller_1",
        "chiller",
        "chw_return_temp",
        "degC",
        "Entering_Chilled_Water_Temperature_Sensor",
        0,
        40,
        0.5,
    ),
    (
        "chiller_1",
        "chiller",
        "cw_entering_temp",
        "degC",
        "Entering_Condenser_Water_Temperature_Sensor",
        0,
        50,
        0.5,
    ),
    (
        "chiller_1",
        "chiller",
        "cw_leaving_temp",
        "degC",
        "Leaving_Condenser_Water_Temperature_Sensor",
        0,
        60,
        0.5,
    ),
    ("chiller_1", "chiller", "chw_flow", "L/s", "Chilled_Water_Flow_Sensor", 0, 60, 10),
    ("chiller_1", "chiller", "cw_flow", "L/s", "Condenser_Water_Flow_Sensor", 0, 70, 10),
    ("chiller_1", "chiller", "power", "kW", "Electric_Power_Sensor", 0, 250, 50),
    ("chiller_1", "chiller", "running", "bool", "Run_Status", 0, 1, None),
    ("chw_pump_1", "pump", "flow", "L/s", "Chilled_Water_Flow_Sensor", 0, 100, 10),
    ("chw_pump_1", "pump", "speed", "%", "Speed_Sensor", 0, 100, 10),
    ("chw_pump_1", "pump", "running", "bool", "Run_Status", 0, 1, None),
    ("ups_1", "ups", "input_power", "kW", "Electric_Power_Sensor", 0, 2000, 300),
    ("ups_1", "ups", "output_power", "kW", "Electric_Power_Sensor", 0, 1600, 300),
    ("gpu", "gpu_cluster", "gpu_temp_avg", "degC", "Temperature_Sensor", 10, 110, 5),
    ("gpu", "gpu_cluster", "it_power", "kW", "Electric_Power_Sensor", 0, 1200, 200),
    (
        "cdu_1",
        "cdu",
        "coolant_supply_temp",
        "degC",
        "Coolant_Supply_Temperature_Sensor",
        0,
        60,
        0.5,
    ),
    ("cdu_1", "cdu", "coolant_return_temp", "degC", "Coolant_Return_Temperature_Sensor", 0, 80, 1),
    ("cdu_1", "cdu", "coolant_flow", "L/s", "Coolant_Flow_Sensor", 0, 40, 5),
    ("cdu_1", "cdu", "pump_speed", "%", "Speed_Sensor", 0, 100, 10),
]


def make_site() -> Site:
    eqs: dict[str, dict[str, object]] = {}
    for i, (eq, kind, name, unit, brick, lo, hi, rate) in enumerate(POINTS):
        e = eqs.setdefault(eq, {"id": eq, "kind": kind, "points": []})
        p: dict[str, object] = {
            "name": name, "unit": unit, "brick": brick, "min": lo, "max": hi,
            "source": {"port": 5020, "device_id": 1, "table": "input", "address": 2 * i, "data_type": "float32"},
        }  # fmt: skip
        if rate is not None:
            p["max_rate"] = rate
        e["points"].append(p)  # type: ignore[attr-defined]
    return parse_site({"name": "synthetic", "equipment": list(eqs.values())}, "<synthetic>")


def make_frame(seconds: int = 900, seed: int = 0, start: datetime = START) -> pd.DataFrame:
    """Wide frame (columns = tags), one row per second, healthy and consistent."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds, dtype=float)
    idx = pd.date_range(start, periods=seconds, freq="1s", name="ts")

    def noise(sigma: float) -> np.ndarray:
        return rng.normal(0.0, sigma, seconds)

    load = 0.6 + 0.05 * np.sin(2 * np.pi * t / 1800.0)  # slow load swing
    chw_flow = 30.0 + noise(0.05)
    q_evap = 700.0 * load  # kW
    sup = 7.0 + 0.05 * np.sin(2 * np.pi * t / 600.0)
    ret = sup + q_evap / (30.0 * 4.19)
    power = q_evap / 5.5
    cw_flow = 36.0 + noise(0.05)
    cw_in = 26.0 + 0.3 * np.sin(2 * np.pi * t / 1200.0)
    cw_out = cw_in + (q_evap + power) / (36.0 * 4.19)
    it = 600.0 + 20.0 * np.sin(2 * np.pi * t / 300.0)
    cool_sup = 27.0 + 0.05 * np.sin(2 * np.pi * t / 900.0)
    cols = {
        "chiller_1.chw_supply_temp": sup + noise(0.02),
        "chiller_1.chw_return_temp": ret + noise(0.02),
        "chiller_1.cw_entering_temp": cw_in + noise(0.02),
        "chiller_1.cw_leaving_temp": cw_out + noise(0.02),
        "chiller_1.chw_flow": chw_flow,
        "chiller_1.cw_flow": cw_flow,
        "chiller_1.power": power + noise(0.3),
        "chiller_1.running": np.ones(seconds),
        "chw_pump_1.flow": 60.0 + noise(0.1),
        "chw_pump_1.speed": 80.0 + noise(0.05),
        "chw_pump_1.running": np.ones(seconds),
        "ups_1.input_power": it / 0.95 + noise(0.5),
        "ups_1.output_power": it + noise(0.5),
        "gpu.gpu_temp_avg": cool_sup + 20.0 + it / 100.0 + noise(0.1),
        "gpu.it_power": it + noise(0.5),
        "cdu_1.coolant_supply_temp": cool_sup + noise(0.02),
        "cdu_1.coolant_return_temp": cool_sup + 4.5 + noise(0.02),
        "cdu_1.coolant_flow": 24.0 + noise(0.05),
        "cdu_1.pump_speed": 90.0 + noise(0.05),
    }
    return pd.DataFrame(cols, index=idx)


def end_of(frame: pd.DataFrame) -> datetime:
    """The scoring instant just after the frame's last sample."""
    return (frame.index[-1] + timedelta(seconds=1)).to_pydatetime()
