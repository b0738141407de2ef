"""The usage ledger in Redis: one hash per workspace and day, checked and reserved by one script,
recorded by another that rides in the answer's save (bot.store.memory.redis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import ScriptCall, redis_unavailable
from bot.usage.ledger import (
    DEFAULT_RETENTION_DAYS,
    LimitName,
    Limits,
    Refusal,
    Reservation,
    UsageEntry,
    UsageTotals,
    allowed,
    day_fields,
    holding,
    limit_fields,
)
from bot.usage.tally import Payer, Tally

# KEYS[1]: the day. ARGV: tokens to hold, ttl, then (tokens field, reserved field, limit) for each
# limit in force. Refuses with the first limit reached (spent plus held), else holds against all.
_RESERVE = """
local n = (#ARGV - 2) / 3
for i = 0, n - 1 do
  local v = redis.call('HMGET', KEYS[1], ARGV[3 + 3 * i], ARGV[4 + 3 * i])
  local used, held = tonumber(v[1] or '0'), tonumber(v[2] or '0')
  if used + held >= tonumber(ARGV[5 + 3 * i]) then return {i + 1, used, held} end
end
for i = 0, n - 1 do redis.call('HINCRBY', KEYS[1], ARGV[4 + 3 * i], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {0, 0, 0}
"""

# KEYS[1]: the day spent on, KEYS[2]: the day the tokens were held on (the same slot). ARGV: ttl,
# tokens held, k, the k reserved fields, the name field and name, then (field, increment) pairs.
_RECORD = """
local held, k = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, 3 + k do
  if redis.call('HINCRBY', KEYS[2], ARGV[i], -held) < 0 then
    redis.call('HSET', KEYS[2], ARGV[i], 0)
  end
end
local at = 4 + k
if ARGV[at] ~= '' then redis.call('HSET', KEYS[1], ARGV[at], ARGV[at + 1]) end
for i = at + 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class RedisLedger:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.client = client
        self._keys = KeyBuilder(prefix)
        self._ttl = max(86_400, int(retention_days * 86_400))
        self._reserve = client.register_script(_RESERVE)
        self._record = client.register_script(_RECORD)

    async def reserve(
        self, payer: Payer, day: date, tokens: int, limits: Limits
    ) -> Refusal | Reservation:
        checks = [(n, t, r, allowed(limits, n)) for n, t, r in limit_fields(payer)]
        checks = [c for c in checks if c[3]]
        args: list[Any] = [tokens, self._ttl]
        for _, spent, held, most in checks:
            args += [spent, held, most]
        try:
            which, used, held = await self._reserve(
                keys=[self._keys.usage_day(payer.scope, day)], args=args
            )
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        if which:
            name, _, _, most = checks[int(which) - 1]
            return Refusal(name, most, int(used), int(held))
        return holding(payer, day, tokens, limits)

    def record_call(self, tally: Tally, day: date, reservation: Reservation | None) -> ScriptCall:
        payer = tally.payer
        held_on = reservation.day if reservation is not None else day
        args: list[Any] = [self._ttl]
        fields = reservation.fields if reservation is not None else ()
        args += [reservation.tokens if reservation is not None else 0, len(fields), *fields]
        args += [f"n|{payer.user}", payer.name] if payer.name else ["", ""]
        for name, by in day_fields(tally).items():
            args += [name, by]
        keys = [self._keys.usage_day(payer.scope, day), self._keys.usage_day(payer.scope, held_on)]
        return ScriptCall(self._record, keys, args)

    def entry(self, tally: Tally, day: date, reservation: Reservation | None) -> UsageEntry:
        return _RedisEntry(self, self.record_call(tally, day, reservation))

    async def days(self, scope: str, days: Sequence[date]) -> UsageTotals:
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self._keys.usage_day(scope, day))
        try:
            found = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        totals = UsageTotals()
        for fields in found:
            totals.add({k.decode(): v.decode() for k, v in fields.items()})
        return totals

    async def spent_today(self, payer: Payer, day: date) -> dict[LimitName, int]:
        names = limit_fields(payer)
        try:
            values = await self.client.hmget(
                self._keys.usage_day(payer.scope, day), [spent for _, spent, _ in names]
            )
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return {name: int(v or 0) for (name, _, _), v in zip(names, values, strict=True)}


@dataclass(frozen=True, slots=True)
class _RedisEntry:
    ledger: RedisLedger
    script: ScriptCall

    async def write(self) -> None:
        try:
            await self.script.script(keys=self.script.keys, args=self.script.args)
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    def call(self, client: Any) -> ScriptCall | None:
        return self.script if client is self.ledger.client else None
