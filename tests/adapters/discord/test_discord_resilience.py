"""Discord when things go wrong around the bot: unreadable dispatches, quick follow-ups."""

from __future__ import annotations

import pytest

from tests.adapters.discord.conftest import BOT_MENTION, DiscordHarness
from tests.fakes.discord_server import CHANNEL, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply


async def test_an_unreadable_dispatch_is_skipped_and_the_bot_keeps_answering(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # a field shape discord.py does not expect: its parser raises
    await fake_discord.dispatch(
        "MESSAGE_CREATE", {"id": "1", "channel_id": str(CHANNEL), "author": "not an object"}
    )
    await discord_bot.send(f"{BOT_MENTION} still there?")
    assert not discord_bot.runner.done()  # the gateway connection survived
    thread = int(fake_discord.threads()[0]["id"])
    assert [m["content"] for m in fake_discord.bot_messages(thread)] == [
        "echo: Alice: still there?"
    ]
    assert "skipped a MESSAGE_CREATE dispatch" in caplog.text


async def test_follow_up_during_the_first_answer_is_answered_after_it(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    fake_openai.push(Reply(text="Friday, as every week.", token_delay=0.3))
    await discord_bot.send(f"{BOT_MENTION} when is the deploy?", settle=False)

    def first_answer_showing() -> bool:
        threads = fake_discord.threads()
        shown = fake_discord.bot_messages(int(threads[0]["id"])) if threads else []
        return any(m["content"].startswith("Friday") for m in shown)

    await fake_discord.wait_for(first_answer_showing)  # visible and still being written
    thread = int(fake_discord.threads()[0]["id"])
    await discord_bot.send("and who runs it?", channel=thread)
    assert len(fake_openai.requests) == 2, "the quick follow-up was dropped"
    second = "\n".join(str(m["content"]) for m in fake_openai.requests[1]["messages"])
    assert "when is the deploy?" in second and "Friday, as every week." in second
