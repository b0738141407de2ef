"""The channel log: what the bot saw in each channel, kept so summaries rarely need history APIs.

A Redis stream per channel (`<prefix>:log:{channel}`), trimmed by age and by count on every
append, with `<prefix>:logmeta:{channel}` remembering since when the log has been kept. Its
retention is a privacy setting (BOT_CHANNEL_LOG_DAYS): nothing older is kept.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import ScriptCall, redis_unavailable, run_pipeline
from bot.store.riders import Passenger
from bot.summaries.sources import SourceMessage

GONE_SECONDS = 3600  # a deleted message's tombstone: longer than logging it can be late

# Log a message unless it was deleted first; ids follow our clock (ARGV[2]) so trimming by age
# and reading by time agree, and fall back to Redis's own when our clock runs behind the stream.
_RECORD = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 0 end
local ok = pcall(redis.call, 'XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], 'm', ARGV[4])
if not ok then redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 'm', ARGV[4]) end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[5])
redis.call('HSETNX', KEYS[2], 'from', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return 1
"""


# The oldest message ever imported into a log: since when an import made it complete.
_EARLIEST = """
local was = redis.call('HGET', KEYS[1], 'earliest')
if not was or tonumber(was) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'earliest', ARGV[1])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class LogWindow:
    messages: list[SourceMessage]  # oldest first, duplicates removed
    covers_from: datetime | None  # the log is complete from here on; None: nothing was logged
    imported: str = ""  # when history was last imported into it (bot.history_import), if ever
    last: str | None = None  # the position of the newest entry read, for `changes` after it
    positions: dict[str, str] = field(default_factory=dict)  # message id -> its entry's position


@dataclass(slots=True)
class LogChanges:
    """What a channel's log gained since a position (`ChannelLog.changes`), or (`after` None)
    all it holds."""

    after: str | None  # the position read from; None: the whole log was read
    messages: list[SourceMessage]  # logged since, in log order (an edit comes again)
    last: str | None  # the newest position read; None: nothing new
    deleted: set[str]  # messages deleted lately (an hour)
    imported: str  # the log's import mark (LogWindow.imported)
    positions: dict[str, str] = field(default_factory=dict)  # message id -> its entry's position
    covers_from: datetime | None = None  # a whole read: since when the log is complete


class ChangesRead(Passenger, Protocol):
    """A log read that can ride in another call's round trip (the thread lock's), its
    `result` set once taken, or sent `alone`."""

    result: LogChanges | None

    async def alone(self) -> LogChanges: ...


class ChannelLog(Protocol):
    retention_seconds: float  # nothing older is kept (BOT_CHANNEL_LOG_DAYS)
    max_messages: int  # per channel at the most (BOT_CHANNEL_LOG_MAX)

    async def record(self, channel: str, message: SourceMessage) -> None: ...

    async def record_many(self, channel: str, messages: list[SourceMessage]) -> None:
        """Log messages of the past (an import, a backfill), oldest first, each at its own
        time, so the log's retention ages it as if it had been seen then."""

    async def logged_ids(self, channel: str) -> set[str]:
        """The ids of every message the channel's log holds."""

    async def oldest(self, channel: str) -> str | None:
        """The position of the oldest entry the log still keeps (None: it keeps none): what is
        older was trimmed away by age or count."""

    def changes(self, channel: str, after: str | None) -> ChangesRead:
        """A read of what the log gained after position `after` (a window's or changes' `last`),
        its deletions and its import mark: cheaper than `read` for a search catching up. With
        `after` None, all the log holds and since when it is complete (a search's first look)."""

    async def read(self, channel: str, *, since: datetime | None, most: int) -> LogWindow:
        """The newest `most` messages at or after `since`."""

    async def remove(self, channel: str, message_id: str) -> None: ...

    async def deleted(self, channel: str) -> set[str]:
        """The ids of messages deleted from the channel lately (an hour), for search indexes
        derived from the log to drop them too."""

    async def channels(self, under: str) -> list[str]:
        """The channels with a log whose scope starts with `under` (e.g. "slack:T1:")."""

    async def resume(self) -> None:
        """A bot process starts: anything said while none ran is missing, so no channel's log
        is complete before now."""


def _window(
    entries: Sequence[SourceMessage], since: datetime | None, most: int
) -> list[SourceMessage]:
    kept: dict[str, SourceMessage] = {}  # a message logged again (an edit): its last text
    for message in sorted(entries, key=lambda m: m.at):
        if since is None or message.at >= since:
            kept[message.message_id] = message
    return list(kept.values())[-most:] if most else []


def _complete_from(
    started: float,
    resumed: float,
    imported: float,
    earliest: float | None,
    first: float | None,
    *,
    horizon: float,
    full: bool,
) -> float:
    """Since when a log holds everything said: its live start, or the last start of the bot
    (what was said while none ran is missing), or — when history was imported or backfilled
    since that start — the oldest message imported (`earliest`); never before the retention's
    horizon, nor before the log's `first` entry when the cap trimmed older ones away."""
    start = max(started, resumed)
    if earliest is not None and imported and imported >= resumed:
        start = min(start, earliest)
    if first is not None and full:
        start = max(start, first)
    return max(start, horizon)


class InProcessChannelLog:
    def __init__(
        self, *, retention_seconds: float, max_messages: int, clock: Callable[[], float] = time.time
    ):
        self._retention = retention_seconds
        self._max = max_messages
        self.retention_seconds, self.max_messages = retention_seconds, max_messages
        self._clock = clock
        self._logs: dict[str, deque[tuple[float, SourceMessage, int]]] = {}
        self._seq = 0  # positions, as a Redis stream's entry ids are
        self._since: dict[str, float] = {}
        self._resumed = 0.0
        self._gone: dict[tuple[str, str], float] = {}  # tombstones of deleted messages
        # channel -> (when history was last imported, its oldest message's time)
        self._imported: dict[str, tuple[float, float]] = {}

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _trimmed(self, channel: str) -> deque[tuple[float, SourceMessage, int]]:
        log = self._logs.setdefault(channel, deque(maxlen=self._max))
        horizon = self._clock() - self._retention
        while log and log[0][0] < horizon:
            log.popleft()
        return log

    async def record(self, channel: str, message: SourceMessage) -> None:
        if self._gone.get((channel, message.message_id), 0.0) > self._clock():
            return  # deleted before it was logged
        self._trimmed(channel).append((self._clock(), message, self._next()))
        self._since.setdefault(channel, self._clock())

    async def record_many(self, channel: str, messages: list[SourceMessage]) -> None:
        log = self._trimmed(channel)
        horizon = self._clock() - self._retention
        for message in messages:
            if message.at.timestamp() >= horizon:
                log.append((message.at.timestamp(), message, self._next()))
        if messages:
            self._since.setdefault(channel, messages[0].at.timestamp())
            earliest = min(m.at.timestamp() for m in messages)
            before = self._imported.get(channel, (0.0, earliest))[1]
            self._imported[channel] = (self._clock(), min(before, earliest))

    async def logged_ids(self, channel: str) -> set[str]:
        return {m.message_id for _, m, _ in self._trimmed(channel)}

    def changes(self, channel: str, after: str | None) -> ChangesRead:
        return _InProcessChanges(self, channel, None if after is None else int(after or 0))

    async def oldest(self, channel: str) -> str | None:
        log = self._trimmed(channel)
        return str(log[0][2]) if log else None

    async def read(self, channel: str, *, since: datetime | None, most: int) -> LogWindow:
        log = self._trimmed(channel)
        if channel not in self._since:
            return LogWindow([], None)
        imported = self._imported.get(channel)
        start = _complete_from(
            self._since[channel], self._resumed, imported[0] if imported else 0.0,
            imported[1] if imported else None, log[0][1].at.timestamp() if log else None,
            horizon=self._clock() - self._retention, full=len(log) == self._max,
        )  # fmt: skip
        last = str(log[-1][2]) if log else str(self._seq)
        return LogWindow(
            _window([m for _, m, _ in log], since, most), datetime.fromtimestamp(start, UTC),
            last=last, positions={m.message_id: str(n) for _, m, n in log},
        )  # fmt: skip

    async def resume(self) -> None:
        self._resumed = self._clock()

    async def channels(self, under: str) -> list[str]:
        return sorted(c for c, log in self._logs.items() if c.startswith(under) and log)

    async def deleted(self, channel: str) -> set[str]:
        now = self._clock()
        return {m for (c, m), until in self._gone.items() if c == channel and until > now}

    async def remove(self, channel: str, message_id: str) -> None:
        now = self._clock()
        if len(self._gone) > 100_000:
            self._gone = {k: v for k, v in self._gone.items() if v > now}
        self._gone[(channel, message_id)] = now + GONE_SECONDS
        log = self._trimmed(channel)
        for entry in [e for e in log if e[1].message_id == message_id]:
            log.remove(entry)


class _InProcessChanges:
    def __init__(self, log: InProcessChannelLog, channel: str, after: int | None) -> None:
        self.log, self.channel, self.after = log, channel, after
        self.result: LogChanges | None = None

    def rides_on(self, client: Any) -> bool:
        return False

    def queue(self, pipe: Any) -> int:
        return 0

    def take(self, results: list[Any]) -> None:
        raise NotImplementedError

    async def alone(self) -> LogChanges:
        if self.after is None:
            window = await self.log.read(self.channel, since=None, most=self.log.max_messages)
            self.result = LogChanges(
                None, window.messages, window.last, await self.log.deleted(self.channel),
                window.imported, window.positions, window.covers_from,
            )  # fmt: skip
            return self.result
        entries = [e for e in self.log._trimmed(self.channel) if e[2] > self.after]
        self.result = LogChanges(
            str(self.after), [m for _, m, _ in entries], str(entries[-1][2]) if entries else None,
            await self.log.deleted(self.channel), "",
            positions={m.message_id: str(n) for _, m, n in entries},
        )  # fmt: skip
        return self.result


class _RedisChanges:
    def __init__(self, log: RedisChannelLog, channel: str, after: str | None) -> None:
        self.log, self.channel, self.after = log, channel, after
        self.result: LogChanges | None = None

    def rides_on(self, client: Any) -> bool:
        return client is self.log.client

    def queue(self, pipe: Any) -> int:
        stream, meta = self.log._keys(self.channel)
        pipe.xrange(stream, "-" if self.after is None else f"({self.after}", "+")
        pipe.smembers(self.log._gone_key(self.channel))
        if self.after is not None:
            pipe.hget(meta, "imported")
            return 3
        pipe.hmget(meta, ["from", "imported", "earliest"])
        pipe.get(self.log._resumed_key)
        return 4

    def take(self, results: list[Any]) -> None:
        entries, gone, *meta = results
        read = [(_text(i), SourceMessage.from_json(json.loads(f[b"m"]))) for i, f in entries or []]
        last = read[-1][0] if read else None
        deleted = {_text(m) for m in gone or ()}
        covers_from = None
        if self.after is None:  # the whole log
            (started, imported, earliest), resumed = meta
            first = read[0][1] if read else None
            covers_from = self.log.covers_from(
                started, imported, earliest, resumed, first, len(read)
            )
            last = last or "0-0"
        else:
            [imported] = meta
        self.result = LogChanges(
            self.after, [m for _, m in read], last, deleted, _text(imported or b""),
            {m.message_id: i for i, m in read}, covers_from,
        )  # fmt: skip

    async def alone(self) -> LogChanges:
        pipe = self.log.client.pipeline(transaction=False)
        self.queue(pipe)
        self.take(await self.log._run(pipe))
        assert self.result is not None
        return self.result


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisChannelLog:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        retention_seconds: float,
        max_messages: int,
        clock: Callable[[], float] = time.time,
    ):
        self._redis = client
        self._prefix = prefix
        self._retention = retention_seconds
        self._max = max_messages
        self.retention_seconds, self.max_messages = retention_seconds, max_messages
        self._clock = clock
        self._record = client.register_script(_RECORD)
        self._earliest = client.register_script(_EARLIEST)

    @property
    def _resumed_key(self) -> str:
        return KeyBuilder(self._prefix).log_resumed

    async def resume(self) -> None:
        try:
            await self._redis.set(
                self._resumed_key, str(self._clock()), ex=max(1, int(self._retention))
            )
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    def _keys(self, channel: str) -> tuple[str, str]:
        log, meta, _ = KeyBuilder(self._prefix).channel_log(channel)  # one Cluster slot
        return log, meta

    def _gone_key(self, channel: str) -> str:
        return KeyBuilder(self._prefix).channel_log(channel)[2]

    async def _run(self, pipe: Any) -> list[Any]:
        try:
            return list(await pipe.execute())
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def record(self, channel: str, message: SourceMessage) -> None:
        call = self.record_call(channel, message)
        try:
            await self._record(keys=call.keys, args=call.args)
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def record_many(self, channel: str, messages: list[SourceMessage]) -> None:
        """Log messages of the past (an import), oldest first, in one round trip: each is
        filed at its own time, so the log's retention ages it as if it had been seen then."""
        calls = [self.record_call(channel, m, filed_at=m.at.timestamp()) for m in messages]
        _, meta = self._keys(channel)

        def queue(pipe: Any) -> None:
            for call in calls:
                call.queue(pipe)
            # searches derived from the log read it again from the start: these are older
            # than what they have seen
            pipe.hset(meta, "imported", str(self._clock()))
            if messages:
                earliest = min(m.at.timestamp() for m in messages)
                ScriptCall(self._earliest, [meta], [repr(earliest)]).queue(pipe)

        try:
            await run_pipeline(self._redis, queue, [self._record, self._earliest])
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    def changes(self, channel: str, after: str | None) -> ChangesRead:
        return _RedisChanges(self, channel, after)

    def covers_from(
        self,
        started: Any,
        imported: Any,
        earliest: Any,
        resumed: Any,
        first: SourceMessage | None,
        length: int,
    ) -> datetime | None:
        """Since when a log is complete, from its meta (`from`, `imported`, `earliest`), the bot's
        last start, its first entry and its length; None when nothing was ever logged."""
        if started is None:
            return None
        start = _complete_from(
            float(started), float(resumed or 0), float(imported or 0),
            float(earliest) if earliest is not None else None,
            first.at.timestamp() if first is not None else None,
            horizon=self._clock() - self._retention, full=length >= self._max,
        )  # fmt: skip
        return datetime.fromtimestamp(start, UTC)

    async def oldest(self, channel: str) -> str | None:
        stream, _ = self._keys(channel)
        try:
            first: list[Any] = await self._redis.xrange(stream, "-", "+", count=1) or []
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return _text(first[0][0]) if first else None

    async def logged_ids(self, channel: str) -> set[str]:
        """The ids of every message the channel's log holds."""
        stream, _ = self._keys(channel)
        try:
            entries: list[Any] = await self._redis.xrange(stream, "-", "+") or []
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return {str(json.loads(fields[b"m"]).get("id")) for _, fields in entries if fields}

    def record_call(
        self, channel: str, message: SourceMessage, *, filed_at: float | None = None
    ) -> ScriptCall:
        """`record` as a script call, for a caller that sends it in a pipeline of its own."""
        stream, meta = self._keys(channel)
        now = self._clock()
        args: list[str | int] = [
            message.message_id,
            f"{int((filed_at if filed_at is not None else now) * 1000)}-*",
            self._max,
            json.dumps(message.to_json(), ensure_ascii=False),
            int((now - self._retention) * 1000),
            str(filed_at if filed_at is not None else now),
            max(1, int(self._retention)),
        ]
        return ScriptCall(self._record, [stream, meta, self._gone_key(channel)], args)

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    async def read(self, channel: str, *, since: datetime | None, most: int) -> LogWindow:
        stream, meta = self._keys(channel)
        low = "-" if since is None else str(int(since.timestamp() * 1000))
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrevrange(stream, "+", low, count=max(1, most))
        pipe.hmget(meta, ["from", "imported", "earliest"])
        pipe.xlen(stream)
        pipe.xrange(stream, "-", "+", count=1)
        pipe.get(self._resumed_key)
        entries, (started, imported, earliest), length, first, resumed = await self._run(pipe)
        oldest = SourceMessage.from_json(json.loads(first[0][1][b"m"])) if first else None
        start = self.covers_from(started, imported, earliest, resumed, oldest, length)
        if start is None:  # nothing logged yet: whatever comes is after the start
            return LogWindow([], None, last="0-0")
        # newest first from Redis; oldest first for the window, so ties keep arrival order
        read = [
            (_text(i), SourceMessage.from_json(json.loads(f[b"m"]))) for i, f in reversed(entries)
        ]
        window = _window([m for _, m in read], since, most)
        mark = imported.decode() if isinstance(imported, bytes) else str(imported or "")
        last = read[-1][0] if read else ("0-0" if since is None else None)
        positions = {m.message_id: i for i, m in read}
        return LogWindow(window, start, mark, last, positions)

    async def channels(self, under: str) -> list[str]:
        pattern = KeyBuilder(self._prefix).channel_log(under + "*")[0]
        found = []
        try:
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                name = key.decode() if isinstance(key, bytes) else key
                found.append(name[name.index("{") + 1 : name.rindex("}")])
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return sorted(found)

    async def deleted(self, channel: str) -> set[str]:
        try:
            found = await self._redis.smembers(self._gone_key(channel))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return {m.decode() if isinstance(m, bytes) else str(m) for m in found}

    async def remove(self, channel: str, message_id: str) -> None:
        stream, _ = self._keys(channel)
        gone = self._gone_key(channel)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.sadd(gone, message_id)
            pipe.expire(gone, GONE_SECONDS)
            await pipe.execute()
            entries: list[Any] = await self._redis.xrange(stream, "-", "+") or []
            doomed = [
                entry_id
                for entry_id, fields in entries
                if fields and json.loads(fields[b"m"]).get("id") == message_id
            ]
            if doomed:
                await self._redis.xdel(stream, *doomed)
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc


@dataclass(frozen=True, slots=True)
class ChannelLogEntry:
    """A message to keep in a channel log, sent on its own or with a delivery's claim
    (bot.store.claims.claim_probing), so a follow-up costs no extra round trip for it."""

    log: ChannelLog
    channel: str
    message: SourceMessage

    async def write(self) -> None:
        await self.log.record(self.channel, self.message)

    def call(self, client: Any) -> ScriptCall | None:
        if isinstance(self.log, RedisChannelLog) and self.log.client is client:
            return self.log.record_call(self.channel, self.message)
        return None
