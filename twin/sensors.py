"""The twin's instruments: what a real transmitter makes of the plant's true values.

Each measured point with an instrument spec (its own ``sensor:`` block in the site
file, else the site's ``sensor_defaults`` for its unit — see
:class:`connectors.site.SensorSpec`) reads its true value through, in order:

1. a first-order lag ``τ dy/dt = x − y`` (thermowell, transmitter damping), exact for a
   value held over the step;
2. a fixed bias;
3. white noise of σ = ``noise + noise_rel·|value|``;
4. rounding to the instrument's ``resolution``;
5. the point's physical range (a transmitter's output stays inside its span).

An exact zero (equipment off: no power, no flow) stays an exact zero. Points without a
spec (setpoints, states, counters, computed KPIs) are served as they are. The twin's
defaults and where they come from are in ``twin/site.yaml``.
"""

from __future__ import annotations

import math
import random

from connectors.site import SensorSpec, Site


class Instruments:
    """The instruments of every measured point of ``site`` (deterministic for a seed)."""

    def __init__(self, site: Site, seed: int = 0) -> None:
        self._specs: dict[str, tuple[SensorSpec, float, float]] = {}
        for tag, (_, p) in site.points_by_tag.items():
            spec = site.sensor(tag)
            if spec is not None:
                lo = -math.inf if p.min is None else p.min
                hi = math.inf if p.max is None else p.max
                self._specs[tag] = (spec, lo, hi)
        self._rng = random.Random(seed * 7_777 + 1)
        self._lagged: dict[str, float] = {}
        self._t: float | None = None

    def read(self, values: dict[str, float], now_s: float) -> None:
        """Replace the true values in ``values`` by what the instruments read at ``now_s``."""
        dt = 0.0 if self._t is None else max(now_s - self._t, 0.0)
        self._t = now_s
        gauss = self._rng.gauss
        for tag, (spec, lo, hi) in self._specs.items():
            x = values.get(tag)
            if x is None or not math.isfinite(x):
                continue
            y = self._lag(tag, x, spec.time_constant_s, dt)
            if x == 0.0:  # off equipment reads an exact zero
                values[tag] = 0.0
                continue
            y += spec.bias + gauss(0.0, spec.sigma(y))
            if spec.resolution > 0:
                y = round(y / spec.resolution) * spec.resolution
            values[tag] = min(max(y, lo), hi)

    def _lag(self, tag: str, x: float, tau: float, dt: float) -> float:
        prev = self._lagged.get(tag)
        y = x if tau <= 0 or prev is None else x + (prev - x) * math.exp(-dt / tau)
        self._lagged[tag] = y
        return y
