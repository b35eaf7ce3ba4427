"""Approval is consent, never authority (issue 11): the whole gate at the moment of writing.

Driven from outside: a site on the twin served over Modbus, its HTTP API with real tokens,
a scripted chat model behind ``POST /chat``, registers read back over Modbus by a separate
client. Each scenario is a finding of issue 11 that wrote on the old main:

(a) ceiling 0 set by an admin, then a pending ``gpu.power_cap`` request approved → nothing
    written, "site ceiling 0" in the response and the audit;
(b) a chat proposal fine when made, breaking a constraint when approved (chiller_1 trips)
    → refused by the fresh what-if;
(d) an approval answered after its time to live → expired, nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
from agent_harness import Hall
from site_harness import Running, running_site
from test_agent_api import run_cli
from test_agent_llm import ScriptedChat, call, final

from agent.context import AgentContext
from connectors.writer import ModbusPointWriter
from tools.gate import APPROVAL_TTL_S
from twin.faults import Fault

T = TypeVar("T")
GPU_CAP = "gpu.power_cap"


class Site(Running):
    """The running site, with the plant's registers read over Modbus and a scripted chat."""

    def register(self, tag: str) -> float:
        """The point's register, read over Modbus by a client of its own."""

        async def read() -> float:
            w = ModbusPointWriter(self.hall.served)
            try:
                return await w.read(tag)
            finally:
                await w.close()

        return self.on_loop(read())

    def advance(self, seconds: float) -> None:
        async def run() -> None:
            self.hall.run(seconds)

        self.on_loop(run())

    def fault_then_approve(
        self, prop: dict[str, Any], fault: Fault, seconds: float
    ) -> tuple[str, dict[str, Any]]:
        """Inject ``fault``, let the plant run ``seconds``, then an operator approves
        ``prop`` over the API: (the write's refusal, the decision's audit row)."""
        self.on_loop(_inject(self, fault))
        self.advance(seconds)
        with self.client("operator") as op:
            r = op.post(f"/approvals/{prop['approval_id']}/approve", json={})
            assert r.status_code == 200, r.text
            return str(r.json()["actions"][0]["error"]), audit_row(op, prop["decision_id"])

    def propose(self, tag: str, value: float) -> dict[str, Any]:
        """An operator asks the chat; the (scripted) model proposes ``tag = value``."""
        self.ctx.llm = ScriptedChat(
            responses=[
                call("propose_action", {"tag": tag, "value": value, "reason": "test"}, 1),
                final("Proposed; an operator must approve."),
            ]
        )
        with self.client("operator") as c:
            r = c.post("/chat", json={"message": f"please set {tag} to {value}"})
        assert r.status_code == 200, r.text
        (prop,) = r.json()["proposals"]
        assert prop["outcome"] == "approval_requested", str(r.json())
        return dict(prop)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    def build(hall: Hall) -> AgentContext:
        return AgentContext.build(
            hall.site, hall.store, hall.writer, hall.clock, policies=[], approvals="record"
        )

    with running_site(tmp_path_factory.mktemp("gate") / "site.duckdb", build, modbus=True) as r:
        yield Site(**vars(r))


def audit_row(c: httpx.Client, decision_id: str) -> dict[str, Any]:
    """The decision as the audit holds it now (its latest row)."""
    rows = c.get("/decisions", params={"limit": 1000}).json()
    mine = [r for r in rows if r["decision_id"] == decision_id]
    assert len(mine) == 1, decision_id
    return dict(mine[0])


def test_a_ceiling_lowered_after_the_request_refuses_the_approved_write(site: Site) -> None:
    assert site.register(GPU_CAP) == 100.0
    prop = site.propose(GPU_CAP, 90.0)
    with site.client("admin") as admin:
        assert admin.post("/autonomy", json={"level": 0, "why": "hands off"}).status_code == 200
    try:
        with site.client("operator") as op:
            r = op.post(f"/approvals/{prop['approval_id']}/approve", json={"why": "ok"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert "site ceiling 0" in body["actions"][0]["error"], body
            assert not any(a.get("state") == "done" for a in body["actions"])
            row = audit_row(op, prop["decision_id"])
        assert row["outcome"] == "blocked" and "site ceiling 0" in row["explanation"], row
        assert site.register(GPU_CAP) == 100.0  # nothing reached the plant
        assert site.on_loop(_journal(site)) == []
    finally:
        with site.client("admin") as admin:
            admin.post("/autonomy", json={"level": 2})


async def _journal(site: Site) -> list[Any]:
    return site.ctx.audit.journal.latest()


def test_b_fresh_whatif_refuses_a_proposal_the_plant_outgrew(site: Site) -> None:
    tag = "chiller_3.enable"
    assert site.register(tag) == 1.0
    prop = site.propose(tag, 0.0)  # fine now: two chillers carry the load
    trip = Fault(kind="chiller_trip", target="chiller_1", start_s=0, duration_s=120)
    err, row = site.fault_then_approve(prop, trip, 60)
    assert "whatif" in err and "chiller_max_load" in err, err
    assert row["outcome"] == "blocked" and "at write time" in row["explanation"]
    assert site.register(tag) == 1.0
    site.advance(300)  # the trip is over: chiller_1 back for the next test


async def _inject(site: Site, fault: Fault) -> None:
    site.hall.twin.inject(fault)


def test_d_an_approval_answered_after_its_ttl_expires_and_writes_nothing(site: Site) -> None:
    prop = site.propose(GPU_CAP, 90.0)
    site.advance(APPROVAL_TTL_S + 30)
    with site.client("operator") as op:
        r = op.post(f"/approvals/{prop['approval_id']}/approve", json={})
        assert r.status_code == 409, r.text
        assert "expired" in r.json()["detail"] and "nothing written" in r.json()["detail"]
        states = op.get("/audit", params={"table": "approvals", "limit": 1000}).json()
        assert op.get("/approvals").json() == []  # no longer pending
        assert op.post(f"/approvals/{prop['approval_id']}/approve", json={}).status_code == 409
    mine = sorted(a["state"] for a in states if a["approval_id"] == prop["approval_id"])
    assert mine == ["expired", "pending"], mine  # never approved
    assert site.register(GPU_CAP) == 100.0


def test_the_cli_approver_sees_the_refusal_and_the_expiry(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(site.db)
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", site.tokens["operator"])
    prop = site.propose(GPU_CAP, 90.0)
    with site.client("admin") as admin:
        assert admin.post("/autonomy", json={"level": 1}).status_code == 200
    try:
        code, out = run_cli("approve", prop["approval_id"], "--db", db)
    finally:
        with site.client("admin") as admin:
            admin.post("/autonomy", json={"level": 2})
    assert code == 0 and "approved by olga" in out
    assert "not written" in out and "site ceiling 1" in out, out
    late = site.propose(GPU_CAP, 90.0)
    site.advance(APPROVAL_TTL_S + 30)
    code, _ = run_cli("approve", late["approval_id"], "--db", db)
    err = capsys.readouterr().err
    assert code == 2 and "expired" in err, err
    assert site.register(GPU_CAP) == 100.0


def test_quality_lost_while_the_request_waits_refuses_the_write(site: Site) -> None:
    """The GPU temperature sensor sticks between the request and the approval: the points
    the write rests on are judged again at write time, and the weakest is named."""
    prop = site.propose(GPU_CAP, 90.0)
    stuck = Fault(kind="stuck", target="gpu.gpu_temp_max", start_s=0, duration_s=300)
    err, row = site.fault_then_approve(prop, stuck, 240)
    assert "at write time: data quality" in err, err
    assert "weakest point gpu.gpu_temp_max" in err and "stuck" in err, err
    assert row["outcome"] == "blocked"
    site.advance(120)  # the sensor is back
    assert site.register(GPU_CAP) == 100.0
