"""The thread-memory port and what both implementations share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from bot.conversation import ThreadRef, ThreadState, Turn


class ThreadMemory(Protocol):
    """Per-thread conversation memory: a rolling summary plus the most recent turns.

    Every write refreshes the thread's retention; appends past the cap drop the oldest turns.
    Store failures raise `bot.errors.StoreUnavailable`.
    """

    async def load(self, thread: ThreadRef) -> ThreadState: ...

    async def exists(self, thread: ThreadRef) -> bool: ...

    async def append(self, thread: ThreadRef, *turns: Turn) -> None: ...

    async def fold(self, thread: ThreadRef, summary: str, through: Turn) -> None:
        """Replace every turn up to and including `through` by `summary`."""

    async def remove(self, thread: ThreadRef, message_id: str) -> bool: ...

    async def forget(self, thread: ThreadRef) -> None: ...

    def lock(self, thread: ThreadRef) -> AbstractAsyncContextManager[None]:
        """Held while a thread is being answered; waiters are served one after another."""

    async def aclose(self) -> None: ...


class LocalLocks:
    """One FIFO asyncio.Lock per thread key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
