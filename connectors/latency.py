"""A fixed-bucket latency histogram: cheap to fill on a poller's hot path (one bisect a request),
read by the service's ``/metrics`` as a Prometheus histogram."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

#: Upper bounds in seconds (Prometheus ``le``), a Modbus request on a LAN to a slow gateway.
BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


@dataclass
class LatencyHistogram:
    """Counts per bucket (the last one is +Inf), their sum and count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total_s: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total_s += seconds
        self.n += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``[(le, count ≤ le)]`` ending with ``("+Inf", n)``, as Prometheus wants them."""
        out, acc = [], 0
        for le, c in zip((*(repr(b) for b in BUCKETS), "+Inf"), self.counts, strict=True):
            acc += c
            out.append((le, acc))
        return out
