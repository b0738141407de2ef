"""The conversation engine end to end: real memory, the real openai SDK, the local model server."""

from __future__ import annotations

import asyncio
import re
from contextlib import aclosing
from datetime import date

import pytest

from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import Fenced, InvalidRequest, ModelRateLimited
from bot.store.memory import InProcessMemory
from bot.summaries.summarizer import EMPTY as EMPTY_THREAD
from bot.tokens import EstimatingCounter, count_prompt
from tests.fakes.openai_server import FakeOpenAI, Reply, last_user_text

THREAD = ThreadRef("slack", "T1", "C1", "1700000000.000100")


def msg(
    text: str, author: str = "Alice", n: int = 0, thread: ThreadRef = THREAD
) -> IncomingMessage:
    return IncomingMessage(
        thread=thread,
        text=text,
        author_id=f"U-{author}",
        author_name=author,
        message_id=f"{author}-{n}-{abs(hash(text)) % 10_000}",
    )


async def ask(engine: ConversationEngine, message: IncomingMessage) -> str:
    async with aclosing(engine.answer(message)) as deltas:
        return "".join([d async for d in deltas])


def all_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


def remembering(request: dict) -> str:
    """A model that answers from what the conversation (or its summary) says, not from the
    channel history offered beside it (bot.search.grounding.CONTEXT)."""
    system = request["messages"][0]["content"]
    if "running summary" in system:  # a fold: keep the sentences with facts in them
        facts = re.findall(r"[^.\n]*(?:code is|name is)[^.\n]*", all_text(request))
        return ". ".join(dict.fromkeys(f.strip() for f in facts)) or "small talk"
    question = last_user_text(request)
    conversation = [m for m in request["messages"][:-1] if "may bear on" not in str(m["content"])]
    earlier = all_text({"messages": conversation})
    if "name?" in question:
        found = re.search(r"my name is (\w+)", earlier)
        return f"Your name is {found.group(1)}." if found else "I do not know your name."
    if "code?" in question:
        found = re.search(r"code is (\d+)", earlier)
        return f"The code is {found.group(1)}." if found else "I do not know the code."
    return "Noted."


async def test_second_question_depends_on_the_first(engine, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = remembering
    assert await ask(engine, msg("Hi, my name is Mina.", n=1)) == "Noted."
    assert await ask(engine, msg("What is my name?", n=2)) == "Your name is Mina."
    state = await engine.read(THREAD)
    assert [t.role for t in state.turns] == ["user", "assistant", "user", "assistant"]


async def test_three_person_thread_labels_every_author(engine, fake_openai: FakeOpenAI) -> None:
    await engine.observe(msg("The release is on Friday.", "Bob", 1))
    await engine.observe(msg("I will write the notes.", "Carol", 2))
    await ask(engine, msg("Who writes the notes?", "Alice", 3))
    request = fake_openai.requests[-1]
    users = [m["content"] for m in request["messages"] if m["role"] == "user"]
    # consecutive user turns are merged: strict chat templates reject two in a row
    assert users == [
        "Bob: The release is on Friday.\n"
        "Carol: I will write the notes.\n"
        "Alice: Who writes the notes?"
    ]


async def test_system_prompt_states_date_honesty_and_language(memory, model, fake_openai) -> None:
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), today=lambda: date(2026, 11, 28)
    )
    await ask(engine, msg("안녕하세요, 오늘 회의 있나요?"))
    system = fake_openai.requests[-1]["messages"][0]["content"]
    assert "Saturday 28 November 2026" in system
    assert "say so plainly" in system
    assert "Korean" in system and "language" in system


async def test_long_thread_stays_in_budget_and_keeps_its_beginning(
    memory, model, fake_openai
) -> None:
    fake_openai.responder = remembering
    budget = 1200
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), EngineConfig(max_prompt_tokens=budget)
    )
    counter = EstimatingCounter()
    await ask(engine, msg("Remember this: the code is 4417.", n=0))
    filler = "We talked about the weather, lunch options and the parking situation at length. " * 3
    for n in range(1, 80):
        await ask(engine, msg(f"{filler} ({n})", "Bob" if n % 2 else "Alice", n))
        request = fake_openai.requests[-1]
        if "running summary" not in request["messages"][0]["content"]:
            assert engine.last_plan is not None and engine.last_plan.tokens <= budget
            assert count_prompt(counter, [m["content"] for m in request["messages"]]) <= budget
    answer = await ask(engine, msg("What was the code?", n=99))
    assert answer == "The code is 4417."
    last = fake_openai.requests[-1]
    assert "the code is 4417" not in all_text({"messages": last["messages"][2:]})  # turn is gone...
    assert "4417" in last["messages"][1]["content"]  # ...but the rolling summary kept it
    state = await engine.read(THREAD)
    assert "4417" in state.summary


async def test_concurrent_messages_are_answered_in_order(engine, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda r: Reply(
        text=f"answer to {last_user_text(r).split(': ')[-1]}", token_delay=0.01
    )
    questions = [msg(f"q{n}", n=n) for n in range(4)]
    answers = await asyncio.gather(*(ask(engine, q) for q in questions))
    assert answers == [f"answer to q{n}" for n in range(4)]
    for n, request in enumerate(fake_openai.requests):
        text = all_text(request)
        assert f"Alice: q{n}" in text
        for earlier in range(n):  # each one saw every earlier question and answer
            assert f"q{earlier}" in text and f"answer to q{earlier}" in text
    turns = (await engine.read(THREAD)).turns
    assert [t.text for t in turns] == [x for n in range(4) for x in (f"q{n}", f"answer to q{n}")]


async def test_failed_answer_keeps_the_question_and_no_half_answer(engine, fake_openai) -> None:
    fake_openai.push(Reply(text="a b c d", break_after=2))
    partial: list[str] = []
    with pytest.raises(Exception) as caught:
        async with aclosing(engine.answer(msg("Will this work?"))) as deltas:
            async for delta in deltas:
                partial.append(delta)
    assert "".join(partial) == "a b"
    assert "unavailable" in caught.value.user_message()  # type: ignore[attr-defined]
    turns = (await engine.read(THREAD)).turns
    assert [(t.role, t.text) for t in turns] == [("user", "Will this work?")]


async def test_rate_limited_answer_saves_the_question(engine, fake_openai) -> None:
    fake_openai.push(Reply(status=429, headers={"Retry-After": "3"}))
    with pytest.raises(ModelRateLimited):
        await ask(engine, msg("hello?"))
    assert [t.text for t in (await engine.read(THREAD)).turns] == ["hello?"]


async def test_abandoned_answer_saves_only_the_question(engine, fake_openai) -> None:
    fake_openai.push(Reply(text="one two three four"))
    async with aclosing(engine.answer(msg("stop early"))) as deltas:
        async for _ in deltas:
            break
    assert [t.role for t in (await engine.read(THREAD)).turns] == ["user"]


async def test_empty_message_is_refused_with_a_sentence(engine, fake_openai) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await ask(engine, msg("   "))
    assert "empty" in caught.value.user_message()
    assert fake_openai.requests == []


async def test_huge_message_is_shortened_to_fit(memory, model, fake_openai) -> None:
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), EngineConfig(max_prompt_tokens=1000)
    )
    await ask(engine, msg("word " * 30_000))
    request = fake_openai.requests[-1]
    assert count_prompt(EstimatingCounter(), [m["content"] for m in request["messages"]]) <= 1000
    assert "shortened to fit" in request["messages"][-1]["content"]


async def test_observed_messages_are_not_answered(engine, fake_openai) -> None:
    await engine.observe(msg("just chatting", "Bob"))
    assert fake_openai.requests == []
    assert await engine.knows(THREAD)


async def test_summary_of_empty_thread_calls_no_model(engine, fake_openai) -> None:
    summary = await engine.summarize(THREAD)
    assert summary.text == EMPTY_THREAD
    assert fake_openai.requests == []


async def test_summary_reads_the_thread(engine, fake_openai) -> None:
    await engine.observe(msg("Ship on Friday.", "Bob", 1))
    await engine.observe(msg("Carol owns the notes.", "Alice", 2))
    fake_openai.push(Reply(text="Shipping Friday; Carol writes notes."))
    summary = await engine.summarize(THREAD)
    assert summary.text == "Shipping Friday; Carol writes notes."
    assert (summary.covered, summary.total) == (2, 2)
    prompt = fake_openai.requests[-1]["messages"]
    assert "Bob: Ship on Friday." in prompt[1]["content"]
    assert "Action items" in prompt[0]["content"]


async def test_deleted_message_leaves_memory(engine) -> None:
    await engine.observe(msg("oops, secret", "Bob", 1))
    state = await engine.read(THREAD)
    assert await engine.remove(THREAD, state.turns[0].message_id)
    assert (await engine.read(THREAD)).turns == ()


async def test_unreachable_store_gives_a_sentence(model, fake_openai) -> None:
    import redis.asyncio as aioredis

    from bot.errors import StoreUnavailable
    from bot.store.memory import RedisMemory

    memory = RedisMemory(aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1))
    engine = ConversationEngine(memory, model, EstimatingCounter())
    with pytest.raises(StoreUnavailable) as caught:
        await ask(engine, msg("anyone there?"))
    assert "conversation store is unavailable" in caught.value.user_message()
    assert fake_openai.requests == []
    await memory.aclose()


async def test_at_most_max_concurrent_answers_stream_at_once(
    memory, model, fake_openai: FakeOpenAI
) -> None:
    """More answers than the process takes on at once wait their turn; none is lost."""
    engine = ConversationEngine(
        memory, model, EstimatingCounter(), EngineConfig(max_prompt_tokens=2000), max_concurrent=2
    )
    fake_openai.responder = lambda request: Reply(text="done", first_token_delay=0.05)
    threads = [ThreadRef("slack", "T1", "C1", f"17000000{n}.000100") for n in range(5)]
    answers = await asyncio.gather(
        *(ask(engine, msg(f"question {n}", thread=t)) for n, t in enumerate(threads))
    )
    assert answers == ["done"] * 5
    assert fake_openai.max_in_flight == 2


class SlowSave(InProcessMemory):
    """Memory whose saves wait until let go (Redis slow to answer the save)."""

    def __init__(self) -> None:
        super().__init__()
        self.saving, self.go_on = asyncio.Event(), asyncio.Event()

    async def append(self, thread: ThreadRef, *turns: Turn, **kwargs: object) -> None:
        self.saving.set()
        await self.go_on.wait()
        await super().append(thread, *turns, **kwargs)  # type: ignore[arg-type]


async def test_the_finished_answer_is_shown_while_it_is_saved_not_after(model) -> None:
    """The last edit of an answer waited for its save's round trip to Redis; fifty answers
    ending together showed their last words 40 ms late. It goes beside the save now, and the
    answer is over only when both are."""
    memory = SlowSave()
    engine = ConversationEngine(memory, model, EstimatingCounter())
    shown = asyncio.Event()

    async def finish() -> None:
        await memory.saving.wait()  # the save is under way, and held up
        shown.set()

    async def answer() -> str:
        deltas = engine.answer(msg("hello"), reply={"channel": "C1", "ids": []}, finish=finish)
        async with aclosing(deltas):
            return "".join([d async for d in deltas])

    answering = asyncio.create_task(answer())
    async with asyncio.timeout(5):
        await shown.wait()
    assert not answering.done()  # over only once saved
    memory.go_on.set()
    assert await answering
    assert len((await memory.load(THREAD)).turns) == 2


async def test_a_save_that_finds_the_answer_taken_over_wins_over_its_last_edit(model) -> None:
    class TakenOver(InProcessMemory):
        async def append(self, thread: ThreadRef, *turns: Turn, **kwargs: object) -> None:
            raise Fenced("taken over by another process")

    async def finish() -> None:
        raise RuntimeError("the platform refused the edit")

    engine = ConversationEngine(TakenOver(), model, EstimatingCounter())
    deltas = engine.answer(msg("hello"), reply={"channel": "C1", "ids": []}, finish=finish)
    with pytest.raises(Fenced):
        async with aclosing(deltas):
            [d async for d in deltas]
