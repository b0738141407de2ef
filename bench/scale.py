"""Scale benchmark: what one `python -m bot run` process sustains, and what each answer costs.

    python -m bench.scale      (needs Redis on 127.0.0.1:6379, or REDIS_URL)

The bot runs Discord against the fake gateway and REST API (no per-workspace edit tier to hide
the bot's own cost), the model is a fake with a fixed first-token latency and 100-word answers,
each in its own process. Figures:
1. answers per second and the bot's CPU-seconds per answer (from /proc), for a burst of mentions
   each opening its own thread; one core's capacity is 1 / CPU-seconds per answer;
2. 1,000 mentions at once against a model that takes 15 s: answers streaming at once, peak RSS,
   and Redis calls that failed, without a limit and with BOT_MAX_CONCURRENT_ANSWERS (default);
3. Redis commands (sent: the bot's own counter; run: INFO commandstats, scripts' bodies included)
   and round trips per answered follow-up, the liveness heartbeat's share (measured idle) taken out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time

import aiohttp
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import cpu_seconds, model_server, row
from tests.fakes.discord_server import BOT_USER, CHANNEL, PEOPLE, USERS, FakeDiscord
from tests.fakes.processes import free_port

REDIS_URL = ""  # a redis-server of the benchmark's own: commandstats count only the bot
ALICE = USERS[PEOPLE["alice"]]
MENTION = f"<@{BOT_USER['id']}>"
LATER_WRITES = 3.0  # seconds a cluster's usage records wait to go out at most (bot.store.riders)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Bot:
    def __init__(self, fake: FakeDiscord, model_url: str, prefix: str) -> None:
        self.fake, self.ops = fake, free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OPENAI_", "SLACK_", "DISCORD_", "OPS_"))}  # fmt: skip
        self.env.update(
            OPENAI_BASE_URL=model_url, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix,
            LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), DISCORD_BOT_TOKEN="bench",
            DISCORD_API_URL=fake.url,
            OPS_PORT=str(self.ops), OPS_HOST="127.0.0.1", DISCORD_EDIT_INTERVAL="5",
        )  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> int:
        identified = self.fake.identifies
        profile = os.environ.get("BENCH_PROFILE")  # a file: the bot runs under cProfile
        command = ["-m", "cProfile", "-o", profile] if profile else []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *command, "-m", "bot", "run", env=self.env
        )
        await self.fake.wait_for(lambda: self.fake.identifies > identified, 30)
        return self.process.pid

    async def metric(self, session: aiohttp.ClientSession, name: str, **labels: str) -> float:
        async with session.get(f"http://127.0.0.1:{self.ops}/metrics") as response:
            text = await response.text()
        return sum(
            s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )  # fmt: skip

    async def answered(self, session: aiohttp.ClientSession) -> float:
        return await self.metric(session, "assistant_answers_total", outcome="answered")

    async def wait_answered(self, session: aiohttp.ClientSession, count: float) -> None:
        # The bot's own counter is the signal; asked twice a second, so that rendering /metrics
        # costs the measured process next to nothing.
        while await self.answered(session) < count:  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            await self.process.wait()


async def burst(fake: FakeDiscord, count: int, tag: str) -> list[int]:
    threads = []
    for n in range(count):
        message = fake.message(CHANNEL, f"{MENTION} {tag} {n}", ALICE, mentions=[BOT_USER])
        await fake.dispatch_message(message)
        threads.append(int(message["id"]))
    return threads


async def redis_cpu(client: aioredis.Redis) -> float:
    """CPU-seconds the Redis server has used (INFO cpu: main thread, user and system)."""
    stats = await client.info("cpu")
    return float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])


async def commands(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_") and
               not k.startswith(("cmdstat_info", "cmdstat_hello")))  # fmt: skip


async def throughput(session: aiohttp.ClientSession, prefix: str) -> float:
    fake = FakeDiscord()
    await fake.start()
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with model_server(latency=0.2, words=100) as model_url:
            bot = Bot(fake, model_url, prefix)
            pid = await bot.start()
            await burst(fake, 20, "warm-up")
            await bot.wait_answered(session, 20)
            count = 600
            cpu, started = cpu_seconds(pid), time.perf_counter()
            threads = await burst(fake, count, "load")
            await bot.wait_answered(session, 20 + count)
            wall = time.perf_counter() - started
            per_answer = (cpu_seconds(pid) - cpu) / count
            print(f"{count} mentions at once, each its own thread; model: 0.2 s to first token, "
                  "100 words")  # fmt: skip
            row("answers per second (wall, fakes included)", f"{count / wall:.0f}")
            floor = await bare_sdk(model_url, count)
            row("bot CPU per answer", f"{per_answer * 1000:.1f} ms")
            row("  the openai SDK alone, same answers (same run)", f"{floor * 1000:.1f} ms")
            row("  bot / bare SDK", f"{per_answer / floor:.2f}x (goal <= 0.25x)")
            row("answers per second one core sustains (1 / CPU)", f"{1 / per_answer:.0f} "
                "(goal >= 100)")  # fmt: skip

            trips = await redis_per_follow_up(session, bot, fake, threads, [client], "one node")
            await bot.stop()
            return trips
    finally:
        await client.aclose()
        await fake.stop()


async def bare_sdk(model_url: str, count: int) -> float:
    """CPU-seconds per answer of the openai SDK alone streaming the same answers (its own
    process, measured in this run: the floor the bot's figure is a ratio of)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare_sdk", model_url, str(count),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    return float(out.decode().strip())


async def redis_per_follow_up(
    session: aiohttp.ClientSession,
    bot: Bot,
    fake: FakeDiscord,
    threads: list[int],
    nodes: list[aioredis.Redis],
    where: str,
) -> float:
    """Commands and round trips per answered follow-up, one at a time in a thread the bot is part
    of, with the liveness heartbeat's share (measured idle) taken out; Redis's CPU per follow-up
    from up to 200 of them at once, each in its own thread (one at a time, Redis's own idle CPU,
    about 3 ms a second here, buries the half millisecond measured). Returns round trips."""
    thread = threads[0]

    async def counts() -> tuple[float, float, float, float, float]:
        executed = sum([await commands(node) for node in nodes])
        cpu = sum([await redis_cpu(node) for node in nodes])
        sent = await bot.metric(session, "assistant_redis_commands_total")
        trips = await bot.metric(session, "assistant_redis_round_trips_total")
        beats = await bot.metric(session, "assistant_liveness_beats_total")
        return executed, sent, trips, cpu, beats

    await asyncio.sleep(LATER_WRITES + 1)  # what earlier answers left to send has gone out
    before, began = await counts(), time.perf_counter()
    await asyncio.sleep(6)
    now, idle_seconds = await counts(), time.perf_counter() - began
    # What the bot's liveness beats cost while idle (commands and sends a beat: counted, not
    # estimated from the time passed) and what Redis's CPU does idle (a second), taken out.
    idle = [
        (end - start) / max(now[4] - before[4], 1) for end, start in zip(now, before, strict=True)
    ]
    idle[3] = (now[3] - before[3]) / idle_seconds
    follow_ups = 20
    done = await bot.answered(session)
    before, began = await counts(), time.perf_counter()
    for n in range(follow_ups):
        await fake.dispatch_message(fake.message(thread, f"follow-up {n}", ALICE))
        await bot.wait_answered(session, done + n + 1)
    await asyncio.sleep(LATER_WRITES + 1)  # a cluster's batched usage records count too
    after = await counts()
    beats, seconds = after[4] - before[4], time.perf_counter() - began
    executed, sent, trips = (
        (end - start - per_beat * beats) / follow_ups
        for end, start, per_beat in zip(after[:3], before[:3], idle[:3], strict=True)
    )
    cpu = (after[3] - before[3] - idle[3] * seconds) / follow_ups
    at_once = threads[1:201]
    if at_once:
        done = await bot.answered(session)
        before, began = await counts(), time.perf_counter()
        for other in at_once:
            await fake.dispatch_message(fake.message(other, "a follow-up at once", ALICE))
        await bot.wait_answered(session, done + len(at_once))
        after = await counts()
        seconds = time.perf_counter() - began
        cpu = (after[3] - before[3] - idle[3] * seconds) / len(at_once)
    row(f"Redis commands per answered follow-up ({where})", f"{sent:.1f} sent (goal <= 12), "
        f"{executed:.1f} run by Redis with scripts' bodies")  # fmt: skip
    row(f"Redis round trips per answered follow-up ({where})", f"{trips:.1f} (goal <= 3)")
    shown = f"{len(at_once)} at once" if at_once else "one at a time"
    row(f"Redis CPU per answered follow-up ({where}, INFO cpu, {shown})", f"{cpu * 1000:.2f} ms "
        "(goal <= 0.5; the server's own INFO calls included)")  # fmt: skip
    row("  liveness heartbeat, while idle", f"{idle[1]:.1f} commands, "
        f"{idle[2]:.1f} round trips a beat ({beats:.0f} beats taken out)")  # fmt: skip
    row("  Redis CPU while idle (taken out by time)", f"{idle[3] * 1000:.2f} ms a second")
    return trips


async def on_a_cluster(session: aiohttp.ClientSession, prefix: str, single: float) -> None:
    """The same follow-ups with REDIS_URL=redis+cluster:// on three local masters."""
    import tempfile
    from pathlib import Path

    from tests.fakes.processes import LocalCluster

    global REDIS_URL
    fake = FakeDiscord()
    await fake.start()
    with tempfile.TemporaryDirectory() as folder:
        cluster = LocalCluster(Path(folder))
        cluster.start()
        nodes = [aioredis.Redis(port=port) for port in cluster.ports]
        saved, REDIS_URL = REDIS_URL, cluster.url
        try:
            async with model_server(latency=0.2, words=100) as model_url:
                bot = Bot(fake, model_url, prefix)
                await bot.start()
                [thread] = await burst(fake, 1, "cluster")
                await bot.wait_answered(session, 1)
                trips = await redis_per_follow_up(
                    session, bot, fake, [thread], nodes, "three-master cluster"
                )
                row("  cluster / one node", f"{trips / single:.2f}x (goal <= 1.2x)")
                await bot.stop()
        finally:
            REDIS_URL = saved
            for node in nodes:
                await node.aclose()
            cluster.stop()
            await fake.stop()


async def concurrency(session: aiohttp.ClientSession, prefix: str, limit: str) -> None:
    """1,000 mentions at once against a slow model, with BOT_MAX_CONCURRENT_ANSWERS=`limit`."""
    fake = FakeDiscord()
    await fake.start()
    try:
        async with model_server(latency=15.0, words=100) as model_url:
            bot = Bot(fake, model_url, prefix)
            bot.env["BOT_MAX_CONCURRENT_ANSWERS"] = limit
            pid = await bot.start()
            idle = peak_rss_mb(pid)
            started = time.perf_counter()
            await burst(fake, 1000, "hold")
            peak_in_flight = 0.0
            while await bot.answered(session) + await bot.metric(
                session, "assistant_answers_total", outcome="failed"
            ) < 1000:  # fmt: skip
                peak_in_flight = max(
                    peak_in_flight, await bot.metric(session, "assistant_answers_in_flight")
                )
                await asyncio.sleep(0.5)  # sampling the gauge while the answers are held
            seconds = time.perf_counter() - started
            errors = await bot.metric(session, "assistant_redis_errors_total")
            shown = "no limit" if limit == "0" else f"BOT_MAX_CONCURRENT_ANSWERS={limit}"
            print(f"1,000 mentions at once, model 15 s to first token ({shown})")
            row("answers streaming at once, at the peak", f"{peak_in_flight:.0f}")
            row("peak RSS (idle before)", f"{peak_rss_mb(pid):.0f} MB ({idle:.0f} MB)")
            row("all answered after", f"{seconds:.0f} s")
            row("Redis calls that failed (saves lost to a saturated loop)", f"{errors:.0f}")
            await bot.stop()
    finally:
        await fake.stop()


async def main() -> None:
    global REDIS_URL
    prefix = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    REDIS_URL = f"redis://127.0.0.1:{port}/0"
    try:
        client = aioredis.Redis.from_url(REDIS_URL)
        for _ in range(100):
            try:
                await client.ping()
                break
            except (ConnectionError, OSError, aioredis.ConnectionError):
                await asyncio.sleep(0.05)  # redis-server gives no other sign that it listens
        await client.aclose()
        async with aiohttp.ClientSession() as session:
            print("Scale benchmark (`python -m bot run`, Discord fakes, a Redis node of its own)")
            single = await throughput(session, prefix)
            if os.environ.get("BENCH_SCALE_PARTS", "all") == "all":  # "one": the first part only
                await on_a_cluster(session, prefix + "c", single)
                await concurrency(session, prefix + "b", "0")
                await concurrency(session, prefix + "d", "200")
    finally:
        server.terminate()
        await server.wait()


if __name__ == "__main__":
    asyncio.run(main())
