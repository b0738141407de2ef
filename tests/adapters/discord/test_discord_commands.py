"""/summarize and /forget as interactions, command sync, failures, and `python -m bot run`."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    BOT_MENTION,
    CAROL,
    DiscordHarness,
    make_harness,
)
from tests.conftest import REDIS_URL
from tests.fakes.discord_server import APP_ID, BOT_USER, CHANNEL, GUILD, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import run_bot


def interaction(
    fake: FakeDiscord,
    name: str,
    options: list[dict[str, Any]],
    *,
    channel: dict[str, Any] | None = None,
    guild: bool = True,
    user: dict[str, Any] = ALICE,
) -> dict[str, Any]:
    iid = fake.snowflake()
    channel = channel or fake.channels[CHANNEL]
    data: dict[str, Any] = {
        "id": str(iid),
        "application_id": str(APP_ID),
        "type": 2,
        "token": f"tok-{iid}",
        "version": 1,
        "data": {"id": "555", "name": name, "type": 1, "options": options},
        "channel_id": channel["id"],
        "channel": {**channel, "permissions": str((1 << 50) - 1)},
        "locale": "en-US",
        "app_permissions": str((1 << 50) - 1),
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(GUILD)} if guild else {"1": ALICE["id"]},
        "context": 0 if guild else 1,
        "attachment_size_limit": 10_485_760,
    }
    if guild:
        data["guild_id"] = str(GUILD)
        data["guild_locale"] = "en-US"
        data["member"] = {
            "user": user,
            "roles": [],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "permissions": str((1 << 50) - 1),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
    else:
        data["user"] = ALICE
    return data


async def invoke(
    harness: DiscordHarness, payload: dict[str, Any], replies: int = 1
) -> list[dict[str, Any]]:
    """Send an interaction; return the callback and the follow-ups it produced."""
    token = payload["token"]
    fake = harness.fake

    def answered() -> list[dict[str, Any]]:
        return [b for m, p, b in fake.calls if token in p]

    await fake.dispatch("INTERACTION_CREATE", payload)
    await fake.wait_for(lambda: len(answered()) >= replies)
    return answered()


def seed_history(fake: FakeDiscord) -> None:
    now = datetime.now(UTC)
    fake.message(CHANNEL, "an old message", BOB, when=now - timedelta(days=5))
    for n in range(4):
        fake.message(
            CHANNEL, f"update number {n}", [ALICE, BOB][n % 2], when=now - timedelta(minutes=10 - n)
        )


async def test_summarize_is_deferred_then_followed_up(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    seed_history(discord_bot.fake)
    fake_openai.push(Reply(text="Four updates.", first_token_delay=0.2))
    payload = interaction(
        discord_bot.fake, "summarize", [{"name": "window", "type": 3, "value": "2h"}]
    )
    defer, followup = await invoke(discord_bot, payload, replies=2)
    assert defer["type"] == 5 and defer["data"]["flags"] & 64  # thinking, only the caller sees it
    assert followup["content"] == "Four updates." and followup["flags"] & 64
    assert followup["allowed_mentions"]["parse"] == []
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "Alice: update number 0" in prompt and "Bob: update number 1" in prompt
    assert "an old message" not in prompt


async def test_summarize_public_with_a_count(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    seed_history(discord_bot.fake)
    fake_openai.push(Reply(text="Two updates."))
    options = [
        {"name": "window", "type": 3, "value": "2"},
        {"name": "public", "type": 5, "value": True},
    ]
    defer, followup = await invoke(
        discord_bot, interaction(discord_bot.fake, "summarize", options), replies=2
    )
    assert (
        defer["type"] == 5 and not defer.get("data", {}).get("flags") and not followup.get("flags")
    )
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "update number 3" in prompt and "update number 1" not in prompt


@pytest.mark.parametrize("window", ["yesterday", "0", "2h 3d"])
async def test_summarize_bad_options_get_the_usage_line(
    discord_bot: DiscordHarness, fake_openai, window: str
) -> None:
    payload = interaction(
        discord_bot.fake, "summarize", [{"name": "window", "type": 3, "value": window}]
    )
    [callback] = await invoke(discord_bot, payload)
    assert callback["type"] == 4 and callback["data"]["flags"] & 64
    assert "Usage: /summarize window:" in callback["data"]["content"]
    assert fake_openai.requests == []


async def test_summarize_a_quiet_channel_calls_no_model(
    discord_bot: DiscordHarness, fake_openai
) -> None:
    _, followup = await invoke(
        discord_bot, interaction(discord_bot.fake, "summarize", []), replies=2
    )
    assert followup["content"] == "Nobody wrote anything here in the last 1 day."
    assert fake_openai.requests == []


async def test_forget_command_in_a_thread(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    await discord_bot.send(f"{BOT_MENTION} my name is Mina")
    thread = fake_discord.threads()[0]
    [callback] = await invoke(discord_bot, interaction(fake_discord, "forget", [], channel=thread))
    assert callback["type"] == 4 and callback["data"]["content"].startswith("I have forgotten")
    from bot.conversation import ThreadRef

    ref = ThreadRef("discord", str(GUILD), str(CHANNEL), thread["id"])
    assert not await discord_bot.core.engine.knows(ref)


async def test_forget_command_outside_a_thread_explains(discord_bot: DiscordHarness) -> None:
    [callback] = await invoke(discord_bot, interaction(discord_bot.fake, "forget", []))
    assert "inside a thread" in callback["data"]["content"] and callback["data"]["flags"] & 64


async def test_commands_sync_only_when_they_change(
    fake_openai, fake_discord: FakeDiscord, clean_prefix
) -> None:
    for _ in range(2):
        harness = await make_harness(fake_openai, fake_discord, clean_prefix)
        await harness.close()
    syncs = [
        b for m, p, b in fake_discord.calls if m == "PUT" and p == f"applications/{APP_ID}/commands"
    ]
    assert len(syncs) == 1
    assert sorted(c["name"] for c in syncs[0]) == ["ask", "forget", "summarize", "usage"]


@pytest.mark.parametrize(
    ("reply", "sentence"),
    [
        (Reply(status=429, headers={"Retry-After": "12"}), "try again in 12 s"),
        (Reply(text="a b c d", break_after=2), "unavailable right now"),
        (Reply(text="partial", finish_reason="content_filter"), "content filter"),
        (Reply(status=400, error={"message": "maximum context length is 10 tokens"}), "too long"),
    ],
)
async def test_failures_end_in_a_sentence(
    discord_bot: DiscordHarness, fake_openai, fake_discord, reply, sentence
) -> None:
    fake_openai.push(reply)
    await discord_bot.send(f"{BOT_MENTION} hi")
    thread = int(fake_discord.threads()[0]["id"])
    [message] = fake_discord.bot_messages(thread)
    assert sentence in message["content"] and "Thinking" not in message["content"]


async def test_thread_refused_means_a_reply_in_place(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    fake_discord.deny_threads = True
    question = await discord_bot.send(f"{BOT_MENTION} hi")
    [answer] = fake_discord.bot_messages(CHANNEL)
    assert answer["message_reference"]["message_id"] == question["id"]
    assert answer["content"] == "echo: Alice: hi"
    await discord_bot.send(f"{BOT_MENTION} again")  # not asked again for a while
    assert len(fake_discord.called("POST", "/threads")) == 1
    assert len(fake_discord.bot_messages(CHANNEL)) == 2


def run_env(
    fake: FakeDiscord, fake_openai: FakeOpenAI, prefix: str, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "REDIS_", "SLACK_", "DISCORD_"))
    }
    env.update(
        OPENAI_BASE_URL=fake_openai.url,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=prefix,
        DISCORD_BOT_TOKEN="fake-token",
        DISCORD_API_URL=fake.url,
        **extra,
    )
    return env


async def test_python_m_bot_run_answers_on_discord(
    tmp_path, fake_openai, fake_discord: FakeDiscord, clean_prefix
) -> None:
    process = await run_bot(tmp_path, run_env(fake_discord, fake_openai, clean_prefix))
    await asyncio.wait_for(fake_discord.identified.wait(), 20)
    data = fake_discord.message(CHANNEL, f"{BOT_MENTION} hello", ALICE, mentions=[BOT_USER])
    # the gateway delivers in order: READY and GUILD_CREATE were sent before this event
    await fake_discord.dispatch_message(data)

    def answered() -> bool:
        threads = [int(t["id"]) for t in fake_discord.threads()]
        return any(
            m["content"] == "echo: Alice: hello"
            for t in threads
            for m in fake_discord.bot_messages(t)
        )

    await fake_discord.wait_for(answered, 20)
    process.terminate()
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()[-2000:]
    from adapters.discord.client import PERMISSIONS

    logged = stderr.decode()
    assert f"invite the bot with https://discord.com/oauth2/authorize?client_id={APP_ID}" in logged
    assert f"permissions={PERMISSIONS.value}" in logged


@pytest.mark.parametrize(
    ("set_up", "line"),
    [
        (
            lambda fake: setattr(fake, "token_ok", False),
            "error: DISCORD_BOT_TOKEN: was rejected by Discord (401 Unauthorized)",
        ),
        (
            lambda fake: setattr(fake, "grant_message_content", False),
            "error: DISCORD_BOT_TOKEN: the Message Content intent is not enabled",
        ),
    ],
)
async def test_start_up_failures_are_one_line(
    tmp_path, fake_openai, fake_discord, clean_prefix, set_up, line
) -> None:
    set_up(fake_discord)
    process = await run_bot(tmp_path, run_env(fake_discord, fake_openai, clean_prefix))
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith(line) and "Traceback" not in stderr.decode()


async def test_ask_answers_from_the_channel_with_jump_links(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    import re

    said = await discord_bot.send("Priya owns the billing service since March")
    await discord_bot.send("lunch at noon?", author=BOB)

    def cite(body: dict) -> str:
        given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
        return f"Priya owns it [{given[0]}][m77]." if given else "?"

    fake_openai.responder = cite
    payload = interaction(
        discord_bot.fake, "ask", [{"name": "question", "type": 3, "value": "who owns billing?"}]
    )
    defer, followup = await invoke(discord_bot, payload, replies=2)
    assert defer["type"] == 5 and defer["data"]["flags"] & 64  # only the asker sees it
    text = followup["content"]
    assert text.startswith("Priya owns it ([1](https://discord.com/channels/")
    assert f"/{said['id']})" in text and "**Sources**" in text
    assert "m77" not in text and "[2]" not in text  # the made-up id is dropped


async def test_ask_with_nothing_relevant_says_what_it_searched(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    await discord_bot.send("lunch at noon?", author=BOB)
    payload = interaction(
        discord_bot.fake, "ask", [{"name": "question", "type": 3, "value": "who owns billing?"}]
    )
    _, followup = await invoke(discord_bot, payload, replies=2)
    assert followup["content"].startswith("I could not find this in #")
    assert "(searched 1 message from" in followup["content"] and fake_openai.requests == []


async def test_an_edited_message_is_found_by_its_new_text(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    said = await discord_bot.send("Priya owns the billing service since March")
    await discord_bot.edit(said, "Tomás owns the invoicing service since March")
    payload = interaction(
        discord_bot.fake, "ask", [{"name": "question", "type": 3, "value": "who owns invoicing?"}]
    )
    fake_openai.responder = lambda body: "Tomás [m1]." if "Tomás" in str(body) else "?"
    _, followup = await invoke(discord_bot, payload, replies=2)
    assert followup["content"].startswith("Tomás ([1](https://discord.com/channels/")
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "Priya" not in prompt  # the old text is gone from the index


SECRET, ROOMS = 7001, 7002
VIEW = 1 << 10  # VIEW_CHANNEL


async def rooms(harness: DiscordHarness) -> None:
    """#secret: @everyone may not view it, Bob (and the bot) may; #rooms: open to all."""
    fake = harness.fake
    for cid, name, private in ((SECRET, "secret", True), (ROOMS, "rooms", False)):
        overwrites = [
            {"id": str(GUILD), "type": 0, "allow": "0", "deny": str(VIEW)},
            {"id": BOB["id"], "type": 1, "allow": str(VIEW), "deny": "0"},
            {"id": BOT_USER["id"], "type": 1, "allow": str(VIEW), "deny": "0"},
        ] if private else []  # fmt: skip
        fake.channels[cid] = {"id": str(cid), "type": 0, "name": name, "guild_id": str(GUILD),
                              "position": 1, "permission_overwrites": overwrites, "nsfw": False,
                              "parent_id": None}  # fmt: skip
        await fake.dispatch("CHANNEL_CREATE", fake.channels[cid])
    await harness.send("the billing service belongs to Priya")
    await harness.send("billing secret: layoffs in the billing service team", BOB, channel=SECRET)
    await harness.send("billing service runbook is in the wiki", BOB, channel=ROOMS)


def ask_payload(fake: FakeDiscord, text: str, user: dict[str, Any] = CAROL) -> dict[str, Any]:
    """Carol asks: not the server's owner (who may read everything), no role of her own."""
    return interaction(fake, "ask", [{"name": "question", "type": 3, "value": text}], user=user)


def cite_first(body: dict) -> str:
    import re

    given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
    return f"It is in the history [{given[0]}]." if given else "?"


async def test_ask_in_a_channel_the_asker_cannot_read_searches_nothing(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    await rooms(discord_bot)
    [reply] = await invoke(discord_bot, ask_payload(discord_bot.fake, f"in:<#{SECRET}> billing?"))
    assert reply["type"] == 4 and reply["data"]["flags"] & 64
    assert (
        reply["data"]["content"] == f"You cannot read <#{SECRET}>, so I will not search it for you."
    )
    assert fake_openai.requests == []


async def test_ask_everywhere_searches_only_what_the_asker_can_read(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    await rooms(discord_bot)
    fake_openai.responder = cite_first
    await invoke(discord_bot, ask_payload(discord_bot.fake, "everywhere who owns billing service?"),
                 replies=2)  # fmt: skip
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "belongs to Priya" in prompt and "runbook" in prompt  # #general and open #rooms
    assert "layoffs" not in prompt  # #secret, which Carol cannot view, never reaches the model
    assert discord_bot.fake.member_fetches == 0  # her roles came with the command


async def test_a_public_answer_drawing_on_a_private_channel_goes_to_the_asker_only(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    await rooms(discord_bot)
    fake_openai.responder = cite_first
    asked = ask_payload(discord_bot.fake, f"public in:<#{SECRET}> billing service?", user=BOB)
    defer, followup = await invoke(discord_bot, asked, replies=2)
    assert defer["data"]["flags"] & 64  # Bob may read #secret; not everyone in #general can
    assert followup["content"].startswith("*Only you see this: it draws on channels not everyone")
    opened = ask_payload(discord_bot.fake, f"public in:<#{ROOMS}> where is the runbook?")
    defer, _ = await invoke(discord_bot, opened, replies=2)
    assert not (defer.get("data") or {}).get("flags", 0) & 64  # an open channel: posted for all


async def test_ask_everywhere_from_a_dm_fetches_the_member_and_keeps_to_what_they_read(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    await rooms(discord_bot)
    fake_openai.responder = cite_first
    dm = {"id": "9100", "type": 1, "recipients": [CAROL], "last_message_id": None}
    asked = interaction(discord_bot.fake, "ask", [{"name": "question", "type": 3,
                        "value": "everywhere who owns billing service?"}], channel=dm,
                        guild=False, user=CAROL)  # fmt: skip
    asked["user"] = CAROL
    await invoke(discord_bot, asked, replies=2)
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "belongs to Priya" in prompt and "runbook" in prompt and "layoffs" not in prompt
    assert discord_bot.fake.member_fetches == 1  # not in the cache: asked over REST, once


async def test_a_server_the_bot_joins_is_searchable_at_once_from_its_history(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    now = datetime.now(UTC)
    fake = discord_bot.fake
    fake.message(CHANNEL, "Priya owns the billing service", BOB, when=now - timedelta(hours=2))
    fake.message(CHANNEL, "billing: an old rumour", BOB, when=now - timedelta(days=30))
    fake.message(CHANNEL, "Deployed.", BOT_USER, when=now - timedelta(hours=1))
    guild = discord_bot.client.get_guild(GUILD)
    assert guild is not None
    assert await discord_bot.bot.backfill_guild(guild) == 1
    assert await discord_bot.bot.backfill_guild(guild) == 0  # joined again: nothing twice
    fake_openai.responder = cite_first
    await invoke(discord_bot, ask_payload(fake, "who owns the billing service?"), replies=2)
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "Priya owns the billing service" in prompt and "rumour" not in prompt
