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


def rooms(fake: FakeSlack) -> None:
    """C1 (asked in) and C3 are public; C2 is private, Bob's and the bot's only."""
    for channel, private in (("C1", False), ("C2", True), ("C3", False)):
        fake.channel_info[channel] = {"id": channel, "name": channel.lower(), "is_channel": True,
                                      "is_private": private, "is_member": True}  # fmt: skip
    fake.members["C2"] = ["UBOB", "UBOT"]


async def seed(slack: SlackHarness) -> None:
    await slack.event(message_event("the billing service belongs to Priya", "1700000000.000100"))
    await slack.event(message_event("billing secret: layoffs in the billing service team",
                                    "1700000000.000200", channel="C2", user="UBOB"))  # fmt: skip
    await slack.event(message_event("billing service runbook is in the wiki", "1700000000.000300",
                                    channel="C3", user="UBOB"))  # fmt: skip


async def test_another_channel_the_asker_cannot_read_is_never_searched(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    rooms(fake_slack)
    await seed(slack)
    [reply] = await ask(slack, "in:<#C2|secret-room> what about the billing service?")
    assert reply["text"] == "You cannot read #secret-room, so I will not search it for you."
    assert fake_openai.requests == []


async def test_everywhere_searches_only_what_the_asker_can_read(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    rooms(fake_slack)
    await seed(slack)
    fake_openai.responder = cite_given_and_one_made_up
    [reply] = await ask(slack, "everywhere who owns the billing service?")
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "belongs to Priya" in prompt and "runbook" in prompt  # C1 and public C3
    assert "layoffs" not in prompt  # private C2, which Alice is not in, never reaches the model
    assert reply["response_type"] == "ephemeral"


async def test_a_public_answer_drawing_on_a_private_channel_goes_to_the_asker_only(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    rooms(fake_slack)
    fake_slack.members["C2"] = ["UBOB", "UBOT", "UALICE"]  # Alice may read it; not everyone here
    await seed(slack)
    fake_openai.responder = cite_given_and_one_made_up
    [reply] = await ask(slack, "public in:<#C2|secret-room> what about the billing service?")
    assert reply["response_type"] == "ephemeral"  # the audience rule
    assert reply["text"].startswith("_Only you see this: it draws on channels not everyone here")
    [reply] = await ask(slack, "public in:<#C3|c3> where is the billing service runbook?")
    assert reply["response_type"] == "in_channel"  # a public channel: anyone here can read it


async def test_an_edited_message_is_found_by_its_new_text_on_another_replica(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    from bot.search.channel_search import ChannelSearch

    await slack.event(message_event("Priya owns the billing service", "1700000000.000100"))
    other = ChannelSearch(slack.core.channel_log)  # a second replica's index of the same log
    assert (await other.retrieve("who owns billing service", ["slack:T1:C1"])).found
    edited = {
        "type": "message", "subtype": "message_changed", "channel": "C1", "hidden": True,
        "ts": "1700000000.000900", "event_ts": "1700000000.000900", "channel_type": "channel",
        "message": {"type": "message", "user": "UALICE", "ts": "1700000000.000100",
                    "text": "Tomás owns the invoicing service",
                    "edited": {"user": "UALICE", "ts": "1700000000.000900"}},
        "previous_message": {"type": "message", "user": "UALICE", "ts": "1700000000.000100",
                             "text": "Priya owns the billing service"},
    }  # fmt: skip
    await slack.event(edited)
    assert fake_openai.requests == []  # an edit is never answered
    found = await other.retrieve("who owns the invoicing service", ["slack:T1:C1"])
    assert found.found and found.hits[0].message.text == "Tomás owns the invoicing service"
    stale = await other.retrieve("billing service Priya", ["slack:T1:C1"])
    assert all("Priya" not in hit.message.text for hit in stale.hits)
    unfurl = {**edited, "message": {**edited["message"], "text": "Tomás owns the invoicing service",
              "attachments": [{"title": "preview"}]},
              "previous_message": {**edited["message"]}}  # fmt: skip
    await slack.event(unfurl)  # the text as it was: nothing logged again
    window = await slack.core.channel_log.read("slack:T1:C1", since=None, most=100)
    assert [m.text for m in window.messages] == ["Tomás owns the invoicing service"]


async def test_a_channel_the_bot_joins_is_searchable_at_once_from_its_history(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    import time

    from tests.fakes.slack_server import BOT_USER

    now = time.time()
    fake_slack.add_message("C1", f"{now - 3600:.6f}", "Priya owns the billing service", "UBOB")
    fake_slack.add_message("C1", f"{now - 30 * 86_400:.6f}", "billing: an old rumour", "UBOB")
    fake_slack.add_message("C1", f"{now - 600:.6f}", "Deploy done", "UBOB", bot_id="B1",
                           subtype="bot_message")  # fmt: skip
    joined = {"type": "member_joined_channel", "user": BOT_USER, "channel": "C1",
              "channel_type": "C", "team": TEAM, "event_ts": f"{now:.6f}"}  # fmt: skip
    await slack.event(joined)
    await slack.event(joined)  # delivered again: nothing is logged twice
    window = await slack.core.channel_log.read("slack:T1:C1", since=None, most=100)
    assert [m.text for m in window.messages] == ["Priya owns the billing service"]
    fake_openai.responder = cite_given_and_one_made_up
    [reply] = await ask(slack, "who owns the billing service?")
    assert "Priya owns the billing service" in reply["text"]
