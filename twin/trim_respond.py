"""Trim & respond set-point reset (ASHRAE Guideline 36-2021 §5.1.14), a pure function.

G36 resets a set point from the *requests* of the zones or coils it serves:

* every period ``T`` the set point is **trimmed** by ``SPtrim`` (towards the cheap end);
* when more than ``I`` (ignored) requests ``R`` are outstanding it **responds** by
  ``SPres × (R − I)`` (towards the expensive end);
* the net change of one period is limited to ``SPres-max`` in magnitude;
* the set point stays within ``[SPmin, SPmax]``;
* while the device is off the set point is ``SP0``; after it starts it holds ``SP0``
  for the delay ``Td`` before the first trim.

``SPtrim`` and ``SPres`` have opposite signs (e.g. chilled-water reset in G36's plant
sequences: requests raise the plant reset, each quiet period lowers it). The function
:func:`trim_respond` is one period's update; :class:`TrimRespondLoop` keeps the clock
(delay, period) and the state for a controller stepped at any ``dt``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrimRespond:
    """The G36 §5.1.14 parameters of one reset loop (names as in the guideline)."""

    sp0: float  # SP0: initial set point
    spmin: float  # SPmin
    spmax: float  # SPmax
    td: float  # Td: delay after the device starts, s
    t: float  # T: time step (period), s
    i: int  # I: number of ignored requests
    sptrim: float  # SPtrim: change per period without enough requests
    spres: float  # SPres: change per request over I
    spres_max: float  # SPres-max: largest net change of one period (magnitude)

    def __post_init__(self) -> None:
        if not self.spmin <= self.sp0 <= self.spmax:
            raise ValueError(
                f"SP0 {self.sp0} is outside [SPmin, SPmax] = [{self.spmin}, {self.spmax}]"
            )
        if self.t <= 0 or self.td < 0 or self.i < 0:
            raise ValueError("T must be > 0, Td ≥ 0 and I ≥ 0")
        if self.sptrim * self.spres > 0:
            raise ValueError("SPtrim and SPres must have opposite signs (or one be zero)")
        if self.spres_max < 0:
            raise ValueError("SPres-max is a magnitude (≥ 0)")


def trim_respond(sp: float, requests: float, p: TrimRespond) -> float:
    """The set point after one period ``T`` with ``requests`` (R) outstanding (G36 §5.1.14)."""
    r = max(0.0, float(requests))
    change = p.sptrim
    if r > p.i:
        change += p.spres * (r - p.i)
    change = max(-p.spres_max, min(p.spres_max, change))
    return min(p.spmax, max(p.spmin, sp + change))


@dataclass
class TrimRespondLoop:
    """A trim & respond loop stepped at any ``dt``: ``SP0`` while off, held for ``Td``
    after the start, then one :func:`trim_respond` update every ``T``."""

    p: TrimRespond
    sp: float = float("nan")
    _on_s: float = 0.0
    _next_s: float = 0.0

    def __post_init__(self) -> None:
        if self.sp != self.sp:  # NaN: start at SP0
            self.sp = self.p.sp0

    def step(self, requests: float, dt: float, on: bool = True) -> float:
        """Advance ``dt`` seconds with ``requests`` outstanding; returns the set point."""
        if not on:
            self.sp, self._on_s, self._next_s = self.p.sp0, 0.0, 0.0
            return self.sp
        self._on_s += dt
        if self._on_s < self.p.td:
            self._next_s = self.p.td + self.p.t
            return self.sp
        while self._on_s >= self._next_s:
            self.sp = trim_respond(self.sp, requests, self.p)
            self._next_s = max(self._next_s, self.p.td) + self.p.t
        return self.sp
