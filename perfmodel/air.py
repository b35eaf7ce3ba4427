"""Air cooling: CRAH supply air, fan power, rack inlet with recirculation, ASHRAE envelope.

Rack inlet with a recirculation share r (the fraction of server inlet air that
is hot exhaust; mixing energy balance):

    T_in = (1 − r)·T_supply + r·(T_in + ΔT_server)   ⇒   T_in = T_supply + r/(1 − r)·ΔT_server

with ΔT_server = Q_air / (ρ·V_it·c_p). When the CRAHs deliver less air than the
servers draw (V_crah < V_it) the shortfall comes from the hot aisle:
r = r0 + (1 − r0)·max(0, 1 − V_crah/V_it).

Envelope: ASHRAE TC 9.9 (2021), *Thermal Guidelines for Data Processing
Environments*, 5th ed.: recommended 18–27 °C dry bulb at the server inlet;
allowable class A1 15–32 °C.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "A1_ALLOWABLE_C",
    "CP_AIR",
    "RECOMMENDED_C",
    "RHO_AIR",
    "air_delta_t",
    "envelope_margins",
    "rack_inlet_temp",
    "recirculation_share",
    "supply_air_temp",
]

F = NDArray[np.float64]

CP_AIR = 1006.0  # J/(kg·K), dry air near 20 °C
RHO_AIR = 1.2  # kg/m³ near 20 °C, sea level
RECOMMENDED_C = (18.0, 27.0)
A1_ALLOWABLE_C = (15.0, 32.0)


def supply_air_temp(
    setpoint_c: ArrayLike, chw_supply_c: ArrayLike, coil_approach_k: ArrayLike = 5.0
) -> F:
    """CRAH supply air (°C): the setpoint, but no colder than chilled water + coil approach allows."""
    floor = np.asarray(chw_supply_c, dtype=float) + np.asarray(coil_approach_k, dtype=float)
    return np.asarray(np.maximum(np.asarray(setpoint_c, dtype=float), floor))


def air_delta_t(
    heat_kw: ArrayLike, airflow_m3s: ArrayLike, rho: float = RHO_AIR, cp: float = CP_AIR
) -> F:
    """Air temperature rise (K) carrying ``heat_kw`` at ``airflow_m3s``: Q/(ρ·V·c_p)."""
    with np.errstate(divide="ignore"):
        return np.asarray(
            np.asarray(heat_kw, dtype=float) * 1000.0 / (rho * np.asarray(airflow_m3s) * cp)
        )


def recirculation_share(
    crah_airflow_m3s: ArrayLike, it_airflow_m3s: ArrayLike, base_share: ArrayLike = 0.05
) -> F:
    """Share of hot exhaust in the server inlet air (–), base plus any airflow shortfall."""
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.clip(
            1.0 - np.asarray(crah_airflow_m3s, dtype=float) / np.asarray(it_airflow_m3s), 0.0, 1.0
        )
    r0 = np.asarray(base_share, dtype=float)
    return np.asarray(np.clip(r0 + (1.0 - r0) * short, 0.0, 0.95))


def rack_inlet_temp(supply_c: ArrayLike, server_delta_t_k: ArrayLike, recirc_share: ArrayLike) -> F:
    """Server inlet temperature (°C) = T_supply + r/(1 − r)·ΔT_server."""
    r = np.asarray(recirc_share, dtype=float)
    return np.asarray(
        np.asarray(supply_c, dtype=float) + r / (1.0 - r) * np.asarray(server_delta_t_k)
    )


def envelope_margins(inlet_c: ArrayLike, band: tuple[float, float] = RECOMMENDED_C) -> tuple[F, F]:
    """(margin to the low limit, margin to the high limit) in K; negative = outside."""
    t = np.asarray(inlet_c, dtype=float)
    return np.asarray(t - band[0]), np.asarray(band[1] - t)
