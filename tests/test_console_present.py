"""Findings on how a decision is worded, fixed where the text is produced.

* "constraints ok" was printed beside an explanation listing five broken constraints: the
  live view looked only at the constraints the change made *worse*. Now every broken one
  is named (breaks / still broken / eases), and "hold" only when none is broken.
* A live view still showed ``approval_requested`` after the approval executed: the demo
  kept the decision as the cycle left it. Now it reads the decision's state now.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from agent.audit import Audit
from agent.commands.demo import _agent_table, _whatif_summary
from agent.decision import Action, Change, Decision, new_decision
from agent.web.present import constraints_text, fmt, whatif_summary
from connectors.store import Store
from tools.gate import GateVerdict
from tools.prediction import ConstraintRecord, PredictionRecord

BROKEN = ("ups_runtime", "chw_supply_temp", "rack_inlet", "gpu_die", "cdu_supply")


def five_broken(worsened: tuple[str, ...] = ()) -> PredictionRecord:
    """Five constraints broken before and after the change (the utility loss's case), one ok."""
    cons = [
        ConstraintRecord(n, False, value=10.0, limit=5.0, margin=-5.0, margin_before=-5.0)
        for n in BROKEN
    ]
    cons.append(ConstraintRecord("tx_load", True, value=50.0, limit=100.0, margin=50.0))
    return PredictionRecord(
        constraints=tuple(cons),
        before={"facility_kw": 1000.0},
        after={"facility_kw": 900.0},
        worsened=worsened,
    )


def test_no_constraint_is_called_ok_while_one_is_broken() -> None:
    pred = five_broken()
    text = constraints_text(pred)
    assert not re.search(r"\bok\b|\bhold\b", text), text
    assert text.startswith("still broken 5:")
    for name in BROKEN:
        assert name in text
    worse = constraints_text(five_broken(worsened=("gpu_die",)))
    assert worse.startswith("breaks 1: gpu_die") and "still broken 4" in worse
    fine = PredictionRecord(constraints=(ConstraintRecord("tx_load", True, 1.0, 2.0, 1.0),))
    assert constraints_text(fine) == "all 1 constraints hold"
    assert constraints_text(None, "what-if unavailable") == "what-if unavailable"
    assert whatif_summary(pred).startswith("-100 kW, still broken 5")


def decision(pred: PredictionRecord | None = None) -> Decision:
    d = new_decision(
        run_id="run-1",
        ts=datetime(2026, 1, 1, 12, 0),
        policy_id="utility_loss",
        description="UPS on battery: cap GPU power",
        kind="protection",
        severity="critical",
        action=Action("write_setpoint", (Change("gpu.power_cap", 70.0, 100.0),), "cap"),
        equipment="ups_1",
    )
    verdict = GateVerdict(
        decision_id=d.decision_id,
        level=2,
        set_by=("site",),
        caps={"site": 2},
        reasons={"site": "ceiling 2"},
        writes=True,
        outcome="approval_requested",
    )
    return replace(d, verdict=verdict, prediction=pred, approval_id="apr-1")


def test_the_demo_live_view_says_what_every_constraint_does() -> None:
    text = _whatif_summary(decision(five_broken()))
    assert "constraints ok" not in text
    assert all(n in text for n in BROKEN)


def test_the_demo_live_view_shows_the_decisions_state_now() -> None:
    store = Store(":memory:")
    audit = Audit(store)
    d = decision(five_broken())
    audit.record_decision(d, d.ts)
    later = replace(d, executed=True, done=True, explanation="written: gpu.power_cap = 70")
    audit.record_decision(later, d.ts)
    view = SimpleNamespace(store=store, decisions=deque([d]))  # as the cycle left it
    out = Console(width=250, record=True)
    out.print(_agent_table(view))  # type: ignore[arg-type]
    shown = out.export_text()
    assert "executed" in shown and "approval_requested" not in shown, shown
    store.close()


def test_readings_are_worded_for_people() -> None:
    assert fmt(None) == "—" and fmt(float("nan"), "kW") == "—"
    assert fmt(1.0, "bool") == "on" and fmt(0.0, "bool") == "off"
    assert fmt(1234.5678, "kW") == "1235 kW" and fmt(1.25, "-") == "1.25"


def test_the_demo_issues_an_admin_token_on_a_database_that_has_users(tmp_path: Path) -> None:
    from agent.commands.demo import demo_admin
    from agent.users import Role, Users

    store = Store(tmp_path / "d.duckdb")
    users = Users(store)
    users.ensure_admin("test")
    out = Console(width=250, record=True)
    first = demo_admin(store, out)
    second = demo_admin(store, out)
    assert first and second and first != second
    assert second in out.export_text()
    assert users.authenticate(first) is None  # the earlier demo token no longer works
    who = users.authenticate(second)
    assert who is not None and who.name == "demo" and who.role is Role.ADMIN
    store.close()


def test_a_refused_approval_shows_the_gates_reason_in_place() -> None:
    """The card of an approved request the gate refused at write time: 'refused' and why."""
    from agent.web import data
    from agent.web.routes import templates

    why = "the write is refused: re-evaluated at write time: site ceiling 1 (decision support)"
    d = replace(
        decision(five_broken()),
        executed=False,
        done=True,
        explanation=f"Utility lost. Outcome: waiting for an operator. Not carried out: {why}",
    )
    assert data.refusal_reason(d) == why
    card = data._card("apr-1", "approved", "olga", "", d, d.ts, [], "")
    html = templates.get_template("_card.html").render(c=card, may_operate=True)
    assert 'data-state="approved"' in html and 'data-outcome="blocked"' in html
    assert f'refused at write time: <span class="recheck">{why}</span>' in html
    assert "still broken 5" in html and "approve" not in html.split("Result:")[1]
