"""What each console page shows, read from the running site (store, audit, gate control).

Every function takes the site's :class:`~agent.context.AgentContext` and returns plain
dicts and lists for a template (or JSON for the trend chart). Nothing here is cached
across requests but the overview's quality scores (:class:`QualityCache`): a decision's
state is always read from the audit as it is *now* (``decisions_latest``), so a page
never shows ``approval_requested`` for an approval that has since been carried out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from agent.context import AgentContext, QualityResult
from agent.decision import Decision
from agent.web import present
from tools.gate import LEVEL_NAMES

SPANS: dict[str, tuple[timedelta, timedelta]] = {
    "15m": (timedelta(minutes=15), timedelta(seconds=5)),
    "1h": (timedelta(hours=1), timedelta(seconds=10)),
    "6h": (timedelta(hours=6), timedelta(minutes=1)),
    "1d": (timedelta(days=1), timedelta(minutes=2)),
}
"""Trend range → (how far back, roll-up bucket): 1 h at 10 s, 1 day at 2 min."""

OUTCOMES = (
    "recommended",
    "approval_requested",
    "executed",
    "blocked",
    "alarm",
    "rejected_by_gate",
)


def _ts(x: Any) -> datetime | None:
    if x is None or x is pd.NaT or (isinstance(x, float) and math.isnan(x)):
        return None
    return pd.Timestamp(x).to_pydatetime()


def _num(x: Any) -> float | None:
    if x is None or x is pd.NA:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _loads(x: Any) -> Any:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return json.loads(x) if isinstance(x, str) else x


@dataclass
class QualityCache:
    """Quality scores of every point, recomputed at most every ``max_age_s`` of site time."""

    max_age_s: float = 10.0
    _at: datetime | None = None
    _res: QualityResult | None = None
    _tags: tuple[str, ...] = field(default_factory=tuple)

    def get(self, ctx: AgentContext) -> QualityResult:
        now = ctx.clock.now()
        tags = tuple(ctx.site.points_by_tag)
        fresh = self._at is not None and abs((now - self._at).total_seconds()) < self.max_age_s
        if self._res is None or not fresh or tags != self._tags:
            self._res = ctx.quality_for(now, list(tags))
            self._at, self._tags = now, tags
        return self._res


# ---- overview ---------------------------------------------------------------------------------
def open_faults(ctx: AgentContext) -> list[dict[str, Any]]:
    """The faults open now (:mod:`tools.policies.faults`), oldest first, with their age."""
    from agent.faults import fault_list

    now = ctx.clock.now()
    out = []
    for f in reversed(fault_list(ctx.store, open_only=True, limit=50)):
        raised = datetime.fromisoformat(f["raised_at"])
        out.append(
            {
                "what": f"{f['fault_class'] or f['policy_id']} on {f['equipment'] or 'site'}",
                "severity": f["severity"],
                "raised_at": raised,
                "open_s": max(0.0, (now - raised).total_seconds()),
                "evidence": f["evidence"] or "",
            }
        )
    return out


def overview(ctx: AgentContext, quality: QualityResult) -> dict[str, Any]:
    now = ctx.clock.now()
    site = ctx.site
    latest = ctx.store.latest(list(site.points_by_tag), since=now - timedelta(minutes=10))
    rows = {
        str(r["tag"]): (_num(r["value"]), str(r["status"]), _ts(r["ts"]))
        for r in latest.to_dict("records")
    }
    level_of = site.quality.level
    equipment = []
    alarms: list[dict[str, Any]] = []
    for eq in site.equipment:
        points: list[dict[str, Any]] = []
        for p in eq.points:
            tag = f"{eq.id}.{p.name}"
            value, status, ts = rows.get(tag, (None, "no data", None))
            score = quality.scores.get(tag)
            reasons = quality.reasons.get(tag, [])
            points.append(
                {
                    "tag": tag,
                    "name": p.name,
                    "value": present.fmt(value, p.unit),
                    "unit": p.unit,
                    "status": status,
                    "age_s": None if ts is None else max(0.0, (now - ts).total_seconds()),
                    "score": score,
                    "reason": reasons[0] if reasons else "",
                    "writable": p.write is not None,
                }
            )
            if present.is_alarm(tag, value):
                alarms.append({"what": f"{tag} = {present.fmt(value, p.unit)}", "source": "point"})
        scored = [(float(x["score"]), x) for x in points if x["score"] is not None]
        worst = min(scored, key=lambda sx: sx[0])[1] if scored else None
        equipment.append(
            {
                "id": eq.id,
                "name": eq.name or eq.id,
                "kind": str(eq.kind),
                "points": points,
                "score": worst["score"] if worst else None,
                "level": level_of(float(worst["score"])) if worst else None,
                "worst": f"{worst['tag']}: {worst['reason']}" if worst and worst["reason"] else "",
            }
        )
    kpis = []
    for label, tag in present.KPI_TAGS.items():
        if tag in site.points_by_tag:
            _, pt = site.points_by_tag[tag]
            kpis.append({"label": label, "value": present.fmt(rows.get(tag, (None,))[0], pt.unit)})
    recent = decisions(ctx, since=now - timedelta(hours=1), limit=8)
    for d in recent:
        if d["outcome"] == "alarm":
            alarms.append({"what": f"{d['policy_id']}: {d['explanation']}", "source": "decision"})
    return {
        "now": now,
        "control": control(ctx),
        "kpis": kpis,
        "equipment": equipment,
        "alarms": alarms,
        "faults": open_faults(ctx),
        "recent": recent,
        "pending": len(ctx.audit.pending_approvals()),
    }


def control(ctx: AgentContext) -> dict[str, Any]:
    c = ctx.control()
    eff, why = c.effective_site_ceiling()
    return {
        "ceiling": c.site_ceiling,
        "ceiling_name": LEVEL_NAMES.get(c.site_ceiling, "?"),
        "effective": eff,
        "effective_name": LEVEL_NAMES.get(eff, "?"),
        "why": why,
        "estop": c.estop,
        "locked": c.locked,
        "lock_reason": c.lock_reason,
    }


# ---- decisions and audit ----------------------------------------------------------------------
def decisions(
    ctx: AgentContext,
    *,
    equipment: str | None = None,
    policy: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Decisions as they stand now (latest row each), newest first; full texts."""
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if equipment:
        where.append("json_extract_string(evidence, '$.equipment') = ?")
        params.append(equipment)
    if policy:
        where.append("policy_id = ?")
        params.append(policy)
    if outcome:
        where.append("outcome = ?")
        params.append(outcome)
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    df = ctx.store.query(
        f"""SELECT decision_id, ts, policy_id, severity, kind, outcome, effective_level,
                   level_set_by, explanation, action, prediction,
                   json_extract_string(evidence, '$.equipment') AS equipment,
                   json_extract_string(evidence, '$.approval_id') AS approval_id,
                   json_extract_string(evidence, '$.whatif_reason') AS whatif_reason
            FROM decisions_latest WHERE {" AND ".join(where)}
            ORDER BY ts DESC LIMIT {int(limit)}""",
        params,
    )
    out = []
    for r in df.to_dict("records"):
        pred = _prediction(r["prediction"])
        out.append(
            {
                "decision_id": r["decision_id"],
                "ts": _ts(r["ts"]),
                "policy_id": r["policy_id"],
                "severity": r["severity"],
                "kind": r["kind"],
                "equipment": r["equipment"] or "",
                "outcome": r["outcome"] or "",
                "level": None if _num(r["effective_level"]) is None else int(r["effective_level"]),
                "set_by": r["level_set_by"] or "",
                "explanation": r["explanation"] or "",
                "whatif": present.whatif_summary(pred, r["whatif_reason"] or ""),
                "approval_id": r["approval_id"] or "",
            }
        )
    return out


def _prediction(raw: Any) -> Any:
    from tools.prediction import PredictionRecord

    data = _loads(raw)
    if not isinstance(data, dict):
        return None
    data = {k: v for k, v in data.items() if k != "delta_kw"}
    try:
        return PredictionRecord.from_json(data)
    except ValueError:
        return None


def filter_choices(ctx: AgentContext) -> dict[str, list[str]]:
    df = ctx.store.query("SELECT DISTINCT policy_id FROM decisions ORDER BY 1")
    return {
        "equipment": [e.id for e in ctx.site.equipment],
        "policies": [str(x) for x in df["policy_id"] if x is not None],
        "outcomes": list(OUTCOMES),
    }


# ---- approvals --------------------------------------------------------------------------------
def approval_card(ctx: AgentContext, approval_id: str, message: str = "") -> dict[str, Any] | None:
    """Everything an operator needs to answer one approval — or, once answered, what became of it."""
    a = ctx.audit.approval(approval_id)
    if a is None:
        return None
    d = ctx.audit.decision(a.decision_id)
    first = ctx.store.query(
        "SELECT min(ts) AS ts FROM approvals WHERE approval_id = ?", [approval_id]
    )
    requested = _ts(first["ts"].iloc[0]) if len(first) else None
    actions = ctx.store.query(
        "SELECT * FROM actions_latest WHERE decision_id = ? ORDER BY ts", [a.decision_id]
    ).to_dict("records")
    return _card(a.approval_id, a.state, a.by_whom, a.why, d, requested, actions, message)


def _card(
    approval_id: str,
    state: str,
    by: str,
    why: str,
    d: Decision | None,
    requested: datetime | None,
    actions: Sequence[dict[str, Any]],
    message: str,
) -> dict[str, Any]:
    written = [{k: (_num(v) if k in _NUMS else v) for k, v in r.items()} for r in actions]
    card: dict[str, Any] = {
        "approval_id": approval_id,
        "state": state,
        "by": by,
        "why": why,
        "message": message,
        "requested": requested,
        "expires": present.expires(requested) if requested else None,
        "actions": written,
    }
    if d is None:
        return card
    verdict = d.verdict
    card.update(
        decision_id=d.decision_id,
        policy_id=d.policy_id,
        description=d.description,
        equipment=d.equipment or "",
        asked_by=present.asked_by(d.kind, d.policy_id),
        severity=d.severity,
        outcome=d.outcome if verdict else "",
        level=d.level,
        set_by=",".join(verdict.set_by) if verdict else "",
        reasons=dict(verdict.reasons) if verdict else {},
        changes=present.changes({"changes": _changes(d)}, written),
        message_text=d.action.message,
        deltas=present.deltas(d.prediction),
        constraints=list(d.prediction.constraints) if d.prediction else [],
        constraints_text=present.constraints_text(d.prediction, d.whatif_reason),
        evidence=list(d.evidence),
        quality_score=d.quality.score,
        quality_reasons=list(d.quality.reasons),
        explanation=d.explanation,
        recheck=d.recheck,
        executed=d.executed,
        refusal=refusal_reason(d),
    )
    return card


def refusal_reason(d: Decision) -> str:
    """Why an approved decision was not written: the gate's (or the actuator's) words."""
    if d.executed is not False:
        return ""
    marker = "Not carried out: "
    if marker in d.explanation:
        return d.explanation.rsplit(marker, 1)[1].strip()
    return d.recheck or d.explanation


_NUMS = ("requested", "clamped", "previous", "written", "read_back")


def _changes(d: Decision) -> list[dict[str, Any]]:
    return [{"tag": c.tag, "value": c.value, "previous": c.previous} for c in d.action.changes]


def approvals(ctx: AgentContext, answered_within: timedelta = timedelta(hours=2)) -> dict[str, Any]:
    """Pending approvals (oldest first) and those answered recently (newest first)."""
    pending = [
        c
        for p in ctx.audit.pending_approvals()
        if (c := approval_card(ctx, str(p["approval_id"]))) is not None
    ]
    since = ctx.clock.now() - answered_within
    df = ctx.store.query(
        "SELECT approval_id FROM approvals_latest WHERE state <> 'pending' AND ts >= ? "
        "ORDER BY ts DESC LIMIT 20",
        [since],
    )
    answered = [c for x in df["approval_id"] if (c := approval_card(ctx, str(x))) is not None]
    return {"pending": pending, "answered": answered}


# ---- trends -----------------------------------------------------------------------------------
def trend(ctx: AgentContext, tags: Sequence[str], span: str) -> dict[str, Any]:
    """uPlot data: shared time axis (epoch seconds), one series per tag (bucket means),
    and the decisions and writes in the range as marks."""
    back, width = SPANS.get(span, SPANS["1h"])
    end = ctx.clock.now()
    start = end - back
    known = [t for t in tags if t in ctx.site.points_by_tag]
    df = (
        ctx.store.buckets(known, start, end, width)
        if known
        else pd.DataFrame(columns=["bucket", "tag", "vmean"])
    )
    if len(df):
        wide = df.pivot_table(index="bucket", columns="tag", values="vmean").sort_index()
    else:
        wide = pd.DataFrame()
    t = [pd.Timestamp(x).timestamp() for x in wide.index]
    series = []
    for tag in known:
        _, pt = ctx.site.points_by_tag[tag]
        col = wide[tag] if tag in wide.columns else pd.Series([math.nan] * len(wide))
        series.append(
            {"tag": tag, "unit": pt.unit, "values": [None if v != v else float(v) for v in col]}
        )
    dec = ctx.store.query(
        """SELECT min(ts) AS ts, decision_id, arg_max(policy_id, rowid) AS policy_id,
                  arg_max(outcome, rowid) AS outcome
           FROM decisions WHERE ts >= ? GROUP BY decision_id ORDER BY ts""",
        [start],
    )
    wr = ctx.store.query(
        "SELECT ts, tag, written, state FROM actions_latest WHERE ts >= ? ORDER BY ts", [start]
    )
    marks = [
        {
            "t": pd.Timestamp(r["ts"]).timestamp(),
            "kind": "decision",
            "label": f"{r['policy_id']}: {r['outcome']}",
        }
        for r in dec.to_dict("records")
    ] + [
        {
            "t": pd.Timestamp(r["ts"]).timestamp(),
            "kind": "write",
            "label": f"write {r['tag']} = {present.fmt(_num(r['written']))} ({r['state']})",
        }
        for r in wr.to_dict("records")
    ]
    return {
        "span": span if span in SPANS else "1h",
        "bucket_s": width.total_seconds(),
        "t": t,
        "series": series,
        "marks": marks,
        "unknown": [x for x in tags if x not in ctx.site.points_by_tag],
    }
