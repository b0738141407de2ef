"""The assistant pane driven through slack_bolt's AsyncAssistant against the fake Slack."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack.assistant import GREETING, NO_CHANNEL, NOT_READABLE
from tests.adapters.slack.conftest import SlackHarness, make_harness, message_event
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import TEAM, FakeSlack
from tests.fakes.summarizer_model import summarizer

PANE = "D1"
THREAD = "1700000500.000100"


@pytest.fixture
async def pane(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> AsyncIterator[SlackHarness]:
    harness = await make_harness(fake_openai, fake_slack, clean_prefix, SLACK_STREAMING="auto")
    yield harness
    await harness.close()


def opened(channel: str = "C1", event: str = "assistant_thread_started") -> dict[str, Any]:
    return {"type": event, "event_ts": "1700000500.000200",
            "assistant_thread": {"user_id": "UALICE", "channel_id": PANE, "thread_ts": THREAD,
                                 "context": {"channel_id": channel, "team_id": TEAM,
                                             "enterprise_id": None}}}  # fmt: skip


def asked(text: str, n: int = 1) -> dict[str, Any]:
    return message_event(text, f"1700000500.{n:06d}", channel=PANE, channel_type="im",
                         thread_ts=THREAD)  # fmt: skip


def calls(fake: FakeSlack, name: str) -> list[dict[str, Any]]:
    return [params for method, params in fake.assistant_calls if method == name]


async def test_opening_the_pane_greets_once_with_suggested_prompts(
    pane: SlackHarness, fake_slack: FakeSlack
) -> None:
    await pane.event(opened(), event_id="EvOpen")
    await pane.event(opened(), event_id="EvOpen", **{"x-slack-retry-num": "1"})  # Slack's retry
    assert [m["text"] for m in fake_slack.bot_messages(PANE)] == [GREETING]
    [prompts] = calls(fake_slack, "setSuggestedPrompts")
    titles = [p["title"] for p in prompts["prompts"]]
    assert titles == ["Summarize this channel", "What did I miss?"]


async def test_a_question_in_the_pane_gets_a_title_a_status_and_a_native_stream(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    await pane.event(opened())
    fake_openai.push(Reply(text="Use **git bisect**."))
    await pane.event(asked("How do I find the commit that broke the build?"))
    [title] = calls(fake_slack, "setTitle")
    assert title["title"] == "How do I find the commit that broke the build?"
    status = calls(fake_slack, "setStatus")[0]
    assert status["status"] == "is thinking…" and status["thread_ts"] == THREAD
    [start] = fake_slack.called("chat.startStream")
    assert (start["channel"], start["thread_ts"]) == (PANE, THREAD)
    assert fake_slack.bot_messages(PANE)[-1]["text"] == "Use **git bisect**."
    fake_openai.push(Reply(text="Then test each step."))
    await pane.event(asked("and then?", 2))
    assert len(calls(fake_slack, "setTitle")) == 1  # titled once, by the first question
    assert "How do I find the commit" in str(fake_openai.requests[-1]["messages"])


async def seed_channel(pane: SlackHarness, channel: str, texts: list[str]) -> None:
    start = time.time() - 600
    for n, text in enumerate(texts):
        ts = f"{start + n:.6f}"
        pane.slack.add_message(channel, ts, text, "UBOB")
        await pane.event(message_event(text, ts, user="UBOB", channel=channel))


async def test_summarize_this_channel_follows_the_channel_being_looked_at(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_openai.responder = summarizer
    fake_slack.channel_info["C2"] = {"id": "C2", "is_channel": True, "is_member": True}
    await seed_channel(pane, "C2", ["the release moves to friday", "QA signs off thursday"])
    await pane.event(opened("C1"))
    await pane.event(opened("C2", "assistant_thread_context_changed"), event_id="EvMoved")
    await pane.event(asked("Summarize this channel"))
    summary = fake_slack.bot_messages(PANE)[-1]["text"]
    assert "https://team.slack.com/archives/C2/p" in summary  # cited from C2, the new context
    assert "release moves to friday" in fake_openai.requests[-1]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("info", "members"),
    [
        ({"id": "C3", "is_channel": True, "is_member": False}, None),  # the bot is not in it
        ({"id": "C3", "is_group": True, "is_private": True, "is_member": True}, ["UBOB"]),
        ({"id": "C3", "is_im": True, "is_member": True}, ["UBOB", "UCAROL"]),
    ],
    ids=["bot not a member", "private, asker not a member", "someone else's DM"],
)
async def test_a_channel_the_asker_cannot_read_is_never_summarized(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, info: dict, members
) -> None:
    fake_slack.channel_info["C3"] = info
    if members is not None:
        fake_slack.members["C3"] = members
    await seed_channel(pane, "C3", ["secret plans"])
    await pane.event(opened("C3"))
    await pane.event(asked("Summarize this channel"))
    assert fake_slack.bot_messages(PANE)[-1]["text"] == NOT_READABLE
    assert fake_openai.requests == []


async def test_a_private_channel_both_are_in_is_summarized(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_openai.responder = summarizer
    fake_slack.channel_info["C4"] = {"id": "C4", "is_group": True, "is_private": True,
                                     "is_member": True}  # fmt: skip
    fake_slack.members["C4"] = ["UBOB", "UALICE"]
    await seed_channel(pane, "C4", ["budget approved"])
    await pane.event(opened("C4"))
    await pane.event(asked("What did I miss?"))
    assert "budget approved" in fake_openai.requests[-1]["messages"][1]["content"]


async def test_without_a_channel_in_view_it_says_how_to_get_one(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    await pane.event(asked("Summarize this channel"))  # no assistant_thread_started seen
    assert fake_slack.bot_messages(PANE)[-1]["text"] == NO_CHANNEL


async def test_a_pane_opened_without_a_channel_asks_to_be_opened_from_one(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    started = opened()
    started["assistant_thread"]["context"] = {}  # opened from the app's Home, or a DM
    await pane.event(started)
    await pane.event(asked("Summarize this channel"))
    assert fake_slack.bot_messages(PANE)[-1]["text"] == NO_CHANNEL
    assert calls(fake_slack, "setStatus")[-1]["status"] == ""  # nothing left "thinking"
    assert fake_openai.requests == []


async def test_a_failure_in_the_pane_clears_the_status_and_says_why(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    await pane.event(opened())
    fake_openai.push(Reply(status=500))
    await pane.event(asked("hello?"))
    assert calls(fake_slack, "setStatus")[-1]["status"] == ""
    assert fake_slack.bot_messages(PANE)[-1]["text"] == (
        "The language model is unavailable right now; please try again in a minute."
    )


async def test_pane_messages_are_answered_once(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    await pane.event(opened())
    question = asked("only once")
    await pane.event(question, event_id="EvQ")
    await pane.event(question, event_id="EvQ2")  # the same message, delivered again
    assert len(fake_openai.requests) == 1


async def test_a_question_about_this_channel_is_answered_from_its_history_with_links(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    import re

    def cite(body: dict) -> str:
        given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
        return f"QA signs off on Thursday [{given[0]}]." if given else "a general answer"

    fake_openai.responder = cite
    fake_slack.channel_info["C2"] = {"id": "C2", "is_channel": True, "is_member": True}
    await seed_channel(pane, "C2", ["the release moves to friday", "QA signs off thursday"])
    await pane.event(opened("C2"))
    await pane.event(asked("Who signs off in this channel?"))
    reply = fake_slack.bot_messages(PANE)[-1]["text"]
    assert reply.startswith("QA signs off on Thursday (<https://team.slack.com/archives/C2/p")
    assert "Sources" in reply
    assert calls(fake_slack, "setStatus")[0]["status"] == "is thinking…"


async def test_a_question_about_a_channel_the_asker_cannot_read_searches_nothing(
    pane: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.channel_info["C3"] = {"id": "C3", "is_group": True, "is_private": True,
                                     "is_member": True}  # fmt: skip
    fake_slack.members["C3"] = ["UBOB"]
    await seed_channel(pane, "C3", ["secret plans for the merger"])
    await pane.event(opened("C3"))
    await pane.event(asked("What are the plans in this channel?"))
    assert fake_slack.bot_messages(PANE)[-1]["text"] == NOT_READABLE
    assert fake_openai.requests == []
