"""``facility-agent chat "question"``: ask the operations assistant (needs an LLM configured)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent.commands._agent import add_options, api, console, direct_ctx


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chat", help="ask the assistant (OPENAI_API_KEY / OPENAI_BASE_URL, FACILITY_AGENT_MODEL)"
    )
    add_options(p)
    p.add_argument("message", help="your question or request, in quotes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent import llm, runtime

    out = console()
    client = api(args)
    if client is not None:
        res = client.call("POST", "/chat", json={"message": args.message})
        out.print(res["text"])
        return 0

    async def main() -> None:
        ctx = direct_ctx(args)
        ctx.llm = llm.chat_model_from_env()
        try:
            res = await llm.chat(ctx, args.message)
            out.print(res.text)
            for r in res.refused:
                out.print(f"[yellow]refused[/] {r['name']}: {r['error']}")
        finally:
            await runtime.close(ctx, close_writer=True)
            ctx.store.close()

    asyncio.run(main())
    return 0
