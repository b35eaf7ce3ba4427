"""Pumps and fans: affinity laws, VFD and motor efficiency.

Affinity laws (e.g. ASHRAE Handbook—HVAC Systems and Equipment, ch. 44
"Centrifugal Pumps"): at fixed impeller diameter, flow ∝ N, head ∝ N²,
shaft power ∝ N³ (N: speed). With a system curve through the origin (no
static head, a closed loop) the operating point follows the same laws.

VFD efficiency against speed fraction s: Bernier & Bourret (1999), "Pumping
energy and variable frequency drives", ASHRAE Journal 41(12):
``η_vfd = 0.5087 + 1.283·s − 1.42·s² + 0.5834·s³`` (0.955 at full speed).

Motor part-load efficiency: ``η_m(x) = η_full · (1 − exp(−x / 0.09))`` with x
the shaft load over rated (–): flat above ~40 % load, falling steeply below
25 %, the shape of the part-load curves in the US DOE Motor Challenge fact
sheet "Determining electric motor load and efficiency" (an approximation;
η_full from the nameplate).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "affinity_flow",
    "affinity_head",
    "affinity_power",
    "electric_power",
    "motor_efficiency",
    "vfd_efficiency",
]

F = NDArray[np.float64]


def affinity_flow(flow_design: ArrayLike, speed_ratio: ArrayLike) -> F:
    """Flow at ``speed_ratio`` (–) of design speed: Q = Q_d·s (same unit as ``flow_design``)."""
    return np.asarray(np.asarray(flow_design, dtype=float) * np.asarray(speed_ratio, dtype=float))


def affinity_head(head_design: ArrayLike, speed_ratio: ArrayLike) -> F:
    """Head at ``speed_ratio``: H = H_d·s² (same unit as ``head_design``)."""
    return np.asarray(
        np.asarray(head_design, dtype=float) * np.asarray(speed_ratio, dtype=float) ** 2
    )


def affinity_power(power_design: ArrayLike, speed_ratio: ArrayLike) -> F:
    """Shaft power at ``speed_ratio``: P = P_d·s³ (same unit as ``power_design``)."""
    return np.asarray(
        np.asarray(power_design, dtype=float) * np.asarray(speed_ratio, dtype=float) ** 3
    )


def vfd_efficiency(speed_ratio: ArrayLike) -> F:
    """VFD efficiency (–) against speed fraction, Bernier & Bourret (1999); s held to [0.1, 1]."""
    s = np.clip(np.asarray(speed_ratio, dtype=float), 0.1, 1.0)
    return np.asarray(0.5087 + 1.283 * s - 1.42 * s**2 + 0.5834 * s**3)


def motor_efficiency(load_ratio: ArrayLike, full_load_efficiency: ArrayLike = 0.95) -> F:
    """Motor efficiency (–) at shaft load ``load_ratio`` of rated (–); see module notes."""
    x = np.clip(np.asarray(load_ratio, dtype=float), 1e-6, None)
    return np.asarray(np.asarray(full_load_efficiency, dtype=float) * (1.0 - np.exp(-x / 0.09)))


def electric_power(
    shaft_power_design_kw: ArrayLike,
    speed_ratio: ArrayLike,
    *,
    motor_full_load_efficiency: ArrayLike = 0.95,
    vfd: bool = True,
) -> F:
    """Electric input (kW) of a pump or fan whose shaft power at design speed is given.

    Shaft power by the cube law, divided by motor efficiency at that load and,
    with ``vfd=True``, by the drive's efficiency at that speed. Zero speed → 0 kW.
    """
    s = np.clip(np.asarray(speed_ratio, dtype=float), 0.0, None)
    shaft = affinity_power(shaft_power_design_kw, s)
    load = s**3
    eff = motor_efficiency(load, motor_full_load_efficiency)
    if vfd:
        eff = eff * vfd_efficiency(s)
    return np.asarray(np.where(s > 0, shaft / eff, 0.0), dtype=float)
