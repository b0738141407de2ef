"""The map-reduce summarizer against the local model server, scripted to act as a summarizer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.kv import InProcessNotes
from bot.summaries.sources import SourceMessage, dominant_language
from bot.summaries.summarizer import EMPTY, Summarizer, SummaryConfig
from bot.summaries.summary_store import SummaryStore
from bot.tokens import EstimatingCounter
from tests.conftest import openai_model
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.summarizer_model import summarizer

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def messages(count: int, *, korean_every: int = 0, words: int = 20) -> list[SourceMessage]:
    found = []
    for n in range(count):
        korean = korean_every and n % korean_every == 0
        text = (
            ("회의 내용을 정리했습니다 " * (words // 3))
            if korean
            else ("we discussed the plan " * (words // 4))
        )
        found.append(
            SourceMessage(
                message_id=f"{1700000000 + n}.000100",
                author=["Alice", "Bob", "민지"][n % 3],
                text=f"{text} #{n}",
                at=START + timedelta(minutes=n),
                link=f"https://team.slack.com/archives/C1/p{1700000000 + n}000100",
            )
        )
    return found


@pytest.fixture
async def tool(fake_openai: FakeOpenAI):
    fake_openai.responder = summarizer
    model = openai_model(fake_openai)
    yield lambda **config: Summarizer(model, EstimatingCounter(), SummaryConfig(**config))
    await model.aclose()


async def test_short_conversation_is_one_call_with_resolved_citations(tool, fake_openai) -> None:
    sources = messages(5)
    summary = await tool(budget=4000).summarize(sources)
    assert (summary.model_calls, summary.chunks, summary.depth) == (1, 1, 0)
    assert summary.text.startswith("The team talked.")
    link = sources[0].link
    assert f"point one ([1]({link})" in summary.text
    assert "m99999" not in summary.text and "invented" in summary.text  # the made-up id is gone
    assert [s.message_id for s in summary.cited] == [s.message_id for s in sources[:3]]
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert (
        prompt.startswith("[m1] Alice: we discussed") and "http" not in prompt
    )  # no links for the model


async def test_long_transcript_is_chunked_and_merged_by_levels(tool, fake_openai) -> None:
    sources = messages(600, words=40)
    summary = await tool(budget=2000, note_tokens=200, concurrency=3).summarize(sources)
    assert summary.chunks > 10
    assert summary.depth >= 1
    chunk_calls = [
        r
        for r in fake_openai.requests
        if r["messages"][0]["content"].startswith("You read one part")
    ]
    merge_calls = [
        r for r in fake_openai.requests if r["messages"][0]["content"].startswith("You merge notes")
    ]
    assert len(chunk_calls) == summary.chunks
    assert summary.model_calls == len(chunk_calls) + len(merge_calls) + 1
    every_id = "".join(r["messages"][1]["content"] for r in chunk_calls)
    assert all(f"[m{i}]" in every_id for i in range(1, 601))  # each message read exactly once...
    assert sum(every_id.count(f"[m{i}] ") for i in range(1, 601)) == 600
    assert fake_openai.max_in_flight <= 3  # ...with at most `concurrency` calls at once
    # the ids cited by chunk notes survive the merges and become links in the final text
    assert f"({sources[0].message_id[:4]}" not in summary.text and "[1](https://" in summary.text


async def test_prompt_tokens_grow_linearly(tool) -> None:
    counter = EstimatingCounter()
    small = await tool(budget=3000, note_tokens=150).summarize(messages(200, words=40))
    large = await tool(budget=3000, note_tokens=150).summarize(messages(800, words=40))
    # the transcript as the model reads it: "[m12] Alice: text" per message
    transcript = sum(
        counter.count(f"[m{i}] {m.author}: {m.text}") + 4
        for i, m in enumerate(messages(800, words=40), start=1)
    )
    assert large.prompt_tokens <= 1.3 * transcript
    assert large.prompt_tokens / small.prompt_tokens < 4.6  # 4x the messages, about 4x the tokens


async def test_language_follows_the_conversation(tool, fake_openai) -> None:
    summary = await tool(budget=4000).summarize(messages(9, korean_every=1))
    assert "write in Korean" in fake_openai.requests[-1]["messages"][0]["content"]
    assert summary.text.startswith("요약입니다.")
    await tool(budget=4000).summarize(messages(9))
    assert (
        "most of the messages are written in" in fake_openai.requests[-1]["messages"][0]["content"]
    )


def test_dominant_language_by_script() -> None:
    assert dominant_language(["안녕하세요", "회의는 3시", "ok"]) == "Korean"
    assert dominant_language(["これは日本語です", "会議"]) == "Japanese"
    assert dominant_language(["hello", "bonjour"]) is None
    assert dominant_language([]) is None


async def test_empty_window_calls_no_model(tool, fake_openai) -> None:
    summary = await tool().summarize([])
    assert summary.text == EMPTY and fake_openai.requests == []


async def test_oversize_window_says_what_it_covers(tool, fake_openai) -> None:
    summary = await tool(budget=4000, max_messages=50).summarize(messages(120))
    assert (summary.covered, summary.total) == (50, 120)
    first_line = summary.text.split("\n")[0]
    assert first_line.startswith(
        "_This window has more than 50 messages, more than I summarize at once; "
        "this summary covers the latest 50 ("
    )
    assert " UTC)._" in summary.text.split("\n")[0]
    assert "#70" in fake_openai.requests[0]["messages"][1]["content"]
    assert "#69 " not in fake_openai.requests[0]["messages"][1]["content"]


async def test_cache_hit_costs_no_model_call(memory, model, fake_openai) -> None:
    from bot.engine import ConversationEngine

    fake_openai.responder = summarizer
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), summaries=SummaryStore(InProcessNotes())
    )
    sources = messages(6)
    first = await engine.summarize_sources(sources, scope="slack:T1:C1")
    again = await engine.summarize_sources(sources, scope="slack:T1:C1")
    assert again.text == first.text and len(fake_openai.requests) == 1
    await engine.summarize_sources([*sources, *messages(7)[6:]], scope="slack:T1:C1")
    assert len(fake_openai.requests) == 2  # something new: a new summary


async def test_since_marks_where_the_last_summary_ended(memory, model, fake_openai) -> None:
    from bot.engine import ConversationEngine

    fake_openai.push(Reply(text="ok"))
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), summaries=SummaryStore(InProcessNotes())
    )
    sources = messages(4)
    assert await engine.summary_since("slack:T1:C1", "UALICE") is None
    await engine.summarize_sources(sources, scope="slack:T1:C1", requester="UALICE")
    assert await engine.summary_since("slack:T1:C1", "UALICE") == sources[-1].at
    assert await engine.summary_since("slack:T1:C1", "UBOB") is None


async def test_merging_that_does_not_shrink_still_ends(tool, fake_openai) -> None:
    def stubborn(request):
        if request["messages"][0]["content"].startswith("You merge notes"):
            return Reply(text=request["messages"][1]["content"])  # as long as what it was given
        return summarizer(request)

    fake_openai.responder = stubborn
    summary = await tool(budget=2000, note_tokens=200).summarize(messages(600, words=40))
    assert 1 <= summary.depth <= 6 and summary.text.startswith("The team talked.")
    final = fake_openai.requests[-1]
    assert final["messages"][0]["content"].startswith("You summarize")
    assert EstimatingCounter().count(final["messages"][1]["content"]) <= 2000
