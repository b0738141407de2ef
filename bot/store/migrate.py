"""Moving stored conversations from layout 1 to the current key layout (bot.store.keys).

Layout 1 tagged every thread on its own (`<prefix>:{platform:workspace:channel:thread}:turns`)
and indexed answers in flight in one global sorted set. Layout 2 keeps a thread with its channel.
`migrate` finds layout-1 thread keys (SCAN, on every node of a cluster), and for each thread:

- its turns move to the new key; turns already written there (the thread went on under the new
  version) stay after them, and a turn present in both (same message) is kept once;
- its rolling summary moves unless the new key has one, its tombstones join the new set;
- its answers in flight move to the new record and the channel's index, and their owners to
  the `{live}` registry, so recovery settles them (their processes are gone);
- its lock, and the global index, are dropped; each key keeps what was left of its expiry.

It is idempotent: a second run finds nothing to move. `python -m bot run` migrates by itself on
start when the layout is not recorded yet and no process of the old version is alive (its
`<prefix>:alive:<owner>` keys); `python -m bot migrate` does it on request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.conversation import ThreadRef
from bot.errors import StoreUnavailable
from bot.store.inflight import PendingAnswer
from bot.store.keys import LAYOUT, KeyBuilder, ThreadKeys
from bot.store.memory.redis_inflight import PENDING_TTL, index_member
from bot.store.redis_pool import redis_unavailable

log = logging.getLogger(__name__)

Homes = Callable[[ThreadRef], ThreadRef]
_KINDS = ("turns", "meta", "lock", "pending", "gone")


@dataclass
class Moved:
    threads: int = 0
    turns: int = 0
    in_flight: int = 0


async def old_processes(client: aioredis.Redis, prefix: str) -> int:
    """Processes of layout 1 still alive (their liveness keys)."""
    try:
        return len([k async for k in client.scan_iter(match=f"{prefix}:alive:*", count=1000)])
    except (RedisError, OSError) as exc:
        raise redis_unavailable(exc) from exc


async def layout(client: aioredis.Redis, prefix: str) -> int:
    """The layout recorded in Redis; 1 when none is (a store written before layouts had one)."""
    try:
        recorded = await client.get(KeyBuilder(prefix).schema)
    except (RedisError, OSError) as exc:
        raise redis_unavailable(exc) from exc
    return int(recorded) if recorded else 1


async def migrate(client: aioredis.Redis, prefix: str, homes: Homes | None = None) -> Moved:
    keys = KeyBuilder(prefix)
    pattern = re.compile(
        rf"^{re.escape(prefix)}:\{{([^{{}}:]*:[^{{}}:]*:[^{{}}:]*:[^{{}}:]*)\}}:({'|'.join(_KINDS)})$"
    )
    moved = Moved()
    try:
        threads: dict[str, set[str]] = {}
        async for raw in client.scan_iter(match=f"{prefix}:{{*}}:*", count=1000):
            found = pattern.match(raw.decode())
            if found:
                threads.setdefault(found.group(1), set()).add(found.group(2))
        for tag, kinds in sorted(threads.items()):
            platform, workspace, channel, thread = (unquote(p) for p in tag.split(":"))
            ref = ThreadRef(platform, workspace, channel, thread)
            ref = homes(ref) if homes is not None else ref
            old = f"{prefix}:{{{tag}}}"
            await _move_thread(client, keys, old, kinds, keys.thread(ref), ref, moved)
            moved.threads += 1
        await client.delete(f"{prefix}:inflight")
        await client.set(keys.schema, str(LAYOUT))
    except (RedisError, OSError) as exc:
        raise redis_unavailable(exc) from exc
    return moved


async def _move_thread(
    client: aioredis.Redis,
    names: KeyBuilder,
    old: str,
    kinds: set[str],
    new: ThreadKeys,
    ref: ThreadRef,
    moved: Moved,
) -> None:
    """One thread in two round trips: everything read, then everything written."""
    pipe = client.pipeline(transaction=False)
    for kind in ("turns", "meta", "gone"):
        pipe.pttl(f"{old}:{kind}")
    pipe.lrange(f"{old}:turns", 0, -1)
    pipe.lrange(new.turns, 0, -1)
    pipe.hget(f"{old}:meta", "summary")
    pipe.smembers(f"{old}:gone")
    pipe.hgetall(f"{old}:pending")
    turns_ttl, meta_ttl, gone_ttl, earlier, later, summary, gone, records = await pipe.execute()
    ids = {_message_id(t) for t in later} - {""}
    kept = [t for t in earlier if t not in later and _message_id(t) not in ids]
    pipe = client.pipeline(transaction=False)

    def keep_ttl(key: str, ttl: int) -> None:  # the expiry the old key had left
        if ttl > 0:
            pipe.pexpire(key, ttl)

    if kept:
        pipe.lpush(new.turns, *reversed(kept))  # in front of what is there, in their order
        keep_ttl(new.turns, turns_ttl)
    if summary is not None:
        pipe.hsetnx(new.meta, "summary", summary)
        keep_ttl(new.meta, meta_ttl)
    if gone:
        pipe.sadd(new.gone, *gone)
        keep_ttl(new.gone, gone_ttl)
    for field, raw in cast(dict[bytes, bytes], records).items():
        record = _placed(PendingAnswer.from_json(raw), ref)
        pipe.hset(new.pending, field, record.to_json())
        pipe.expire(new.pending, PENDING_TTL)
        pipe.zadd(new.index, {index_member(record): record.started})
        if record.owner:  # its process is gone: recovery settles it
            pipe.zadd(names.owners, {record.owner: record.started})
            pipe.sadd(names.places(record.owner), new.place)
    pipe.delete(*(f"{old}:{kind}" for kind in kinds))
    await pipe.execute()
    moved.turns += len(kept)
    moved.in_flight += len(records)


def _message_id(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message_id") or "")
    except (ValueError, AttributeError):
        return ""


def _placed(record: PendingAnswer, ref: ThreadRef) -> PendingAnswer:
    return replace(record, message=replace(record.message, thread=ref))


async def migrate_on_start(client: aioredis.Redis, prefix: str, homes: Homes | None = None) -> None:
    """`python -m bot run`: move a layout-1 store once, when no process of the old version runs
    (they would go on writing the old keys); otherwise say what to do."""
    try:
        if await layout(client, prefix) >= LAYOUT:
            return
        running = await old_processes(client, prefix)
        if running:
            log.warning(
                "%d process(es) of an older version still run on this Redis: their "
                "conversations stay where they are until they stop and `python -m bot migrate` "
                "runs",
                running,
            )
            return
        moved = await migrate(client, prefix, homes)
    except StoreUnavailable as exc:
        log.warning("could not check the stored layout: %s", exc)
        return
    if moved.threads:
        log.info(
            "moved %d stored conversations (%d turns, %d answers in flight) to key layout %d",
            moved.threads,
            moved.turns,
            moved.in_flight,
            LAYOUT,
        )
