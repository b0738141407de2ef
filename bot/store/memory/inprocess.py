"""Thread memory inside the process: the default without Redis, lost on restart."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from bot.conversation import ThreadRef, ThreadState, Turn
from bot.errors import Fenced
from bot.store.inflight import PendingAnswer
from bot.store.memory.base import LocalLocks, Shown
from bot.store.riders import Passenger, Rider

GONE_SECONDS = 3600.0  # a deleted message's tombstone: longer than any answer takes


@dataclass
class _Thread:
    turns: deque[Turn]
    summary: str = ""
    expires_at: float = field(default=0.0)


class InProcessMemory:
    def __init__(
        self,
        *,
        max_turns: int = 400,
        retention_seconds: float = 30 * 86_400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_turns = max_turns
        self._retention = retention_seconds
        self._clock = clock
        self._threads: dict[ThreadRef, _Thread] = {}
        self._locks = LocalLocks()
        self._pending: dict[tuple[ThreadRef, str], PendingAnswer] = {}
        self._gone: dict[tuple[ThreadRef, str], float] = {}  # tombstones of deleted messages
        self._taken: set[tuple[ThreadRef, str]] = set()  # answers taken over: fenced out
        self.owner = secrets.token_hex(8)
        self.remembers_since: float | None = time.time()  # it lives as long as the process

    def _live(self, thread: ThreadRef) -> _Thread | None:
        entry = self._threads.get(thread)
        if entry is not None and entry.expires_at <= self._clock():
            del self._threads[thread]
            return None
        return entry

    def _touch(self, thread: ThreadRef) -> _Thread:
        entry = self._live(thread)
        if entry is None:
            entry = self._threads[thread] = _Thread(turns=deque(maxlen=self._max_turns))
        entry.expires_at = self._clock() + self._retention
        return entry

    async def load(self, thread: ThreadRef) -> ThreadState:
        entry = self._live(thread)
        if entry is None:
            return ThreadState()
        return ThreadState(summary=entry.summary, turns=tuple(entry.turns))

    async def exists(self, thread: ThreadRef) -> bool:
        return self._live(thread) is not None or any(t == thread for t, _ in self._pending)

    async def append(
        self,
        thread: ThreadRef,
        *turns: Turn,
        settled: PendingAnswer | None = None,
        riders: Sequence[Rider] = (),
    ) -> None:
        if settled is not None and not await self.owns(settled):
            raise Fenced(f"the answer to {settled.key} in {thread} was taken over")
        for rider in riders:
            await rider.write()
        kept: list[Turn] = []
        skipping = False
        for turn in turns:  # a deleted question is not saved, nor the answer that follows it
            if turn.message_id:
                skipping = self._gone.get((thread, turn.message_id), 0.0) > self._clock()
            if not skipping:
                kept.append(turn)
        if kept:
            self._touch(thread).turns.extend(kept)
        if settled is not None:
            self._pending.pop((thread, settled.key), None)

    async def fold(self, thread: ThreadRef, summary: str, through: Turn) -> None:
        entry = self._touch(thread)
        if through in entry.turns:
            while entry.turns and entry.turns.popleft() != through:
                pass
        entry.summary = summary

    async def remove(self, thread: ThreadRef, message_id: str) -> bool:
        if not message_id:
            return False
        now = self._clock()
        if len(self._gone) > 100_000:
            self._gone = {k: v for k, v in self._gone.items() if v > now}
        self._gone[(thread, message_id)] = now + GONE_SECONDS
        entry = self._live(thread)
        if entry is None:
            return False
        for turn in entry.turns:
            if turn.message_id == message_id:
                entry.turns.remove(turn)
                return True
        return False

    async def forget(self, thread: ThreadRef) -> None:
        self._threads.pop(thread, None)

    def lock(
        self,
        thread: ThreadRef,
        pending: PendingAnswer | None = None,
        *,
        recorded: Shown | None = None,
        alongside: Sequence[Passenger] = (),  # nothing to ride on: their owners read alone
    ) -> AbstractAsyncContextManager[None]:
        if pending is not None:
            self._pending[(thread, pending.key)] = pending.owned_by(self.owner)
        return self._hold(str(thread), recorded)

    @asynccontextmanager
    async def _hold(self, key: str, recorded: Shown | None) -> AsyncIterator[None]:
        if recorded is not None and self._locks.busy(key):  # shown while it waits its turn
            await recorded()
            recorded = None
        async with self._locks.hold(key):
            if recorded is not None:
                await recorded()
            yield

    async def in_flight(self) -> list[PendingAnswer]:
        return list(self._pending.values())

    async def record(self, pending: PendingAnswer) -> None:
        self._pending[(pending.thread, pending.key)] = pending.owned_by(self.owner)

    async def update_pending(self, pending: PendingAnswer) -> None:
        if (pending.thread, pending.key) in self._pending:
            self._pending[(pending.thread, pending.key)] = pending.owned_by(self.owner)

    def answering(self, pending: PendingAnswer) -> bool:
        return (pending.thread, pending.key) in self._pending

    async def heartbeat(self, ttl: float, *, next_in: float = 0.0) -> bool:
        return False  # nothing outlives this process, so nobody else needs to know it is alive

    @property
    def lapses(self) -> int:
        return 0

    def lease_left(self) -> float:
        return float("inf")

    async def renew(self) -> None:
        return None

    async def reseed(self) -> None:
        return None  # nothing to lose but the process itself

    async def live_owners(self, owners: set[str]) -> set[str]:
        return owners & {self.owner}

    async def take_over(self, pending: PendingAnswer) -> bool:
        found = self._pending.get((pending.thread, pending.key))
        if found is None or found.owner != pending.owner:
            return False
        self._pending[(pending.thread, pending.key)] = found.owned_by(self.owner)
        self._taken.add((pending.thread, pending.key))
        return True

    async def owns(self, pending: PendingAnswer) -> bool:
        found = self._pending.get((pending.thread, pending.key))
        if found is not None:
            return found.owner == self.owner
        return (pending.thread, pending.key) not in self._taken

    async def aclose(self) -> None:
        self._threads.clear()
