"""Power chain: transformer, UPS, PDU losses and battery runtime.

Transformer: losses = P_no-load + P_load,rated·(S/S_rated)² (IEC 60076-1 /
IEEE C57.12.00 loss split into core and winding losses).

UPS: losses as a fraction of rating = a + b·x + c·x² with x the load fraction:
no-load (a), proportional (b) and square-law (c) terms (the three-part loss
model of APC/Schneider white paper 108, N. Rasmussen, "Making large UPS
systems more efficient"). η(x) = x / (x + a + b·x + c·x²).

PDU / busway: I²R losses, loss = k·P²/P_rated with k the loss fraction at rating.

Battery: Peukert (1897), t = H·(C / (I·H))^k — runtime t (h) at discharge
current I (A) for a battery of capacity C (Ah) rated at the H-hour rate, with
Peukert exponent k (≈1.1–1.3 for lead-acid, ≈1.05 for Li-ion).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "battery_current",
    "pdu_loss",
    "peukert_runtime_h",
    "transformer_loss",
    "ups_efficiency",
    "ups_loss",
]

F = NDArray[np.float64]


def transformer_loss(
    load_kva: ArrayLike, rated_kva: ArrayLike, no_load_kw: ArrayLike, load_loss_rated_kw: ArrayLike
) -> F:
    """Transformer losses (kW) = P0 + Pk·(S/S_rated)²."""
    x = np.asarray(load_kva, dtype=float) / np.asarray(rated_kva, dtype=float)
    return np.asarray(np.asarray(no_load_kw, dtype=float) + np.asarray(load_loss_rated_kw) * x**2)


def ups_loss(
    load_kw: ArrayLike, rated_kw: ArrayLike, a: float = 0.013, b: float = 0.006, c: float = 0.02
) -> F:
    """UPS losses (kW) at output ``load_kw``: rated·(a + b·x + c·x²); defaults give η ≈ 96 % at half load."""
    r = np.asarray(rated_kw, dtype=float)
    x = np.asarray(load_kw, dtype=float) / r
    return np.asarray(r * (a + b * x + c * x**2))


def ups_efficiency(
    load_fraction: ArrayLike, a: float = 0.013, b: float = 0.006, c: float = 0.02
) -> F:
    """UPS efficiency (–) at output load fraction x: x / (x + a + b·x + c·x²); 0 at no load."""
    x = np.asarray(load_fraction, dtype=float)
    return np.asarray(np.where(x > 0, x / (x + a + b * x + c * x**2), 0.0))


def pdu_loss(load_kw: ArrayLike, rated_kw: ArrayLike, loss_fraction_at_rated: float = 0.015) -> F:
    """PDU / busway I²R losses (kW) = k·P²/P_rated."""
    p = np.asarray(load_kw, dtype=float)
    return np.asarray(loss_fraction_at_rated * p**2 / np.asarray(rated_kw, dtype=float))


def battery_current(
    load_kw: ArrayLike, bus_voltage_v: ArrayLike, inverter_efficiency: float = 0.95
) -> F:
    """DC battery current (A) feeding ``load_kw`` through the inverter: P/(V·η)."""
    return np.asarray(
        np.asarray(load_kw, dtype=float)
        * 1000.0
        / (np.asarray(bus_voltage_v, dtype=float) * inverter_efficiency)
    )


def peukert_runtime_h(
    current_a: ArrayLike,
    capacity_ah: ArrayLike,
    rated_hours: ArrayLike = 20.0,
    exponent: ArrayLike = 1.2,
) -> F:
    """Runtime (h) at ``current_a`` by Peukert's law t = H·(C/(I·H))^k; inf at zero current."""
    i = np.asarray(current_a, dtype=float)
    h = np.asarray(rated_hours, dtype=float)
    with np.errstate(divide="ignore"):
        return np.asarray(
            h * (np.asarray(capacity_ah, dtype=float) / (i * h)) ** np.asarray(exponent)
        )
