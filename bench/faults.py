"""Fault benchmark: what `python -m bot run` loses or duplicates when the world misbehaves.

    python -m bench.faults [SCENARIO ...]   (needs redis-server; starts its own on a free port)

1. Burst: 200 mentions at once, each delivered twice, to one process: answers, errors, and the
   Redis connections it used.
2. Outage: 500 messages delivered 1-3 times (Slack's retries and duplicates) across two
   replicas, Redis killed for 10 s in the middle. Refused deliveries (503) are delivered again
   on a scaled-down version of Slack's schedule (1 s, 5 s, 15 s instead of 0, 1 min, 5 min).
   Duplicates (goal 0) and losses (every message answered or told why).
3. SIGTERM with 20 answers stuck on a hung model: seconds to exit, placeholders left.
4. SIGKILL with 20 answers half-written: seconds from restart until every one is settled.
5. A replica paused (SIGSTOP) mid-answer with 10 answers, for 25 s (past its takeover) and for
   15 s (just under it): sentences written over, questions saved twice, answers finished once.
6. SIGKILL with chat.startStream refused (the streaming budget spent): threads left with a
   placeholder or a half-written message after recovery.
7. Redis restarted empty with 10 answers mid-stream: copies of those mentions (as `message`
   events) answered a second time by the other replica, answers settled after a crash,
   follow-ups in the bot's threads answered.
8. 20 answers interrupted in one channel: seconds to settle them all (goal <= 20 s), and seconds
   until a follow-up sent right after is answered (goal <= 3 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bench.harness import row
from bot.errors import Interrupted, StoreUnavailable
from tests.adapters.slack.conftest import SECRET, envelope, message_event, signed_headers
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import BotProcess, RedisServer, bot_env, free_port
from tests.fakes.slack_server import BOT_USER, FakeSlack

RETRY_SCHEDULE = (1.0, 5.0, 15.0)  # Slack's 0 s / 1 min / 5 min, scaled down
INTERRUPTED = Interrupted().user_message()
STORE_DOWN = StoreUnavailable().user_message()
PLACEHOLDER = "_Thinking…_"


class Bench:
    def __init__(self, tmp: Path, slack: FakeSlack, model: FakeOpenAI) -> None:
        self.tmp, self.slack, self.model = tmp, slack, model
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=10)
        )
        self.processes: list[BotProcess] = []

    async def start_bot(self, redis_url: str, name: str, **env: str) -> tuple[BotProcess, int]:
        port = free_port()
        settings = dict(
            OPENAI_BASE_URL=self.model.url, REDIS_URL=redis_url, SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=self.slack.url, PORT=str(port),
            HOST="127.0.0.1", SLACK_EDIT_INTERVAL="0.5", SLACK_STREAMING="edits",
            LOG_LEVEL="WARNING",
        )  # fmt: skip
        settings.update(env)
        process = BotProcess(self.tmp, bot_env(**settings), name=name)
        await process.start()
        await process.wait_healthy(port)
        self.processes.append(process)
        return process, port

    async def deliver(self, port: int, event: dict, event_id: str, retry: int = 0) -> int:
        body = json.dumps(envelope(event, event_id))
        extra = {"x-slack-retry-num": str(retry)} if retry else {}
        headers = {k: v[0] for k, v in signed_headers(body, **extra).items()}
        try:
            async with self.session.post(
                f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=headers
            ) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 599  # no answer in time: Slack treats it as a failure and retries

    def replies(self) -> dict[str, list[str]]:
        """Every reply the bot left, by the thread (= the message) it answers."""
        threads: dict[str, list[str]] = {}
        for channel, messages in self.slack.messages.items():
            for message in messages:
                if message.get("user") == BOT_USER:
                    key = f"{channel}/{message.get('thread_ts')}"
                    threads.setdefault(key, []).append(message["text"])
        return threads

    async def close(self) -> None:
        for process in self.processes:
            await process.stop()
        await self.session.close()


def mention(n: int, channel: str) -> dict:
    return message_event(f"<@{BOT_USER}> question {n}", f"1700000{n:03d}.000100",
                         channel=channel, kind="app_mention")  # fmt: skip


async def burst(bench: Bench, tmp: Path) -> None:
    redis = RedisServer(tmp / "burst")
    (tmp / "burst").mkdir()
    await redis.start()
    bot, port = await bench.start_bot(redis.url, "burst")
    client = aioredis.Redis.from_url(redis.url)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, int((await client.info("clients"))["connected_clients"]) - 1)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    events = [(mention(n, f"CB{n % 100}"), n) for n in range(200)]
    deliveries = [bench.deliver(port, e, f"Ev{n}") for e, n in events]
    deliveries += [bench.deliver(port, e, f"Em{n}") for e, n in events]  # as app_mention+message
    statuses = Counter(await asyncio.gather(*deliveries))
    await bench.slack.wait_for(lambda: _settled(bench, "CB", 200), seconds=60)
    sampler.cancel()
    replies = {k: v for k, v in bench.replies().items() if k.startswith("CB")}
    await client.aclose()
    print("1. Burst: 200 mentions at once, each delivered twice, one process")
    row("HTTP statuses", dict(statuses))
    row("messages answered / with 2+ replies", f"{len(replies)} / "
        f"{sum(1 for v in replies.values() if len(v) > 1)}")  # fmt: skip
    row("errors shown instead of answers", sum(1 for v in replies.values() if v[-1] == STORE_DOWN))
    row("Redis connections in use at most (pool cap 64)", peak)
    await bot.stop()
    await redis.stop()


def _settled(bench: Bench, prefix: str, count: int) -> bool:
    done = [v for k, v in bench.replies().items() if k.startswith(prefix) and v[-1] != PLACEHOLDER]
    return len(done) >= count


async def outage(bench: Bench, tmp: Path, messages: int = 500) -> None:
    (tmp / "outage").mkdir()
    redis = RedisServer(tmp / "outage")
    await redis.start()
    ports = [(await bench.start_bot(redis.url, f"replica{i}"))[1] for i in range(2)]
    rng = random.Random(7)
    refused = 0
    pending: set[asyncio.Task[None]] = set()

    async def slack_delivers(n: int) -> None:
        nonlocal refused
        event, event_id = mention(n, f"CO{n % 100}"), f"Eo{n}"
        copies = rng.choice((1, 2, 3))
        statuses = await asyncio.gather(
            *(bench.deliver(rng.choice(ports), event, event_id) for _ in range(copies))
        )
        if 200 in statuses:
            return
        refused += 1
        for retry, delay in enumerate(RETRY_SCHEDULE, start=1):
            await asyncio.sleep(delay)
            if await bench.deliver(rng.choice(ports), event, event_id, retry) == 200:
                return

    started = time.monotonic()
    killed_at = restarted_at = 0.0
    for n in range(messages):  # 50 messages a second for 10 s
        if n == messages // 4:
            await redis.kill()
            killed_at = time.monotonic() - started
            asyncio.get_running_loop().call_later(10, lambda: pending.add(
                asyncio.create_task(redis.start())))  # fmt: skip
            restarted_at = killed_at + 10
        task = asyncio.create_task(slack_delivers(n))
        pending.add(task)
        await asyncio.sleep(0.02)
    while pending:
        done, _ = await asyncio.wait(set(pending))
        pending -= done
    await bench.slack.wait_for(lambda: _settled(bench, "CO", messages), seconds=60)
    replies = {k: v for k, v in bench.replies().items() if k.startswith("CO")}
    duplicates = sum(1 for v in replies.values() if len(v) > 1)
    for thread, texts in list((k, v) for k, v in replies.items() if len(v) > 1)[:3]:
        print(f"  (2+ replies in {thread}: {texts})")
    told = sum(1 for v in replies.values() if v[-1] in (STORE_DOWN, INTERRUPTED))
    print(f"2. Outage: {messages} messages delivered 1-3 times across 2 replicas, "
          f"Redis killed at {killed_at:.1f} s, back at {restarted_at:.1f} s")  # fmt: skip
    row("messages with 2+ replies (duplicates)", duplicates)
    row("messages with no reply (lost)", messages - len(replies))
    row("answered / told why in one sentence", f"{len(replies) - told} / {told}")
    row("first deliveries refused (Slack asked to retry)", refused)
    row("wall time", f"{time.monotonic() - started:.1f} s")
    for process in bench.processes[-2:]:
        await process.stop()
    await redis.stop()


async def sigterm(bench: Bench, tmp: Path) -> None:
    (tmp / "term").mkdir()
    redis = RedisServer(tmp / "term")
    await redis.start()
    bot, port = await bench.start_bot(redis.url, "term")
    bench.model.push(*(Reply(hang=True) for _ in range(20)))
    await asyncio.gather(*(bench.deliver(port, mention(n, f"CT{n}"), f"Et{n}") for n in range(20)))
    await bench.slack.wait_for(
        lambda: len([k for k in bench.replies() if k.startswith("CT")]) == 20
    )
    started = time.monotonic()
    assert bot.process is not None
    bot.signal(signal.SIGTERM)
    code = await bot.wait(60)
    seconds = time.monotonic() - started
    stuck = [v for k, v in bench.replies().items() if k.startswith("CT") and v[-1] != INTERRUPTED]
    print("3. SIGTERM with 20 answers waiting on a hung model (BOT_SHUTDOWN_GRACE=8)")
    row("seconds from SIGTERM to exit / exit code", f"{seconds:.2f} s / {code}")
    row("placeholders left unanswered", len(stuck))
    await redis.stop()


async def sigkill(bench: Bench, tmp: Path) -> None:
    (tmp / "kill").mkdir()
    redis = RedisServer(tmp / "kill")
    await redis.start()
    # streamed natively (the default): half-written answers are on screen when the kill comes
    bot, port = await bench.start_bot(redis.url, "kill", SLACK_STREAMING="auto")
    for _ in range(20):
        bench.model.push(Reply(text=" ".join(["word"] * 400), token_delay=0.05))
    await asyncio.gather(*(bench.deliver(port, mention(n, f"CK{n}"), f"Ek{n}") for n in range(20)))

    def half_written() -> bool:
        shown = [v for k, v in bench.replies().items() if k.startswith("CK")]
        return len(shown) == 20 and all("word" in v[-1] for v in shown)

    await bench.slack.wait_for(half_written, seconds=30)
    bot.signal(signal.SIGKILL)
    await bot.wait(10)
    restarted = time.monotonic()
    await bench.start_bot(redis.url, "kill-restarted", SLACK_STREAMING="auto")

    def settled() -> bool:
        shown = [v for k, v in bench.replies().items() if k.startswith("CK")]
        return all(v[-1] == INTERRUPTED for v in shown)

    try:
        await bench.slack.wait_for(settled, seconds=60)
    except TimeoutError:
        left = {k: v[-1][:40] for k, v in bench.replies().items()
                if k.startswith("CK") and v[-1] != INTERRUPTED}  # fmt: skip
        print(f"  not settled within 60 s: {left}")
        print(bench.processes[-1].log()[-3000:])
    print("4. SIGKILL with 20 answers half-written, then a restart")
    row("seconds from restart to all 20 settled", f"{time.monotonic() - restarted:.2f} s")
    await redis.stop()


def mid_stream(bench: Bench, prefix: str, count: int) -> Callable[[], bool]:
    """Whether `count` replies in channels named `prefix…` show answer text."""
    return lambda: (
        count <= sum("word" in v[-1] for k, v in bench.replies().items() if k.startswith(prefix))
    )


async def _questions_saved(redis_url: str, channel_prefix: str) -> Counter[str]:
    """How often each thread's question is in memory (1 each is right)."""
    client = aioredis.Redis.from_url(redis_url)
    counts: Counter[str] = Counter()
    async for key in client.scan_iter(match=f"*{{slack:T1:{channel_prefix}*:turns"):
        for raw in await client.lrange(key, 0, -1):
            if json.loads(raw)["role"] == "user":
                counts[key.decode()] += 1
    await client.aclose()
    return counts


async def pause(bench: Bench, tmp: Path, seconds: float, tag: str) -> None:
    (tmp / tag).mkdir()
    redis = RedisServer(tmp / tag)
    await redis.start()
    paused, port = await bench.start_bot(redis.url, f"{tag}-a")
    await bench.start_bot(redis.url, f"{tag}-b")
    long = " ".join(["word"] * 600)
    for _ in range(10):
        bench.model.push(Reply(text=long, token_delay=0.05))
    await asyncio.gather(*(bench.deliver(port, mention(n, f"{tag}{n}"), f"E{tag}{n}")
                           for n in range(10)))  # fmt: skip
    await bench.slack.wait_for(mid_stream(bench, tag, 10))
    paused.signal(signal.SIGSTOP)
    await asyncio.sleep(seconds)  # the pause is the fault
    paused.signal(signal.SIGCONT)

    def over() -> bool:
        shown = [v[-1] for k, v in bench.replies().items() if k.startswith(tag)]
        return all(t in (INTERRUPTED, long) for t in shown)

    await bench.slack.wait_for(over, seconds=60)
    await asyncio.sleep(3)  # a woken process's late writes would land now: wait them out
    shown = [v for k, v in bench.replies().items() if k.startswith(tag)]
    settled = sum(1 for v in shown if v[-1] == INTERRUPTED)
    saved = await _questions_saved(redis.url, tag)
    print(f"5. A replica paused {seconds:.0f} s with 10 answers mid-stream, another running")
    row("answers settled with the sentence / finished", f"{settled} / {len(shown) - settled}")
    if seconds > 16:
        row("sentences written over by the woken replica (goal 0)",
            sum(1 for v in shown if v[-1] != INTERRUPTED))  # fmt: skip
    row("threads with the question saved twice (goal 0)", sum(1 for c in saved.values() if c > 1))
    for process in bench.processes[-2:]:
        await process.stop()
    await redis.stop()


async def refused_streams(bench: Bench, tmp: Path) -> None:
    (tmp / "refused").mkdir()
    redis = RedisServer(tmp / "refused")
    await redis.start()
    bench.slack.refusing["chat.startStream"] = (
        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})  # fmt: skip
    bot, port = await bench.start_bot(redis.url, "refused", SLACK_STREAMING="auto")
    for _ in range(20):
        bench.model.push(Reply(text=" ".join(["word"] * 400), token_delay=0.05))
    await asyncio.gather(*(bench.deliver(port, mention(n, f"CR{n}"), f"Er{n}") for n in range(20)))
    # all 20 show a placeholder, and answers stream into those the edit budget allows
    await bench.slack.wait_for(mid_stream(bench, "CR", 5), seconds=30)
    await asyncio.sleep(1)  # every answer is under way by now
    bot.signal(signal.SIGKILL)
    await bot.wait(10)
    restarted = time.monotonic()
    await bench.start_bot(redis.url, "refused-restarted", SLACK_STREAMING="auto")

    def settled() -> bool:
        return all(v[-1] == INTERRUPTED for k, v in bench.replies().items() if k.startswith("CR"))

    with contextlib.suppress(TimeoutError):
        await bench.slack.wait_for(settled, seconds=60)
    shown = [v for k, v in bench.replies().items() if k.startswith("CR")]
    print("6. SIGKILL with chat.startStream refused (answers streamed by placeholder and edits)")
    row("threads left with a placeholder or half-written message (goal 0)",
        sum(1 for v in shown if any(t != INTERRUPTED for t in v)))  # fmt: skip
    row("seconds from restart to all settled", f"{time.monotonic() - restarted:.2f} s")
    del bench.slack.refusing["chat.startStream"]
    for process in bench.processes[-1:]:
        await process.stop()
    await redis.stop()


async def emptied(bench: Bench, tmp: Path) -> None:
    (tmp / "empty").mkdir()
    redis = RedisServer(tmp / "empty")
    await redis.start()
    first, port_a = await bench.start_bot(redis.url, "empty-a", LOG_LEVEL="INFO")
    second, port_b = await bench.start_bot(redis.url, "empty-b", LOG_LEVEL="INFO")
    for _ in range(10):
        bench.model.push(Reply(text=" ".join(["word"] * 600), token_delay=0.05))
    await asyncio.gather(*(bench.deliver(port_a, mention(n, f"CE{n}"), f"Ee{n}")
                           for n in range(10)))  # fmt: skip
    await bench.slack.wait_for(mid_stream(bench, "CE", 10))
    await redis.kill()
    shutil.rmtree(tmp / "empty" / "appendonlydir", ignore_errors=True)
    await redis.start()
    lost = time.monotonic()
    for _ in range(300):
        if all("Redis lost its data" in p.log() for p in (first, second)):
            break
        await asyncio.sleep(0.1)  # the processes' logs are the only signal
    noticed = time.monotonic() - lost
    asked = len(bench.model.requests)
    copies = [message_event(f"<@{BOT_USER}> question {n}", f"1700000{n:03d}.000100",
                            channel=f"CE{n}") for n in range(10)]  # fmt: skip
    await asyncio.gather(*(bench.deliver(port_b, c, f"Ec{n}") for n, c in enumerate(copies)))
    await asyncio.sleep(2)  # a second answer would have started by now
    twice = len(bench.model.requests) - asked
    first.signal(signal.SIGKILL)
    await first.wait(10)
    killed = time.monotonic()

    def settled() -> bool:
        return all(v[-1] == INTERRUPTED for k, v in bench.replies().items() if k.startswith("CE"))

    with contextlib.suppress(TimeoutError):
        await bench.slack.wait_for(settled, seconds=45)
    settled_in = time.monotonic() - killed
    done = sum(1 for k, v in bench.replies().items() if k.startswith("CE") and v[-1] == INTERRUPTED)
    bench.model.push(*(Reply(text="again") for _ in range(10)))
    follow_ups = [message_event("please try again", f"1700001{n:03d}.000100", channel=f"CE{n}",
                                thread_ts=f"1700000{n:03d}.000100") for n in range(10)]  # fmt: skip
    await asyncio.gather(*(bench.deliver(port_b, f, f"Ef{n}") for n, f in enumerate(follow_ups)))
    with contextlib.suppress(TimeoutError):
        await bench.slack.wait_for(lambda: sum(
            v[-1] == "again" for k, v in bench.replies().items() if k.startswith("CE")) == 10,
            seconds=20)  # fmt: skip
    answered = sum(1 for k, v in bench.replies().items() if k.startswith("CE") and v[-1] == "again")
    print("7. Redis restarted empty under two replicas with 10 answers mid-stream")
    row("seconds until both replicas noticed and wrote back", f"{noticed:.2f} s")
    row("copies answered a second time by the other replica (goal 0)", twice)
    row("answers settled after the answering replica was killed", f"{done} / 10 "
        f"in {settled_in:.1f} s")  # fmt: skip
    row("follow-ups in the bot's threads answered", f"{answered} / 10")
    await second.stop()
    await redis.stop()


async def one_channel(bench: Bench, tmp: Path) -> None:
    (tmp / "channel").mkdir()
    redis = RedisServer(tmp / "channel")
    await redis.start()
    bot, port = await bench.start_bot(redis.url, "channel", SLACK_STREAMING="auto")
    for _ in range(20):
        bench.model.push(Reply(text=" ".join(["word"] * 400), token_delay=0.05))
    await asyncio.gather(*(bench.deliver(port, mention(n, "CONE"), f"Eh{n}") for n in range(20)))
    await bench.slack.wait_for(mid_stream(bench, "CONE", 20), seconds=60)
    bot.signal(signal.SIGKILL)
    await bot.wait(10)
    _, port = await bench.start_bot(redis.url, "channel-restarted", SLACK_STREAMING="auto")
    first_seen = None

    def settled() -> bool:
        nonlocal first_seen
        shown = [v[-1] for k, v in bench.replies().items() if k.startswith("CONE")]
        if first_seen is None and INTERRUPTED in shown:
            first_seen = time.monotonic()
        return all(t == INTERRUPTED for t in shown)

    with contextlib.suppress(TimeoutError):
        await bench.slack.wait_for(settled, seconds=90)
    assert first_seen is not None
    done = time.monotonic()
    bench.model.push(Reply(text="here again"))
    follow_up = message_event("please try again", "1700002000.000100", channel="CONE",
                              thread_ts=mention(0, "CONE")["ts"])  # fmt: skip
    asked = time.monotonic()
    await bench.deliver(port, follow_up, "Ehf")
    with contextlib.suppress(TimeoutError):
        await bench.slack.wait_for(
            lambda: any(v[-1] == "here again" for v in bench.replies().values()), seconds=20
        )
    print("8. 20 answers interrupted in one channel, then a restart")
    row("seconds from the first sentence to all 20 settled (goal <= 20 s)",
        f"{done - first_seen:.2f} s")  # fmt: skip
    row("seconds until a follow-up sent right after is answered (goal <= 3 s)",
        f"{time.monotonic() - asked:.2f} s")  # fmt: skip
    await redis.stop()


async def main() -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # killed bots drop streams
    slack, model = FakeSlack(), FakeOpenAI(model_latency=0.05)
    await slack.start()
    await model.start()
    slack.add_user("UALICE", "Alice")
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(Path(folder), slack, model)
        try:
            tmp = Path(folder)
            scenarios = {
                "burst": lambda: burst(bench, tmp),
                "outage": lambda: outage(bench, tmp),
                "sigterm": lambda: sigterm(bench, tmp),
                "sigkill": lambda: sigkill(bench, tmp),
                "pause": lambda: pause(bench, tmp, 25, "CP"),
                "short-pause": lambda: pause(bench, tmp, 15, "CQ"),
                "refused": lambda: refused_streams(bench, tmp),
                "emptied": lambda: emptied(bench, tmp),
                "one-channel": lambda: one_channel(bench, tmp),
            }
            for name in sys.argv[1:] or scenarios:  # e.g. python -m bench.faults pause emptied
                await scenarios[name]()
        finally:
            await bench.close()
            await model.stop()
            await slack.stop()


if __name__ == "__main__":
    asyncio.run(main())
