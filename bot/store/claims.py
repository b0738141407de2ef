"""Claims: "this message is mine to handle", taken atomically so each message is answered once.

Platforms deliver the same message more than once (retries, one message as two event types,
gateway replays), and several bot processes may share one Redis. Whoever claims first handles
it; everyone else drops it. Claims expire after `ttl` seconds (an hour by default: longer than
Slack's last retry).

`RedisClaims` keeps every claim it saw in the process too, so while Redis is down (or after it
came back empty) this process still handles each message at most once: `claim` raises
`StoreUnavailable` and the caller either asks the platform to deliver again later or falls back to
`claim_here`, this process's own claims. When Redis comes back empty, `reseed` writes them back
(bot.recovery notices the loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import RedisError

from bot.conversation import ThreadRef
from bot.errors import StoreUnavailable
from bot.store.keys import KeyBuilder
from bot.store.memory.base import ThreadMemory
from bot.store.redis_pool import ScriptCall, is_cluster, redis_unavailable, run_pipeline
from bot.store.riders import Rider, write_alone

log = logging.getLogger(__name__)

DEFAULT_TTL = 3600
RESEED_BATCH = 1000  # claims written back per round trip after Redis lost its data

# All-or-nothing: if any key is taken, take none.
_CLAIM = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
return 1
"""


class Claims(Protocol):
    async def claim(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        """Claim every name within `scope` (e.g. "slack:T123"); False if any was claimed before."""

    async def claim_here(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        """Claim in this process only: what is left when the shared store cannot be reached."""

    async def release(self, scope: str, *names: str) -> None:
        """Give claims back, when the work they guarded failed and should be tried again."""


class InProcessClaims:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[tuple[str, str], float] = {}  # (scope, name) -> when it expires
        self._clock = clock

    async def claim(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        now = self._clock()
        if len(self._until) > 100_000:
            self._until = {k: v for k, v in self._until.items() if v > now}
        keys = [(scope, n) for n in names]
        if any(self._until.get(k, 0) > now for k in keys):
            return False
        for key in keys:
            self._until[key] = now + ttl
        return True

    async def claim_here(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        return await self.claim(scope, *names, ttl=ttl)

    def seen(self, scope: str, names: tuple[str, ...]) -> bool:
        now = self._clock()
        return any(self._until.get((scope, n), 0) > now for n in names)

    def unexpired(self) -> list[tuple[str, str, int]]:
        """(scope, name, seconds left) of every claim still in force."""
        now = self._clock()
        return [(s, n, math.ceil(t - now)) for (s, n), t in self._until.items() if t > now]

    async def release(self, scope: str, *names: str) -> None:
        for name in names:
            self._until.pop((scope, name), None)


class RedisClaims:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._redis = client
        self.client = client
        self._names = KeyBuilder(prefix)
        self._script = client.register_script(_CLAIM)
        self._here = InProcessClaims()  # every claim this process made or saw taken
        self._asking: dict[tuple[str, str], asyncio.Future[None]] = {}  # claims in flight here

    def _keys(self, scope: str, names: tuple[str, ...]) -> list[str]:
        # One hash tag per scope keeps a claim's keys in one Cluster slot; a message's scope is
        # its channel's (bot.store.keys.channel_scope), the slot of its thread and log entry.
        return [self._names.claim(scope, n) for n in names]

    @contextlib.asynccontextmanager
    async def _in_turn(self, scope: str, names: tuple[str, ...]) -> AsyncIterator[None]:
        """After this process's claims in flight on any of `names` (a message delivered twice
        at once: Slack sends a mention as two events): the first copy's round trip decides,
        and the others find it decided here, with no round trip of their own."""
        ahead = {self._asking[key] for n in names if (key := (scope, n)) in self._asking}
        if ahead:
            await asyncio.wait(ahead)
        mine = asyncio.get_running_loop().create_future()
        for name in names:
            self._asking[scope, name] = mine
        try:
            yield
        finally:
            for name in names:
                if self._asking.get((scope, name)) is mine:
                    del self._asking[scope, name]
            mine.set_result(None)

    async def claim(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        won, _ = await self.claim_and_probe(scope, names, (), ttl)
        return won

    async def claim_and_probe(
        self,
        scope: str,
        names: Sequence[str],
        probe: Sequence[str],
        ttl: int = DEFAULT_TTL,
        also: Sequence[ScriptCall] = (),
    ) -> tuple[bool, bool]:
        """`claim`, whether any of the `probe` keys exists (none: False), and the `also` calls
        (the message's channel log entry), in one round trip (on a cluster: all in one slot)."""
        names = tuple(names)
        if self._here.seen(scope, names):
            return False, False  # handled (or seen handled) by this process: no round trip needed
        async with self._in_turn(scope, names):
            if self._here.seen(scope, names):
                return False, False  # a copy claimed meanwhile, here
            return await self._claim_and_probe(scope, names, probe, ttl, also)

    async def _claim_and_probe(
        self,
        scope: str,
        names: tuple[str, ...],
        probe: Sequence[str],
        ttl: int,
        also: Sequence[ScriptCall],
    ) -> tuple[bool, bool]:
        def queue(pipe: Any) -> None:
            keys = self._keys(scope, names)
            if len(keys) == 1:  # one name: SET NX is the whole claim
                pipe.set(keys[0], "1", nx=True, ex=ttl)
            else:
                pipe.evalsha(self._script.sha, len(keys), *keys, ttl)
            if probe:
                pipe.exists(*probe)
            for call in also:
                call.queue(pipe)

        scripts = (self._script, *(call.script for call in also))
        try:
            won, *rest = await run_pipeline(self._redis, queue, scripts)
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        await self._here.claim(scope, *names, ttl=ttl)
        found = bool(rest[0]) if probe else False
        return bool(won), bool(won) and found

    async def claim_here(self, scope: str, *names: str, ttl: int = DEFAULT_TTL) -> bool:
        return await self._here.claim(scope, *names, ttl=ttl)

    async def reseed(self) -> int:
        """Write back every claim this process made or saw, still in force, after Redis lost
        its data: a copy of a message delivered to another process then finds it claimed."""
        known = self._here.unexpired()
        for start in range(0, len(known), RESEED_BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for scope, name, left in known[start : start + RESEED_BATCH]:
                pipe.set(self._names.claim(scope, name), "1", nx=True, ex=left)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                raise redis_unavailable(exc) from exc
        return len(known)

    async def release(self, scope: str, *names: str) -> None:
        await self._here.release(scope, *names)
        try:
            await self._redis.delete(*self._keys(scope, names))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc


async def claim_probing(
    claims: Claims,
    memory: ThreadMemory,
    scope: str,
    names: Sequence[str],
    thread: ThreadRef | None,
    log_entry: Rider | None = None,
) -> tuple[bool, bool]:
    """Claim a delivery, learn whether the bot is part of `thread` (if it is in one) — (won,
    known) — and keep the message in its channel log. On one Redis node all three ride in one
    round trip (a message not in a thread: the claim and its log entry). Raises
    StoreUnavailable when the claim cannot be made; a failed look at the thread only makes it
    unknown, a failed log entry is logged."""
    if isinstance(claims, RedisClaims) and (thread is not None or log_entry is not None):
        call = log_entry.call(claims.client) if log_entry is not None else None
        also = [call] if call is not None else []
        probe = getattr(memory, "exists_keys", None)
        if getattr(memory, "client", None) is not claims.client:
            probe = None  # the thread's keys are not on this client: looked at apart
        probed = probe(thread) if thread is not None and probe is not None else []
        keys = [*claims._keys(scope, tuple(names)), *probed, *(k for c in also for k in c.keys)]
        rides = (thread is None or probe is not None) and (log_entry is None or call is not None)
        if rides and _one_slot(claims.client, keys):
            return await claims.claim_and_probe(scope, names, probed, also=also)
    # Elsewhere (in-process, or keys in different slots of a cluster) the three go side by side.
    won, known, _ = await asyncio.gather(
        claims.claim(scope, *names),
        _known(memory, thread),
        write_alone(log_entry, "a message in the channel log"),
    )
    return won, won and known


def _one_slot(client: Any, keys: Sequence[str]) -> bool:
    return not is_cluster(client) or len({key_slot(k.encode()) for k in keys}) == 1


async def _known(memory: ThreadMemory, thread: ThreadRef | None) -> bool:
    """Whether the bot is part of `thread`; unknown (False) when Redis cannot say."""
    try:
        return thread is not None and await memory.exists(thread)
    except StoreUnavailable:
        return False


async def admit(
    claims: Claims,
    memory: ThreadMemory,
    scope: str,
    names: Sequence[str],
    thread: ThreadRef | None,
    log_entry: Rider | None = None,
) -> tuple[bool, bool]:
    """`claim_probing`, claimed in this process while Redis is down."""
    try:
        return await claim_probing(claims, memory, scope, names, thread, log_entry)
    except StoreUnavailable as exc:
        log.warning("Redis is down (%s): %s claimed in this process only", exc, ", ".join(names))
        return await claims.claim_here(scope, *names), False


async def claim_or_here(claims: Claims, scope: str, *names: str) -> bool:
    """Claim in the shared store, or in this process while the store cannot be reached."""
    try:
        return await claims.claim(scope, *names)
    except StoreUnavailable as exc:
        log.warning("Redis is down (%s): %s claimed in this process only", exc, ", ".join(names))
        return await claims.claim_here(scope, *names)
