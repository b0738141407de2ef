"""Claims contract: both implementations behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.conversation import ThreadRef, Turn
from bot.metrics import REDIS_COMMANDS, REDIS_ROUND_TRIPS
from bot.store.claims import Claims, InProcessClaims, RedisClaims, claim_probing
from bot.store.memory import RedisMemory
from bot.store.redis_pool import connect_redis
from bot.summaries.channel_log import ChannelLogEntry, RedisChannelLog
from bot.summaries.sources import SourceMessage
from tests.conftest import REDIS_URL, store_client

THREAD = ThreadRef("slack", "T1", "C1", "1.1")


@pytest.fixture(params=["inprocess", "redis", "cluster"])
def claims(request, clean_prefix: str) -> Claims:
    if request.param != "inprocess":
        return RedisClaims(store_client(request, request.param), prefix=clean_prefix)
    return InProcessClaims()


async def test_first_claim_wins(claims: Claims) -> None:
    assert await claims.claim("slack:T1", "event:E1", "msg:C1:1.1")
    assert not await claims.claim("slack:T1", "event:E1", "msg:C1:1.1")
    assert not await claims.claim("slack:T1", "event:E2", "msg:C1:1.1")  # same message, other event
    assert await claims.claim("slack:T2", "event:E1")  # scopes are separate


async def test_claim_is_all_or_nothing(claims: Claims) -> None:
    assert await claims.claim("s", "a")
    assert not await claims.claim("s", "b", "a")
    assert await claims.claim("s", "b")  # b was not taken by the failed claim


async def test_release_gives_it_back(claims: Claims) -> None:
    assert await claims.claim("s", "sync:abc", ttl=100)
    await claims.release("s", "sync:abc")
    assert await claims.claim("s", "sync:abc")


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_concurrent_claims_across_clients_have_one_winner(
    kind: str, request: pytest.FixtureRequest, clean_prefix: str
) -> None:
    """Exactly once across processes: five clients race for one message, on a node or a cluster."""

    url = request.getfixturevalue("local_cluster").url if kind == "cluster" else REDIS_URL
    clients = [connect_redis(url) for _ in range(5)]  # the throwaway cluster needs no clean-up
    for client in clients:  # a cluster client asked many things at once before it knows the
        await client.ping()  # slots maps them more than once, dropping nodes it never closes
    contenders = [RedisClaims(c, prefix=clean_prefix) for c in clients]
    results = await asyncio.gather(*(c.claim("discord:G1", "msg:42") for c in contenders * 5))
    assert sum(results) == 1
    for client in clients:
        await client.aclose()


async def test_a_claim_outlives_redis_forgetting_it(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """Redis restarted without its data: this process still knows what it handled."""
    claims = RedisClaims(redis_client, prefix=clean_prefix)
    assert await claims.claim("slack:T1", "msg:C1:1.1")
    await redis_client.delete(*[k async for k in redis_client.scan_iter(f"{clean_prefix}:*")])
    assert not await claims.claim("slack:T1", "msg:C1:1.1")


async def test_while_redis_is_down_claims_fall_back_to_this_process() -> None:
    from bot.errors import StoreUnavailable
    from tests.fakes.processes import free_port

    down = connect_redis(f"redis://127.0.0.1:{free_port()}/0", pool_timeout=1)
    claims = RedisClaims(down, prefix="test")
    with pytest.raises(StoreUnavailable):
        await claims.claim("slack:T1", "msg:C1:1.1")
    assert await claims.claim_here("slack:T1", "msg:C1:1.1")
    assert not await claims.claim_here("slack:T1", "msg:C1:1.1")  # at most once, here
    assert not await claims.claim("slack:T1", "msg:C1:1.1")  # known here: no Redis needed
    await down.aclose()


@dataclass
class FollowUpStore:
    """One node's claims, memory and channel log, through a client that counts its round
    trips; the bot is part of THREAD."""

    client: aioredis.Redis
    claims: RedisClaims
    memory: RedisMemory
    channel_log: RedisChannelLog

    def entry(self, message_id: str, channel: str = "slack:T1:C1") -> ChannelLogEntry:
        message = SourceMessage(message_id, "Alice", "a follow-up", datetime.now(UTC))
        return ChannelLogEntry(self.channel_log, channel, message)

    async def logged(self) -> list[str]:
        window = await self.channel_log.read("slack:T1:C1", since=None, most=10)
        return [m.message_id for m in window.messages]


@pytest.fixture
async def follow_up_store(clean_prefix: str) -> AsyncIterator[FollowUpStore]:
    client = connect_redis(REDIS_URL)
    memory = RedisMemory(client, prefix=clean_prefix)
    store = FollowUpStore(
        client,
        RedisClaims(client, prefix=clean_prefix),
        memory,
        RedisChannelLog(client, prefix=clean_prefix, retention_seconds=3600, max_messages=100),
    )
    try:
        await memory.append(THREAD, Turn("user", "hello", message_id="1.1"))
        yield store
    finally:
        await memory.aclose()


async def test_a_follow_ups_claim_thread_check_and_log_entry_take_one_round_trip(
    follow_up_store: FollowUpStore,
) -> None:
    store = follow_up_store
    claims, memory = store.claims, store.memory
    # the scripts loaded first: a Redis with an empty script cache costs one load each
    await claim_probing(claims, memory, "slack:T1", ["msg:C1:0.1"], THREAD,
                        store.entry("1.2", "slack:T1:C0"))  # fmt: skip
    before, sent = REDIS_ROUND_TRIPS._value.get(), REDIS_COMMANDS._value.get()
    assert await claim_probing(
        claims, memory, "slack:T1", ["msg:C1:1.2"], THREAD, store.entry("1.2")
    ) == (True, True)
    assert REDIS_ROUND_TRIPS._value.get() - before == 1
    assert REDIS_COMMANDS._value.get() - sent == 3  # claim script, thread check, log script
    assert await store.logged() == ["1.2"]
    other = ThreadRef("slack", "T1", "C1", "9.9")  # a thread the bot is not part of
    assert await claim_probing(claims, memory, "slack:T1", ["msg:C1:9.9"], other) == (
        True, False,
    )  # fmt: skip
    assert await claim_probing(claims, memory, "slack:T1", ["msg:C1:1.2"], THREAD) == (
        False, False,
    )  # fmt: skip


async def test_a_new_mentions_claim_and_log_entry_take_one_round_trip(
    follow_up_store: FollowUpStore,
) -> None:
    """A mention outside any thread: its claim and its channel log entry, in one send."""
    store = follow_up_store
    claims, memory = store.claims, store.memory
    await claim_probing(claims, memory, "slack:T1", ["msg:C1:0.1"], None,
                        store.entry("0.1", "slack:T1:C0"))  # fmt: skip  # scripts loaded
    before, sent = REDIS_ROUND_TRIPS._value.get(), REDIS_COMMANDS._value.get()
    assert await claim_probing(
        claims, memory, "slack:T1", ["msg:C1:2.1"], None, store.entry("2.1")
    ) == (True, False)
    assert REDIS_ROUND_TRIPS._value.get() - before == 1
    assert REDIS_COMMANDS._value.get() - sent == 2  # the claim, the log script
    assert await store.logged() == ["2.1"]
    # delivered again: lost, and logged once all the same
    assert await claim_probing(
        claims, memory, "slack:T1", ["msg:C1:2.1"], None, store.entry("2.1")
    ) == (False, False)
    assert await store.logged() == ["2.1"]


async def test_a_claim_sent_beside_a_script_redis_forgot_is_still_won(
    follow_up_store: FollowUpStore,
) -> None:
    """Redis restarted (its script cache is empty): the pipeline that carries the claim and the
    log entry's script is told NOSCRIPT. Running it all again would find the claim taken by its
    own first run, and the message would be dropped as a duplicate."""
    store = follow_up_store
    await store.client.script_flush()
    assert await claim_probing(
        store.claims, store.memory, "slack:T1", ["msg:C1:1.2"], THREAD, store.entry("1.2")
    ) == (True, True)
    assert await store.logged() == ["1.2"]  # logged once


async def test_copies_delivered_at_once_to_one_process_make_one_round_trip(
    follow_up_store: FollowUpStore,
) -> None:
    """Slack sends a mention as two events at once: the first copy's claim decides for both."""
    store = follow_up_store
    claims, memory = store.claims, store.memory
    await claims.claim("slack:T1", "msg:C1:0.1")  # a connection made, outside the count
    before = REDIS_ROUND_TRIPS._value.get()
    results = await asyncio.gather(
        claims.claim("slack:T1", "msg:C1:3.1", "event:Ev1"),
        claims.claim("slack:T1", "msg:C1:3.1", "event:Ev2"),
        claim_probing(
            claims, memory, "slack:T1", ["msg:C1:3.1", "event:Ev3"], None, store.entry("3.1")
        ),
    )
    assert REDIS_ROUND_TRIPS._value.get() - before == 1
    assert results == [True, False, (False, False)]
    assert await store.logged() == []  # the copy that lost wrote nothing


async def test_a_copy_waiting_on_a_claim_that_failed_asks_redis_itself() -> None:
    from bot.errors import StoreUnavailable
    from tests.fakes.processes import free_port

    down = connect_redis(f"redis://127.0.0.1:{free_port()}/0", pool_timeout=1)
    claims = RedisClaims(down, prefix="test")
    results = await asyncio.gather(
        claims.claim("slack:T1", "msg:C1:1.1"),
        claims.claim("slack:T1", "msg:C1:1.1"),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [StoreUnavailable, StoreUnavailable]
    await down.aclose()
