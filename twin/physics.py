"""Small scalar helpers of the twin's dynamics (pure functions on Python floats).

The plant's steady-state physics is the performance model's (:mod:`perfmodel`);
what lives here is what the twin adds around it: the first-order lag every state
moves through, the diurnal shape of weather and load, and the transformer's
hot-spot temperature (which the performance model does not carry).

Sources: transformer hot-spot rise after IEEE C57.91 (rise ∝ K^(2m), m = 0.8,
80 K rated rise for a dry-type unit).
"""

from __future__ import annotations

import math


def lag(x: float, target: float, dt: float, tau: float) -> float:
    """Exact first-order step of ``x`` towards ``target`` with time constant ``tau`` (s)."""
    if tau <= 0:
        return target
    x = target + (x - target) * math.exp(-dt / tau)
    return target if abs(x - target) < 1e-9 else x


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def diurnal(hour: float, peak_hour: float = 15.0) -> float:
    """Cosine diurnal shape, +1 at ``peak_hour`` and −1 twelve hours later."""
    return math.cos(2.0 * math.pi * (hour - peak_hour) / 24.0)


def winding_hotspot(load_kw: float, rated_kva: float, ambient_c: float, pf: float = 0.95) -> float:
    """Steady hot-spot temperature (degC): ambient + 80 K rated rise × K^1.6 (IEEE C57.91)."""
    k = max(load_kw / pf / rated_kva, 0.0)
    return ambient_c + 80.0 * k**1.6
