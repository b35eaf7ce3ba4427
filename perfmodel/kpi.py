"""Plant KPIs: PUE, kW/ton, COP.

PUE: The Green Grid, White Paper 49 (2012) / ISO/IEC 30134-2: total facility
energy over IT equipment energy (–, ≥ 1).
kW/ton: chiller (or plant) electric input per ton of refrigeration;
1 ton = 12 000 Btu/h = 3.516853 kW (ASHRAE Terminology).
COP: cooling delivered over electric input (–); kW/ton = 3.516853 / COP.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["KW_PER_TON", "cop", "cop_from_kw_per_ton", "kw_per_ton", "pue"]

F = NDArray[np.float64]

KW_PER_TON = 3.516852842  # 12 000 Btu/h in kW (1 Btu_IT/h = 0.29307107 W)


def pue(facility_kw: ArrayLike, it_kw: ArrayLike) -> F:
    """Power usage effectiveness (–) = facility power / IT power."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.asarray(facility_kw, dtype=float) / np.asarray(it_kw, dtype=float))


def kw_per_ton(power_kw: ArrayLike, cooling_kw: ArrayLike) -> F:
    """Electric input per ton of cooling (kW/ton); ``cooling_kw`` is kW of heat removed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            np.asarray(power_kw, dtype=float) / (np.asarray(cooling_kw, dtype=float) / KW_PER_TON)
        )


def cop(cooling_kw: ArrayLike, power_kw: ArrayLike) -> F:
    """Coefficient of performance (–) = cooling / electric input."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.asarray(cooling_kw, dtype=float) / np.asarray(power_kw, dtype=float))


def cop_from_kw_per_ton(kwt: ArrayLike) -> F:
    """COP (–) from kW/ton: 3.516853 / (kW/ton)."""
    return np.asarray(KW_PER_TON / np.asarray(kwt, dtype=float))
