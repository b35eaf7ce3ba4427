"""The audit's per-cycle reads kept between writes (Store.versions) never go stale."""

from __future__ import annotations

from datetime import datetime

from agent.audit import Audit
from connectors.store import Store
from tools.gate import GateControl


def test_store_versions_change_with_writes_to_their_tables() -> None:
    store = Store(":memory:")
    Audit(store)
    before = store.versions("autonomy", "approvals")
    store.execute("INSERT INTO runs VALUES ('r', NULL, NULL, 't', 0, 0, 'running')")
    assert store.versions("autonomy", "approvals") == before  # another table
    store.execute(
        "INSERT INTO approvals VALUES ('a', 'd', ?, 'pending', '', '')", [datetime(2026, 1, 1)]
    )
    after = store.versions("autonomy", "approvals")
    assert after != before and after[1] == before[1]
    with store.transaction() as con:  # statements not parsed: everything may have changed
        con.execute("DELETE FROM approvals")
    assert store.versions("autonomy", "approvals")[0] != after[0]


def test_control_and_pending_follow_writes_from_another_audit() -> None:
    store = Store(":memory:")
    reader, writer = Audit(store), Audit(store)
    t = datetime(2026, 1, 1, 0, 0)
    assert reader.control(2) == GateControl(site_ceiling=2)
    assert reader.pending_approvals() == [] and reader.pending_instance_keys() == set()
    writer.set_control(GateControl(site_ceiling=1, locked=True, lock_reason="x"), t, "ops")
    assert reader.control(2) == GateControl(1, True, "x", False)
    store.execute(
        "INSERT INTO decisions (decision_id, ts, evidence) VALUES ('d1', ?, ?)",
        [t, '{"instance_key": "leak_detected"}'],
    )
    writer.approval_event("a1", "d1", t, "pending")
    assert [p["approval_id"] for p in reader.pending_approvals()] == ["a1"]
    assert reader.pending_instance_keys() == {"leak_detected"}
    reader.pending_approvals()[0]["approval_id"] = "changed"  # callers get copies
    assert reader.pending_approvals()[0]["approval_id"] == "a1"
    writer.approval_event("a1", "d1", t, "approved", "ops")
    assert reader.pending_approvals() == [] and reader.pending_instance_keys() == set()
