"""Channel summaries from the channel log: cited with permalinks, cached, `since`, and the
history API read only for what the log lacks."""

from __future__ import annotations

import re
import time

from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.fakes.summarizer_model import summarizer


async def chatter(slack: SlackHarness, texts: list[str], start: float | None = None) -> list[str]:
    """People talking in C1 (no mention): logged by the bot, not answered."""
    start = start or time.time() - 60
    stamps = []
    for n, text in enumerate(texts):
        ts = f"{start + n:.6f}"
        slack.slack.add_message("C1", ts, text, ["UALICE", "UBOB"][n % 2])
        await slack.event(message_event(text, ts, user=["UALICE", "UBOB"][n % 2]))
        stamps.append(ts)
    return stamps


async def test_summary_reads_the_log_and_cites_permalinks(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_openai.responder = summarizer
    stamps = await chatter(
        slack, ["we ship on friday", "I will write the notes", "<@UCAROL> can you review?"]
    )
    assert slack.slack.called("chat.postMessage") == []  # chatter is not answered
    await slack.command("3")  # three messages: all in the log
    assert fake_slack.called("conversations.history") == []
    text = fake_slack.responses[0]["text"]
    first = stamps[0].replace(".", "")
    assert f"<https://team.slack.com/archives/C1/p{first}|1>" in text
    assert "m99999" not in text and "invented" in text
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "[m3] Alice: @Carol can you review?" in prompt


async def test_history_is_read_only_for_the_part_the_log_lacks(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    fake_openai.responder = summarizer
    before_the_bot = time.time() - 3600
    fake_slack.add_message(
        "C1", f"{before_the_bot:.6f}", "an hour ago, before logging began", "UBOB"
    )
    await chatter(slack, ["logged one", "logged two"])
    await slack.command("2h")
    [history] = fake_slack.called("conversations.history")
    assert float(history["latest"]) <= time.time() and float(history["oldest"]) < before_the_bot
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "before logging began" in prompt and "logged one" in prompt and "logged two" in prompt
    assert prompt.count("logged one") == 1  # the log and the API never double a message


async def test_same_window_again_costs_no_model_call(
    slack: SlackHarness, fake_openai, fake_slack
) -> None:
    fake_openai.responder = summarizer
    await chatter(slack, ["one", "two", "three"])
    await slack.command("3")
    await slack.command("3")
    assert len(fake_openai.requests) == 1
    assert fake_slack.responses[0]["text"] == fake_slack.responses[1]["text"]


async def test_since_covers_only_what_is_new(slack: SlackHarness, fake_openai, fake_slack) -> None:
    fake_openai.responder = summarizer
    await chatter(slack, ["old news one", "old news two"], start=time.time() - 120)
    await slack.command("1h")
    await chatter(slack, ["fresh topic"], start=time.time() - 30)
    await slack.command("since")
    prompt = fake_openai.requests[-1]["messages"][1]["content"]
    assert "fresh topic" in prompt and "old news" not in prompt
    await slack.command("since")
    assert fake_slack.responses[-1]["text"] == (
        "Nobody wrote anything here in what happened since your last summary."
    )


async def test_summary_follows_the_channels_language(
    slack: SlackHarness, fake_openai, fake_slack
) -> None:
    fake_openai.responder = summarizer
    await chatter(slack, ["금요일에 배포합니다", "회의록은 제가 쓸게요", "ok"])
    await slack.command("3")
    assert "write in Korean" in fake_openai.requests[0]["messages"][0]["content"]
    assert fake_slack.responses[0]["text"].startswith("요약입니다.")
    assert re.search(
        r"<https://team\.slack\.com/archives/C1/p\d+\|1>", fake_slack.responses[0]["text"]
    )


async def test_a_window_larger_than_the_summarizer_takes_says_so_with_its_span(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    from dataclasses import replace

    summarizer_of = slack.core.engine.summarizer
    summarizer_of.config = replace(summarizer_of.config, max_messages=10)
    fake_openai.responder = summarizer
    await chatter(slack, [f"update number {n}" for n in range(25)])
    await slack.command("2h")
    text = fake_slack.responses[0]["text"]
    assert "more than 10 messages" in text and "covers the latest 10 (" in text
    assert " UTC)" in text
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "update number 24" in prompt and "update number 14" not in prompt
