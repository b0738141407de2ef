"""Fuzzed gateway dispatches: whatever discord.py or the bot cannot read is skipped in a line,
never a traceback, and the bot answers a normal mention afterwards."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adapters.discord.conftest import ALICE, BOT_MENTION, DiscordHarness
from tests.fakes.discord_server import BOT_USER, CHANNEL, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = ["content", "author", "channel_id", "guild_id", "type", "mentions", "attachments",
          "sticker_items", "message_reference", "referenced_message", "webhook_id", "member",
          "message_snapshots", "timestamp", "flags", "embeds"]  # fmt: skip


async def test_fuzzed_message_dispatches_are_survived_quietly(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    mutations: list[dict] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1, max_size=4))
    def shapes(changes: dict) -> None:
        mutations.append(changes)

    shapes()
    caplog.set_level(logging.INFO)
    for changes in mutations:
        data = fake_discord.message(CHANNEL, f"{BOT_MENTION} fuzz", ALICE, mentions=[BOT_USER])
        data.update(changes)
        await fake_discord.dispatch("MESSAGE_CREATE", data)
    await discord_bot.send(f"{BOT_MENTION} still there?")
    await discord_bot.bot.tasks.idle()
    answered = [m["content"] for t in fake_discord.threads()
                for m in fake_discord.bot_messages(int(t["id"]))]  # fmt: skip
    assert "echo: Alice: still there?" in answered
    assert not discord_bot.runner.done()
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    assert tracebacks == [], tracebacks[0].getMessage() if tracebacks else ""
