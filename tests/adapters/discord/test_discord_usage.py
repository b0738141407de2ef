"""Usage and quotas through discord.py against the fake gateway and REST API: a limit on
mentions and follow-ups, and /usage, only to the asker."""

from __future__ import annotations

from bot.usage.ledger import Limits
from bot.usage.quotas import QuotaConfig, Quotas
from bot.usage.redis_ledger import RedisLedger
from bot.usage.tally import Payer
from tests.adapters.discord.conftest import ALICE, BOB, BOT_MENTION, DiscordHarness
from tests.adapters.discord.test_discord_commands import interaction, invoke
from tests.fakes.discord_server import CHANNEL, GUILD, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply


def with_quotas(harness: DiscordHarness, prefix: str, **config) -> Quotas:
    client = harness.core.memory.client  # type: ignore[attr-defined]
    quotas = Quotas(RedisLedger(client, prefix=prefix), QuotaConfig(**config))
    harness.core.engine.quotas = quotas
    return quotas


async def test_over_the_limit_a_follow_up_gets_one_sentence_and_no_model_call(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord,
    clean_prefix: str,
) -> None:  # fmt: skip
    with_quotas(discord_bot, clean_prefix, limits=Limits(user=40))
    fake_openai.push(Reply(text="a long enough answer " * 10))
    await discord_bot.send(f"{BOT_MENTION} first question")
    thread = fake_discord.threads()[0]
    await discord_bot.send("and a follow-up", channel=int(thread["id"]))
    assert len(fake_openai.requests) == 1
    last = fake_discord.bot_messages(int(thread["id"]))[-1]["content"]
    assert last.startswith("You have used your daily limit of 40 tokens")
    await discord_bot.send(f"{BOT_MENTION} Bob's own question", BOB)
    assert len(fake_openai.requests) == 2


async def test_usage_is_ephemeral_and_counts_the_thread_to_its_channel(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord,
    clean_prefix: str,
) -> None:  # fmt: skip
    quotas = with_quotas(discord_bot, clean_prefix, limits=Limits(user=100_000))
    await discord_bot.send(f"{BOT_MENTION} count me")
    thread = fake_discord.threads()[0]
    payload = interaction(fake_discord, "usage", [], channel=thread)
    defer, shown = await invoke(discord_bot, payload, replies=2)
    assert defer["type"] == 5 and defer["data"]["flags"] & 64
    assert shown["flags"] & 64 and shown["allowed_mentions"]["parse"] == []
    today, _ = await quotas.totals(Payer("discord", str(GUILD), str(CHANNEL), ALICE["id"]))
    mine = today.users[ALICE["id"]]["fake-model"].tokens
    assert shown["content"].startswith(f"Your usage today: {mine:,} tokens;")
    assert f"{100_000 - mine:,} left today" in shown["content"]
    assert set(today.channels) == {str(CHANNEL)}  # the thread's parent channel


async def test_an_admin_sees_the_servers_top_users_by_name(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI, fake_discord: FakeDiscord,
    clean_prefix: str,
) -> None:  # fmt: skip
    with_quotas(discord_bot, clean_prefix, admins=frozenset({ALICE["id"]}))
    await discord_bot.send(f"{BOT_MENTION} one")
    await discord_bot.send(f"{BOT_MENTION} two", BOB)
    _, shown = await invoke(discord_bot, interaction(fake_discord, "usage", []), replies=2)
    assert f"Top channels this month:\n  1. <#{CHANNEL}>:" in shown["content"]
    assert "Top users this month:" in shown["content"]
    for person in (ALICE, BOB):
        assert (person.get("global_name") or person["username"]) in shown["content"]
