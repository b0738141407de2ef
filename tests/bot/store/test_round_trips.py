"""A follow-up's Redis steps, each one send of few commands: on a single node and on a Redis
Cluster alike."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
import redis.asyncio as aioredis

from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.metrics import REDIS_COMMANDS, REDIS_ROUND_TRIPS
from bot.search.channel_search import ChannelSearch
from bot.store.claims import RedisClaims, claim_probing
from bot.store.inflight import PendingAnswer
from bot.store.keys import channel_scope
from bot.store.memory import RedisMemory
from bot.summaries.channel_log import ChannelLogEntry, RedisChannelLog
from bot.summaries.sources import SourceMessage
from bot.usage.redis_ledger import RedisLedger
from bot.usage.tally import Payer, Spent, Tally
from tests.conftest import REDIS_URL

DAY = date(2026, 11, 29)
SLACK = ThreadRef("slack", "T1", "C1", "1.1")
DISCORD = ThreadRef("discord", "42", "100", "555", place="555")  # a Discord thread


@pytest.fixture(params=["redis", "cluster"])
def client(request: pytest.FixtureRequest, clean_prefix: str) -> aioredis.Redis:
    from bot.store.redis_pool import connect_redis

    if request.param == "cluster":
        return request.getfixturevalue("cluster_client")  # type: ignore[no-any-return]
    return connect_redis(REDIS_URL)  # counts its round trips, as in production


def trips() -> float:
    return REDIS_ROUND_TRIPS._value.get()


def sent() -> float:
    return REDIS_COMMANDS._value.get()


@pytest.mark.parametrize("thread", [SLACK, DISCORD], ids=["slack", "discord-thread"])
async def test_a_follow_up_is_three_sends_grounding_included(
    client: aioredis.Redis, clean_prefix: str, thread: ThreadRef
) -> None:
    memory = RedisMemory(client, prefix=clean_prefix)
    claims = RedisClaims(client, prefix=clean_prefix)
    channel_log = RedisChannelLog(client, prefix=clean_prefix, retention_seconds=3600,
                                  max_messages=100)  # fmt: skip
    ledger = RedisLedger(client, prefix=clean_prefix)
    scope = channel_scope(thread.platform, thread.workspace, thread.home)
    search = ChannelSearch(channel_log)  # grounding: the channel the conversation is in
    grounded = channel_scope(thread.platform, thread.workspace, thread.channel)
    payer = Payer(thread.platform, thread.workspace, thread.channel, "U1", "Alice")

    commands: list[float] = []

    async def follow_up(n: int) -> list[float]:
        """One follow-up's steps; the sends each took (and, in `commands`, the commands)."""
        steps, commands[:] = [trips()], [sent()]
        message = SourceMessage(f"2.{n}", "Alice", f"question {n}", datetime.now(UTC))
        entry = ChannelLogEntry(channel_log, scope, message)
        won, known = await claim_probing(claims, memory, scope, [f"msg:2.{n}"], thread, entry)
        assert won and (known or n == 0)
        steps.append(trips())
        commands.append(sent())
        asked = IncomingMessage(thread, f"question {n}", "U1", "Alice", message_id=f"2.{n}")
        record = PendingAnswer(asked, {"channel": "C1"}, "", time.time())
        reading = search.prefetch(grounded)
        async with memory.lock(thread, pending=record, alongside=[reading] if reading else []):
            await memory.load(thread)  # read with the lock: no send of its own
            ready = {grounded: reading.result} if reading and reading.result else None
            await search.retrieve(f"question {n}", [grounded], ready=ready)  # nor grounding
            steps.append(trips())
            commands.append(sent())
            usage = ledger.entry(Tally(payer, [Spent("m", 10, 5)]), DAY, None)
            await memory.append(
                thread, asked.as_turn(), Turn("assistant", f"answer {n}"), settled=record,
                riders=[usage],
            )  # fmt: skip
        steps.append(trips())
        commands.append(sent())
        commands[:] = [after - before for before, after in pairwise(commands)]
        return [after - before for before, after in pairwise(steps)]

    try:
        await follow_up(0)  # scripts loaded, the channel registered, the channel's log read
        # A Discord thread is grounded in its parent channel, whose log has a slot of its own:
        # on a cluster whose other node holds it, the read goes there at the same time.
        lock = 1
        if client.__class__.__name__ == "RedisCluster":
            place, parent = (channel_log._keys(s)[0] for s in (scope, grounded))
            lock += client.get_node_from_key(place) != client.get_node_from_key(parent)  # type: ignore[attr-defined]
        assert [await follow_up(n) for n in (1, 2)] == [[1, lock, 1], [1, lock, 1]]
        # The claim, whether the bot is in the thread, the log entry; the answer's record, the
        # lock and the thread's read in one script, the channel log's three reads; the save
        # (and, on one node, the usage record riding with it).
        cluster = client.__class__.__name__ == "RedisCluster"
        assert commands == [3, 4, 1 if cluster else 2]
        await memory._later.flush()  # on a cluster the usage records wait to go out together
        assert (await ledger.days(payer.scope, [DAY])).tokens == 45
        assert [t.text for t in (await memory.load(thread)).turns][-2:] == [
            "question 2", "answer 2",
        ]  # fmt: skip
        window = await channel_log.read(scope, since=None, most=10)
        assert [m.message_id for m in window.messages] == ["2.0", "2.1", "2.2"]
        assert await memory.in_flight() == []
    finally:
        await memory._later.aclose()
        if client.__class__.__name__ != "RedisCluster":  # the fixture closes the cluster's
            await memory.aclose()


async def test_usage_records_of_many_answers_go_out_in_one_send_on_a_cluster(
    cluster_client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = RedisMemory(cluster_client, prefix=clean_prefix)
    ledger = RedisLedger(cluster_client, prefix=clean_prefix)
    payer = Payer("slack", "T1", "C1", "U1", "Alice")
    await memory.append(SLACK, Turn("user", "warm-up"))
    await cluster_client.script_load(ledger._record.script)
    for n in range(20):
        usage = ledger.entry(Tally(payer, [Spent("m", 10, 5)]), DAY, None)
        await memory.append(SLACK, Turn("user", f"q{n}"), riders=[usage])
    assert (await ledger.days(payer.scope, [DAY])).tokens == 0  # not sent yet
    before = trips()
    await memory._later.flush()
    assert trips() - before == 1
    assert (await ledger.days(payer.scope, [DAY])).tokens == 300
    await memory._later.aclose()


async def test_a_lock_renewal_due_before_the_next_heartbeat_rides_in_it(clean_prefix: str) -> None:
    """A long answer's lock is renewed in the liveness heartbeat's send, not in one of its own;
    a lock not due before the next beat is left alone."""
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL)
    memory = RedisMemory(client, prefix=clean_prefix, lock_ttl=3.0)  # renewed every second
    key = memory._keys.thread(SLACK).lock
    try:
        await memory.heartbeat(10)
        await client.script_load(memory._extend.script)  # loaded by an earlier renewal
        async with memory.lock(SLACK):
            await client.pexpire(key, 500)
            await memory.heartbeat(10, next_in=0.5)  # the lock is young: not due meanwhile
            assert 0 < await client.pttl(key) <= 500
            held = memory._held[key]
            held.renewed -= 0.9  # taken 0.9 s ago: due within the next beat
            before = trips()
            await memory.heartbeat(10, next_in=0.5)
            assert trips() - before == 1
            assert await client.pttl(key) > 2500
            assert time.monotonic() - held.renewed < 0.5
    finally:
        await memory.aclose()


async def test_a_renewal_that_crosses_the_save_giving_the_lock_back_is_no_loss(
    clean_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The answer's last save gives its lock back while a heartbeat's renewal of it is on its
    way: the renewal finds it gone, which is no lost lock (it warned, under every burst)."""
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL)
    memory = RedisMemory(client, prefix=clean_prefix, lock_ttl=3.0)
    asked = IncomingMessage(SLACK, "q", "U1", "Alice", message_id="2.1")
    record = PendingAnswer(asked, {"channel": "C1"}, "", time.time())
    key = memory._keys.thread(SLACK).lock
    written, going_on = asyncio.Event(), asyncio.Event()

    class Beside:  # a write that goes beside the save (not in its send): the save waits for it
        def call(self, client: object) -> None:
            return None

        async def write(self) -> None:
            written.set()
            await going_on.wait()

    try:
        async with memory.lock(SLACK, pending=record):
            held = memory._held[key]
            held.renewed -= 0.9  # due: the heartbeat below renews it
            saving = asyncio.create_task(
                memory.append(SLACK, asked.as_turn(), settled=record, riders=[Beside()])
            )
            await written.wait()
            while await client.exists(key):  # noqa: ASYNC110 (the save's send, another connection)
                await asyncio.sleep(0.001)
            await memory.heartbeat(10, next_in=0.5)  # renews a lock its save just gave back
            going_on.set()
            await saving
            assert held.released and not held.lost
        assert "lost" not in caplog.text
    finally:
        await memory.aclose()


async def test_a_first_answer_in_a_channel_reads_its_log_in_the_lock_s_send(
    clean_prefix: str,
) -> None:
    """The first question in a channel this process never searched: the whole log is read in
    the round trip that takes the thread's lock, not in sends of its own after it (with how
    far back it is complete, its deletions, and nothing to look up about what it trimmed)."""
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL)
    memory = RedisMemory(client, prefix=clean_prefix)
    channel_log = RedisChannelLog(client, prefix=clean_prefix, retention_seconds=3600,
                                  max_messages=100)  # fmt: skip
    search = ChannelSearch(channel_log)
    scope = channel_scope("slack", "T1", "C1")
    said = [SourceMessage(f"1.{n}", "Mina", f"the billing service is owned by Priya {n}",
                          datetime.now(UTC)) for n in range(3)]  # fmt: skip
    for message in said:
        await channel_log.record(scope, message)
    await channel_log.remove(scope, "1.2")
    await memory.load_scripts()
    asked = IncomingMessage(SLACK, "who owns billing?", "U1", "Alice", message_id="2.1")
    record = PendingAnswer(asked, {"channel": "C1"}, "", time.time())
    try:
        before = trips()
        reading = search.prefetch(scope)
        async with memory.lock(SLACK, pending=record, alongside=[reading]):
            found = await search.retrieve(asked.text, [scope], exclude={"2.1"},
                                          ready={scope: reading.result})  # fmt: skip
            assert trips() - before == 1
        assert sorted(h.message.id for h in found.hits) == ["1.0", "1.1"]  # not the deleted one
        assert search.searched([scope]).messages == 2
    finally:
        await memory.aclose()


async def test_a_cluster_s_usage_records_ride_in_the_heartbeat_s_send(
    cluster_client: aioredis.Redis, clean_prefix: str
) -> None:
    """The heartbeat reaches every primary every two seconds: the usage records waiting to go
    out together go with it, instead of in sends of their own."""
    memory = RedisMemory(cluster_client, prefix=clean_prefix)
    ledger = RedisLedger(cluster_client, prefix=clean_prefix)
    payer = Payer("slack", "T1", "C1", "U1", "Alice")
    await memory.load_scripts()
    await cluster_client.script_load(ledger._record.script)
    await memory.heartbeat(10)
    before = trips()
    await memory.heartbeat(10)
    alone = trips() - before
    for n in range(20):
        usage = ledger.entry(Tally(payer, [Spent("m", 10, 5)]), DAY, None)
        await memory.append(SLACK, Turn("user", f"q{n}"), riders=[usage])
    assert (await ledger.days(payer.scope, [DAY])).tokens == 0  # not sent yet
    before = trips()
    await memory.heartbeat(10)
    assert trips() - before == alone
    assert (await ledger.days(payer.scope, [DAY])).tokens == 300
    await memory._later.aclose()
