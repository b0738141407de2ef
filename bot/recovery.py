"""Keeping this process's liveness, and settling the answers of processes that died.

Every few seconds the process renews its liveness key and looks at the answers in flight. A
record whose owner stopped renewing (killed, out of memory, node lost) is taken over by exactly
one live process: its lock is freed, the platform reply is ended with one sentence by the adapter
that registered for that platform, and the user's turn is saved. The same pass tells readiness
whether the store answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.engine import ConversationEngine
from bot.errors import BotError, StoreUnavailable
from bot.metrics import LIVENESS_BEATS
from bot.readiness import Readiness
from bot.store.inflight import PendingAnswer
from bot.store.memory.base import ThreadMemory

log = logging.getLogger(__name__)

Settle = Callable[[PendingAnswer], Awaitable[None]]

BEAT = 2.0  # seconds between liveness renewals (and recovery passes)
ALIVE_FOR = 10.0  # a process silent this long is dead: its answers are settled by others
# ...once this process has also seen it missing for this long: after Redis restarts every
# liveness key is gone, and a live process renews its own within a beat.
CONFIRM = 3 * BEAT


class Recovery:
    def __init__(
        self,
        memory: ThreadMemory,
        engine: ConversationEngine,
        readiness: Readiness,
        *,
        beat: float = BEAT,
        alive_for: float = ALIVE_FOR,
        confirm: float = CONFIRM,
        part: str | None = "redis",
    ) -> None:
        self._confirm = confirm
        self._memory = memory
        self._engine = engine
        self._readiness = readiness
        self._beat = beat
        self._alive_for = alive_for
        self._part = part  # the readiness part this loop reports on; None: nothing to report
        self._settlers: dict[str, Settle] = {}
        self._silent_since: dict[str, float] = {}  # owner -> when this process first missed it
        self._reseeders: list[Callable[[], Awaitable[int]]] = []
        self.settled = 0
        self.reseeded = 0  # times this process found the store emptied and wrote back

    def on_store_lost(self, reseed: Callable[[], Awaitable[int]]) -> None:
        """When the store comes back empty, `reseed` writes back what it knows (e.g. claims);
        it returns how many things it wrote."""
        self._reseeders.append(reseed)

    def register(self, platform: str, settle: Settle) -> None:
        """Answers on `platform` left by dead processes are ended by `settle`."""
        self._settlers[platform] = settle

    def unregister(self, platform: str) -> None:
        self._settlers.pop(platform, None)

    async def run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self._beat)

    async def beat(self) -> int:
        """Renew liveness and settle what dead processes left; returns how many were settled."""
        LIVENESS_BEATS.inc()
        try:
            if await self._memory.heartbeat(self._alive_for, next_in=self._beat):
                await self._store_lost()
            if self._part:
                self._readiness.up(self._part)
            return await self.sweep()
        except StoreUnavailable as exc:
            if self._part:
                self._readiness.down(self._part, str(exc))
            return 0

    async def _store_lost(self) -> None:
        written = [await reseed() for reseed in self._reseeders]
        self.reseeded += 1
        log.warning(
            "Redis lost its data (restarted without persistence, failed over, or flushed): wrote "
            "back this process's answers in flight, locks and registration, and %d claims; "
            "thread memory and channel logs are gone",
            sum(written),
        )

    async def sweep(self) -> int:
        if not self._settlers:
            return 0
        records = [r for r in await self._memory.in_flight() if r.thread.platform in self._settlers]
        me = self._memory.owner
        for record in records:
            if record.owner == me and not self._memory.answering(record):
                # Ours, finished, but its settling save failed (Redis was down): the reply is
                # shown already, only the record and the question are left to keep.
                await self._memory.append(record.thread, settled=record)
                await self._keep(record)
        owners = {r.owner for r in records} - {me}
        dead = self._confirmed_dead(owners - await self._memory.live_owners(owners))
        taken = [r for r in records if r.owner in dead and await self._memory.take_over(r)]
        # Together: one reply waiting on the platform's rate limit must not hold up the rest;
        # edits first, since new messages are paced tighter (Slack: about one a second per
        # channel) and would otherwise hold up the edits of the same channel.
        await asyncio.gather(*(self._settle(record) for record in taken if record.shown))
        await asyncio.gather(*(self._settle(record) for record in taken if not record.shown))
        self.settled += len(taken)
        return len(taken)

    def _confirmed_dead(self, silent: set[str]) -> set[str]:
        """Owners this process has seen silent for `confirm` seconds. A liveness key can lapse
        while the owner is alive (Redis restarted, or was unreachable for a while): the owner
        renews it within a beat, and is not taken for dead meanwhile."""
        now = time.monotonic()
        self._silent_since = {o: self._silent_since.get(o, now) for o in silent}
        return {o for o, since in self._silent_since.items() if now - since >= self._confirm}

    async def _settle(self, record: PendingAnswer) -> None:
        log.info(
            "settling the answer to %s in %s left by stopped process %s",
            record.message.message_id,
            record.thread,
            record.owner,
        )
        # The question first: once people see the sentence they may write again in the thread.
        await self._keep(record)
        try:
            await self._settlers[record.thread.platform](record)
        except Exception:
            log.exception("could not end the interrupted reply in %s", record.thread)
        # Then the record, which names this process since the take-over: had it died before
        # here, the next process would have settled the answer again.
        try:
            await self._memory.append(record.thread, settled=record.owned_by(self._memory.owner))
        except BotError as exc:
            log.error("could not clear the settled answer in %s: %s", record.thread, exc)

    async def _keep(self, record: PendingAnswer) -> None:
        try:
            await self._engine.keep_question(record.message)
        except BotError as exc:
            log.error("could not save the interrupted question in %s: %s", record.thread, exc)
