"""``facility-agent approve ID`` / ``reject ID``: answer a pending approval.

Through the running site's local API when one runs, else directly on the
DuckDB file and the SQLite checkpoint (as ``local:<os user>``); through the API the
approver recorded is the user of ``$FACILITY_AGENT_TOKEN`` (an operator or admin). Each resulting action is printed as one
line: point, previous → written (requested, when clamped), read-back, state.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.commands._agent import add_options, api, console, direct_ctx, local_user
from connectors.errors import FacilityError

if TYPE_CHECKING:
    from tools.gate import ApprovalState

_VERBS: dict[str, ApprovalState] = {"approve": "approved", "reject": "rejected"}


def register(sub: Any) -> None:
    for verb, state in _VERBS.items():
        p = sub.add_parser(verb, help=f"{verb} a pending approval")
        add_options(p)
        p.add_argument("approval_id", help="the approval's id (apr-…), as the decision printed it")
        p.add_argument("--why", default="", help="reason (recorded in the audit)")
        p.set_defaults(func=_runner(verb, state))


def describe_action(a: Mapping[str, Any]) -> str:
    """``gpu.power_cap: 100 → 90 (requested 60, clamped), read back 90 — done``."""
    req, written = a.get("requested"), a.get("written", a.get("clamped"))
    clamped = req is not None and written is not None and req != written
    return (
        f"{a.get('tag')}: {a.get('previous')} → {written}"
        + (f" (requested {req}, clamped to the point's limits)" if clamped else "")
        + f", read back {a.get('read_back')} — {a.get('state')}"
    )


def _print(out: Any, approval_id: str, state: str, actions: Sequence[Mapping[str, Any]]) -> None:
    out.print(f"{approval_id}: {state}" + ("" if actions else "; nothing written"))
    for a in actions:
        out.print("  " + (f"not written: {a['error']}" if "error" in a else describe_action(a)))


def _runner(verb: str, state: ApprovalState) -> Any:
    def run(args: argparse.Namespace) -> int:
        from agent import runtime

        out = console()
        client = api(args)
        if client is not None:
            res = client.call(
                "POST",
                f"/approvals/{args.approval_id}/{verb}",
                json={"why": args.why},
            )
            _print(out, args.approval_id, f"{state} by {res['by']}", res["actions"])
            return 0

        async def main() -> None:
            ctx = direct_ctx(args)
            try:
                who = local_user()
                res = await runtime.answer_approval(ctx, args.approval_id, state, who, args.why)
                _print(out, args.approval_id, f"{state} by {who}", res.actions if res else [])
            except (KeyError, ValueError) as err:
                raise FacilityError(str(err).strip("'\"")) from None
            finally:
                await runtime.close(ctx, close_writer=True)
                ctx.store.close()

        asyncio.run(main())
        return 0

    return run
