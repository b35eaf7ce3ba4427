"""Conversations: one operator message in, one reply out, the history kept per conversation.

:class:`Chats` answers :meth:`Chats.turn` ``(message, conversation, who)``:

- the conversation's state (messages, its proposals, an approval awaiting "yes") lives in the
  site's LangGraph checkpointer (the SQLite file beside the database; in memory without one),
  thread ``chat:<conversation>``, written by a one-node graph after each turn;
- mode ``"llm"`` when a model is configured: the message goes to :func:`agent.llm.chat` (the
  prebuilt tool agent) with the history — unless it is exactly a plain command
  (:func:`agent.chat.commands.parse`): that is answered by the command, exact and at no token
  cost, and the model sees it in the history. Answers to approvals (``approve ID``, ``approve
  that``, "yes"/"no" to a confirmation asked) are therefore the operator's own words, never the
  model's;
- mode ``"commands"`` without a model: every message is a plain command.

Both make proposals through :func:`agent.llm.propose` (what-if, then the gate, ceiling 2) and
answer approvals through :func:`agent.runtime.answer_approval`, like the HTTP API.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from agent import llm
from agent.chat import commands
from agent.context import AgentContext
from agent.users import Principal

Mode = Literal["llm", "commands"]
TokenFn = Callable[[str], Awaitable[None] | None]

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}")
HISTORY = 40  # messages of the conversation given to the model (from a question on)
KEEP_PROPOSALS = 20
KEEP_MESSAGES = 400  # a conversation keeps its newest messages; older ones are forgotten


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    proposals: list[dict[str, Any]]  # every proposal made in the conversation, oldest first
    confirm: dict[str, Any] | None  # {"approval_id", "state"} awaiting "yes" (the next message)


@dataclass
class Reply:
    text: str
    conversation: str
    mode: Mode
    proposals: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    run_id: str = ""
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "conversation": self.conversation,
            "proposals": self.proposals,
            "mode": self.mode,
            "refused": self.refused,
            "run_id": self.run_id,
            "error": self.error,
        }


def new_id() -> str:
    return f"conv-{uuid.uuid4().hex[:12]}"


def check_id(conversation: str) -> str:
    if not ID_RE.fullmatch(conversation):
        raise ValueError(
            "conversation: 1-80 letters, digits, '_', '.', ':' or '-', starting with a "
            f"letter or digit, not {conversation[:40]!r}"
        )
    return conversation


def thread(conversation: str) -> str:
    """The checkpointer's thread of a conversation (never a decision run's ``run-…``)."""
    return f"chat:{conversation}"


def _record(state: ChatState) -> dict[str, Any]:
    return {}


def history_graph(saver: Any) -> Any:
    """One node that keeps what a turn added (the reducers append the messages)."""
    g = StateGraph(ChatState)
    g.add_node("record", _record)
    g.add_edge(START, "record")
    g.add_edge("record", END)
    return g.compile(checkpointer=saver)


def recent(messages: list[BaseMessage], n: int = HISTORY) -> list[BaseMessage]:
    """The last ``n`` messages, starting at a question (no tool answer without its call)."""
    tail = messages[-n:]
    for i, m in enumerate(tail):
        if isinstance(m, HumanMessage):
            return tail[i:]
    return []


class Chats:
    """The site's conversations (one per ``AgentContext``)."""

    def __init__(self, ctx: AgentContext, lock: asyncio.Lock | None = None) -> None:
        self.ctx = ctx
        self.lock = lock or asyncio.Lock()  # the API's: one approval answer at a time
        self._graph: Any = None
        self._saver: Any = None
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def mode(self) -> Mode:
        return "llm" if self.ctx.llm is not None else "commands"

    @property
    def model_name(self) -> str | None:
        m = self.ctx.llm
        if m is None:
            return None
        return str(getattr(m, "model_name", None) or getattr(m, "model", None) or type(m).__name__)

    async def graph(self) -> Any:
        """The history graph on the site's checkpointer (opened here when no cycle opened it)."""
        from agent.checkpoint import memory_saver, open_saver

        ctx = self.ctx
        if ctx._saver is None:
            ctx._saver = (
                await open_saver(ctx.checkpoint_path) if ctx.checkpoint_path else memory_saver()
            )
        if self._graph is None or self._saver is not ctx._saver:
            self._saver = ctx._saver
            self._graph = history_graph(ctx._saver)
        return self._graph

    async def state(self, conversation: str) -> ChatState:
        g = await self.graph()
        snap = await g.aget_state(self._cfg(conversation))
        return dict(snap.values)  # type: ignore[return-value]

    def _cfg(self, conversation: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread(conversation)}}

    async def turn(
        self,
        message: str,
        conversation: str | None,
        who: Principal,
        on_token: TokenFn | None = None,
    ) -> Reply:
        conv = check_id(conversation) if conversation else new_id()
        lock = self._locks.setdefault(conv, asyncio.Lock())
        async with lock:
            return await self._turn(message, conv, who, on_token)

    async def _turn(
        self, message: str, conv: str, who: Principal, on_token: TokenFn | None
    ) -> Reply:
        ctx = self.ctx
        st = await self.state(conv)
        proposals = list(st.get("proposals") or [])
        confirm = st.get("confirm")
        cmd = commands.parse(message)
        mode = self.mode
        # a plain command is answered by the command in both modes ("yes"/"no" only when a
        # confirmation was asked: otherwise it answers the model)
        by_command = mode == "commands" or (
            cmd is not None and (cmd.verb != "confirm" or confirm is not None)
        )
        reply = Reply("", conv, mode)
        new_confirm: dict[str, Any] | None = None
        added: list[BaseMessage]
        if by_command:
            run_id = f"chat-{ctx.clock.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
            ctx.audit.start_run(run_id, "chat", ctx.clock.now())
            if cmd is None:
                out = commands.Reply(
                    f"Not a command: {message.strip()[:80]!r}. No language model is configured; "
                    "say help for the plain commands."
                )
            else:
                out = await commands.run(
                    ctx,
                    cmd,
                    who=who,
                    run_id=run_id,
                    proposals=proposals,
                    confirm=confirm,
                    lock=self.lock,
                )
            ctx.audit.finish_run(run_id, ctx.clock.now(), "done")
            reply.text, reply.proposals, reply.run_id = out.text, out.proposals, run_id
            new_confirm = out.confirm
            if on_token is not None:
                said = on_token(out.text)
                if said is not None:
                    await said
            added = [HumanMessage(message), AIMessage(out.text)]
        else:
            past = recent(list(st.get("messages") or []))
            got = await llm.chat(ctx, message, history=past, on_token=on_token)
            reply.text, reply.proposals, reply.refused = got.text, got.proposals, got.refused
            reply.run_id, reply.error = got.run_id, got.error
            added = list(got.messages)
            if got.error:  # the question stays in the history; the failure is said, not kept
                added = [m for m in added if isinstance(m, HumanMessage)]
                added.append(AIMessage(got.text))
        old = list(st.get("messages") or [])
        drop = max(0, len(old) + len(added) - KEEP_MESSAGES)
        forget = [RemoveMessage(id=str(m.id)) for m in old[:drop] if m.id]
        update: dict[str, Any] = {
            "messages": [*forget, *added],
            "proposals": (proposals + reply.proposals)[-KEEP_PROPOSALS:],
            "confirm": new_confirm,
        }
        g = await self.graph()
        await g.ainvoke(update, self._cfg(conv))
        return reply
