"""The on-disk checkpointer: LangGraph's SQLite saver, so a pending approval survives a restart.

``open_saver(path)`` returns an :class:`AsyncSqliteSaver` on a file (created if
needed); close it with ``await close_saver(saver)``; ``memory_saver()`` is the
in-process one. Both deserialise exactly the record types of a decision
(:data:`STATE_TYPES`), nothing else. :func:`prune` deletes the
checkpoints of finished threads older than a cut-off, keeping every thread that
still waits for an approval.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent import decision
from tools.gate import GateVerdict
from tools.policies import Change
from tools.prediction import ConstraintRecord, PredictionRecord

#: The classes a checkpoint may hold (the decision record and its parts).
STATE_TYPES: tuple[type, ...] = (
    decision.Decision,
    decision.Action,
    decision.Evidence,
    decision.QualityRecord,
    decision.VerifyRecord,
    decision.Answer,
    decision.Refusal,
    Change,
    GateVerdict,
    PredictionRecord,
    ConstraintRecord,
)


def serializer() -> JsonPlusSerializer:
    return JsonPlusSerializer(
        allowed_msgpack_modules=[(t.__module__, t.__name__) for t in STATE_TYPES]
    )


def memory_saver() -> InMemorySaver:
    return InMemorySaver(serde=serializer())


async def open_saver(path: str | Path) -> AsyncSqliteSaver:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path))
    saver = AsyncSqliteSaver(conn, serde=serializer())
    await saver.setup()
    return saver


async def close_saver(saver: AsyncSqliteSaver) -> None:
    await saver.conn.close()


async def threads(saver: Any) -> list[str]:
    """Thread ids held by a SQLite saver (or an in-memory one)."""
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints") as cur:
            return [str(r[0]) async for r in cur]
    return [str(t) for t in getattr(saver, "storage", {})]


async def prune(saver: Any, keep: Iterable[str], max_threads: int = 200) -> int:
    """Delete finished threads beyond the newest ``max_threads``; threads in ``keep`` stay.

    Thread ids are run ids, which sort by creation (``run-<utc stamp>-<hex>``); other threads
    (the conversations, ``chat:<id>``) are not decision runs and are never pruned here.
    Returns the number of threads deleted.
    """
    keep_set = set(keep)
    all_threads = sorted(t for t in await threads(saver) if t.startswith("run-"))
    drop = [t for t in all_threads[: max(0, len(all_threads) - max_threads)] if t not in keep_set]
    for t in drop:
        await saver.adelete_thread(t)
    return len(drop)
