"""A replica that pauses (SIGSTOP: a long GC pause, a frozen VM, a partition) and one killed with
its placeholder outside the native stream: no answer is written twice, nothing stays stuck.

Each test starts its own redis-server and `python -m bot run` processes and stops them after.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import BotProcess, RedisServer
from tests.fakes.slack_server import FakeSlack
from tests.faults.test_faults import INTERRUPTED, MENTION_TS, SlackBots, mention

LONG = " ".join(["word"] * 600)  # 30 s at 50 ms a token: still streaming after any pause here
TAKEOVER = 16.0  # a silent process is taken for dead after ALIVE_FOR + CONFIRM (bot.recovery)


async def stored_turns(url: str, thread_ts: str = MENTION_TS) -> list[tuple[str, str]]:
    client = aioredis.Redis.from_url(url)
    try:
        found = []
        async for key in client.scan_iter(match=f"*{thread_ts}*:turns"):
            for raw in await client.lrange(key, 0, -1):
                turn = json.loads(raw)
                found.append((turn["role"], turn["text"]))
        return found
    finally:
        await client.aclose()


async def wait_for_log(process: BotProcess, needle: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while needle not in process.log():
        assert time.monotonic() < deadline, f"{needle!r} never logged:\n{process.log()[-3000:]}"
        await asyncio.sleep(0.1)  # a log file gives no other signal


async def pause(process: BotProcess, seconds: float) -> None:
    process.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)  # the pause itself is what is tested
    finally:
        process.signal(signal.SIGCONT)


@pytest.mark.timeout(120)
async def test_a_replica_paused_past_its_takeover_never_writes_over_the_settled_answer(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    paused = await bots.start()
    other = await bots.start()
    fake_openai.push(Reply(text=LONG, token_delay=0.05))
    assert await bots.deliver(paused, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))
    stopping = asyncio.create_task(pause(bots.processes[paused], 25))
    # the other replica takes the silent one for dead and settles its answer with a sentence
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=TAKEOVER + 8)
    await stopping
    # the paused replica wakes, learns inside Redis that the answer is no longer its own...
    await wait_for_log(bots.processes[paused], "answer abandoned", seconds=15)
    assert bots.texts() == [INTERRUPTED]  # ...and writes nothing over the sentence
    assert await stored_turns(redis_server.url) == [("user", "explain the outage")]
    # whoever re-sends as told is answered exactly once, with the question in memory once
    fake_openai.push(Reply(text="Here it is again."))
    again = mention("explain the outage, please", "1700000000.000300")
    again["thread_ts"] = MENTION_TS
    assert await bots.deliver(other, again, "Ev2") == 200
    await fake_slack.wait_for(lambda: "Here it is again." in bots.texts(), seconds=10)
    prompt = "\n".join(str(m["content"]) for m in fake_openai.requests[-1]["messages"])
    assert prompt.count("explain the outage") == 2, prompt  # the question, and its re-sending
    assert bots.texts() == [INTERRUPTED, "Here it is again."]
    assert bots.processes[paused].running


@pytest.mark.timeout(120)
async def test_a_replica_paused_just_under_its_takeover_finishes_its_answer_once(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    paused = await bots.start()
    await bots.start()
    fake_openai.push(Reply(text=LONG, token_delay=0.02))
    assert await bots.deliver(paused, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))
    await pause(bots.processes[paused], 15)  # its lock lapses (10 s), its answer is not taken
    await fake_slack.wait_for(lambda: bots.texts() == [LONG], seconds=30)
    turns = await stored_turns(redis_server.url)
    assert turns == [("user", "explain the outage"), ("assistant", LONG)]
    assert "settling the answer" not in "".join(p.log() for p in bots.processes)


async def test_a_fallback_placeholder_is_settled_after_sigkill_with_start_stream_refused(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    fake_slack.refusing["chat.startStream"] = (
        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}
    )  # fmt: skip
    first = await bots.start(SLACK_STREAMING="auto")
    fake_openai.push(Reply(text=LONG, token_delay=0.05))
    assert await bots.deliver(first, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    await bots.start(SLACK_STREAMING="auto")
    # the placeholder that took the refused stream's place is the one message, and it is settled
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=30)
    assert len(fake_slack.bot_messages("C1")) == 1
    assert await stored_turns(redis_server.url) == [("user", "explain the outage")]


async def test_an_answer_longer_than_one_message_is_settled_in_every_message_after_sigkill(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    first = await bots.start()
    long = " ".join(["word"] * 1500)  # two Slack messages of at most 3,900 characters
    fake_openai.push(Reply(text=long, token_delay=0.005))
    assert await bots.deliver(first, mention("explain everything"), "Ev1") == 200
    await fake_slack.wait_for(lambda: len(bots.texts()) >= 2)  # it overflowed into a second
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    await bots.start()
    # every message of the answer is settled: the first takes the sentence, the rest are blanked
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED, "—"], seconds=30)


@pytest.mark.timeout(120)
async def test_a_replica_killed_while_settling_leaves_the_job_to_the_next_and_nothing_twice(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    first = await bots.start()
    fake_openai.push(Reply(text=LONG, token_delay=0.05))
    assert await bots.deliver(first, mention("explain the outage"), "Ev1") == 200
    await fake_slack.wait_for(lambda: any("word" in t for t in bots.texts()))
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    updates = len(fake_slack.called("chat.update"))
    fake_slack.hanging["chat.update"] = 1  # the settler's edit hangs...
    settler = await bots.start()
    await fake_slack.wait_for(
        lambda: len(fake_slack.called("chat.update")) > updates, seconds=TAKEOVER + 8
    )
    bots.processes[settler].signal(signal.SIGKILL)  # ...and it dies mid-recovery
    await bots.processes[settler].wait(5)
    await bots.start()  # the next one finishes the job
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=TAKEOVER + 14)
    assert len(fake_slack.bot_messages("C1")) == 1
    assert await stored_turns(redis_server.url) == [("user", "explain the outage")]
    assert "settling the answer" in bots.processes[2].log()


@pytest.mark.timeout(120)
async def test_two_replicas_killed_at_once_are_both_settled_by_the_restarted_one(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    one, two = await bots.start(), await bots.start()
    for n, which in enumerate((one, two)):
        fake_openai.push(Reply(text=LONG, token_delay=0.05))
        asked = mention(f"question {n}", f"1700000000.00010{n}") | {"channel": f"C{n}"}
        assert await bots.deliver(which, asked, f"Ev{n}") == 200
    await fake_slack.wait_for(
        lambda: all("word" in "".join(bots.texts(f"C{n}")) for n in range(2))
    )  # both mid-answer
    for which in (one, two):
        bots.processes[which].signal(signal.SIGKILL)
    for which in (one, two):
        await bots.processes[which].wait(5)
    await bots.start()
    await fake_slack.wait_for(
        lambda: all(bots.texts(f"C{n}") == [INTERRUPTED] for n in range(2)), seconds=30
    )


@pytest.mark.timeout(120)
async def test_a_placeholder_posted_before_the_answer_reached_the_engine_is_settled_after_sigkill(
    bots: SlackBots, fake_openai: FakeOpenAI, fake_slack: FakeSlack, redis_server: RedisServer
) -> None:
    # A mention in a thread the bot does not know: its placeholder is up while the bot reads the
    # thread from Slack, before the answer takes its thread's lock. Killed there, it was stuck.
    fake_slack.hanging["conversations.replies"] = 1
    first = await bots.start()
    asked = mention("what did we decide?", "1700000000.000500")
    asked["thread_ts"] = MENTION_TS
    assert await bots.deliver(first, asked, "Ev1") == 200
    await fake_slack.wait_for(lambda: bool(fake_slack.called("conversations.replies")))
    assert bots.texts() == ["_Thinking…_"]
    bots.processes[first].signal(signal.SIGKILL)
    await bots.processes[first].wait(5)
    await bots.start()
    await fake_slack.wait_for(lambda: bots.texts() == [INTERRUPTED], seconds=30)
    assert len(fake_slack.bot_messages("C1")) == 1
    assert fake_openai.requests == []
