"""``GET /metrics``: the running site in Prometheus text format (``prometheus_client``).

Read at each scrape from what the process already holds — the ingest's pollers, the gate's
control settings, the audit tables, the newest readings — never kept twice. Job runs and
their durations come from the ``runs`` table (every decision cycle, chat turn and scheduled
job is a run there, its ``trigger`` the job's name).

==========================================  =========  ===========================================
metric                                      type       labels / meaning
==========================================  =========  ===========================================
facility_agent_info                         gauge      site, version (always 1)
facility_agent_poll_latency_seconds         histogram  device: Modbus or BACnet request → answer
facility_agent_device_up                    gauge      device: 1 answering, 0 down
facility_agent_readings_total               counter    device: readings produced (any status)
facility_agent_readings_good_total          counter    device: readings with status ok
facility_agent_good_readings_ratio          gauge      share of good readings since the start
facility_agent_quality_score                gauge      equipment: weakest point's score (0–1)
facility_agent_quality_level                gauge      equipment: autonomy level the score allows
facility_agent_decisions_total              counter    outcome: decisions by their latest outcome
facility_agent_writes_total                 counter    state: agent writes by journal state
facility_agent_pending_approvals            gauge      approvals waiting for an operator
facility_agent_open_faults                  gauge      faults raised and not yet cleared
facility_agent_estop                        gauge      1 while the emergency stop is engaged
facility_agent_autolocked                   gauge      1 while the auto-lock holds
facility_agent_autonomy_ceiling             gauge      the admin's ceiling (0–3)
facility_agent_pue                          gauge      newest good PUE reading of the site
facility_agent_it_power_kw                  gauge      newest good IT power reading, kW
facility_agent_job_runs_total               counter    job, status: runs in the ``runs`` table
facility_agent_job_duration_seconds         summary    job: finished runs' durations (sum, count)
==========================================  =========  ===========================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from connectors.site import EquipmentKind, Site

if TYPE_CHECKING:
    from agent.context import AgentContext
    from connectors.ingest import Ingestor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
P = "facility_agent_"
QUALITY_TTL_S = 15.0  # a scrape reuses the quality scores this long (scoring is the costly part)


def find_tag(site: Site, name: str, brick: str | None = None) -> str | None:
    """The site's point for a plant-wide quantity: by Brick class, else by name on the plant
    meter (kind ``plant`` / ``meter``), else by name anywhere."""
    if brick is not None:
        for eq, p in site.iter_points():
            if p.brick == brick:
                return f"{eq.id}.{p.name}"
    for kinds in ((EquipmentKind.PLANT, EquipmentKind.METER), tuple(EquipmentKind)):
        for eq, p in site.iter_points():
            if eq.kind in kinds and p.name == name:
                return f"{eq.id}.{p.name}"
    return None


class SiteCollector:
    """A ``prometheus_client`` collector over one running site (see the module docstring)."""

    def __init__(
        self,
        ctx: AgentContext,
        ingestor: Callable[[], Ingestor | None] = lambda: None,
        version: str = "",
    ) -> None:
        self.ctx = ctx
        self.ingestor = ingestor
        self.version = version
        self.pue_tag = find_tag(ctx.site, "pue", "Power_Usage_Effectiveness_Sensor")
        self.it_tag = find_tag(ctx.site, "it_power")
        self._quality: tuple[float, dict[str, tuple[float, int]]] | None = None

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            P + "info", "the site this process runs", labels=["site", "version"]
        )
        info.add_metric([self.ctx.site.name, self.version], 1.0)
        yield info
        yield from self._ingest()
        yield from self._quality_metrics()
        yield from self._control()
        yield from self._audit()
        yield from self._plant()

    # ---- ingest ----------------------------------------------------------------------------
    def _ingest(self) -> Iterator[Metric]:
        ing = self.ingestor()
        lat = HistogramMetricFamily(
            P + "poll_latency_seconds",
            "Modbus or BACnet request to answer, per device",
            labels=["device"],
        )
        up = GaugeMetricFamily(P + "device_up", "1 when the device answers", labels=["device"])
        total = CounterMetricFamily(
            P + "readings", "readings produced, any status", labels=["device"]
        )
        good = CounterMetricFamily(
            P + "readings_good", "readings with status ok", labels=["device"]
        )
        n_all = n_good = 0
        for poller in ing.pollers if ing is not None else []:
            dev, st = str(poller.key), poller.stats
            h = st.latency
            lat.add_metric([dev], [(le, float(c)) for le, c in h.cumulative()], h.total_s)
            up.add_metric([dev], 1.0 if st.up else 0.0)
            total.add_metric([dev], float(st.readings))
            good.add_metric([dev], float(st.good))
            n_all += st.readings
            n_good += st.good
        ratio = GaugeMetricFamily(
            P + "good_readings_ratio", "share of good readings since the process started"
        )
        # a good read is counted when decoded, at the next flush: leave the undecoded out
        decided = n_all - (ing.stats().pending if ing is not None else 0)
        ratio.add_metric([], min(1.0, n_good / decided) if decided > 0 else math.nan)
        yield from (lat, up, total, good, ratio)

    # ---- data quality ------------------------------------------------------------------------
    def _equipment_quality(self) -> dict[str, tuple[float, int]]:
        now_m = time.monotonic()
        if self._quality is not None and now_m - self._quality[0] < QUALITY_TTL_S:
            return self._quality[1]
        site = self.ctx.site
        res = self.ctx.quality_for(self.ctx.clock.now(), list(site.points_by_tag))
        out: dict[str, tuple[float, int]] = {}
        for eq in site.equipment:
            scores = [res.scores.get(f"{eq.id}.{p.name}", 0.0) for p in eq.points]
            scores = [0.0 if math.isnan(s) else s for s in scores]
            if scores:
                worst = min(scores)
                out[eq.id] = (worst, site.quality.level(worst))
        self._quality = (now_m, out)
        return out

    def _quality_metrics(self) -> Iterator[Metric]:
        score = GaugeMetricFamily(
            P + "quality_score", "data quality of the weakest point (0-1)", labels=["equipment"]
        )
        level = GaugeMetricFamily(
            P + "quality_level", "autonomy level the data quality allows", labels=["equipment"]
        )
        for eq, (s, lvl) in sorted(self._equipment_quality().items()):
            score.add_metric([eq], s)
            level.add_metric([eq], float(lvl))
        yield from (score, level)

    # ---- gate control and audit ------------------------------------------------------------
    def _control(self) -> Iterator[Metric]:
        c = self.ctx.control()
        for name, doc, v in (
            ("estop", "1 while the emergency stop is engaged", c.estop),
            ("autolocked", "1 while the auto-lock holds", c.locked),
            ("autonomy_ceiling", "the site's autonomy ceiling (0-3)", c.site_ceiling),
            ("pending_approvals", "approvals waiting for an operator",
             len(self.ctx.audit.pending_approvals())),
            ("open_faults", "faults raised and not yet cleared (tools.policies.faults)",
             len(self.ctx.faults.open_faults()) if self.ctx.faults is not None else 0),
        ):  # fmt: skip
            g = GaugeMetricFamily(P + name, doc)
            g.add_metric([], float(v))
            yield g

    def _counts(self, sql: str) -> list[tuple[Any, ...]]:
        df = self.ctx.store.query(sql)
        return list(df.itertuples(index=False, name=None))

    def _audit(self) -> Iterator[Metric]:
        dec = CounterMetricFamily(P + "decisions", "decisions by outcome", labels=["outcome"])
        for outcome, n in self._counts(
            "SELECT coalesce(outcome, 'undecided'), count(*) FROM decisions_latest GROUP BY 1"
        ):
            dec.add_metric([str(outcome)], float(n))
        wr = CounterMetricFamily(P + "writes", "agent writes by journal state", labels=["state"])
        for state, n in self._counts(
            "SELECT coalesce(state, 'unknown'), count(*) FROM actions_latest GROUP BY 1"
        ):
            wr.add_metric([str(state)], float(n))
        runs = CounterMetricFamily(
            P + "job_runs", "runs by job (trigger) and status", labels=["job", "status"]
        )
        for job, status, n in self._counts(
            "SELECT coalesce(trigger, 'unknown'), coalesce(status, 'unknown'), count(*) "
            "FROM runs_latest GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            runs.add_metric([str(job), str(status)], float(n))
        dur = SummaryMetricFamily(
            P + "job_duration_seconds", "durations of finished runs, by job", labels=["job"]
        )
        for job, n, total in self._counts(
            "SELECT coalesce(trigger, 'unknown'), count(*), "
            "coalesce(sum(epoch(finished) - epoch(started)), 0) "
            "FROM runs_latest WHERE finished IS NOT NULL GROUP BY 1 ORDER BY 1"
        ):
            dur.add_metric([str(job)], count_value=int(n), sum_value=float(total))
        yield from (dec, wr, runs, dur)

    # ---- the plant ---------------------------------------------------------------------------
    def _plant(self) -> Iterator[Metric]:
        tags = [t for t in (self.pue_tag, self.it_tag) if t]
        since = self.ctx.clock.now() - timedelta(minutes=5)  # bounds the scan of a big store
        vals = self.ctx.store.latest_values(tags, since) if tags else {}
        for name, doc, tag in (
            ("pue", "newest good PUE reading", self.pue_tag),
            ("it_power_kw", "newest good IT power reading (kW)", self.it_tag),
        ):
            if tag is None:
                continue
            g = GaugeMetricFamily(P + name, f"{doc} ({tag})")
            g.add_metric([], float(vals.get(tag, math.nan)))
            yield g


def render(collector: SiteCollector) -> bytes:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
