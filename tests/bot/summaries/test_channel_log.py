"""Channel log contract: in-process and Redis logs keep, window and trim the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.summaries.channel_log import ChannelLog, InProcessChannelLog, RedisChannelLog
from bot.summaries.sources import SourceMessage
from tests.conftest import store_client

CHANNEL = "slack:T1:C1"
NOW = datetime.now(UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def message(n: int, minutes_ago: float = 0) -> SourceMessage:
    at = NOW - timedelta(minutes=minutes_ago)
    return SourceMessage(f"id{n}", "Alice", f"text {n} 한국어", at, link=f"https://x/{n}")


@pytest.fixture(params=["inprocess", "redis", "cluster"])
def make_log(request, clean_prefix: str):
    client = store_client(request, request.param) if request.param != "inprocess" else None

    def make(*, retention: float = 3600, most: int = 100, clock=None) -> ChannelLog:
        clock = clock or Clock()
        if client is not None:
            return RedisChannelLog(client, prefix=clean_prefix, retention_seconds=retention,
                                   max_messages=most, clock=clock)  # fmt: skip
        return InProcessChannelLog(retention_seconds=retention, max_messages=most, clock=clock)

    return make


async def test_empty_log_covers_nothing(make_log) -> None:
    window = await make_log().read(CHANNEL, since=None, most=10)
    assert window.messages == [] and window.covers_from is None


async def test_records_read_back_in_order_with_every_field(make_log) -> None:
    log = make_log()
    for n in range(5):
        await log.record(CHANNEL, message(n, minutes_ago=10 - n))
    window = await log.read(CHANNEL, since=None, most=10)
    assert window.messages == [message(n, minutes_ago=10 - n) for n in range(5)]
    assert window.covers_from is not None and window.covers_from <= datetime.now(UTC)
    assert (await log.read("slack:T1:C2", since=None, most=10)).messages == []


async def test_window_by_time_and_by_count(make_log) -> None:
    log = make_log()
    for n in range(10):
        await log.record(CHANNEL, message(n, minutes_ago=100 - n * 10))
    recent = await log.read(CHANNEL, since=NOW - timedelta(minutes=35), most=100)
    assert [m.message_id for m in recent.messages] == ["id7", "id8", "id9"]
    latest = await log.read(CHANNEL, since=None, most=4)
    assert [m.message_id for m in latest.messages] == ["id6", "id7", "id8", "id9"]


async def test_duplicates_are_read_once(make_log) -> None:
    log = make_log()
    await log.record(CHANNEL, message(1))
    await log.record(CHANNEL, message(1))  # a redelivered event
    assert len((await log.read(CHANNEL, since=None, most=10)).messages) == 1


async def test_trimming_by_count_moves_the_coverage(make_log) -> None:
    clock = Clock()
    log = make_log(most=5, clock=clock)
    for n in range(8):
        clock.now += 60
        await log.record(CHANNEL, message(n, minutes_ago=-(n + 1)))  # said as it was logged
    window = await log.read(CHANNEL, since=None, most=100)
    assert [m.message_id for m in window.messages] == [f"id{n}" for n in range(3, 8)]
    assert window.covers_from == window.messages[0].at  # complete only from the oldest kept


async def test_trimming_by_age(make_log) -> None:
    clock = Clock()
    log = make_log(retention=60, clock=clock)
    await log.record(CHANNEL, message(1))
    clock.now += 120  # the first message is past retention now
    await log.record(CHANNEL, message(2))
    window = await log.read(CHANNEL, since=None, most=100)
    assert [m.message_id for m in window.messages] == ["id2"]
    assert window.covers_from is not None and window.covers_from.timestamp() >= clock.now - 60


async def test_remove_forgets_a_deleted_message(make_log) -> None:
    log = make_log()
    for n in range(3):
        await log.record(CHANNEL, message(n))
    await log.remove(CHANNEL, "id1")
    assert [m.message_id for m in (await log.read(CHANNEL, since=None, most=10)).messages] == [
        "id0",
        "id2",
    ]


async def test_a_restart_means_the_log_is_complete_only_from_then(make_log) -> None:
    clock = Clock()
    log = make_log(clock=clock)
    await log.record(CHANNEL, message(1))
    clock.now += 600  # the bot was down for ten minutes, then starts again
    await log.resume()
    window = await log.read(CHANNEL, since=None, most=10)
    assert [m.message_id for m in window.messages] == ["id1"]  # what it has, it keeps
    assert window.covers_from is not None and window.covers_from.timestamp() == clock.now


async def test_a_message_deleted_before_it_was_logged_is_never_logged(make_log) -> None:
    """Logging runs beside the answer: a deletion handled first must still win."""
    log = make_log()
    await log.remove(CHANNEL, "id1")
    for n in range(3):
        await log.record(CHANNEL, message(n))
    found = (await log.read(CHANNEL, since=None, most=10)).messages
    assert [m.message_id for m in found] == ["id0", "id2"]


async def test_imported_history_is_complete_from_its_oldest_message(make_log) -> None:
    """After an import (or a backfill) the "not found" sentence names the imported past, not
    the bot's last start; a restart after the import starts a gap again."""
    clock = Clock()
    log = make_log(retention=7 * 86_400, clock=clock)
    await log.resume()  # the bot runs, then history is imported
    await log.record(CHANNEL, message(9))
    await log.record_many(CHANNEL, [message(1, minutes_ago=3 * 1440), message(2, 1440)])
    window = await log.read(CHANNEL, since=None, most=10)
    assert [m.message_id for m in window.messages] == ["id1", "id2", "id9"]
    assert window.covers_from == message(1, 3 * 1440).at
    clock.now += 600
    await log.resume()  # ten minutes down: from the restart on only
    window = await log.read(CHANNEL, since=None, most=10)
    assert window.covers_from is not None and window.covers_from.timestamp() == clock.now


async def test_importing_nothing_changes_nothing(make_log) -> None:
    log = make_log()
    await log.record(CHANNEL, message(1))
    before = await log.read(CHANNEL, since=None, most=10)
    await log.record_many(CHANNEL, [])
    after = await log.read(CHANNEL, since=None, most=10)
    assert after.messages == before.messages and after.covers_from == before.covers_from
