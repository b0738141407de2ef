"""Discord summaries from the channel log, with jump links; history only for what it lacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.adapters.discord.conftest import ALICE, BOB, DiscordHarness
from tests.adapters.discord.test_discord_commands import interaction, invoke
from tests.fakes.discord_server import CHANNEL, GUILD, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.summarizer_model import summarizer


def history_reads(fake: FakeDiscord) -> list[str]:
    return [
        path
        for method, path, _ in fake.calls
        if method == "GET" and path == f"channels/{CHANNEL}/messages"
    ]


async def test_summary_from_the_log_cites_jump_links(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = summarizer
    said = [await discord_bot.send(text, author) for text, author in
            (("ship friday", ALICE), ("I write notes", BOB), ("review please", ALICE))]  # fmt: skip
    assert fake_openai.requests == []  # chatter is logged, not answered
    payload = interaction(
        discord_bot.fake, "summarize", [{"name": "window", "type": 3, "value": "3"}]
    )
    _, followup = await invoke(discord_bot, payload, replies=2)
    assert history_reads(discord_bot.fake) == []
    link = f"https://discord.com/channels/{GUILD}/{CHANNEL}/{said[0]['id']}"
    assert f"[1]({link})" in followup["content"]
    assert "m99999" not in followup["content"]


async def test_history_fills_only_the_gap_before_the_log(
    discord_bot: DiscordHarness, fake_openai, fake_discord: FakeDiscord
) -> None:
    fake_openai.responder = summarizer
    fake_discord.message(
        CHANNEL, "from before the bot logged", BOB, when=datetime.now(UTC) - timedelta(hours=1)
    )
    await discord_bot.send("logged message", ALICE)
    payload = interaction(fake_discord, "summarize", [{"name": "window", "type": 3, "value": "2h"}])
    await invoke(discord_bot, payload, replies=2)
    assert history_reads(fake_discord)  # the hour before logging began came from Discord
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "from before the bot logged" in prompt and prompt.count("logged message") == 1
