"""A poller's pacing: sleep until the next slot, and a ``stop`` that wakes that sleep at once.

Shared by the Modbus and BACnet pollers: each runs its groups on their own schedules and
must return promptly when asked, without relying on task cancellation (on Python 3.11
``asyncio.wait_for``, used inside the protocol clients, can swallow a cancellation that races
a response)."""

from __future__ import annotations

import asyncio


class Stoppable:
    """``_sleep(delay)`` that :meth:`stop` interrupts; ``_stopping`` tells the loop to end."""

    _stopping: bool = False
    _sleeper: asyncio.Future[None] | None = None

    def stop(self) -> None:
        """Ask the poller's ``run`` to return after the read in flight (prefer this to
        cancelling its task alone)."""
        self._stopping = True
        if self._sleeper is not None:
            _resolve(self._sleeper)

    async def _sleep(self, delay: float) -> None:
        """Sleep until the next slot, or until :meth:`stop` wakes it."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        self._sleeper = fut = loop.create_future()
        handle = loop.call_later(delay, _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._sleeper = None


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
