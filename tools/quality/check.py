"""One evaluated cross-sensor check (a balance or a physics rule) for fault isolation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tools.quality.config import QualityConfig


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
    key: tuple[str, str] = ("", "")  # (relation or rule id, anchor equipment)

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


def share_scores(
    viol: np.ndarray, applies: np.ndarray, recent: np.ndarray, cfg: QualityConfig
) -> np.ndarray:
    """Per row (check instance): 1 while violations stay rare (one violated cell is a blip);
    down to ``floor`` as the share of violated cells nears ``physics_window_share`` over the
    window or ``physics_recent_share`` over the recent cells (at least two recent cells
    checked)."""
    n_w, n_r = applies.sum(axis=1), (applies & recent).sum(axis=1)
    share_w = viol.sum(axis=1) / np.maximum(n_w, 1)
    share_r = (viol & recent).sum(axis=1) / np.maximum(n_r, 1)
    # a single violated cell is a blip, however short the history
    lo_w = np.maximum(0.02, 1.5 / np.maximum(n_w, 1))
    lo_r = 1.0 / max(cfg.physics_recent_buckets, 1) + 1e-9
    excess = np.fmax(
        (share_w - lo_w) / (cfg.physics_window_share - 0.02),
        (share_r - lo_r) / (cfg.physics_recent_share - lo_r),
    )
    s = 1.0 - (1.0 - cfg.floor) * np.clip(excess, 0.0, 1.0)
    return np.where(n_r >= 2, s, 1.0)
