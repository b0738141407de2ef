"""The thread-memory port and what both implementations share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from bot.conversation import ThreadRef, ThreadState, Turn
from bot.store.inflight import PendingAnswer
from bot.store.riders import Passenger, Rider

Shown = Callable[[], Awaitable[None]]


class ThreadMemory(Protocol):
    """Per-thread conversation memory: a rolling summary plus the most recent turns.

    Every write refreshes the thread's retention; appends past the cap drop the oldest turns.
    Store failures raise `bot.errors.StoreUnavailable`.
    """

    owner: str  # this process, as named in its locks and answers in flight
    # Since when the store holds everything written to it (time.time()); None: unknown. A
    # thread that began later and is not in memory is one the bot never took part in.
    remembers_since: float | None

    async def load(self, thread: ThreadRef) -> ThreadState: ...

    async def exists(self, thread: ThreadRef) -> bool:
        """Whether the thread has memory or an answer in flight (the bot is part of it)."""

    async def append(
        self,
        thread: ThreadRef,
        *turns: Turn,
        settled: PendingAnswer | None = None,
        riders: Sequence[Rider] = (),
    ) -> None:
        """Add turns; with `settled`, that answer is no longer in flight (same round trip), and
        `riders` (the request's usage) are written too, in the same round trip where they can.
        Raises `bot.errors.Fenced`, writing nothing, when `settled` was taken over."""

    async def fold(self, thread: ThreadRef, summary: str, through: Turn) -> None:
        """Replace every turn up to and including `through` by `summary`."""

    async def remove(self, thread: ThreadRef, message_id: str) -> bool: ...

    async def forget(self, thread: ThreadRef) -> None: ...

    def lock(
        self,
        thread: ThreadRef,
        pending: PendingAnswer | None = None,
        *,
        recorded: Shown | None = None,
        alongside: Sequence[Passenger] = (),
    ) -> AbstractAsyncContextManager[None]:
        """Held while a thread is being answered; waiters are served one after another.

        With `pending`, the answer is recorded as in flight before waiting, until `append`
        settles it. `recorded` is awaited once it is (the adapter shows its placeholder then, so
        nothing is shown before a crash could be settled): before queueing behind an answer of
        this process, else once the lock is taken, in the same round trip as the record.
        `alongside` reads ride in the first try's round trip where they can (their owners send
        the others alone).
        """

    async def record(self, pending: PendingAnswer) -> None:
        """Record an answer as in flight before anything of it is shown (before its thread's
        lock is even asked for), so a crash from then on is settled; `lock(pending=...)` and
        `update_pending` keep the record current, `append(settled=...)` drops it."""

    async def in_flight(self) -> list[PendingAnswer]:
        """The answers recorded as in flight by this process, and by every process that stopped
        renewing its liveness (a live process's answers are its own business)."""

    async def update_pending(self, pending: PendingAnswer) -> None:
        """Record where an answer in flight is shown now (it moved, or got its first message);
        nothing if it was settled meanwhile."""

    def answering(self, pending: PendingAnswer) -> bool:
        """Whether this process is still working on `pending` (its record is not stale)."""

    async def heartbeat(self, ttl: float, *, next_in: float = 0.0) -> bool:
        """Say this process is alive for `ttl` seconds more; the thread locks it holds whose
        renewal falls due before the next beat (in about `next_in` seconds) are renewed in the
        same send. True when the store lost its data since the last beat (a restart without
        persistence, a failover to an empty replica, a flush): what this process knew was
        written back already (`reseed`)."""

    @property
    def lapses(self) -> int:
        """How many times this process found, renewing its liveness, that it had lapsed (a
        pause, a partition): others may have taken its answers over meanwhile, so an ownership
        check made before a lapse no longer holds."""

    def lease_left(self) -> float:
        """Seconds until this process's liveness lapses unless renewed (inf: nothing outside
        the process can take its answers over)."""

    async def renew(self) -> None:
        """Renew this process's liveness now (as `heartbeat` does, with its last ttl)."""

    async def reseed(self) -> None:
        """Write back this process's answers in flight, its registration and its locks."""

    async def live_owners(self, owners: set[str]) -> set[str]:
        """Which of `owners` are still renewing their liveness."""

    async def take_over(self, pending: PendingAnswer) -> bool:
        """Take a dead owner's answer: its record names this process from now on (until
        `append(settled=...)` drops it, once the reply is settled), its lock is freed, and its
        owner is fenced out of it (`owns` is False for it). True for one caller."""

    async def owns(self, pending: PendingAnswer) -> bool:
        """Whether this process may still write the answer to `pending`: its record names this
        process, or there is no record and nobody took it over (Redis lost it). Decided inside
        the store, so a process that was paused past its takeover learns it on waking."""

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

    def busy(self, key: str) -> bool:
        """Whether someone in this process holds or waits for `key`."""
        return key in self._locks

    def __len__(self) -> int:
        return len(self._locks)
