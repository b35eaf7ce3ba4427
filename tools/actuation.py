"""Guarded actions: the only path from a decision to a write on equipment.

:meth:`Actuator.execute` takes an :class:`~tools.gate.Authorization` — which only
the gate can mint — and for each change:

1. refuses a point that is not writable, or one an operator holds in override
   (``agent.override_<equipment>__<point>`` = 1, or — a writer with ``overridden_by``, e.g.
   BACnet — a command above the agent's priority), or one written less than its
   ``min_interval_s`` ago (:class:`~connectors.errors.WriteRejected`);
2. clamps the value to the point's write limits and to ``previous ± max_step``
   (the largest step per write) — except a move in the point's ``safe_direction`` (a CDU
   pump speeding up), held to its limits only: pacing keeps an optimiser from ratcheting
   the plant, it must not slow a protection restoring margin;
3. journals ``proposed → approved → executing`` *before* touching the device,
   writes, reads back, and journals ``done`` (read-back matches) or ``failed``.

While an emergency stop is engaged (the control state is read at every write, not only
in the gate) nothing is written but the stop's own restore: :meth:`Actuator.hand_back`
writes every point the agent holds (:meth:`Journal.takeovers`) back to its journaled
pre-agent value — or, on a protocol with a priority array (a writer with
``relinquish``), gives the agent's slot up. A rollback or restore writes only a
journaled previous value (:func:`~tools.gate.authorize_rollback` takes the journal row),
inside the write limits — it is refused, never clamped into another value.

Then :meth:`Actuator.check_verifications` (called every cycle) compares the
plant with what the what-if predicted over the verification window and rolls
back automatically — writing the previous value — when it moved the wrong way.

The journal is the DuckDB ``actions`` table (append-only; the latest row per
``action_id`` wins). A crash mid-action is safe: :meth:`Actuator.reconcile`
on start-up reads back every action left ``executing`` and marks it ``done``
(the write landed) or ``failed`` (it did not) — it never writes twice.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from connectors.clock import Clock
from connectors.errors import DeviceError, WriteFailed, WriteRejected
from connectors.site import Site
from connectors.store import Store
from connectors.writer import PointWriter, WriteResult
from tools.gate import Authorization, AuthorizedChange, GateControl, authorize_rollback

ACTIONS_DDL = """
CREATE TABLE IF NOT EXISTS actions (
    action_id VARCHAR NOT NULL,
    decision_id VARCHAR,
    ts TIMESTAMP NOT NULL,
    tag VARCHAR NOT NULL,
    requested DOUBLE,
    clamped DOUBLE,
    previous DOUBLE,
    written DOUBLE,
    read_back DOUBLE,
    state VARCHAR NOT NULL,
    detail JSON
);
"""

ActionState = Literal["proposed", "approved", "executing", "done", "failed", "rolled_back"]
READBACK_TOL = 1e-3


@dataclass(frozen=True)
class ActionRow:
    action_id: str
    decision_id: str | None
    ts: datetime
    tag: str
    requested: float | None
    clamped: float | None
    previous: float | None
    written: float | None
    read_back: float | None
    state: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["ts"] = self.ts.isoformat()
        return d


def _f(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


class Journal:
    """The ``actions`` table: append-only rows, latest per action wins."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(ACTIONS_DDL)
        # the latest row of every action, kept until the table changes (Store.versions):
        # every decision cycle reads it, and most cycles write nothing
        self._latest: tuple[tuple[int, ...], list[ActionRow]] | None = None

    def append(self, row: ActionRow) -> ActionRow:
        self.store.execute(
            "INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row.action_id,
                row.decision_id,
                row.ts,
                row.tag,
                _f(row.requested),
                _f(row.clamped),
                _f(row.previous),
                _f(row.written),
                _f(row.read_back),
                row.state,
                json.dumps(row.detail, default=str),
            ],
        )
        return row

    def _rows(self, sql: str, params: list[Any]) -> list[ActionRow]:
        df = self.store.query(sql, params)
        return [_row(r) for r in df.to_dict("records")]

    def latest(self, action_id: str | None = None) -> list[ActionRow]:
        """Latest row per action (optionally one action)."""
        if action_id is None:
            key = self.store.versions("actions")
            if self._latest is not None and self._latest[0] == key:
                return list(self._latest[1])
        where = "WHERE action_id = ?" if action_id else ""
        rows = self._rows(
            f"""SELECT * FROM actions {where}
                QUALIFY row_number() OVER (PARTITION BY action_id ORDER BY rowid DESC) = 1
                ORDER BY ts""",
            [action_id] if action_id else [],
        )
        if action_id is None:
            self._latest = (key, rows)
            return list(rows)
        return rows

    def history(self, action_id: str) -> list[ActionRow]:
        return self._rows("SELECT * FROM actions WHERE action_id = ? ORDER BY rowid", [action_id])

    def last_write(self, tag: str) -> datetime | None:
        df = self.store.query(
            "SELECT max(ts) AS t FROM actions WHERE tag = ? AND state = 'executing'", [tag]
        )
        t = df["t"].iloc[0] if len(df) else None
        return None if t is None or pd.isna(t) else pd.Timestamp(t).to_pydatetime()

    def for_decision(self, decision_id: str) -> list[ActionRow]:
        return [r for r in self.latest() if r.decision_id == decision_id]

    def takeovers(self) -> list[Takeover]:
        """Points the agent holds now: per tag, its first write since it took the point over
        (whose ``previous`` is the pre-agent value) and its latest. A write that failed did
        not land; an e-stop restore hands the point back (the next write takes it over anew);
        a point whose last write is a rollback to the pre-agent value is no longer held."""
        rows = self._rows(  # latest row per action, in the order the actions began
            """SELECT * EXCLUDE (first) FROM (
                 SELECT *, min(rowid) OVER (PARTITION BY action_id) AS first FROM actions
                 QUALIFY row_number() OVER (PARTITION BY action_id ORDER BY rowid DESC) = 1)
               ORDER BY first""",
            [],
        )
        first: dict[str, ActionRow] = {}
        last: dict[str, ActionRow] = {}
        for r in rows:
            if r.state == "failed" and "rollback_error" not in r.detail:
                continue
            if r.detail.get("estop_restore"):
                first.pop(r.tag, None)
                continue
            first.setdefault(r.tag, r)
            last[r.tag] = r
        out = []
        for tag, f in sorted(first.items()):
            lr = last[tag]
            back = lr.detail.get("by") == "rollback" and _same(lr.written, f.previous)
            if not back:
                out.append(Takeover(tag, f, lr))
        return out


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= READBACK_TOL * max(1.0, abs(b))


@dataclass(frozen=True)
class Takeover:
    """A point the agent holds: ``first`` is its first write since taking it over."""

    tag: str
    first: ActionRow
    last: ActionRow

    @property
    def agent_value(self) -> float | None:
        return self.last.written

    @property
    def before_agent(self) -> float | None:
        return self.first.previous


@dataclass(frozen=True)
class Restore:
    """One point handed back by an e-stop: agent value → restored value, read back (or why not)."""

    tag: str
    agent_value: float | None
    restored: float | None
    read_back: float | None
    action_id: str | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def _row(r: dict[str, Any]) -> ActionRow:
    detail = r.get("detail")
    return ActionRow(
        action_id=r["action_id"],
        decision_id=r.get("decision_id"),
        ts=pd.Timestamp(r["ts"]).to_pydatetime(),
        tag=r["tag"],
        requested=_f(r.get("requested")),
        clamped=_f(r.get("clamped")),
        previous=_f(r.get("previous")),
        written=_f(r.get("written")),
        read_back=_f(r.get("read_back")),
        state=r["state"],
        detail=json.loads(detail) if isinstance(detail, str) and detail else {},
    )


@dataclass(frozen=True)
class VerifySpec:
    """What the what-if predicts: ``tag`` moves in ``expect`` direction within ``window_s``."""

    tag: str
    expect: Literal["decrease", "increase"]
    window_s: float
    tolerance: float = 0.0
    predicted: float | None = None

    def pending(self, start: datetime, baseline: float | None) -> dict[str, Any]:
        """The journal's ``verify`` detail of a write made at ``start``, not judged yet."""
        return {
            "tag": self.tag,
            "expect": self.expect,
            "tolerance": self.tolerance,
            "due": (start + timedelta(seconds=self.window_s)).isoformat(),
            "baseline": baseline,
            "predicted": self.predicted,
            "status": "pending",
        }


def judge(
    baseline: float, observed: float, expect: str, tolerance: float
) -> Literal["ok", "wrong_way", "no_data"]:
    """Did the plant move as predicted? Wrong way = moved against ``expect`` by more than ``tolerance``."""
    if math.isnan(baseline) or math.isnan(observed):
        return "no_data"
    moved = observed - baseline
    if expect == "decrease" and moved > tolerance:
        return "wrong_way"
    if expect == "increase" and moved < -tolerance:
        return "wrong_way"
    return "ok"


def override_tag(tag: str) -> str:
    """The twin's override flag for a writable point: ``agent.override_<eq>__<point>``."""
    eq, name = tag.split(".", 1)
    return f"agent.override_{eq}__{name}"


class Actuator:
    """``control`` gives the site's control state *now*: read at every write, so an emergency
    stop engaged after a permit was minted still refuses it (only its own restore writes)."""

    def __init__(
        self,
        site: Site,
        writer: PointWriter,
        journal: Journal,
        clock: Clock,
        control: Callable[[], GateControl] = GateControl,
    ) -> None:
        self.site = site
        self.writer = writer
        self.journal = journal
        self.clock = clock
        self.control = control

    # ---- writing ----------------------------------------------------------------------------
    async def execute(
        self, auth: Authorization, verify: VerifySpec | None = None, baseline: float | None = None
    ) -> list[ActionRow]:
        """Carry out every change of ``auth``; returns the final journal row of each."""
        if not isinstance(auth, Authorization):
            raise WriteRejected("a write needs an Authorization from the autonomy gate")
        out = []
        for ch in auth.changes:
            out.append(await self._one(auth, ch, verify, baseline))
        return out

    async def _one(
        self,
        auth: Authorization,
        ch: AuthorizedChange,
        verify: VerifySpec | None,
        baseline: float | None,
    ) -> ActionRow:
        action_id = "act-" + uuid.uuid4().hex[:12]
        now = self.clock.now()
        base = dict(
            action_id=action_id, decision_id=auth.decision_id, tag=ch.tag, requested=ch.value
        )
        detail: dict[str, Any] = {"level": auth.level, "by": auth.by_whom}
        if auth.approval_id:
            detail["approval_id"] = auth.approval_id
        if auth.rollback_of:
            detail["rollback_of"] = auth.rollback_of
        if auth.estop_restore:
            detail["estop_restore"] = True

        def row(state: str, **kw: Any) -> ActionRow:
            fields = {"clamped": None, "previous": None, "written": None, "read_back": None, **kw}
            return self.journal.append(
                ActionRow(**base, ts=self.clock.now(), state=state, detail=dict(detail), **fields)  # type: ignore[arg-type]
            )

        try:
            self._not_stopped(auth)
            clamped, previous = await self._guard(ch, auth)
        except WriteRejected as err:
            detail["error"] = str(err)
            row("failed")
            raise
        row("proposed", clamped=clamped, previous=previous)
        row("approved", clamped=clamped, previous=previous)
        try:  # again at the last moment: the guard's reads took time
            self._not_stopped(auth)
        except WriteRejected as err:
            detail["error"] = str(err)
            row("failed", clamped=clamped, previous=previous)
            raise
        row("executing", clamped=clamped, previous=previous, written=clamped)
        try:
            res = await self._write(ch.tag, clamped, auth)
            read_back = _f(res.read_back)
            if read_back is None:
                read_back = _f(await self.writer.read(ch.tag))
        except (DeviceError, WriteRejected) as err:
            detail["error"] = f"write failed: {err}"
            row("failed", clamped=clamped, previous=previous, written=clamped)
            raise WriteFailed(f"{ch.tag}: {err}") from err
        # the register holds what its encoding carries (12.34 → 12.3 at scale 0.1)
        held = _f(res.written)
        held = clamped if held is None else held
        if read_back is None or abs(read_back - held) > READBACK_TOL * max(1.0, abs(held)):
            detail["error"] = f"read back {read_back} ≠ written {held}"
            row("failed", clamped=clamped, previous=previous, written=clamped, read_back=read_back)
            raise WriteFailed(f"{ch.tag}: read back {read_back}, wrote {held}")
        if verify is not None and auth.rollback_of is None:
            detail["verify"] = verify.pending(now, baseline)
        return row("done", clamped=clamped, previous=previous, written=clamped, read_back=read_back)

    def _not_stopped(self, auth: Authorization) -> None:
        if self.control().estop and not auth.estop_restore:
            raise WriteRejected(
                f"{auth.decision_id}: emergency stop engaged: nothing but its restore is written"
            )

    async def _guard(self, ch: AuthorizedChange, auth: Authorization) -> tuple[float, float | None]:
        try:
            point = self.site.point(ch.tag)
        except KeyError:
            raise WriteRejected(f"{ch.tag}: unknown point") from None
        lim = point.write
        if lim is None:
            raise WriteRejected(f"{ch.tag}: not a writable point")
        overridden_by = getattr(self.writer, "overridden_by", None)
        if overridden_by is not None and not auth.estop_restore:
            # a priority array (BACnet): a command above the agent's is an operator's
            try:
                above = await overridden_by(ch.tag)
            except DeviceError as err:
                raise WriteRejected(f"{ch.tag}: cannot read the priority array: {err}") from err
            if above is not None:
                raise WriteRejected(
                    f"{ch.tag}: an operator override holds this point (priority {above[0]}, "
                    f"value {above[1]:g}); the agent does not fight it"
                )
        ov = override_tag(ch.tag)
        if ov in self.site.points_by_tag:
            try:
                held = await self.writer.read(ov)
            except DeviceError as err:
                raise WriteRejected(f"{ch.tag}: cannot read override flag {ov}: {err}") from err
            if held >= 0.5:
                raise WriteRejected(f"{ch.tag}: an operator override holds this point ({ov})")
        try:
            previous = _f(await self.writer.read(ch.tag))
        except DeviceError as err:
            raise WriteRejected(f"{ch.tag}: cannot read the present value: {err}") from err
        if previous is None:
            previous = ch.previous
        value = lim.clamp(ch.value)
        # a move toward safety (the point's safe_direction) is held to min/max only
        paced = auth.rollback_of is None and not lim.toward_safety(previous, value)
        now = self.clock.now()
        if paced and lim.min_interval_s > 0:
            last = self.journal.last_write(ch.tag)
            if last is not None and (now - last).total_seconds() < lim.min_interval_s:
                raise WriteRejected(
                    f"{ch.tag}: last write {(now - last).total_seconds():.0f} s ago, "
                    f"shortest interval {lim.min_interval_s:.0f} s"
                )
        if auth.rollback_of is not None and value != ch.value:
            # a journaled previous value lies inside the limits by construction — unless the
            # limits changed or the plant was elsewhere: then it is no restore, refuse it
            raise WriteRejected(
                f"{ch.tag}: value before the agent {ch.value} is outside the write limits "
                f"[{lim.min}, {lim.max}]; not restored"
            )
        if lim.max_step is not None and previous is not None and paced:
            value = min(previous + lim.max_step, max(previous - lim.max_step, value))
        return value, previous

    async def _write(self, tag: str, value: float, auth: Authorization) -> WriteResult:
        """Write ``value`` — or, restoring on a protocol with a priority array (a writer with
        ``relinquish``, e.g. BACnet), give the agent's priority slot up instead."""
        relinquish = getattr(self.writer, "relinquish", None) if auth.rollback_of else None
        can = getattr(self.writer, "can_relinquish", None)  # per point (a mixed-protocol site)
        if relinquish is not None and (can is None or can(tag)):
            res: WriteResult = await relinquish(tag)
            return res
        return await self.writer.write(tag, value)

    # ---- handing the plant back ---------------------------------------------------------------
    async def hand_back(self) -> list[Restore]:
        """E-stop: restore every set point the agent holds to its value before the agent took it
        over (journaled ``previous``); one :class:`Restore` per point, failures included."""
        control = self.control()
        out = []
        for t in self.journal.takeovers():
            try:
                auth = authorize_rollback(
                    t.first, self.clock.now(), control=control, estop_restore=True
                )
                r = (await self.execute(auth))[0]
                out.append(Restore(t.tag, t.agent_value, r.written, r.read_back, r.action_id))
                self._close_verifications(t.tag, f"handed back by the e-stop ({r.action_id})")
            except (WriteRejected, WriteFailed) as err:
                out.append(Restore(t.tag, t.agent_value, t.first.previous, None, None, str(err)))
        return out

    def _close_verifications(self, tag: str, why: str) -> None:
        """Verifications still pending on ``tag`` end: the value they judge is gone."""
        for r in self.journal.latest():
            v = r.detail.get("verify")
            if r.tag == tag and r.state == "done" and v and v.get("status") == "pending":
                detail = {**r.detail, "verify": {**v, "status": "closed", "why": why}}
                self.journal.append(_replace(r, ts=self.clock.now(), detail=detail))

    def arm_verification(
        self, r: ActionRow, verify: VerifySpec, baseline: float | None
    ) -> ActionRow:
        """Start the verification window of a landed write now (a write settled by
        :meth:`reconcile` gets one like any other)."""
        detail = {**r.detail, "verify": verify.pending(self.clock.now(), baseline)}
        return self.journal.append(_replace(r, ts=self.clock.now(), detail=detail))

    # ---- verification and rollback ----------------------------------------------------------
    async def check_verifications(self, values: dict[str, float]) -> list[ActionRow]:
        """Judge every due verification against ``values`` (latest good readings); roll back when wrong."""
        now = self.clock.now()
        out = []
        for r in self.journal.latest():
            v = r.detail.get("verify")
            if r.state != "done" or not v or v.get("status") != "pending":
                continue
            if datetime.fromisoformat(v["due"]) > now:
                continue
            observed = values.get(v["tag"], math.nan)
            baseline = v.get("baseline")
            verdict = judge(
                math.nan if baseline is None else float(baseline),
                float(observed),
                v["expect"],
                float(v.get("tolerance") or 0.0),
            )
            pred = v.get("predicted")
            err = None if pred is None or _f(observed) is None else float(observed) - float(pred)
            detail = {
                **r.detail,
                "verify": {
                    **v,
                    "status": verdict,
                    "observed": _f(observed),
                    "prediction_error": err,
                },
            }
            if verdict == "wrong_way" and r.previous is not None:
                out.append(await self.rollback(r, detail))
            else:
                out.append(self.journal.append(_replace(r, ts=now, detail=detail)))
        return out

    async def rollback(self, r: ActionRow, detail: dict[str, Any]) -> ActionRow:
        """Write back the value the point had before action ``r``; journal ``rolled_back``."""
        try:
            auth = authorize_rollback(r, self.clock.now(), control=self.control())
            res = await self.execute(auth)
            detail["rollback_action"] = res[0].action_id
        except (WriteRejected, WriteFailed) as err:
            detail["rollback_error"] = str(err)
            return self.journal.append(
                _replace(r, ts=self.clock.now(), state="failed", detail=detail)
            )
        return self.journal.append(
            _replace(r, ts=self.clock.now(), state="rolled_back", detail=detail)
        )

    # ---- crash recovery ---------------------------------------------------------------------
    async def reconcile(self) -> list[ActionRow]:
        """After a restart: settle actions left mid-way by reading back — never write again."""
        out = []
        for r in self.journal.latest():
            if r.state not in ("proposed", "approved", "executing"):
                continue
            now = self.clock.now()
            if r.state != "executing":
                d = {**r.detail, "reconciled": "interrupted before the write; not retried"}
                out.append(self.journal.append(_replace(r, ts=now, state="failed", detail=d)))
                continue
            try:
                rb = _f(await self.writer.read(r.tag))
            except DeviceError as err:
                d = {**r.detail, "reconciled": f"cannot read back: {err}; not retried"}
                out.append(self.journal.append(_replace(r, ts=now, state="failed", detail=d)))
                continue
            landed = (
                rb is not None
                and r.written is not None
                and abs(rb - r.written) <= READBACK_TOL * max(1.0, abs(r.written))
            )
            d = {
                **r.detail,
                "reconciled": "write landed" if landed else "write did not land; not retried",
            }
            out.append(
                self.journal.append(
                    _replace(
                        r, ts=now, state="done" if landed else "failed", read_back=rb, detail=d
                    )
                )
            )
        return out


def _replace(r: ActionRow, **kw: Any) -> ActionRow:
    d = {**r.__dict__, **kw}
    return ActionRow(**d)


async def write_heartbeat(site: Site, writer: PointWriter, tag: str, value: float) -> None:
    """The one write outside the gate: the agent's own heartbeat on a virtual ``agent`` point."""
    eq, point = site.points_by_tag[tag]
    if eq.kind.value != "agent" or point.write is None:
        raise WriteRejected(f"{tag}: heartbeats go to a writable point of the agent equipment only")
    await writer.write(tag, point.write.clamp(value))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
