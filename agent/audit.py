"""The audit trail: ``runs``, ``decisions``, ``approvals``, ``actions`` (+ ``autonomy``) in DuckDB.

All tables are append-only: a state change is a new row and the latest row per
id wins (views ``*_latest`` give that). Columns follow /work/brief/CONTRACTS.md:

``runs(run_id, started, finished, trigger, tokens_in, tokens_out, status)``
``decisions(decision_id, run_id, ts, policy_id, fault_class, severity, kind, outcome,
            effective_level, level_set_by, action JSON, evidence JSON, prediction JSON, explanation)``
``approvals(approval_id, decision_id, ts, state, by_whom, why)``
``actions(...)`` — the actuation journal, DDL in :mod:`tools.actuation`.
``autonomy(ts, site_ceiling, locked, lock_reason, estop, by_whom, why)`` — the gate's
control settings over time (admin ceiling, auto-lock, emergency stop).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pandas as pd

from agent.decision import Decision, decision_from_json
from connectors.store import Store
from tools.actuation import ACTIONS_DDL, Journal
from tools.gate import Approval, ApprovalState, GateControl

AUDIT_DDL = (
    """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR NOT NULL, started TIMESTAMP, finished TIMESTAMP, trigger VARCHAR,
    tokens_in INTEGER, tokens_out INTEGER, status VARCHAR);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id VARCHAR NOT NULL, run_id VARCHAR, ts TIMESTAMP NOT NULL, policy_id VARCHAR,
    fault_class VARCHAR, severity VARCHAR, kind VARCHAR, outcome VARCHAR, effective_level INTEGER,
    level_set_by VARCHAR, action JSON, evidence JSON, prediction JSON, explanation VARCHAR);
CREATE TABLE IF NOT EXISTS approvals (
    approval_id VARCHAR NOT NULL, decision_id VARCHAR, ts TIMESTAMP NOT NULL, state VARCHAR,
    by_whom VARCHAR, why VARCHAR);
CREATE TABLE IF NOT EXISTS autonomy (
    ts TIMESTAMP NOT NULL, site_ceiling INTEGER, locked BOOLEAN, lock_reason VARCHAR,
    estop BOOLEAN, by_whom VARCHAR, why VARCHAR);
"""
    + ACTIONS_DDL
    + """
CREATE OR REPLACE VIEW runs_latest AS SELECT * FROM runs
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY rowid DESC) = 1;
CREATE OR REPLACE VIEW decisions_latest AS SELECT * FROM decisions
    QUALIFY row_number() OVER (PARTITION BY decision_id ORDER BY rowid DESC) = 1;
CREATE OR REPLACE VIEW approvals_latest AS SELECT * FROM approvals
    QUALIFY row_number() OVER (PARTITION BY approval_id ORDER BY rowid DESC) = 1;
CREATE OR REPLACE VIEW actions_latest AS SELECT * FROM actions
    QUALIFY row_number() OVER (PARTITION BY action_id ORDER BY rowid DESC) = 1;
"""
)


def _json(x: Any) -> str | None:
    return None if x is None else json.dumps(x, default=str)


def _loads(x: Any) -> Any:
    """A JSON column's value (DuckDB hands JSON back as text)."""
    if x is None or (isinstance(x, float) and x != x):
        return None
    return json.loads(x) if isinstance(x, str) else x


def _nullable(x: Any) -> Any:
    return None if x is None or x is pd.NA or (isinstance(x, float) and x != x) else x


class Audit:
    """Typed appends and reads over the audit tables of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(AUDIT_DDL)
        self.journal = Journal(store)
        # the per-cycle reads of small tables, kept until a write to their tables
        # (Store.versions): pending approvals and the control settings
        self._pending: tuple[tuple[int, ...], list[dict[str, Any]], set[str]] | None = None
        self._control: tuple[tuple[int, ...], GateControl | None] | None = None
        self._started: dict[str, tuple[datetime, str]] = {}  # runs begun here, not finished
        # rows not committed yet: runs' start rows (committed with the next row written) and,
        # inside batch(), the batch's rows — one commit for them all. Only the thread that
        # opened a batch queues into it; the lock guards the lists, not the store.
        self._start_rows: list[tuple[str, list[Any] | dict[str, Any]]] = []
        self._queued: list[tuple[str, list[Any] | dict[str, Any]]] = []
        self._batch: tuple[int, int] | None = None  # (thread id, depth)
        self._qlock = threading.Lock()

    def _exec(self, sql: str, params: list[Any] | dict[str, Any]) -> None:
        with self._qlock:
            b = self._batch
            if b is not None and b[0] == threading.get_ident():
                self._queued.append((sql, params))
                return
            self._queued.append((sql, params))
        self.flush()

    def flush(self) -> None:
        """Commit every queued row, start rows first (one transaction)."""
        with self._qlock:
            rows, self._start_rows, self._queued = self._start_rows + self._queued, [], []
        if len(rows) == 1:
            self.store.execute(*rows[0])
        elif rows:
            self.store.execute_all(rows)

    def _sync(self, runs: bool = False) -> None:
        """Before a read through the audit: commit what it must see (the batch's rows; the
        start rows too for a read of ``runs``)."""
        if self._queued or (runs and self._start_rows):
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The rows this thread writes inside commit together at the end (also on an error:
        what was recorded stays recorded), in one transaction instead of one each."""
        me = threading.get_ident()
        with self._qlock:
            b = self._batch
            if b is not None and b[0] != me:  # another thread's batch: write as usual
                mine = False
            else:
                mine = True
                self._batch = (me, (b[1] if b else 0) + 1)
        try:
            yield
        finally:
            if mine:
                with self._qlock:
                    assert self._batch is not None
                    depth = self._batch[1] - 1
                    self._batch = (me, depth) if depth else None
                if not depth:
                    self.flush()

    def _query(self, sql: str, params: list[Any] | None = None, runs: bool = False) -> pd.DataFrame:
        self._sync(runs)
        return self.store.query(sql, params)

    # ---- runs -------------------------------------------------------------------------------
    def start_run(self, run_id: str, trigger: str, now: datetime) -> None:
        """The run's first row (status ``running``). It is committed together with the run's
        next row — its first decision, or its finish — saving a commit per cycle."""
        self._start_rows.append(
            ("INSERT INTO runs VALUES (?, ?, NULL, ?, 0, 0, 'running')", [run_id, now, trigger])
        )
        self._started[run_id] = (now, trigger)

    def finish_run(
        self, run_id: str, now: datetime, status: str, tokens_in: int = 0, tokens_out: int = 0
    ) -> None:
        known = self._started.pop(run_id, None)
        if known is not None:  # started by this process: no need to look it up
            self._exec(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, known[0], now, known[1], tokens_in, tokens_out, status],
            )
            return
        # one statement: the run's first row gives started and trigger (none: now, unknown)
        self._exec(
            """INSERT INTO runs
               SELECT $id, f.started, $now, f.trigger, $tin, $tout, $status
               FROM (SELECT started, trigger FROM runs WHERE run_id = $id LIMIT 1) f
               UNION ALL
               SELECT $id, $now, $now, 'unknown', $tin, $tout, $status
               WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = $id)""",
            {"id": run_id, "now": now, "tin": tokens_in, "tout": tokens_out, "status": status},
        )

    def add_tokens(self, run_id: str, now: datetime, tokens_in: int, tokens_out: int) -> None:
        """Add LLM tokens to a run (a new row with the running totals)."""
        df = self._query(
            "SELECT started, trigger, tokens_in, tokens_out, status FROM runs_latest WHERE run_id = ?",
            [run_id],
            runs=True,
        )
        if not len(df):
            self._exec(
                "INSERT INTO runs VALUES (?, ?, ?, 'chat', ?, ?, 'done')",
                [run_id, now, now, tokens_in, tokens_out],
            )
            return
        r = df.iloc[0]
        self._exec(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                r["started"],
                now,
                r["trigger"],
                int(r["tokens_in"] or 0) + tokens_in,
                int(r["tokens_out"] or 0) + tokens_out,
                r["status"],
            ],
        )

    # ---- decisions --------------------------------------------------------------------------
    def record_decision(self, d: Decision, ts: datetime) -> None:
        """A new row for the decision as it stands (latest row per decision wins)."""
        j = d.as_json()
        v = d.verdict
        action, prediction = j.pop("action"), j.pop("prediction")
        for k in ("decision_id", "run_id", "ts", "policy_id", "fault_class", "severity", "kind"):
            j.pop(k)
        j["conditions"] = j.pop("evidence")
        j.pop("outcome", None)
        explanation = j.pop("explanation")
        self._exec(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                d.decision_id,
                d.run_id,
                ts,
                d.policy_id,
                d.fault_class,
                d.severity,
                d.kind,
                d.outcome if v is not None else None,
                v.level if v is not None else None,
                ",".join(v.set_by) if v is not None else None,
                _json(action),
                _json(j),
                _json(prediction),
                explanation,
            ],
        )

    def decisions(
        self, since: datetime | None = None, latest: bool = True, limit: int = 200
    ) -> pd.DataFrame:
        table = "decisions_latest" if latest else "decisions"
        where, params = ("WHERE ts >= ?", [since]) if since is not None else ("", [])
        return self._query(
            f"SELECT * FROM {table} {where} ORDER BY ts DESC LIMIT {int(limit)}", params
        )

    def decision(self, decision_id: str) -> Decision | None:
        """The decision as last recorded (rows of any age: older shapes are migrated)."""
        df = self._query("SELECT * FROM decisions_latest WHERE decision_id = ?", [decision_id])
        if not len(df):
            return None
        r = df.iloc[0]
        evidence = _loads(r["evidence"]) or {}
        row: dict[str, Any] = {
            **evidence,
            "decision_id": r["decision_id"],
            "run_id": r["run_id"],
            "ts": pd.Timestamp(r["ts"]).to_pydatetime(),
            "policy_id": r["policy_id"],
            "fault_class": _nullable(r["fault_class"]),
            "severity": r["severity"],
            "kind": r["kind"],
            "action": _loads(r["action"]) or {},
            "prediction": _loads(r["prediction"]),
            "explanation": r["explanation"] or "",
            "effective_level": _nullable(r["effective_level"]),
        }
        if not evidence.get("approval_id"):
            row["approval_id"] = self.approval_id_for(decision_id)
        return decision_from_json(row)

    def approval_id_for(self, decision_id: str) -> str | None:
        df = self._query(
            "SELECT approval_id FROM approvals WHERE decision_id = ? LIMIT 1", [decision_id]
        )
        return str(df["approval_id"].iloc[0]) if len(df) else None

    # ---- approvals --------------------------------------------------------------------------
    def approval_event(
        self,
        approval_id: str,
        decision_id: str,
        ts: datetime,
        state: ApprovalState,
        by_whom: str = "",
        why: str = "",
    ) -> Approval:
        self._exec(
            "INSERT INTO approvals VALUES (?, ?, ?, ?, ?, ?)",
            [approval_id, decision_id, ts, state, by_whom, why],
        )
        return Approval(approval_id, decision_id, state, by_whom, why)

    def approval(self, approval_id: str) -> Approval | None:
        df = self._query("SELECT * FROM approvals_latest WHERE approval_id = ?", [approval_id])
        if not len(df):
            return None
        r = df.iloc[0]
        return Approval(
            r["approval_id"], r["decision_id"], r["state"], r["by_whom"] or "", r["why"] or ""
        )

    def _pending_rows(self) -> tuple[list[dict[str, Any]], set[str]]:
        """Pending approvals with their decisions, and their policy instances — one query,
        kept until the approvals or decisions tables change."""
        self._sync()
        key = self.store.versions("approvals", "decisions")
        if self._pending is not None and self._pending[0] == key:
            return self._pending[1], self._pending[2]
        df = self._query(
            """SELECT a.approval_id, a.decision_id, a.ts, d.run_id, d.policy_id, d.severity, d.action,
                      d.explanation, json_extract_string(d.evidence, '$.instance_key') AS _k
               FROM approvals_latest a LEFT JOIN decisions_latest d USING (decision_id)
               WHERE a.state = 'pending' ORDER BY a.ts"""
        )
        keys = {str(k) for k in df.pop("_k") if k is not None and k == k}
        rows = [dict(r) for r in df.to_dict("records")]
        self._pending = (key, rows, keys)
        return rows, keys

    def pending_approvals(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._pending_rows()[0]]

    def approved_unexecuted(self) -> list[dict[str, Any]]:
        """Approvals whose latest answer is ``approved`` and whose decision has no journaled
        write: ``{approval_id, decision_id, requested (first row's ts), by_whom}``."""
        df = self._query(
            """SELECT a.approval_id, a.decision_id, a.by_whom,
                      (SELECT min(f.ts) FROM approvals f WHERE f.approval_id = a.approval_id)
                        AS requested
               FROM approvals_latest a
               WHERE a.state = 'approved' AND NOT EXISTS
                     (SELECT 1 FROM actions x WHERE x.decision_id = a.decision_id)
               ORDER BY a.ts"""
        )
        return [
            {**r, "requested": pd.Timestamp(r["requested"]).to_pydatetime()}
            for r in df.to_dict("records")
        ]

    def pending_instance_keys(self) -> set[str]:
        """Policy instances (``policy@equipment``) with an approval still pending."""
        return set(self._pending_rows()[1])

    # ---- autonomy settings ------------------------------------------------------------------
    def control(self, default_ceiling: int, *, fresh: bool = False) -> GateControl:
        """The newest control settings. Kept until the ``autonomy`` table is written through the
        store; ``fresh`` reads the table regardless (the actuator's check at the moment of
        writing never rests on a cache)."""
        self._sync()
        key = self.store.versions("autonomy")
        if fresh or self._control is None or self._control[0] != key:
            df = self._query("SELECT * FROM autonomy ORDER BY rowid DESC LIMIT 1")
            if not len(df):
                self._control = (key, None)
            else:
                r = df.iloc[0]
                c = GateControl(
                    int(r["site_ceiling"]),
                    bool(r["locked"]),
                    r["lock_reason"] or "",
                    bool(r["estop"]),
                )
                self._control = (key, c)
        stored = self._control[1]
        return GateControl(site_ceiling=default_ceiling) if stored is None else stored

    def set_control(self, c: GateControl, ts: datetime, by_whom: str, why: str = "") -> GateControl:
        d = asdict(c)
        self._exec(
            "INSERT INTO autonomy VALUES (?, ?, ?, ?, ?, ?, ?)",
            [ts, d["site_ceiling"], d["locked"], d["lock_reason"], d["estop"], by_whom, why],
        )
        return c

    def autonomous_actions(self, since: datetime) -> list[tuple[datetime, str]]:
        """(time, policy) of every autonomous action since ``since`` (the auto-lock's count)."""
        df = self._query(
            """SELECT min(ts) AS ts, any_value(policy_id) AS policy_id FROM decisions
               WHERE outcome = 'executed' AND effective_level = 3 AND ts >= ?
               GROUP BY decision_id ORDER BY ts""",  # a decision has several rows (append-only)
            [since],
        )
        return [
            (pd.Timestamp(t).to_pydatetime(), str(p or ""))
            for t, p in zip(df["ts"], df["policy_id"], strict=True)
        ]

    def table(self, name: str, since: datetime | None = None, limit: int = 100) -> pd.DataFrame:
        if name not in ("runs", "decisions", "approvals", "actions", "autonomy"):
            raise KeyError(f"unknown audit table {name!r}")
        col = "started" if name == "runs" else "ts"
        where, params = (f"WHERE {col} >= ?", [since]) if since is not None else ("", [])
        return self._query(
            f"SELECT * FROM {name} {where} ORDER BY {col} DESC LIMIT {int(limit)}",
            params,
            runs=name == "runs",
        )
