"""The hand-over from sensor threads to the defender's event loop.

Sensors call ``put`` on their own threads and must never wait: the inbox is a deque (its
``append`` and ``popleft`` are atomic) with a bound, past which events are dropped and counted.
Plain events wait for the loop's next round (every few tens of milliseconds), so a storm of
execs is taken in batches, not one wake-up each; ``put_urgent`` wakes the loop at once
(through ``call_soon_threadsafe``, when it is not already due to wake).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, maxlen: int = 200_000) -> None:
        self.maxlen = maxlen
        self.dropped = 0
        self.received = 0
        self.taken = 0  # by drain: taken and handled in one step of the loop
        self._items: deque[T] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._signalled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake ``loop`` when events arrive (call from inside the loop)."""
        self._loop = loop
        self._ready = asyncio.Event()

    def put(self, item: T) -> None:
        """Any thread; never blocks. The loop takes it at its next round (``wait``'s timeout)."""
        if len(self._items) >= self.maxlen:
            self.dropped += 1
            return
        self._items.append(item)
        self.received += 1

    def put_urgent(self, item: T) -> None:
        """As ``put``, and wake the loop now: for what must be acted on at once (a block)."""
        self.put(item)
        if not self._signalled and self._loop is not None:
            self._signalled = True
            # A closed loop raises RuntimeError: the defender is shutting down.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._ready.set)

    async def wait(self, timeout: float) -> None:
        """Until an urgent event arrives or ``timeout`` seconds pass (plain events that came
        meanwhile are taken then, together)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def drain(self, limit: int = 10_000) -> list[T]:
        """Take up to ``limit`` events, oldest first."""
        self._signalled = False
        self._ready.clear()
        items = self._items
        taken: list[T] = []
        while items and len(taken) < limit:
            taken.append(items.popleft())
        self.taken += len(taken)
        return taken

    def __len__(self) -> int:
        return len(self._items)
