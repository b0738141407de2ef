"""When Redis lost the memory of a thread, Slack is the truth about whether the bot is in it."""

from __future__ import annotations

from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_ID, BOT_USER, FakeSlack

ROOT = "1700000000.002000"


async def test_a_follow_up_where_the_bot_replied_is_answered_after_memory_was_lost(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.add_message("C1", ROOT, f"<@{BOT_USER}> who owns staging?", "UALICE")
    fake_slack.add_message("C1", "1700000000.002100", "Bob does.", BOT_USER, ROOT, bot_id=BOT_ID)
    follow_up = fake_slack.add_message("C1", "1700000000.002200", "since when?", "UALICE", ROOT)
    # memory of the thread is gone (Redis restarted empty): the prefix holds nothing
    await slack.event(message_event(follow_up["text"], follow_up["ts"], thread_ts=ROOT))
    assert len(fake_slack.called("conversations.replies")) == 1  # read once, not twice
    prompt = "\n".join(str(m["content"]) for m in fake_openai.requests[0]["messages"])
    assert "Alice: who owns staging?" in prompt and "Bob does." in prompt
    assert slack.thread_texts()[-1] == "echo: Alice: since when?"
    # from now on memory knows the thread again: no more reading
    await slack.event(message_event("and who before?", "1700000000.002300", thread_ts=ROOT))
    assert len(fake_slack.called("conversations.replies")) == 1
    assert len(fake_openai.requests) == 2


async def test_chatter_in_a_thread_without_the_bot_asks_slack_once(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.add_message("C1", ROOT, "lunch?", "UBOB")
    for n, text in enumerate(["sure", "where?", "the usual"]):
        ts = f"1700000000.00{2100 + n}"
        fake_slack.add_message("C1", ts, text, "UALICE", ROOT)
        await slack.event(message_event(text, ts, thread_ts=ROOT))
    assert len(fake_slack.called("conversations.replies")) == 1  # the answer "no" is cached
    assert fake_openai.requests == [] and slack.slack.called("chat.postMessage") == []


async def test_a_mention_in_a_thread_once_found_without_the_bot_is_answered(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.add_message("C1", ROOT, "lunch?", "UBOB")
    await slack.event(message_event("sure", "1700000000.002100", thread_ts=ROOT))
    ts = "1700000000.002200"
    await slack.event(
        message_event(f"<@{BOT_USER}> where?", ts, thread_ts=ROOT, kind="app_mention")
    )
    await slack.event(message_event("thanks", "1700000000.002300", thread_ts=ROOT))
    assert len(fake_openai.requests) == 2  # the mention, and the follow-up without one


async def test_a_thread_begun_since_redis_kept_its_data_costs_no_api_call(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    slack.core.engine.memory.remembers_since = 1_600_000_000.0  # long before these threads
    fake_slack.add_message("C1", ROOT, "lunch?", "UBOB")
    await slack.event(message_event("sure", "1700000000.002100", thread_ts=ROOT))
    assert fake_slack.called("conversations.replies") == []  # memory would know it: no need
    assert fake_openai.requests == []
