"""One evaluated cross-sensor check (a balance or a physics rule) for fault isolation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Check:
    """One evaluated balance instance (or a violated physics rule, ``at`` None)."""

    members: list[int]
    score: float  # < 1: violated
    holds: bool  # checked recently and not violated recently
    why: str = ""
    # residual at the reference cell with member row r offset by d: at(r, d)
    at: Callable[[int, float], float] | None = None
    tol: float = 0.0

    def explains(self, r: int) -> float | None:
        """The offset of member ``r`` that would bring this residual to zero (None: it cannot)."""
        if self.at is None:
            return None
        r0 = self.at(r, 0.0)
        h = 1e-3 * max(abs(r0), 1.0)
        slope = (self.at(r, h) - r0) / h
        if not np.isfinite(slope) or abs(slope) < 1e-12:
            return None
        return -r0 / slope

    def strain(self, r: int, d: float) -> float:
        """|residual| / tolerance this (holding) balance would show with member ``r`` offset
        by ``d``: above 1 it would have broken — the offset is ruled out."""
        if self.at is None or not self.holds or r not in self.members:
            return 0.0
        return abs(self.at(r, d)) / max(self.tol, 1e-12)
