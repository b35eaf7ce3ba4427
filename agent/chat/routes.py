"""``GET /chat`` (viewer) and ``POST /chat`` (operator): the API's conversations.

``POST /chat {"message": str, "conversation": str | null}`` → ``{"text", "conversation",
"proposals", "mode", ...}``; a conversation id is minted when none is given. The acting user
is the credential's, never a name from the body. With ``Accept: text/event-stream`` the answer
streams as server-sent events: ``event: token`` (data: a chunk of text, JSON-encoded) …
then ``event: done`` (data: the same JSON as without streaming), or ``event: error``.
A chunk holding line breaks is sent as several ``data:`` lines (the SSE rule: joined with "\\n").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from agent.auth import require
from agent.chat.conversation import Chats, check_id
from agent.context import AgentContext
from agent.users import Principal, Role

Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]


class ChatIn(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")

    message: StrictStr = Field(min_length=1, max_length=8000)
    conversation: StrictStr | None = Field(None, max_length=80)


_RUNNING: set[asyncio.Task[None]] = set()  # turns whose client went away: they still finish


def sse(event: str, data: Any) -> bytes:
    """One server-sent event: text as is (a ``data:`` line per line), anything else as JSON."""
    text = data if isinstance(data, str) else json.dumps(data)
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


def router(ctx: AgentContext, lock: asyncio.Lock | None = None) -> APIRouter:
    """The chat routes of ``ctx``'s site; ``lock``: the API's (one approval answer at a time)."""
    chats = Chats(ctx, lock)
    r = APIRouter()

    @r.get("/chat")
    async def chat_mode(who: Viewer) -> dict[str, Any]:
        return {"mode": chats.mode, "model": chats.model_name}

    @r.post("/chat", response_model=None)
    async def chat(
        c: ChatIn, who: Operator, request: Request
    ) -> dict[str, Any] | StreamingResponse:
        if c.conversation is not None:
            try:
                check_id(c.conversation)
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
        if "text/event-stream" not in request.headers.get("accept", ""):
            return (await chats.turn(c.message, c.conversation, who)).as_json()
        return StreamingResponse(
            _stream(chats, c, who),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return r


async def _stream(chats: Chats, c: ChatIn, who: Principal) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def token(text: str) -> None:
        await queue.put(sse("token", text))

    async def run() -> None:
        try:
            reply = await chats.turn(c.message, c.conversation, who, on_token=token)
            await queue.put(sse("done", reply.as_json()))
        except Exception as err:  # the stream has started: the error is an event, not a 500
            await queue.put(sse("error", {"error": type(err).__name__, "detail": str(err)}))
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not None:
            yield item
    finally:
        if not task.done():  # the client went away: the turn still completes and is recorded
            _RUNNING.add(task)
            task.add_done_callback(_RUNNING.discard)
