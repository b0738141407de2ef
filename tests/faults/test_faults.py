"""Faults, tested: `python -m bot run` killed, stopped, and left without Redis, as operators do.

Every process and Redis server here is the test's own, on free ports, and is stopped after.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from bot.errors import StoreUnavailable
from tests.adapters.slack.conftest import message_event
from tests.fakes.discord_server import BOT_USER as DISCORD_BOT
from tests.fakes.discord_server import CHANNEL, PEOPLE, USERS, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import RedisServer
from tests.fakes.slack_server import FakeSlack
from tests.faults.conftest import INTERRUPTED, MENTION_TS, SlackBots, mention

STORE_DOWN = StoreUnavailable().user_message()
ALICE = USERS[PEOPLE["alice"]]


async def test_sigkill_mid_answer_is_settled_after_restart_and_the_thread_goes_on(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    first = await bots.start()
    fake_openai.push(Reply(text=" ".join(["word"] * 300), token_delay=0.05))
    assert await bots.deliver(first, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))  # half-written
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    restarted = time.monotonic()
    second = await bots.start()
    # the restarted bot (or any replica) ends the half-written answer with one sentence
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=30)
    settled_after = time.monotonic() - restarted
    assert settled_after < 30
    # the thread goes on at once: no waiting out the dead process's lock
    fake_openai.push(Reply(text="Here it is again."))
    asked = time.monotonic()
    follow_up = message_event("please try again", "1700000000.000200", thread_ts=MENTION_TS)
    assert await bots.deliver(second, follow_up, "Ev2") == 200
    await fake_slack.wait_for(lambda: "Here it is again." in bots.texts(), seconds=10)
    assert time.monotonic() - asked < 3
    prompt = "\n".join(str(m["content"]) for m in fake_openai.requests[-1]["messages"])
    assert "explain the outage" in prompt  # the interrupted question was kept


async def test_sigterm_with_a_hung_model_exits_within_the_grace_period(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    bot = await bots.start(BOT_SHUTDOWN_GRACE="2")
    fake_openai.push(Reply(hang=True))
    assert await bots.deliver(bot, mention("are you there?"), "Ev1") == 200
    await fake_slack.wait_for(lambda: bool(bots.texts()))
    stopped = time.monotonic()
    bots.processes[bot].signal(signal.SIGTERM)
    # no new work while draining: Slack is told to deliver it again (elsewhere)
    later = mention("another question", "1700000000.000300")
    assert await bots.deliver(bot, later, "Ev2") == 503
    assert await bots.processes[bot].wait(10) == 0
    assert time.monotonic() - stopped < 2 + 4
    assert bots.texts() == [INTERRUPTED]
    client = aioredis.Redis.from_url(redis_server.url)
    turns = [json.loads(t)["text"] async for t in _turns(client, MENTION_TS)]
    assert turns == ["are you there?"]  # the question is kept for the next answer
    assert [k async for k in client.scan_iter(match="asst:{*}:inflight")] == []  # none left
    assert "SIGTERM" in bots.processes[bot].log()
    await client.aclose()


async def test_a_second_signal_exits_at_once_and_leaves_nothing_stuck(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    bot = await bots.start(BOT_SHUTDOWN_GRACE="60")
    fake_openai.push(Reply(hang=True))
    assert await bots.deliver(bot, mention("are you there?"), "Ev1") == 200
    await fake_slack.wait_for(lambda: bool(bots.texts()))
    stopped = time.monotonic()
    bots.processes[bot].signal(signal.SIGTERM)
    bots.processes[bot].signal(signal.SIGINT)
    await bots.processes[bot].wait(10)
    assert time.monotonic() - stopped < 5  # not the 60 s grace
    assert bots.texts() == [INTERRUPTED]


async def test_redis_killed_and_restarted_under_load_gives_no_duplicates(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    bot = await bots.start()
    # a channel each: Slack (and so the bot) posts about one message a second per channel
    events = [
        (f"Ev{n}", mention(f"q{n}", f"1700000001.{n:06d}") | {"channel": f"C{n}"})
        for n in range(30)
    ]
    refused: list[tuple[str, dict]] = []

    async def deliver_twice(index: int) -> None:
        event_id, event = events[index]
        for retry in range(2):  # Slack's first delivery and an immediate retry
            if await bots.deliver(bot, event, event_id, retry) == 503:
                refused.append((event_id, event))
                return

    for n in range(10):
        await deliver_twice(n)
    await redis_server.kill()
    for n in range(10, 20):
        await deliver_twice(n)
    await redis_server.start()
    for n in range(20, 30):
        await deliver_twice(n)
    # Slack delivers what was refused again later; on its last retry the bot takes it anyway
    for event_id, event in refused:
        for retry in (1, 2, 3):
            if await bots.deliver(bot, event, event_id, retry) == 200:
                break

    def every_reply() -> list[dict]:
        return [m for n in range(30) for m in fake_slack.bot_messages(f"C{n}")]

    await fake_slack.wait_for(
        lambda: len([m for m in every_reply() if not m["text"].startswith("_")]) >= 30, seconds=20
    )
    answers = [m["text"] for m in every_reply()]
    threads: dict[str, int] = {}
    for message in every_reply():
        threads[message["thread_ts"]] = threads.get(message["thread_ts"], 0) + 1
    assert set(threads.values()) == {1}, f"some message got more than one reply: {threads}"
    assert len(threads) == 30  # every message answered or told why
    told_why = [t for t in answers if t == STORE_DOWN]
    assert len(answers) - len(told_why) >= 20


async def _turns(client: aioredis.Redis, thread_ts: str) -> AsyncIterator[bytes]:
    async for key in client.scan_iter(match=f"*{thread_ts}*:turns"):
        for turn in await client.lrange(key, 0, -1):
            yield turn


async def test_one_adapter_failing_never_takes_the_other_down(
    fake_discord: FakeDiscord, bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:  # fake_discord first: torn down after the bot processes are gone
    bot = await bots.start(DISCORD_BOT_TOKEN="fake-token", DISCORD_API_URL=fake_discord.url)
    await fake_discord.wait_for(lambda: fake_discord.identifies == 1, seconds=20)
    # a dispatch discord.py cannot parse is skipped, not fatal
    await fake_discord.dispatch(
        "MESSAGE_CREATE", {"id": "1", "channel_id": str(CHANNEL), "author": "not an object"}
    )
    await ask_discord(fake_discord, "first")
    # the gateway ends the session for good: the Discord adapter restarts by itself...
    await fake_discord.close_gateway(4010)
    assert await bots.deliver(bot, mention("slack still fine?"), "Ev1") == 200
    await fake_slack.wait_for(lambda: "echo: Alice: slack still fine?" in bots.texts())
    await fake_discord.wait_for(lambda: fake_discord.identifies == 2, seconds=20)
    await ask_discord(fake_discord, "second")  # ...and answers again
    log = bots.processes[bot].log()
    assert "skipped a MESSAGE_CREATE dispatch" in log
    assert "discord adapter failed" in log and bots.processes[bot].running


async def ask_discord(fake: FakeDiscord, text: str) -> None:
    data = fake.message(CHANNEL, f"<@{DISCORD_BOT['id']}> {text}", ALICE, mentions=[DISCORD_BOT])
    await fake.dispatch_message(data)

    def answered() -> bool:
        return any(
            m["content"] == f"echo: Alice: {text}"
            for t in fake.threads()
            for m in fake.bot_messages(int(t["id"]))
        )

    await fake.wait_for(answered, seconds=20)
