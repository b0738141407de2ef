"""One contract, two implementations: in-process and Redis memory must behave the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.store.memory import RedisMemory
from bot.store.memory.base import ThreadMemory
from tests.conftest import REDIS_URL, make_memory, store_client


@pytest.fixture(params=["inprocess", "redis", "cluster"])
def memory_kind(request: pytest.FixtureRequest) -> str:
    """The contract holds in the process, on one Redis node and on a Redis Cluster."""
    return str(request.param)


@pytest.fixture
def client(memory_kind: str, request: pytest.FixtureRequest) -> aioredis.Redis:
    return store_client(request, "redis" if memory_kind == "inprocess" else memory_kind)


@pytest.fixture
async def second_client(
    memory_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[aioredis.Redis]:
    """Another connection to the same store: another process's view."""
    from bot.store.redis_pool import connect_redis

    url = request.getfixturevalue("local_cluster").url if memory_kind == "cluster" else REDIS_URL
    other = connect_redis(url)
    yield other
    await other.aclose()


def kind_of(memory_kind: str) -> str:
    return "inprocess" if memory_kind == "inprocess" else "redis"


THREAD = ThreadRef("slack", "T1", "C1", "1700000000.000100")
OTHER = ThreadRef("slack", "T1", "C1", "1700000000.000200")


def turn(n: int, role: str = "user") -> Turn:
    return Turn(
        role=role,  # type: ignore[arg-type]
        text=f"message {n} {{with braces}} and 한국어",
        author_id=f"U{n % 3}",
        author_name=f"Person {n % 3}",
        message_id=f"m{n}",
        at=datetime(2026, 11, 28, 12, 0, n % 60, tzinfo=UTC),
        tokens=n,
    )


async def test_empty_thread_loads_as_empty(memory: ThreadMemory) -> None:
    state = await memory.load(THREAD)
    assert state.summary == "" and state.turns == ()
    assert not await memory.exists(THREAD)


async def test_turns_round_trip_with_every_field(memory: ThreadMemory) -> None:
    turns = [turn(1), turn(2, "assistant"), turn(3)]
    await memory.append(THREAD, *turns)
    state = await memory.load(THREAD)
    assert state.turns == tuple(turns)
    assert await memory.exists(THREAD)


async def test_threads_are_isolated(memory: ThreadMemory) -> None:
    await memory.append(THREAD, turn(1))
    await memory.append(OTHER, turn(2))
    assert [t.message_id for t in (await memory.load(THREAD)).turns] == ["m1"]
    assert [t.message_id for t in (await memory.load(OTHER)).turns] == ["m2"]


async def test_cap_keeps_the_newest_turns(
    memory_kind: str, client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = make_memory(kind_of(memory_kind), client, clean_prefix, max_turns=10)
    for n in range(15):
        await memory.append(THREAD, turn(n))
    ids = [t.message_id for t in (await memory.load(THREAD)).turns]
    assert ids == [f"m{n}" for n in range(5, 15)]


async def test_fold_replaces_the_oldest_turns_by_a_summary(memory: ThreadMemory) -> None:
    turns = [turn(n) for n in range(6)]
    await memory.append(THREAD, *turns)
    await memory.fold(THREAD, "people said hello", through=turns[2])
    state = await memory.load(THREAD)
    assert state.summary == "people said hello"
    assert [t.message_id for t in state.turns] == ["m3", "m4", "m5"]


async def test_fold_after_the_cap_dropped_the_folded_turn_keeps_newer_turns(
    memory_kind: str, client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = make_memory(kind_of(memory_kind), client, clean_prefix, max_turns=10)
    first = [turn(n) for n in range(10)]
    await memory.append(THREAD, *first)
    await memory.append(THREAD, *[turn(n) for n in range(10, 13)])  # m0..m2 fall off the cap
    await memory.fold(THREAD, "summary", through=first[1])
    state = await memory.load(THREAD)
    assert state.summary == "summary"
    assert [t.message_id for t in state.turns] == [f"m{n}" for n in range(3, 13)]


async def test_remove_drops_one_message(memory: ThreadMemory) -> None:
    await memory.append(THREAD, turn(1), turn(2), turn(3))
    assert await memory.remove(THREAD, "m2")
    assert not await memory.remove(THREAD, "m404")
    assert [t.message_id for t in (await memory.load(THREAD)).turns] == ["m1", "m3"]


async def test_forget_clears_turns_and_summary(memory: ThreadMemory) -> None:
    await memory.append(THREAD, turn(1), turn(2))
    await memory.fold(THREAD, "summary", through=turn(1))
    await memory.forget(THREAD)
    state = await memory.load(THREAD)
    assert state.summary == "" and state.turns == ()
    assert not await memory.exists(THREAD)


async def test_thread_expires_after_its_retention(
    memory_kind: str, client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = make_memory(kind_of(memory_kind), client, clean_prefix, retention_seconds=1)
    await memory.append(THREAD, turn(1))
    assert await memory.exists(THREAD)
    deadline = time.monotonic() + 5
    while await memory.exists(THREAD):  # expiry is the event; poll it with a deadline
        assert time.monotonic() < deadline, "the thread outlived its retention"
        await asyncio.sleep(0.1)
    assert (await memory.load(THREAD)).turns == ()


async def test_two_writers_on_one_thread_lose_nothing(
    memory_kind: str, client: aioredis.Redis, second_client: aioredis.Redis, clean_prefix: str
) -> None:
    if memory_kind != "inprocess":
        first = make_memory("redis", client, clean_prefix)
        second = make_memory("redis", second_client, clean_prefix)
    else:
        first = second = make_memory("inprocess", client, clean_prefix)

    async def write(memory: ThreadMemory, start: int) -> None:
        for n in range(start, start + 40):
            await memory.append(THREAD, turn(n))

    await asyncio.gather(write(first, 0), write(second, 100))
    ids = [t.message_id for t in (await first.load(THREAD)).turns]
    assert sorted(ids) == sorted([f"m{n}" for n in range(40)] + [f"m{n}" for n in range(100, 140)])
    assert [i for i in ids if int(i[1:]) < 100] == [f"m{n}" for n in range(40)]


async def test_lock_serializes_one_thread_across_clients(
    memory_kind: str, client: aioredis.Redis, second_client: aioredis.Redis, clean_prefix: str
) -> None:
    """Two holders of one thread's lock never overlap, even from separate connections."""
    if memory_kind != "inprocess":
        memories = [
            make_memory("redis", client, clean_prefix),
            make_memory("redis", second_client, clean_prefix),
        ]
    else:
        shared = make_memory("inprocess", client, clean_prefix)
        memories = [shared, shared]
    log: list[str] = []

    async def hold(name: str, memory: ThreadMemory) -> None:
        async with memory.lock(THREAD):
            log.append(f"{name}+")
            for n in range(3):  # real awaits while holding, so the other side gets to run
                await memory.append(THREAD, turn(n))
            log.append(f"{name}-")

    await asyncio.gather(*(hold(f"h{i}", memories[i % 2]) for i in range(6)))
    pairs = [log[i : i + 2] for i in range(0, len(log), 2)]
    assert all(a[:-1] == b[:-1] and a[-1] == "+" and b[-1] == "-" for a, b in pairs), log


async def test_lock_on_one_thread_does_not_block_another(memory: ThreadMemory) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold_first() -> None:
        async with memory.lock(THREAD):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold_first())
    await entered.wait()
    async with asyncio.timeout(2):
        async with memory.lock(OTHER):
            pass  # got in while THREAD is held
    release.set()
    await holder


@pytest.mark.parametrize("memory_kind", ["redis", "cluster"])
async def test_redis_write_refreshes_retention(
    memory_kind: str, client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = make_memory("redis", client, clean_prefix, retention_seconds=100)
    await memory.append(THREAD, turn(1))
    key = f"{clean_prefix}:{{slack:T1:C1}}:1700000000.000100:turns"
    await client.expire(key, 5)
    await memory.append(THREAD, turn(2))
    assert 95 < await client.ttl(key) <= 100


async def test_inprocess_write_refreshes_retention() -> None:
    from bot.store.memory import InProcessMemory

    now = [0.0]
    memory = InProcessMemory(retention_seconds=10, clock=lambda: now[0])
    await memory.append(THREAD, turn(1))
    now[0] = 8
    await memory.append(THREAD, turn(2))
    now[0] = 15  # 15 s after the first write, 7 s after the second
    assert len((await memory.load(THREAD)).turns) == 2
    now[0] = 18.5
    assert not await memory.exists(THREAD)


async def test_a_deleted_message_is_never_saved_again(memory: ThreadMemory) -> None:
    """The tombstone: a deletion that lands before the save (an answer still being written, or
    Slack delivering the deletion first) wins over it, and the answer to it goes too."""
    question = Turn(role="user", text="my password is hunter2", message_id="m2")
    answer = Turn(role="assistant", text="Noted: hunter2")
    await memory.append(THREAD, Turn(role="user", text="hello", message_id="m1"))
    assert not await memory.remove(THREAD, "m2")  # deleted before it was ever saved
    await memory.append(THREAD, question, answer)
    await memory.append(THREAD, Turn(role="user", text="what did I say?", message_id="m3"))
    texts = [t.text for t in (await memory.load(THREAD)).turns]
    assert texts == ["hello", "what did I say?"]


@pytest.mark.parametrize("memory_kind", ["redis", "cluster"])
async def test_a_redis_that_lost_its_scripts_still_saves(
    client: aioredis.Redis, clean_prefix: str
) -> None:
    """After a Redis restart the scripts are gone (NOSCRIPT): they are loaded again, once."""
    memory = make_memory("redis", client, clean_prefix)
    await memory.append(THREAD, turn(1))
    await client.script_flush()
    async with memory.lock(THREAD):
        await memory.append(THREAD, turn(2))
    assert [t.message_id for t in (await memory.load(THREAD)).turns] == ["m1", "m2"]


@pytest.mark.parametrize("memory_kind", ["redis"])
async def test_every_script_is_loaded_at_start_in_one_send(
    client: aioredis.Redis, clean_prefix: str
) -> None:
    """A lock's first renewal in a fresh Redis found its script missing: two more sends, in the
    middle of an answer. The start loads every script the store calls."""
    from bot.metrics import REDIS_ROUND_TRIPS
    from bot.store.redis_pool import connect_redis

    memory = RedisMemory(connect_redis(REDIS_URL), prefix=clean_prefix)
    await memory.ping()  # the connection's handshake made
    await client.script_flush()
    before = REDIS_ROUND_TRIPS._value.get()
    await memory.load_scripts()
    assert REDIS_ROUND_TRIPS._value.get() - before == 1
    shas = [s.sha for s in vars(memory).values() if hasattr(s, "sha")]
    assert len(shas) >= 9 and all(await client.script_exists(*shas))
    await memory.aclose()


async def test_every_script_is_loaded_on_every_primary_of_a_cluster(
    cluster_client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = RedisMemory(cluster_client, prefix=clean_prefix)
    await cluster_client.script_flush()
    await memory.load_scripts()
    shas = [s.sha for s in vars(memory).values() if hasattr(s, "sha")]
    for node in cluster_client.get_primaries():  # type: ignore[attr-defined]
        own = aioredis.Redis(host=node.host, port=node.port)  # the node alone
        try:
            assert all(await own.script_exists(*shas)), node.name
        finally:
            await own.aclose()


@pytest.mark.parametrize("memory_kind", ["redis"])  # on a cluster the release is its own call
async def test_the_last_save_gives_the_lock_back(client: aioredis.Redis, clean_prefix: str) -> None:
    from bot.store.inflight import PendingAnswer

    memory = make_memory("redis", client, clean_prefix)
    pending = PendingAnswer(IncomingMessage(THREAD, "q", "U1", "Mina", message_id="m9"), {})
    async with memory.lock(THREAD, pending=pending):
        await memory.append(THREAD, turn(9), settled=pending)
        lock = f"{clean_prefix}:{{slack:T1:C1}}:1700000000.000100:lock"
        assert not await client.exists(lock)  # released in the save's own round trip
    async with asyncio.timeout(1):
        async with memory.lock(THREAD):
            pass


async def test_locks_are_renewed_while_the_main_pool_is_busy(clean_prefix: str) -> None:
    """A burst that takes every pooled connection must not starve the renewal of locks held
    by answers still streaming (they lapsed under 1,000 answers at once)."""
    from bot.store.memory import RedisMemory
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL, max_connections=2, pool_timeout=10)
    memory = RedisMemory(client, prefix=clean_prefix, lock_ttl=0.6)
    lock = f"{clean_prefix}:{{slack:T1:C1}}:1700000000.000100:lock"
    try:
        async with memory.lock(THREAD):
            busy = [asyncio.create_task(client.blpop([f"{clean_prefix}:never"], timeout=2))
                    for _ in range(2)]  # fmt: skip
            await asyncio.sleep(1.5)  # two and a half lock lifetimes: renewals must get through
            checker = aioredis.Redis.from_url(REDIS_URL)  # a connection of its own
            held = await checker.exists(lock)
            await checker.aclose()
            assert held
            await asyncio.gather(*busy)
    finally:
        await memory.aclose()
