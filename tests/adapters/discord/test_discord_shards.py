"""Sharding: processes split a bot's guilds; each only ever sees its own shards' events."""

from __future__ import annotations

import pytest

from tests.adapters.discord.conftest import BOT_MENTION, make_harness
from tests.fakes.discord_server import GUILD, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

DM = 600000000000000007


async def test_two_processes_split_the_shards_and_each_event_reaches_one(
    fake_openai: FakeOpenAI, fake_discord: FakeDiscord, clean_prefix: str
) -> None:
    harnesses = [
        await make_harness(fake_openai, fake_discord, clean_prefix,
                           DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS=str(shard))
        for shard in (0, 1)
    ]  # fmt: skip
    try:
        assert sorted(fake_discord.identify_shards) == [[0, 2], [1, 2]]
        owner = fake_discord.shard_of(GUILD, 2)
        other = harnesses[1 - owner]
        question = await harnesses[owner].send(f"{BOT_MENTION} which shard am I on?")
        assert len(fake_openai.requests) == 1
        assert not other._event(int(question["id"])).is_set()  # never reached the other shard
        dm = await harnesses[0].send("hello from a DM", channel=DM, guild=False)  # DMs: shard 0
        assert len(fake_openai.requests) == 2
        assert not harnesses[1]._event(int(dm["id"])).is_set()
    finally:
        for harness in harnesses:
            await harness.close()


async def test_without_settings_the_recommended_count_runs_in_one_process(
    fake_openai: FakeOpenAI, fake_discord: FakeDiscord, clean_prefix: str
) -> None:
    fake_discord.recommended_shards = 2  # what Discord says for a bot in ~2,000 guilds
    harness = await make_harness(fake_openai, fake_discord, clean_prefix)
    try:
        assert sorted(fake_discord.identify_shards) == [[0, 2], [1, 2]]
        await harness.send(f"{BOT_MENTION} still answered?")
        assert len(fake_openai.requests) == 1
    finally:
        await harness.close()


@pytest.mark.parametrize(
    ("ids", "count", "problem"),
    [("0,x", "2", "is not a shard number"), ("2", "2", "numbered 0 to 1"), ("0", "", "needs")],
)
def test_bad_shard_settings_are_one_line(ids: str, count: str, problem: str) -> None:
    from adapters.discord.settings import load_discord_settings
    from bot.errors import ConfigError

    env = {"DISCORD_SHARD_IDS": ids} | ({"DISCORD_SHARD_COUNT": count} if count else {})
    with pytest.raises(ConfigError, match=problem):
        load_discord_settings(_env_file=None, DISCORD_BOT_TOKEN="t", **env)
