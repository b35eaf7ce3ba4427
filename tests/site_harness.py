"""A site process in a test: the twin as a plant, its DuckDB file, users with tokens, the agent
and its HTTP API on a free loopback port, served from a background thread.

``running_site(db, build)`` yields a :class:`Running` site; ``build(hall)`` makes the agent's
context (policies, approvals mode, checkpoint). With ``modbus=True`` the twin is served over
Modbus on loopback first, so the agent's writes go through the real Modbus writer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from agent_harness import Hall
from conftest import free_port

from agent.api import find_api, serve, state_file
from agent.context import AgentContext
from agent.runtime import close
from agent.users import Role, Users

T = TypeVar("T")

NAMES = {"viewer": "vic", "operator": "olga", "admin": "root"}
"""A user per role (role label → name), each with a token in :attr:`Running.tokens`."""


@dataclass
class Running:
    url: str
    db: Path
    hall: Hall
    ctx: AgentContext
    loop: asyncio.AbstractEventLoop
    tokens: dict[str, str]  # role label → token of a user with that role

    def on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the site's event loop (where its DuckDB connection is used)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def do(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.on_loop(call())

    def client(self, role: str | None = None, token: str | None = None) -> httpx.Client:
        tok = token or (self.tokens[role] if role else None)
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)


@contextmanager
def running_site(
    db: Path, build: Callable[[Hall], AgentContext], modbus: bool = False, warm_s: float = 900
) -> Iterator[Running]:
    ready: dict[str, Any] = {}
    started = threading.Event()
    port = free_port()

    async def main() -> None:
        hall = Hall(db)
        hall.run(warm_s)
        if modbus:
            await hall.start(free_port())
        users = Users(hall.store)
        tokens = {role: users.add(name, Role.parse(role), "test") for role, name in NAMES.items()}
        ctx = build(hall)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(ctx, db, port=port, stop=stop))
        while not state_file(db).exists() and not task.done():
            await asyncio.sleep(0.02)
        ready.update(hall=hall, ctx=ctx, tokens=tokens, stop=stop, loop=asyncio.get_running_loop())
        started.set()
        try:
            await task
        finally:
            await close(ctx)
            await hall.stop()
            hall.store.close()

    th = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    th.start()
    assert started.wait(120), "the site did not start"
    url = find_api(db)
    assert url == f"http://127.0.0.1:{port}"
    yield Running(url, db, ready["hall"], ready["ctx"], ready["loop"], ready["tokens"])
    ready["loop"].call_soon_threadsafe(ready["stop"].set)
    th.join(60)
    assert not th.is_alive() and not state_file(db).exists()
