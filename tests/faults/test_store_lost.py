"""Redis restarted empty under running replicas (no persistence, a failover to an empty replica, a
flush): they notice, write back what they know, and keep "once, and never stuck"."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

from bot.errors import StoreFull
from tests.adapters.slack.conftest import message_event
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import RedisServer
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.faults.conftest import INTERRUPTED, MENTION_TS, SlackBots, mention
from tests.faults.test_fencing import LONG, wait_for_log

LOST = "Redis lost its data"


async def restart_empty(server: RedisServer, directory: Path) -> None:
    await server.kill()
    shutil.rmtree(directory / "appendonlydir", ignore_errors=True)  # nothing kept on disk
    await server.start()


async def test_after_redis_came_back_empty_a_copy_is_not_answered_twice_and_a_crash_is_settled(
    bots: SlackBots,
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    first = await bots.start()
    second = await bots.start()
    fake_openai.push(Reply(text=LONG, token_delay=0.05))
    assert await bots.deliver(first, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))
    await restart_empty(redis_server, tmp_path)
    for process in bots.processes:  # each notices and writes back what it knows
        await wait_for_log(process, LOST, seconds=20)
    # Slack's copy of the mention as a `message` event, delivered to the other replica
    copy = message_event(f"<@{BOT_USER}> explain the outage", MENTION_TS)
    assert await bots.deliver(second, copy, "Ev1-copy") == 200
    await wait_for_log(bots.processes[second], "duplicate delivery of C1/", seconds=10)
    # the answering replica dies: its answer, recorded again, is settled as usual
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=30)
    # and the thread goes on without a mention
    fake_openai.push(Reply(text="Here it is again."))
    follow_up = message_event("please try again", "1700000000.000200", thread_ts=MENTION_TS)
    assert await bots.deliver(second, follow_up, "Ev2") == 200
    await fake_slack.wait_for(lambda: "Here it is again." in bots.texts(), seconds=10)
    assert len(fake_openai.requests) == 2  # the copy never reached the model


async def test_a_full_redis_is_one_sentence_and_readyz_names_it(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    import json

    import aiohttp
    import redis.asyncio as aioredis

    bot = await bots.start()
    client = aioredis.Redis.from_url(redis_server.url)
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", "1")  # every write from now on is refused
    await client.aclose()
    assert await bots.deliver(bot, mention("are you there?"), "Ev1") == 200
    await fake_slack.wait_for(lambda: bots.texts() == [StoreFull().user_message()], seconds=15)
    assert fake_openai.requests == []  # nothing the store cannot keep is sent to the model
    ops = int(bots.processes[bot].env["OPS_PORT"])
    deadline = asyncio.get_running_loop().time() + 10
    async with aiohttp.ClientSession() as session:
        while True:  # the next heartbeat finds the store full
            async with session.get(f"http://127.0.0.1:{ops}/readyz") as response:
                body = json.loads(await response.text())
            if response.status == 503:
                break
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.1)  # readiness is polled, as a load balancer does
    assert "full" in json.dumps(body)


async def test_socket_mode_acks_at_once_and_answers_once_redis_is_back(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    from tests.adapters.slack.conftest import envelope

    await bots.start(SLACK_APP_TOKEN="xapp-test")
    await fake_slack.wait_for(lambda: bool(fake_slack.sockets))
    await redis_server.kill()
    event = mention("are you there?")
    for attempt in range(2):  # Slack's delivery and its retry of the same event
        await fake_slack.push(envelope(event, "EvSOCK"), f"env-{attempt}", retry_attempt=attempt)
    # acked without waiting for Redis: Slack has no reason to send it a third time
    await fake_slack.wait_for(
        lambda: {a.get("envelope_id") for a in fake_slack.acks} >= {"env-0", "env-1"}, seconds=5
    )
    assert bots.texts() == []
    await redis_server.start()  # the claim, tried again meanwhile, goes through: one answer
    await fake_slack.wait_for(lambda: len(bots.texts()) == 1 and "…" not in bots.texts()[0],
                              seconds=30)  # fmt: skip
    assert bots.texts() == ["echo: Alice: are you there?"]
