"""Child process for the restart test: run cycles until an approval is pending, print it, wait to be killed."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_harness import Hall, agent_on
from test_agent_twin import cdu_policy

from agent.runtime import decide_once
from twin.faults import Fault


async def main(db: str, ckpt: str) -> None:
    hall = Hall(db)
    hall.run(900)
    ctx = agent_on(hall, policies=cdu_policy(), checkpoint_path=ckpt)
    hall.twin.inject(Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7))
    for _ in range(40):
        hall.run(20)
        res = await decide_once(ctx, "schedule")
        if res.pending_approvals:
            print("PENDING", res.pending_approvals[0]["approval_id"], res.run_id, flush=True)
            threading.Event().wait()  # the parent kills this process
    print("NONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
