"""Message embeddings: kept in Redis beside the channel log, so one replica embeds a message and
every other reads the vector (never embedding it twice); searched in each process's memory.

A stored vector carries the digest of the text it was made from: an edited message no longer
matches it and is embedded again. Vectors are stored as float16 (half the bytes, no loss that
changes a ranking) and searched as normalised float32 rows, by cosine similarity.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import redis_unavailable

DIGEST_BYTES = 8
READ_BATCH = 1_000  # ids per HMGET

# Take the channel's embedding lease, or keep it: one replica embeds a channel at a time.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def digest(text: str, model: str = "") -> bytes:
    """What a stored vector was made from (the text, and the model that embedded it), to tell
    an edited message's text, or another embedding model's vector, from it."""
    made = f"{model}\x1f{text}" if model else text
    return hashlib.blake2b(made.encode(), digest_size=DIGEST_BYTES).digest()


def pack(text_digest: bytes, vector: Sequence[float]) -> bytes:
    return text_digest + np.asarray(vector, dtype=np.float16).tobytes()


def unpack(raw: bytes) -> tuple[bytes, np.ndarray[Any, np.dtype[np.float32]]]:
    vector = np.frombuffer(raw[DIGEST_BYTES:], dtype=np.float16).astype(np.float32)
    return raw[:DIGEST_BYTES], vector


class VectorStore(Protocol):
    async def get(self, channel: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The packed vectors stored for `ids` (those with none are left out)."""

    async def put(self, channel: str, packed: Mapping[str, bytes]) -> None: ...

    async def forget(self, channel: str, ids: Collection[str]) -> None:
        """Deleted messages' vectors."""

    async def lease(self, channel: str, owner: str, seconds: float) -> bool:
        """Take (or keep) the right to embed `channel`'s messages for `seconds`."""

    async def release(self, channel: str, owner: str) -> None: ...


class InProcessVectorStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._vectors: dict[str, dict[str, bytes]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._clock = clock

    async def get(self, channel: str, ids: Sequence[str]) -> dict[str, bytes]:
        kept = self._vectors.get(channel, {})
        return {i: kept[i] for i in ids if i in kept}

    async def put(self, channel: str, packed: Mapping[str, bytes]) -> None:
        self._vectors.setdefault(channel, {}).update(packed)

    async def forget(self, channel: str, ids: Collection[str]) -> None:
        kept = self._vectors.get(channel, {})
        for i in ids:
            kept.pop(i, None)

    async def lease(self, channel: str, owner: str, seconds: float) -> bool:
        holder, until = self._leases.get(channel, ("", 0.0))
        if holder and holder != owner and until > self._clock():
            return False
        self._leases[channel] = (owner, self._clock() + seconds)
        return True

    async def release(self, channel: str, owner: str) -> None:
        if self._leases.get(channel, ("", 0.0))[0] == owner:
            del self._leases[channel]


class RedisVectorStore:
    """`<prefix>:vec:{channel}`: a hash of message id -> packed vector, in the channel log's
    slot, expiring with the log's retention (renewed on every write)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, retention_seconds: float) -> None:
        self._redis = client
        self._keys = KeyBuilder(prefix)
        self._retention = max(1, int(retention_seconds))
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)

    async def get(self, channel: str, ids: Sequence[str]) -> dict[str, bytes]:
        key, _ = self._keys.vectors(channel)
        found: dict[str, bytes] = {}
        try:
            for start in range(0, len(ids), READ_BATCH):
                wanted = list(ids[start : start + READ_BATCH])
                values = await self._redis.hmget(key, wanted)
                pairs = zip(wanted, values, strict=True)
                found.update((i, bytes(v)) for i, v in pairs if isinstance(v, bytes))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return found

    async def put(self, channel: str, packed: Mapping[str, bytes]) -> None:
        if not packed:
            return
        key, _ = self._keys.vectors(channel)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hset(key, mapping=dict[Any, Any](packed))
            pipe.expire(key, self._retention)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def forget(self, channel: str, ids: Collection[str]) -> None:
        if not ids:
            return
        key, _ = self._keys.vectors(channel)
        try:
            await self._redis.hdel(key, *ids)
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def lease(self, channel: str, owner: str, seconds: float) -> bool:
        _, lease = self._keys.vectors(channel)
        try:
            return bool(await self._lease(keys=[lease], args=[owner, int(seconds * 1000)]))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def release(self, channel: str, owner: str) -> None:
        _, lease = self._keys.vectors(channel)
        try:
            await self._release(keys=[lease], args=[owner])
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc


class VectorIndex:
    """Normalised float32 vectors, one matrix per channel, in this process's memory: a row per
    message (a deleted message's row is reused), scored with one matrix product per search."""

    def __init__(self) -> None:
        self._channels: dict[str, _Rows] = {}

    def add(self, channel: str, vectors: Iterable[tuple[str, np.ndarray[Any, Any]]]) -> None:
        for message_id, vector in vectors:
            norm = float(np.linalg.norm(vector))
            if norm == 0:
                continue
            rows = self._channels.get(channel)
            if rows is None or rows.width != len(vector):  # the first, or another model's
                rows = self._channels[channel] = _Rows(len(vector))
            rows.put(message_id, np.asarray(vector, dtype=np.float32) / norm)

    def remove(self, channel: str, ids: Iterable[str]) -> None:
        rows = self._channels.get(channel)
        if rows is not None:
            for message_id in ids:
                rows.drop(message_id)

    def search(
        self,
        vector: Sequence[float],
        channels: Collection[str],
        *,
        limit: int,
        skip: Collection[str] = (),
    ) -> list[tuple[str, str, float]]:
        """The `limit` nearest (channel, id, cosine similarity), best first; `skip`: ids."""
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm == 0 or limit <= 0:
            return []
        query /= norm
        found: list[tuple[str, str, float]] = []
        for channel in channels:
            rows = self._channels.get(channel)
            if rows is None or not rows.where or rows.width != len(query):
                continue  # nothing yet, or embedded by another model
            scores = rows.matrix[: rows.used] @ query
            take = min(rows.used, limit + len(skip) + len(rows.free))
            best = np.argpartition(-scores, take - 1)[:take]
            found += [
                (channel, rows.ids[i], float(scores[i]))
                for i in best
                if rows.ids[i] and rows.ids[i] not in skip
            ]
        found.sort(key=lambda item: -item[2])
        return found[:limit]

    def __len__(self) -> int:
        return sum(len(rows.where) for rows in self._channels.values())


class _Rows:
    """One channel's vectors: a matrix grown by half as needed, its rows' ids, the free rows."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.matrix: np.ndarray[Any, np.dtype[np.float32]] = np.zeros((16, width), np.float32)
        self.ids: list[str] = []  # by row; "" for a free one
        self.where: dict[str, int] = {}  # id -> its row
        self.free: list[int] = []
        self.used = 0  # rows in use or freed: the rest of the matrix is spare

    def put(self, message_id: str, vector: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        row = self.where.get(message_id)
        if row is None:
            if self.free:
                row = self.free.pop()
                self.ids[row] = message_id
            else:
                if self.used == len(self.matrix):  # by half: at most a third spare
                    grown = np.zeros((len(self.matrix) * 3 // 2, self.width), np.float32)
                    grown[: self.used] = self.matrix[: self.used]
                    self.matrix = grown
                row = self.used
                self.used += 1
                self.ids.append(message_id)
            self.where[message_id] = row
        self.matrix[row] = vector

    def drop(self, message_id: str) -> None:
        row = self.where.pop(message_id, None)
        if row is not None:
            self.ids[row] = ""
            self.matrix[row] = 0.0  # scores 0, and is skipped by its empty id
            self.free.append(row)
