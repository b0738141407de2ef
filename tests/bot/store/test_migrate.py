"""Moving a store written with key layout 1 (a tag per thread, one global in-flight index)."""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis

from adapters.discord.summaries import thread_home
from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.store.inflight import PendingAnswer
from bot.store.keys import LAYOUT, KeyBuilder
from bot.store.memory import RedisMemory
from bot.store.memory.redis import encode_turn
from bot.store.migrate import layout, migrate, migrate_on_start
from tests.conftest import store_client

SLACK = ThreadRef("slack", "T1", "C1", "1700000000.000100")
DISCORD = ThreadRef("discord", "42", "100", "555")  # a Discord thread (channel 555 under 100)
CHAIN = ThreadRef("discord", "42", "100", "reply-7")  # a reply chain in channel 100


@pytest.fixture(params=["redis", "cluster"])
def client(request: pytest.FixtureRequest, clean_prefix: str) -> aioredis.Redis:
    return store_client(request, str(request.param))


def old_tag(prefix: str, ref: ThreadRef) -> str:
    return f"{prefix}:{{{ref.platform}:{ref.workspace}:{ref.channel}:{ref.thread}}}"


async def write_layout_1(client: aioredis.Redis, prefix: str, ref: ThreadRef, *texts: str) -> None:
    turns = [encode_turn(Turn("user", t, message_id=f"m{n}")) for n, t in enumerate(texts)]
    await client.rpush(f"{old_tag(prefix, ref)}:turns", *turns)
    await client.expire(f"{old_tag(prefix, ref)}:turns", 1000)
    await client.hset(f"{old_tag(prefix, ref)}:meta", "summary", f"earlier in {ref.thread}")


async def test_conversations_move_to_their_channels_slot(
    client: aioredis.Redis, clean_prefix: str
) -> None:
    await write_layout_1(client, clean_prefix, SLACK, "hello", "and then")
    await write_layout_1(client, clean_prefix, DISCORD, "in a thread")
    await write_layout_1(client, clean_prefix, CHAIN, "in a chain")
    await client.sadd(f"{old_tag(clean_prefix, SLACK)}:gone", "m9")
    assert await layout(client, clean_prefix) == 1

    moved = await migrate(client, clean_prefix, thread_home)

    assert (moved.threads, moved.turns) == (3, 4)
    memory = RedisMemory(client, prefix=clean_prefix)
    state = await memory.load(SLACK)
    assert [t.text for t in state.turns] == ["hello", "and then"]
    assert state.summary == "earlier in 1700000000.000100"
    placed = thread_home(DISCORD)
    assert placed.place == "555"
    assert [t.text for t in (await memory.load(placed)).turns] == ["in a thread"]
    assert [t.text for t in (await memory.load(CHAIN)).turns] == ["in a chain"]
    turns_key = KeyBuilder(clean_prefix).thread(SLACK).turns
    assert 990 < await client.ttl(turns_key) <= 1000  # the expiry it had is kept
    assert await client.sismember(KeyBuilder(clean_prefix).thread(SLACK).gone, "m9")
    old = [k async for k in client.scan_iter(match=f"{clean_prefix}:{{slack:T1:C1:*")]
    assert old == []
    assert await layout(client, clean_prefix) == LAYOUT
    again = await migrate(client, clean_prefix, thread_home)
    assert again.threads == 0  # nothing left to move


async def test_turns_written_since_stay_after_the_moved_ones(
    client: aioredis.Redis, clean_prefix: str
) -> None:
    """An old process wrote the thread's start; a new one its last turn before the move ran."""
    await write_layout_1(client, clean_prefix, SLACK, "first", "second")
    memory = RedisMemory(client, prefix=clean_prefix)
    await memory.append(SLACK, Turn("user", "second", message_id="m1"))  # in both
    await memory.append(SLACK, Turn("assistant", "third", message_id="m2"))

    await migrate(client, clean_prefix)

    assert [t.text for t in (await memory.load(SLACK)).turns] == ["first", "second", "third"]


async def test_an_answer_left_in_flight_is_settled_after_the_move(
    client: aioredis.Redis, clean_prefix: str
) -> None:
    """The old version stopped mid-answer: recovery must still end that reply."""
    message = IncomingMessage(DISCORD, "are you there?", "U1", "Alice", message_id="900")
    record = PendingAnswer(message, {"channel": 555, "ids": [901]}, "oldowner", time.time())
    old = json.loads(record.to_json())
    old["thread"] = old["thread"][:4]  # layout 1 wrote four parts
    await client.hset(f"{old_tag(clean_prefix, DISCORD)}:pending", "900", json.dumps(old))
    await client.zadd(f"{clean_prefix}:inflight", {json.dumps([*old["thread"], "900"]): 1.0})

    moved = await migrate(client, clean_prefix, thread_home)

    assert moved.in_flight == 1
    assert not await client.exists(f"{clean_prefix}:inflight")
    survivor = RedisMemory(client, prefix=clean_prefix)
    [found] = await survivor.in_flight()  # "oldowner" renews no liveness: its answer is found
    assert found.owner == "oldowner" and found.thread == thread_home(DISCORD)
    assert found.reply == {"channel": 555, "ids": [901]}
    assert await survivor.take_over(found)
    await survivor.append(found.thread, settled=found.owned_by(survivor.owner))  # settled
    assert await survivor.in_flight() == []


async def test_on_start_it_waits_for_the_old_version_to_stop(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    await write_layout_1(redis_client, clean_prefix, SLACK, "hello")
    await redis_client.set(f"{clean_prefix}:alive:oldowner", "1", px=10_000)
    await migrate_on_start(redis_client, clean_prefix)
    assert await layout(redis_client, clean_prefix) == 1  # an old process still writes there
    await redis_client.delete(f"{clean_prefix}:alive:oldowner")
    await migrate_on_start(redis_client, clean_prefix)
    assert await layout(redis_client, clean_prefix) == LAYOUT
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    assert [t.text for t in (await memory.load(SLACK)).turns] == ["hello"]


async def test_the_migrate_command_moves_them_once_the_old_version_stopped(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    import asyncio
    import os
    import sys

    from tests.conftest import REDIS_URL

    await write_layout_1(redis_client, clean_prefix, DISCORD, "in a thread")
    await redis_client.set(f"{clean_prefix}:alive:oldowner", "1", px=30_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "OPENAI_"))}
    env.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix)

    async def run(*extra: str) -> tuple[int | None, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "migrate", *extra, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
        return process.returncode, out.decode(), err.decode()

    code, _, err = await run()
    assert code == 1 and "older version still run" in err and "stop them first" in err
    await redis_client.delete(f"{clean_prefix}:alive:oldowner")
    code, out, _ = await run()
    assert code == 0
    assert out.strip() == "Moved 1 conversations (1 turns, 0 answers in flight) to key layout 2."
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    assert [t.text for t in (await memory.load(thread_home(DISCORD))).turns] == ["in a thread"]
