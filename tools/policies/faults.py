"""The lifecycle of a fault: raised when its condition holds, cleared when it has been false
long enough — both as rows in ``faults``.

A *fault* is a policy instance of kind ``fault`` or with a ``fault_class`` (the library's
chiller trip, CRAH fan failure, pump failure, leak, utility loss, VESDA alarm; the FDD
sweep's chiller and AHU diagnoses are fault policies too). The rule, applied at every
decision cycle (every policy's timers advance at every cycle, whichever job fires it):

* **raised** when the instance's condition has held for the policy's ``for`` — the moment it
  would fire, whether or not it fires: a cool-down, a pending approval or the sweep it waits
  for do not delay the record;
* **cleared** when, once raised, its condition has been false without a break for the
  policy's ``clear_after`` (default 5 min). False means evaluated false on values present: a
  condition with a missing input (a dead device) is not false and restarts the wait. A
  condition that comes back within ``clear_after`` keeps the same fault open — a flapping
  condition is one fault, not one per flap. (Conditions keep their own ``hysteresis`` too.)

Equipment faults the data-quality residuals isolate (:mod:`tools.quality`: a CDU pump that
delivers less flow than its speed predicts while the heat balance agrees — the sensors read
true, the machine is off) follow the same lifecycle with ``policy_id`` ``quality`` and the
instance key ``quality:<equipment>:<kind>``: **raised** at the first cycle the scorer names it
(its residual windows are its ``for``); **cleared** once the scorer, judging the fault's own
sensors on values present (each scored ≥ :data:`JUDGED_MIN`), has not named it for
``clear_after`` (default 5 min). Sensors that are not scored, or scored too low to judge, are
not "fault absent": the wait restarts.

``faults`` is append-only like the audit tables: a ``raised`` row, later a ``cleared`` row
with the same ``fault_id``; ``faults_latest`` has each fault as it stands. Open faults are read
back at start, so a restart neither raises them again nor forgets them (the ``clear_after``
wait starts afresh).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from connectors.store import Store
from tools.policies.engine import Evidence, PolicyEngine
from tools.quality.report import EquipmentFault

QUALITY_POLICY = "quality"  # policy_id of the faults the quality residuals isolate
CLEAR_AFTER_S = 300.0  # a policy's default ``clear_after``, and the isolated faults'
JUDGED_MIN = 0.5  # an isolated fault's sensors judge its absence only when scored this well

FAULTS_DDL = """
CREATE TABLE IF NOT EXISTS faults (
    fault_id VARCHAR NOT NULL, event VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    instance_key VARCHAR NOT NULL, policy_id VARCHAR NOT NULL, equipment VARCHAR,
    fault_class VARCHAR, kind VARCHAR, severity VARCHAR,
    raised_at TIMESTAMP NOT NULL, cleared_at TIMESTAMP, duration_s DOUBLE,
    true_since TIMESTAMP, false_since TIMESTAMP, clear_after_s DOUBLE,
    evidence VARCHAR, cleared_evidence VARCHAR);
CREATE OR REPLACE VIEW faults_latest AS SELECT * FROM faults
    QUALIFY row_number() OVER (PARTITION BY fault_id ORDER BY rowid DESC) = 1;
"""

COLUMNS = (
    "fault_id",
    "event",
    "ts",
    "instance_key",
    "policy_id",
    "equipment",
    "fault_class",
    "kind",
    "severity",
    "raised_at",
    "cleared_at",
    "duration_s",
    "true_since",
    "false_since",
    "clear_after_s",
    "evidence",
    "cleared_evidence",
)


def evidence_text(ev: tuple[Evidence, ...]) -> str:
    """``crah_2.fan_fault == 1: 1 (holds); crah_2.fan_running == 0: 1 (does not)`` — each
    condition, its value now and whether it holds (for its own ``for``)."""
    parts = []
    for e in ev:
        what = e.tag or e.ref
        thr = (
            f"[{e.threshold[0]:g}, {e.threshold[1]:g}]"
            if isinstance(e.threshold, tuple)
            else f"{e.threshold:g}"
        )
        val = "no value" if math.isnan(e.value) else f"{e.value:.4g}"
        parts.append(f"{what} {e.op} {thr}: {val} ({'holds' if e.holds else 'does not'})")
    return "; ".join(parts)


@dataclass(frozen=True)
class FaultEvent:
    """One row of ``faults``."""

    fault_id: str
    event: str  # raised | cleared
    ts: datetime
    instance_key: str
    policy_id: str
    equipment: str | None
    fault_class: str | None
    kind: str
    severity: str
    raised_at: datetime
    cleared_at: datetime | None
    duration_s: float | None
    true_since: datetime | None
    false_since: datetime | None
    clear_after_s: float
    evidence: str
    cleared_evidence: str | None

    def row(self) -> list[object]:
        return [getattr(self, c) for c in COLUMNS]


@dataclass
class _Open:
    fault_id: str
    raised_at: datetime
    true_since: datetime | None
    evidence: str


@dataclass
class _Isolated:
    """An open fault the quality residuals isolated."""

    fault_id: str
    raised_at: datetime
    equipment: str
    kind: str
    evidence: str
    tags: tuple[str, ...]
    false_since: datetime | None = None


def isolated_key(f: EquipmentFault) -> str:
    return f"{QUALITY_POLICY}:{f.equipment}:{f.kind}"


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None) if t.tzinfo is not None else t


def _at(x: float) -> datetime | None:
    return None if math.isnan(x) else datetime.fromtimestamp(x)


class FaultLog:
    """The fault lifecycle of one engine's instances (module docstring); rows in ``store``
    (``None``: kept in memory only, e.g. a dry run). Call :meth:`update` after each
    :meth:`PolicyEngine.evaluate`."""

    def __init__(self, engine: PolicyEngine, store: Store | None = None) -> None:
        self.engine = engine
        self.store = store
        pols = [inst.lp.policy for inst in engine.c.instances]
        m = len(pols)
        self.is_fault = np.array(
            [p.kind == "fault" or p.fault_class is not None for p in pols], bool
        ).reshape(m)
        self.clear_after = np.array([p.clear_after_s for p in pols], float).reshape(m)
        self.open = np.zeros(m, bool)
        self._false_since = np.full(m, np.nan)
        self._open: dict[int, _Open] = {}
        self._isolated: dict[str, _Isolated] = {}
        if store is not None:
            store.ensure_schema(FAULTS_DDL)
            self._load(store)

    def _load(self, store: Store) -> None:
        keys = {self.engine.instance_key(i): i for i in range(len(self.open))}
        try:
            df = store.query(
                "SELECT fault_id, instance_key, raised_at, true_since, evidence "
                "FROM faults_latest WHERE event = 'raised'"
            )
        except Exception:  # a read-only store no agent has run on: no faults yet
            return
        for r in df.to_dict("records"):
            key = str(r["instance_key"])
            if key.startswith(QUALITY_POLICY + ":"):
                _, eq, kind = key.split(":", 2)
                self._isolated[key] = _Isolated(
                    str(r["fault_id"]),
                    pd.Timestamp(r["raised_at"]).to_pydatetime(),
                    eq,
                    kind,
                    str(r["evidence"] or ""),
                    (),
                )
                continue
            i = keys.get(key)
            if i is None or not self.is_fault[i]:
                continue  # a policy no longer loaded: left as it stands
            ts = r["true_since"]
            self.open[i] = True
            self._open[i] = _Open(
                str(r["fault_id"]),
                pd.Timestamp(r["raised_at"]).to_pydatetime(),
                None if pd.isna(ts) else pd.Timestamp(ts).to_pydatetime(),
                str(r["evidence"] or ""),
            )

    def update(
        self,
        now: datetime,
        isolated: Sequence[EquipmentFault] = (),
        scores: Mapping[str, float] | None = None,
    ) -> list[FaultEvent]:
        """Raise and clear after the engine's last cycle (at ``now``); returns the new rows.
        ``isolated``: the equipment faults the cycle's quality scoring named; ``scores``: the
        scores of the points it judged (None: no scoring this cycle — nothing isolated is
        raised or cleared)."""
        now = _naive(now)
        out = self._update_policies(now)
        if scores is not None:
            out += self._update_isolated(now, isolated, scores)
        if out and self.store is not None and not self.store.read_only:
            sql = f"INSERT INTO faults ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            with self.store.transaction() as con:
                for ev in out:  # a handful per cycle at most
                    con.execute(sql, ev.row())
        return out

    def _update_policies(self, now: datetime) -> list[FaultEvent]:
        e = self.engine
        if e.last_now is None or not len(self.open):
            return []
        t = now.timestamp()
        false_now = ~e.active & e.known
        self._false_since = np.where(
            self.open & false_now,
            np.where(np.isnan(self._false_since), t, self._false_since),
            np.nan,
        )
        clear = self.open & false_now & ((t - self._false_since) >= self.clear_after)
        raise_ = self.is_fault & e.ready & ~self.open
        out: list[FaultEvent] = []
        for i in np.flatnonzero(clear):
            out.append(self._cleared(int(i), now))
        for i in np.flatnonzero(raise_):
            out.append(self._raised(int(i), now))
        return out

    def _update_isolated(
        self, now: datetime, found: Sequence[EquipmentFault], scores: Mapping[str, float]
    ) -> list[FaultEvent]:
        out: list[FaultEvent] = []
        named = {isolated_key(f): f for f in found}
        for key, o in list(self._isolated.items()):
            f = named.get(key)
            if f is not None:  # still named: the clearing wait (if any) starts again
                o.false_since = None
                o.tags = f.tags or o.tags
                continue
            # its own sensors; read back after a restart (no tags kept), the equipment's
            tags = o.tags or tuple(t for t in scores if t.startswith(o.equipment + "."))
            judged = bool(tags) and all(float(scores.get(t, math.nan)) >= JUDGED_MIN for t in tags)
            if not judged:  # its sensors not scored (or too poor to judge): not "absent"
                o.false_since = None
                continue
            if o.false_since is None:
                o.false_since = now
            if (now - o.false_since).total_seconds() >= CLEAR_AFTER_S:
                del self._isolated[key]
                out.append(self._isolated_event(key, o, now, "cleared"))
        for key, f in named.items():
            if key not in self._isolated:
                fid = f"F-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
                o = _Isolated(fid, now, f.equipment, f.kind, f.message, f.tags)
                self._isolated[key] = o
                out.append(self._isolated_event(key, o, now, "raised"))
        return out

    def _isolated_event(self, key: str, o: _Isolated, now: datetime, event: str) -> FaultEvent:
        cleared = event == "cleared"
        since = o.false_since
        return FaultEvent(
            fault_id=o.fault_id,
            event=event,
            ts=now,
            instance_key=key,
            policy_id=QUALITY_POLICY,
            equipment=o.equipment,
            fault_class=o.kind,
            kind="fault",
            severity="warning",
            raised_at=o.raised_at,
            cleared_at=now if cleared else None,
            duration_s=(now - o.raised_at).total_seconds() if cleared else None,
            true_since=o.raised_at,
            false_since=since if cleared else None,
            clear_after_s=CLEAR_AFTER_S,
            evidence=o.evidence,
            cleared_evidence=(
                f"not named by the quality residuals since {since:%Y-%m-%d %H:%M:%S} UTC "
                f"(clear_after {CLEAR_AFTER_S:g} s), its sensors {', '.join(o.tags)} judged"
                if cleared and since is not None
                else None
            ),
        )

    def _event(self, i: int, now: datetime, **kw: object) -> FaultEvent:
        inst = self.engine.c.instances[i]
        p = inst.lp.policy
        base: dict[str, object] = {
            "ts": now,
            "instance_key": self.engine.instance_key(i),
            "policy_id": p.id,
            "equipment": inst.equipment.id if inst.equipment is not None else None,
            "fault_class": p.fault_class,
            "kind": p.kind,
            "severity": p.severity,
            "clear_after_s": float(self.clear_after[i]),
        }
        base.update(kw)
        return FaultEvent(**base)  # type: ignore[arg-type]

    def _raised(self, i: int, now: datetime) -> FaultEvent:
        fid = f"F-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        since = self.engine.true_since(i)
        ev = evidence_text(self.engine.last_evidence(i))
        self.open[i] = True
        self._false_since[i] = np.nan
        self._open[i] = _Open(fid, now, since, ev)
        return self._event(
            i,
            now,
            fault_id=fid,
            event="raised",
            raised_at=now,
            cleared_at=None,
            duration_s=None,
            true_since=since,
            false_since=None,
            evidence=ev,
            cleared_evidence=None,
        )

    def _cleared(self, i: int, now: datetime) -> FaultEvent:
        o = self._open.pop(i)
        since = _at(float(self._false_since[i]))
        self.open[i] = False
        self._false_since[i] = np.nan
        ev = evidence_text(self.engine.last_evidence(i))
        held = f"false since {since:%Y-%m-%d %H:%M:%S} UTC" if since else "false"
        return self._event(
            i,
            now,
            fault_id=o.fault_id,
            event="cleared",
            raised_at=o.raised_at,
            cleared_at=now,
            duration_s=(now - o.raised_at).total_seconds(),
            true_since=o.true_since,
            false_since=since,
            evidence=o.evidence,
            cleared_evidence=f"{held} (clear_after {self.clear_after[i]:g} s): {ev}",
        )

    def judging_tags(self, site_tags: Iterable[str]) -> set[str]:
        """The points whose scores judge the open isolated faults' absence: each fault's own
        sensors (read back after a restart, its equipment's points of ``site_tags``)."""
        out: set[str] = set()
        for o in self._isolated.values():
            out.update(o.tags or (t for t in site_tags if t.startswith(o.equipment + ".")))
        return out

    def open_faults(self) -> list[str]:
        """Instance keys of the faults open now (policy instances, then isolated faults)."""
        keys = [self.engine.instance_key(int(i)) for i in np.flatnonzero(self.open)]
        return keys + sorted(self._isolated)


# ---- reads -------------------------------------------------------------------------------------
def has_faults(store: Store) -> bool:
    return bool(len(store.query("SELECT 1 FROM duckdb_views() WHERE view_name = 'faults_latest'")))


def faults(
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    limit: int = 500,
) -> pd.DataFrame:
    """Faults as they stand (``faults_latest``) that were open at some time in [since, until):
    raised before ``until`` and not cleared before ``since``; newest raised first."""
    if not has_faults(store):
        return pd.DataFrame(columns=list(COLUMNS))
    where, params = [], []
    if since is not None:
        where.append("(cleared_at IS NULL OR cleared_at >= ?)")
        params.append(_naive(since))
    if until is not None:
        where.append("raised_at < ?")
        params.append(_naive(until))
    if open_only:
        where.append("event = 'raised'")
    sql = "SELECT * FROM faults_latest"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return store.query(f"{sql} ORDER BY raised_at DESC LIMIT {int(limit)}", params)
