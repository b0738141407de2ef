"""Feedback on answers (👍 / 👎): recorded once per person per answer, counted per workspace.

In Redis: `<prefix>:feedback:{<scope>}` holds one field per "<answer>:<person>" (value, thread,
time; kept `FEEDBACK_DAYS`), and `<prefix>:feedback:{<scope>}:counts` the totals by value. Both
share the workspace's hash tag, so recording is one script in one slot.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import redis_unavailable

FEEDBACK_DAYS = 90

_RECORD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


class FeedbackStore(Protocol):
    async def record(self, scope: str, answer: str, person: str, value: str, thread: str) -> bool:
        """Keep one person's rating of one answer; False if they had rated it already."""

    async def counts(self, scope: str) -> dict[str, int]: ...


class InProcessFeedback:
    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._counts: dict[str, Counter[str]] = {}

    async def record(self, scope: str, answer: str, person: str, value: str, thread: str) -> bool:
        if (scope, answer, person) in self._seen:
            return False
        self._seen.add((scope, answer, person))
        self._counts.setdefault(scope, Counter())[value] += 1
        return True

    async def counts(self, scope: str) -> dict[str, int]:
        return dict(self._counts.get(scope, Counter()))


class RedisFeedback:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._record = client.register_script(_RECORD)

    def _keys(self, scope: str) -> list[str]:
        return list(KeyBuilder(self._prefix).feedback(scope))

    async def record(self, scope: str, answer: str, person: str, value: str, thread: str) -> bool:
        entry = json.dumps({"value": value, "thread": thread, "at": time.time()})
        args: list[str | int] = [f"{answer}:{person}", entry, value, FEEDBACK_DAYS * 86_400]
        try:
            return bool(await self._record(keys=self._keys(scope), args=args))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def counts(self, scope: str) -> dict[str, int]:
        try:
            raw = await self._redis.hgetall(self._keys(scope)[1])
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    async def scopes(self) -> list[str]:
        """Every workspace with feedback (for the `feedback` command)."""
        found = set()
        async for key in self._redis.scan_iter(
            match=KeyBuilder(self._prefix).feedback_counts_pattern
        ):
            name = key.decode() if isinstance(key, bytes) else key
            found.add(name[name.index("{") + 1 : name.rindex("}")])
        return sorted(found)
