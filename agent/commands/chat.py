"""``facility-agent chat``: talk with the agent — an interactive session, or ``chat "message"``.

While a site process runs, every message goes to its ``POST /chat`` (streamed, as the user of
``$FACILITY_AGENT_TOKEN``); otherwise the chat opens the ``--db`` file directly and acts as the
local user. With a language model configured (OPENAI_API_KEY / OPENAI_BASE_URL,
FACILITY_AGENT_MODEL) messages go to it; without one the plain commands answer (``help``).
Interactive: line editing and history (``~/.facility_agent_chat_history``), Ctrl-C abandons a
line or an answer in progress, Ctrl-D or ``exit`` leaves. ``--conversation ID`` continues one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.commands._agent import Api, add_options, api, console, direct_ctx, refused
from agent.commands._common import user_text
from connectors.errors import FacilityError

HISTORY_FILE = Path.home() / ".facility_agent_chat_history"
EXIT = ("exit", "quit", "bye", ":q")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chat",
        help="talk with the agent: interactive without a message, one-shot with one",
        description=user_text(__doc__, slice(1, 2)),
    )
    add_options(p)
    p.add_argument("message", nargs="?", help="one message (omit for an interactive session)")
    p.add_argument("--conversation", metavar="ID", help="continue this conversation")
    p.set_defaults(func=run)


# ---- printing --------------------------------------------------------------------------------
def banner(out: Console, where: str, mode: str, model: str | None) -> None:
    what = f"language model {model}" if mode == "llm" else "plain commands (no language model)"
    out.print(f"[bold]facility-agent chat[/] — {where} — mode: [bold]{mode}[/], {what}")
    out.print("[dim]help lists the commands; Ctrl-D or exit leaves[/]")


def show_reply(out: Console, reply: dict[str, Any], streamed: bool) -> None:
    if not streamed:
        out.print(Text(str(reply.get("text", ""))))
    props = reply.get("proposals") or []
    if props:
        t = Table(title="proposals", title_justify="left")
        for col in ("decision", "tag", "from", "to", "outcome", "level", "approval"):
            t.add_column(col)
        for p in props:
            t.add_row(
                *(
                    str(p.get(k) if p.get(k) is not None else "-")
                    for k in ("decision_id", "tag", "from", "to", "outcome", "level", "approval_id")
                )
            )
        out.print(t)
    for r in reply.get("refused") or []:
        out.print(f"[yellow]refused[/] {r.get('name')}: {r.get('error')}")


# ---- the two ways to the agent: the site's API, or the file --------------------------------
def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of a server-sent event stream (data lines joined with newlines)."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


class Remote:
    """A running site: ``GET /chat`` for the mode, ``POST /chat`` streamed for each message."""

    def __init__(self, client: Api) -> None:
        self.client = client
        info = client.call("GET", "/chat")
        self.mode, self.model = str(info["mode"]), info.get("model")
        self.where = f"site process at {client.url}"

    def send(self, message: str, conversation: str | None, token: Callable[[str], None]) -> Any:
        body = {"message": message, "conversation": conversation}
        headers = {"Authorization": f"Bearer {self.client.token}", "Accept": "text/event-stream"}
        try:
            with httpx.stream(
                "POST", self.client.url + "/chat", json=body, headers=headers, timeout=300.0
            ) as r:
                if r.status_code >= 400:
                    r.read()
                    raise refused(r)
                for event, data in sse_events(r.iter_lines()):
                    if event == "token":
                        token(data)
                    elif event == "done":
                        return json.loads(data)
                    elif event == "error":
                        raise FacilityError(f"chat: {json.loads(data).get('detail')}")
        except httpx.HTTPError as err:
            raise FacilityError(f"site process at {self.client.url}: {err}") from None
        raise FacilityError("chat: the site process closed the answer early")

    def close(self) -> None:
        pass


class Local:
    """No site process: the file opened directly, acting as the local user."""

    def __init__(self, args: argparse.Namespace) -> None:
        from agent import llm
        from agent.chat.conversation import Chats
        from agent.users import local_principal

        self.loop = asyncio.new_event_loop()
        self.ctx = direct_ctx(args)
        self.ctx.llm = llm.chat_model_from_env()
        self.chats = Chats(self.ctx)
        self.who = local_principal()
        self.mode, self.model = self.chats.mode, self.chats.model_name
        self.where = f"{args.db} as {self.who.name}"

    def send(self, message: str, conversation: str | None, token: Callable[[str], None]) -> Any:
        async def turn() -> Any:
            r = await self.chats.turn(message, conversation, self.who, on_token=token)
            return r.as_json()

        return self.loop.run_until_complete(turn())

    def close(self) -> None:
        from agent import runtime

        try:
            self.loop.run_until_complete(runtime.close(self.ctx, close_writer=True))
        finally:
            self.ctx.store.close()
            self.loop.close()


# ---- the command -----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    out = console()
    client = api(args)
    agent: Remote | Local = Remote(client) if client is not None else Local(args)
    try:
        if args.message is not None:
            return one_shot(agent, args.message, args.conversation, out)
        return interactive(agent, args.conversation, out)
    finally:
        agent.close()


def one_shot(agent: Remote | Local, message: str, conversation: str | None, out: Console) -> int:
    reply = agent.send(message, conversation, lambda _t: None)
    if reply.get("error"):  # the model did not answer: one line on stderr, exit 2
        raise FacilityError(f"{reply['error']} (plain commands still work: say help)")
    show_reply(out, reply, streamed=False)
    out.print(f"[dim]mode {reply['mode']}; conversation {reply['conversation']}[/]")
    return 0


def _readline() -> Any:
    try:
        import readline
    except ImportError:  # pragma: no cover - not on every platform
        return None
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY_FILE)
    readline.set_history_length(1000)
    return readline


def streamer(out: Console, printed: list[str]) -> Callable[[str], None]:
    """Print each chunk as it comes (after the ``agent>`` prompt); keep them in ``printed``."""

    def token(text: str) -> None:
        if not printed:
            out.print("[bold cyan]agent>[/] ", end="")
        printed.append(text)
        out.print(Text(text), end="")

    return token


def interactive(agent: Remote | Local, conversation: str | None, out: Console) -> int:
    rl = _readline()
    banner(out, agent.where, agent.mode, agent.model)
    try:
        while True:
            try:
                line = input("you> ").strip()
            except KeyboardInterrupt:
                out.print("\n[dim](Ctrl-D or exit leaves)[/]")
                continue
            except EOFError:
                out.print()
                return 0
            if not line:
                continue
            if line.lower() in EXIT:
                return 0
            printed: list[str] = []
            try:
                reply = agent.send(line, conversation, streamer(out, printed))
            except KeyboardInterrupt:
                out.print("\n[yellow]interrupted[/] (the site still records the turn)")
                continue
            except FacilityError as err:  # a dead site or model: say it, keep the session
                out.print(f"\n[red]error[/] {err}")
                continue
            if printed:
                out.print()
            else:
                out.print("[bold cyan]agent>[/] ", end="")
            show_reply(out, reply, streamed=bool(printed))
            conversation = reply["conversation"]
    finally:
        if rl is not None:
            with contextlib.suppress(OSError):
                rl.write_history_file(HISTORY_FILE)
        if conversation:
            out.print(f"[dim]conversation {conversation} (continue it with --conversation)[/]")
