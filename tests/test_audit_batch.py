"""Fewer commits per cycle without losing a row: a run's start row is committed with its next
row, the gate's decisions and approval requests in one transaction (``Audit.batch``), and
``Store.execute_all`` commits statements together or not at all."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import duckdb
import pytest

from agent.audit import Audit
from connectors.store import Store
from tools.gate import GateControl

T = datetime(2026, 1, 1, 0, 0)


def _commits(store: Store) -> list[int]:
    """Count the store's write calls (execute: one statement; execute_all: one transaction)."""
    calls: list[int] = []
    one, many = store.execute, store.execute_all

    def execute(sql: str, params: Any = None) -> None:
        calls.append(1)
        one(sql, params)

    def execute_all(statements: Any) -> None:
        calls.append(len(statements))
        many(statements)

    store.execute = execute  # type: ignore[method-assign]
    store.execute_all = execute_all  # type: ignore[method-assign]
    return calls


def _runs(store: Store) -> list[tuple[str, str]]:
    return [
        (r.run_id, r.status) for r in store.query("SELECT * FROM runs ORDER BY rowid").itertuples()
    ]


def test_execute_all_commits_together_and_counts_each_statement() -> None:
    store = Store(":memory:")
    Audit(store)
    before = store.versions("approvals", "autonomy")
    store.execute_all(
        [
            ("INSERT INTO approvals VALUES ('a', 'd', ?, 'pending', '', '')", [T]),
            ("INSERT INTO approvals VALUES ('b', 'd', ?, 'pending', '', '')", [T]),
        ]
    )
    after = store.versions("approvals", "autonomy")
    assert after[0] == before[0] and after[1] == before[1] + 2 and after[2] == before[2]
    with pytest.raises(duckdb.Error):
        store.execute_all(
            [
                ("INSERT INTO approvals VALUES ('c', 'd', ?, 'pending', '', '')", [T]),
                ("INSERT INTO no_such_table VALUES (1)", None),
            ]
        )
    assert sorted(store.query("SELECT approval_id FROM approvals")["approval_id"]) == ["a", "b"]


def test_a_run_start_row_commits_with_the_runs_next_row() -> None:
    store = Store(":memory:")
    audit = Audit(store)
    calls = _commits(store)
    audit.start_run("r1", "schedule", T)
    assert calls == [] and _runs(store) == []  # not committed yet
    audit.finish_run("r1", T, "done")
    assert calls == [2]  # start and finish: one transaction
    assert _runs(store) == [("r1", "running"), ("r1", "done")]


def test_a_read_of_runs_through_the_audit_sees_a_started_run() -> None:
    store = Store(":memory:")
    audit = Audit(store)
    audit.start_run("r1", "chat", T)
    assert list(audit.table("runs")["status"]) == ["running"]
    audit.add_tokens("r1", T, 10, 5)  # reads runs_latest: the started run is there
    assert _runs(store) == [("r1", "running"), ("r1", "running")]
    assert int(store.query("SELECT tokens_in FROM runs_latest").iloc[0, 0]) == 10


def test_a_batch_commits_once_and_its_reads_see_its_rows() -> None:
    store = Store(":memory:")
    audit = Audit(store)
    calls = _commits(store)
    audit.start_run("r1", "schedule", T)
    store.execute(
        "INSERT INTO decisions (decision_id, ts, evidence) VALUES ('d1', ?, ?)",
        [T, '{"instance_key": "leak_detected"}'],
    )
    calls.clear()
    with audit.batch():
        audit.approval_event("a1", "d1", T, "pending")
        audit.approval_event("a2", "d1", T, "pending")
        assert calls == []
        assert store.query("SELECT count(*) FROM approvals").iloc[0, 0] == 0
    assert calls == [3]  # the start row and both requests
    assert sorted(p["approval_id"] for p in audit.pending_approvals()) == ["a1", "a2"]
    with audit.batch():
        audit.approval_event("a1", "d1", T, "approved", "ops")
        # a read through the audit inside the batch sees the batch's rows
        assert [p["approval_id"] for p in audit.pending_approvals()] == ["a2"]


def test_rows_recorded_before_an_error_in_a_batch_are_committed() -> None:
    store = Store(":memory:")
    audit = Audit(store)
    with pytest.raises(RuntimeError), audit.batch():
        audit.approval_event("a1", "d1", T, "pending")
        raise RuntimeError("a node failed half-way")
    assert list(store.query("SELECT approval_id FROM approvals")["approval_id"]) == ["a1"]


def test_another_threads_write_during_a_batch_commits_at_once() -> None:
    """An operator's emergency stop through the API must not wait for the agent's batch."""
    store = Store(":memory:")
    audit = Audit(store)
    seen: list[int] = []
    with audit.batch():
        audit.approval_event("a1", "d1", T, "pending")

        def estop() -> None:
            audit.set_control(GateControl(site_ceiling=0, estop=True), T, "ops", "estop")
            seen.append(int(store.query("SELECT count(*) FROM autonomy").iloc[0, 0]))

        th = threading.Thread(target=estop)
        th.start()
        th.join(timeout=60)
    assert seen == [1]
    assert audit.control(3).estop
