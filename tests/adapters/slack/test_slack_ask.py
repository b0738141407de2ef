"""`/ask` through slack_bolt and the fake Slack: answered from the channel's own messages, every
claim linked, made-up ids dropped, "not found" naming what was searched."""

from __future__ import annotations

import re

from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import TEAM, FakeSlack


async def ask(slack: SlackHarness, text: str) -> list[dict]:
    before = len(slack.slack.responses)
    response = await slack.form({
        "token": "legacy", "team_id": TEAM, "channel_id": "C1", "channel_name": "general",
        "user_id": "UALICE", "user_name": "alice", "command": "/ask", "text": text,
        "response_url": slack.slack.response_url, "trigger_id": "trig",
    })  # fmt: skip
    assert response.status == 200
    return slack.slack.responses[before:]


def cite_given_and_one_made_up(body: dict) -> str:
    given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
    return f"Priya owns the billing service [{given[0]}][m42]."


async def test_ask_answers_from_the_channel_with_linked_sources(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    await slack.event(message_event("Priya owns the billing service now", "1700000000.000100"))
    await slack.event(message_event("lunch at noon?", "1700000000.000200", user="UBOB"))
    fake_openai.responder = cite_given_and_one_made_up
    [reply] = await ask(slack, "who owns the billing service?")
    assert reply["response_type"] == "ephemeral"  # only the asker sees it
    text = reply["text"]
    assert (
        text.startswith("Priya owns the billing service (<https://")
        and "p1700000000000100|1>" in text
    )
    assert "42" not in text  # the made-up id is dropped
    assert (
        "*Sources*" in text and "Alice" in text and "“Priya owns the billing service now”" in text
    )
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "Priya owns the billing service now" in prompt and "https://" not in prompt


async def test_ask_says_what_it_searched_when_nothing_is_there(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(message_event("lunch at noon?", "1700000000.000200", user="UBOB"))
    [reply] = await ask(slack, "public who owns the billing service?")
    assert reply["text"].startswith("I could not find this in #general (searched 1 message from ")
    assert fake_openai.requests == []  # no model call for nothing relevant


async def test_ask_elsewhere_is_refused_in_one_sentence_for_now(slack: SlackHarness) -> None:
    before = len(slack.slack.responses)
    response = await slack.form({
        "token": "legacy", "team_id": TEAM, "channel_id": "C1", "user_id": "UALICE",
        "command": "/ask", "text": "everywhere who owns billing?",
        "response_url": slack.slack.response_url, "trigger_id": "trig",
    })  # fmt: skip
    assert "search only the channel you ask in" in response.body
    assert slack.slack.responses[before:] == []
