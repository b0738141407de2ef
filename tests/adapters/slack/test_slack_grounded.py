"""Mentions and follow-ups grounded in the channel's history, through slack_bolt and the fake
Slack: relevant messages go into the prompt as numbered sources, the answer links what it cites
(made-up ids dropped), the asking thread is never its own source, and a question the history
says nothing about is answered as before."""

from __future__ import annotations

import re

from bot.conversation import ThreadRef
from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_USER, TEAM

MENTION_TS = "1700000100.000100"


def offered(body: dict) -> list[str]:
    """The source lines the bot offered the model (none: no history context)."""
    context = [m["content"] for m in body["messages"] if "may bear on" in str(m["content"])]
    return re.findall(r"^m\d+ — .*$", context[0], re.MULTILINE) if context else []


def cite_first_and_a_made_up_one(body: dict) -> str:
    lines = offered(body)
    if not lines:
        return "I know nothing about that."
    return f"Priya owns the billing service [{lines[0].split(' ')[0]}][m42]. Ask her."


async def test_a_mention_is_answered_from_the_channel_with_its_sources_linked(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(message_event("Priya owns the billing service now", "1700000000.000100"))
    await slack.event(message_event("lunch at noon?", "1700000000.000200", user="UBOB"))
    fake_openai.responder = cite_first_and_a_made_up_one
    mention = f"<@{BOT_USER}> who owns the billing service?"
    await slack.event(message_event(mention, MENTION_TS, kind="app_mention"))
    [answer] = slack.thread_texts()
    assert answer.startswith("Priya owns the billing service (<https://")
    assert "p1700000000000100|1>" in answer and "42" not in answer
    assert "*Sources*" in answer and "“Priya owns the billing service now”" in answer
    [line] = offered(fake_openai.requests[-1])  # lunch is not relevant; the question is not
    assert "Priya owns the billing service now" in line and "https://" not in line
    turns = (await slack.core.engine.read(ThreadRef("slack", TEAM, "C1", MENTION_TS))).turns
    assert turns[-1].text == "Priya owns the billing service. Ask her."  # remembered without ids


async def test_a_question_the_history_says_nothing_about_is_answered_as_before(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(message_event("lunch at noon?", "1700000000.000200", user="UBOB"))
    fake_openai.responder = cite_first_and_a_made_up_one
    mention = f"<@{BOT_USER}> what is the capital of Peru?"
    await slack.event(message_event(mention, MENTION_TS, kind="app_mention"))
    assert slack.thread_texts() == ["I know nothing about that."]
    assert offered(fake_openai.requests[-1]) == []


async def test_a_follow_up_never_cites_its_own_thread(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(message_event("the billing service moved to Priya", "1700000000.000100"))
    fake_openai.responder = cite_first_and_a_made_up_one
    mention = f"<@{BOT_USER}> the billing service: who owns it?"
    await slack.event(message_event(mention, MENTION_TS, kind="app_mention"))
    follow_up = message_event(
        "and the billing service on-call?", "1700000100.000300", thread_ts=MENTION_TS
    )
    await slack.event(follow_up)
    lines = offered(fake_openai.requests[-1])
    assert lines and all("who owns it" not in line for line in lines)  # the thread's own
    assert all("on-call" not in line for line in lines)  # nor the question itself
