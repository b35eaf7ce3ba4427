"""How the console (and the demo's live view) words a decision: pure functions, no I/O.

:func:`constraints_text` says what the what-if found about *every* constraint — the
ones the change breaks, the ones it leaves broken, the ones it eases — never "ok"
while one is broken (the finding: "constraints ok" beside an explanation listing five
broken constraints came from looking only at the ones the change made worse).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tools.gate import APPROVAL_TTL_S, constraint_verdict
from tools.prediction import PredictionRecord

ALARM_WORDS = ("fault", "tripped", "leak", "on_battery", "throttling", "alarm")
"""A point whose name holds one of these is an alarm while its value is above 0."""

KPI_TAGS = {
    "PUE": "plant.pue",
    "IT power": "plant.it_power",
    "Cooling power": "plant.cooling_power",
    "Facility power": "plant.facility_power",
}


def constraints_text(pred: PredictionRecord | None, whatif_reason: str = "") -> str:
    """One line on the constraints of a predicted change, true to every broken one."""
    if pred is None:
        return whatif_reason or "no what-if prediction"
    cv = constraint_verdict(pred)
    parts = []
    if cv.broken:
        parts.append(f"breaks {len(cv.broken)}: " + "; ".join(cv.broken))
    if cv.still:
        parts.append(f"still broken {len(cv.still)}: " + "; ".join(cv.still))
    if cv.eased:
        parts.append(f"eases {len(cv.eased)}: " + "; ".join(cv.eased))
    if not parts:
        n = len(pred.constraints)
        parts.append(f"all {n} constraints hold" if n else "no constraint checked")
    if not pred.valid:
        parts.append("outside the model's validity range")
    return " | ".join(parts)


def whatif_summary(pred: PredictionRecord | None, whatif_reason: str = "") -> str:
    """ΔkW (when known) and :func:`constraints_text`."""
    if pred is None:
        return whatif_reason or "—"
    dkw = pred.delta_kw
    head = f"{dkw:+.0f} kW, " if dkw is not None else ""
    return head + constraints_text(pred)


def fmt(value: Any, unit: str = "") -> str:
    """A reading for people: bools on/off, numbers to 4 significant digits, missing as —."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if unit == "bool":
        return "on" if v >= 0.5 else "off"
    text = f"{v:.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return f"{text} {unit}".strip() if unit and unit != "-" else text


def is_alarm(tag: str, value: float | None) -> bool:
    if value is None or value != value:
        return False
    name = tag.split(".", 1)[-1]
    return any(w in name for w in ALARM_WORDS) and value > 0


def expires(requested: datetime, ttl_s: float = APPROVAL_TTL_S) -> datetime:
    return requested + timedelta(seconds=ttl_s)


def asked_by(kind: str, policy_id: str) -> str:
    """Who asked: the chat (an LLM proposal) or a policy."""
    return "chat" if kind == "llm_proposal" or policy_id == "llm" else f"policy {policy_id}"


def deltas(pred: PredictionRecord | None) -> list[dict[str, Any]]:
    """Key model outputs before → after, with their change."""
    if pred is None or not pred.before or not pred.after:
        return []
    out = []
    for k, b in pred.before.items():
        a = pred.after.get(k)
        d = None if a is None or b is None else a - b
        out.append({"name": k, "before": b, "after": a, "delta": d})
    return out


def changes(
    action: Mapping[str, Any], written: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Each proposed write: tag, from → to, and — once carried out — clamped to, written, read back."""
    by_tag = {str(r.get("tag")): r for r in written}
    out = []
    for c in action.get("changes") or []:
        tag = str(c.get("tag"))
        r = by_tag.get(tag, {})
        out.append(
            {
                "tag": tag,
                "from": c.get("previous"),
                "to": c.get("value"),
                "clamped": r.get("clamped"),
                "written": r.get("written"),
                "read_back": r.get("read_back"),
                "state": r.get("state"),
            }
        )
    return out
