"""Grounded answers: found and cited, made-up ids dropped, "not found" at each of the three gates,
and replicas that agree through the channel log in Redis."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import InvalidRequest
from bot.search.channel_search import ChannelSearch
from bot.search.grounding import Grounding
from bot.search.index import TantivyIndex
from bot.store.memory import InProcessMemory
from bot.summaries.channel_log import InProcessChannelLog, LogWindow, RedisChannelLog
from bot.summaries.sources import SourceMessage
from bot.tokens import EstimatingCounter
from tests.conftest import openai_model
from tests.fakes.openai_server import FakeOpenAI

C1, C2 = "slack:T1:C1", "slack:T1:C2"
NOW = datetime.now(UTC)


def said(n: int, text: str, author: str = "Mina") -> SourceMessage:
    return SourceMessage(f"1700000000.{n:06d}", author, text, NOW - timedelta(hours=10 - n),
                         link=f"https://team.slack.com/archives/C1/p{n}")  # fmt: skip


def citing(*labels: str):  # type: ignore[no-untyped-def]
    """A model that cites what it was given (and, on purpose, an id it was not)."""

    def answer(body: dict) -> str:
        given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
        return "Priya owns the billing service " + "".join(f"[{x}]" for x in labels or given) + "."

    return answer


async def grounding(fake_openai: FakeOpenAI, *messages: SourceMessage) -> Grounding:
    log = InProcessChannelLog(retention_seconds=7 * 86_400, max_messages=1000)
    for message in messages:
        await log.record(C1, message)
    model = openai_model(fake_openai)
    return Grounding(ChannelSearch(log), model, EngineConfig(), lambda payer: _nothing())


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_an_answer_cites_its_sources_and_drops_an_id_it_made_up(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.responder = citing("m1", "m9")  # m9 was never given
    ask = await grounding(fake_openai, said(1, "Priya owns the billing service since March"),
                          said(2, "lunch at noon?"))  # fmt: skip
    answer = await ask.ask("who owns the billing service?", channels=[C1], where="#general")
    assert answer.found
    assert answer.text.startswith(
        "Priya owns the billing service ([1](https://team.slack.com/archives/C1/p1))."
    )
    assert "[2]" not in answer.text and "m9" not in answer.text
    assert (
        "**Sources**\n1. [Mina," in answer.text and "“Priya owns the billing service" in answer.text
    )
    assert [s.message_id for s in answer.cited] == [said(1, "").message_id]


async def test_nothing_relevant_means_not_found_without_a_model_call(
    fake_openai: FakeOpenAI,
) -> None:
    ask = await grounding(fake_openai, said(1, "lunch at noon?"), said(2, "the build is green"))
    answer = await ask.ask("who owns the billing service?", channels=[C1], where="#general")
    assert not answer.found and fake_openai.requests == []
    assert answer.text.startswith("I could not find this in #general (searched 2 messages from ")
    assert "to today)" in answer.text


async def test_the_model_saying_not_found_and_an_answer_citing_nothing_are_not_shown(
    fake_openai: FakeOpenAI,
) -> None:
    ask = await grounding(fake_openai, said(1, "the billing service moves to Grafana"))
    fake_openai.responder = lambda body: "NOT FOUND"
    answer = await ask.ask("who owns the billing service?", channels=[C1], where="#general")
    assert not answer.found and "The closest I found: [Mina," in answer.text
    fake_openai.responder = lambda body: "Priya owns it, I am quite sure."  # no citation
    answer = await ask.ask("who owns the billing service?", channels=[C1], where="#general")
    assert not answer.found and "I could not find this in #general" in answer.text
    fake_openai.responder = citing("m7")  # only made-up ids
    answer = await ask.ask("who owns the billing service?", channels=[C1], where="#general")
    assert not answer.found


async def test_a_message_logged_by_one_replica_is_found_by_another_and_a_deletion_is_not(
    fake_openai: FakeOpenAI, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    def log() -> RedisChannelLog:
        return RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                               max_messages=1000)  # fmt: skip

    one, other = ChannelSearch(log()), ChannelSearch(log())
    await one.log.record(C1, said(1, "the staging database belongs to Bob"))
    assert (await other.retrieve("who has the staging database?", [C1])).found
    await one.log.record(C1, said(2, "Priya runs the deploy train on Fridays"))  # later
    hits = (await other.retrieve("who runs the deploy train?", [C1])).hits
    assert hits[0].message.id == said(2, "").message_id  # caught up before answering
    await one.log.remove(C1, said(2, "").message_id)  # deleted on the platform
    hits = (await other.retrieve("who runs the deploy train?", [C1])).hits
    assert all(h.message.id != said(2, "").message_id for h in hits)


async def test_without_a_channel_log_the_engine_says_there_is_nothing_to_search(
    fake_openai: FakeOpenAI,
) -> None:
    engine = ConversationEngine(InProcessMemory(), openai_model(fake_openai), EstimatingCounter())
    with pytest.raises(InvalidRequest, match="BOT_CHANNEL_LOG_DAYS is 0"):
        await engine.ask("who owns billing?", channels=[C1], where="#general")


class CommitWatched(TantivyIndex):
    """The index, noting which thread each commit ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.committed_on: list[threading.Thread] = []

    def commit(self) -> None:
        self.committed_on.append(threading.current_thread())
        super().commit()


async def test_commits_run_off_the_event_loop_while_messages_keep_coming() -> None:
    index = CommitWatched()
    log = InProcessChannelLog(retention_seconds=7 * 86_400, max_messages=1000)
    search = ChannelSearch(log, index=index)
    for n in range(50):
        await search.log.record(C1, said(n, f"release {n} shipped on time"))

    async def meanwhile(n: int) -> None:  # a new message while others are asked about
        await search.log.record(C1, said(100 + n, f"release {100 + n} shipped late"))

    found = await asyncio.gather(
        *(search.retrieve(f"when did release {n} ship?", [C1]) for n in range(20)),
        *(meanwhile(n) for n in range(20)),
    )
    assert all(f is not None and f.found for f in found[:20])
    assert index.committed_on and threading.main_thread() not in index.committed_on
    later = await search.retrieve("which release shipped late?", [C1])
    assert later.hits and "late" in later.hits[0].message.text  # every message made it in


class HeldUp(InProcessChannelLog):
    """A log whose reads of one channel wait until let go (a slow Redis, for that channel)."""

    def __init__(self, slow: str) -> None:
        super().__init__(retention_seconds=7 * 86_400, max_messages=1000)
        self.slow, self.reading, self.go_on = slow, asyncio.Event(), asyncio.Event()

    async def read(self, channel: str, *, since: datetime | None, most: int) -> LogWindow:
        if channel == self.slow:
            self.reading.set()
            await self.go_on.wait()
        return await super().read(channel, since=since, most=most)


async def test_a_channel_slow_to_read_holds_up_no_question_about_another() -> None:
    """Catch-ups of different channels go side by side: fifty first questions in fifty new
    channels waited for each other's reads of Redis, one after another."""
    log = HeldUp(slow=C2)
    search = ChannelSearch(log)
    await log.record(C1, said(1, "the staging database belongs to Bob"))
    await log.record(C2, said(2, "Priya runs the deploy train"))
    slow = asyncio.create_task(search.retrieve("who runs the deploy train?", [C2]))
    await log.reading.wait()
    async with asyncio.timeout(5):  # were it behind C2's read, it would wait for ever
        found = await search.retrieve("who has the staging database?", [C1])
    assert found.found and not slow.done()
    log.go_on.set()
    assert (await slow).found
