"""Real-shaped Discord messages (tests/payloads/discord_messages.json) through discord.py's own
gateway parsing, each with what the bot must do: answer (with what the model reads) or stay silent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.discord.conftest import ALICE, DiscordHarness
from tests.fakes.discord_server import BOT_ID, BOT_USER, CHANNEL, GUILD, FakeDiscord
from tests.fakes.documents import image_bytes
from tests.fakes.openai_server import FakeOpenAI

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "payloads" / "discord_messages.json").read_text()
)
FORUM, FORUM_THREAD, DM, OTHER_GUILD, OTHER_CHANNEL = (
    800000000000000020,
    800000000000000021,
    800000000000000030,
    800000000000000040,
    800000000000000041,
)


async def open_forum_thread(fake: FakeDiscord) -> None:
    base = {"guild_id": str(GUILD), "position": 1, "permission_overwrites": [], "nsfw": False}
    forum = {**base, "id": str(FORUM), "type": 15, "name": "help", "parent_id": None}
    thread = {
        **base,
        "id": str(FORUM_THREAD),
        "type": 11,
        "name": "Reset?",
        "parent_id": str(FORUM),
        "owner_id": str(ALICE["id"]),
        "message_count": 1,
        "member_count": 1,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-29T00:00:00+00:00",
            "locked": False,
        },
    }
    fake.channels[FORUM_THREAD] = thread
    await fake.dispatch("CHANNEL_CREATE", forum)
    await fake.dispatch("THREAD_CREATE", {**thread, "newly_created": True})


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_real_message(
    case: dict[str, Any],
    discord_bot: DiscordHarness,
    fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:
    where = case["where"]
    channel = {
        "channel": CHANNEL,
        "dm": DM,
        "forum_thread": FORUM_THREAD,
        "uncached_guild": OTHER_CHANNEL,
    }[where]
    if where == "forum_thread":
        await open_forum_thread(fake_discord)
    content = case["content"].replace("<@BOT>", f"<@{BOT_ID}>")
    reply_to = None
    if case.get("reply_to_bot"):
        reply_to = fake_discord.message(CHANNEL, "An earlier answer.", BOT_USER)
    data = fake_discord.message(
        channel,
        content,
        ALICE,
        guild=where not in ("dm",),
        mentions=[BOT_USER] if str(BOT_ID) in content else [],
        reply_to=reply_to,
    )
    if where == "uncached_guild":
        data["guild_id"] = str(OTHER_GUILD)
    cdn = fake_discord.url.removesuffix("/api/v10")  # Discord's CDN is the fake's
    data.update(
        json.loads(json.dumps(case.get("extra", {})).replace("https://cdn.discordapp.com", cdn))
    )
    fake_discord.attachments["1"] = (image_bytes(640, 480), "image/png")
    fake_discord.attachments["2"] = (b"buy milk\n", "text/plain")
    requests = len(fake_openai.requests)
    await fake_discord.dispatch_message(data)
    await discord_bot.settle(int(data["id"]))
    said = [
        m
        for ms in list(fake_discord.messages.values())
        for m in ms
        if m["author"]["id"] == str(BOT_ID) and m is not reply_to
    ]
    if case["expect"] == "answer":
        assert len(fake_openai.requests) == requests + 1
        prompt = "\n".join(str(m["content"]) for m in fake_openai.requests[-1]["messages"])
        for expected in case.get("prompt_contains", []):
            assert expected in prompt
    elif case["expect"] == "acknowledge":
        assert len(fake_openai.requests) == requests, "a model call for files without a question"
        assert [m["content"] for m in said] == [case["says"]]
    else:
        assert len(fake_openai.requests) == requests, "a model call for something not a question"
        assert said == [], "the bot said something"
