"""The site process of the e-stop and crash tests: API + ``run_forever`` (cycles and heartbeat).

    estop_site_child.py DB CKPT PLANT_PORT CEILING [--first] [--fault] [--later]

Readings come from a twin inside this process (a hall with a manual clock moved on 10 s
after each decision cycle, ~30x real time: the GPU fault develops in seconds; the clock waits
from an approval request to its write; approvals expire after a day of plant time); every
write — the set points and the heartbeat — goes over Modbus TCP to PLANT_PORT, the plant served by
the test process (through its proxy), which outlives this process when it is killed.
Prints ``TOKENS operator admin`` (with ``--first``) and ``READY`` once the API serves.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_harness import Hall
from test_agent_twin import cdu_policy

from agent import runtime
from agent.api import serve, state_file
from agent.context import AgentContext
from agent.users import Role, Users
from connectors.site import with_port
from connectors.writer import ModbusPointWriter
from twin.faults import Fault


async def main(db: str, ckpt: str, plant_port: int, ceiling: int, flags: list[str]) -> None:
    state_file(db).unlink(missing_ok=True)  # left by a killed predecessor
    hall = Hall(db)
    hall.run(900)
    if "--fault" in flags:  # the same seed and fault: a restart replays the same readings
        fault = Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
        hall.twin.inject(fault)
    if "--later" in flags:  # a restart: the plant's clock has moved on past the crash
        hall.run(120)
    if "--first" in flags:
        users = Users(hall.store)
        op, admin = users.add("olga", Role.OPERATOR, "t"), users.add("root", Role.ADMIN, "t")
        print("TOKENS", op, admin, flush=True)
    writer = ModbusPointWriter(with_port(hall.site, plant_port))
    ctx = AgentContext.build(
        hall.site,
        hall.store,
        writer,
        hall.clock,
        policies=cdu_policy(ceiling=3, cooldown="60s"),
        checkpoint_path=ckpt,
    )
    # the plant runs ~30x real time here: the default 15-minute expiry would be ~30 s of the
    # test's time, and a loaded machine may answer later than that. A day of plant time (far
    # beyond every wait of the tests) keeps expiry out of what they prove.
    ctx.approval_ttl_s = 24 * 3600.0
    if "--first" in flags:
        runtime.set_autonomy(ctx, ceiling, "test")
    stop = asyncio.Event()

    def answer_under_way() -> bool:
        """An approval is pending, or approved and its decision not yet carried out or refused."""
        if ctx.audit.pending_approvals():
            return True
        return bool(
            len(
                hall.store.query(
                    """SELECT 1 FROM approvals_latest a JOIN decisions_latest d USING (decision_id)
                       WHERE a.state = 'approved' AND d.outcome = 'approval_requested' LIMIT 1"""
                )
            )
        )

    def plant_step(_: runtime.CycleResult) -> None:
        # the readings move on 10 simulated s after each decision cycle (a cycle every 0.3 s),
        # so a cycle and an answer between two cycles see one plant moment; and not at all from
        # an approval request to its write (or refusal): the test's operator answers, and the
        # gate judges again, at the plant moment of the request, as at a console. A free-running
        # plant clock let a loaded machine answer tens of plant seconds later, when the CDU
        # fault's flow residual had cut the data quality (it comes and goes): the gate, judging
        # again at write time, rightly refused — no write, and the test timed out waiting for it.
        if not answer_under_way():
            hall.run(10)

    api = asyncio.create_task(serve(ctx, db, port=0, stop=stop))
    while not state_file(db).exists():
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    await asyncio.gather(
        api,
        runtime.run_forever(ctx, interval_s=0.3, heartbeat_s=0.1, stop=stop, on_result=plant_step),
    )


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], int(a[2]), int(a[3]), a[4:]))
