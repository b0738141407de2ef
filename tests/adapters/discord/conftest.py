from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.discord.client import DiscordClient
from adapters.discord.runner import make_client
from adapters.discord.settings import load_discord_settings
from bot.assembly import Core
from tests.conftest import REDIS_URL, redis_core
from tests.fakes.discord_server import BOT_USER, CHANNEL, PEOPLE, USERS, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

ALICE = USERS[PEOPLE["alice"]]
BOB = USERS[PEOPLE["bob"]]
CAROL = USERS[PEOPLE["carol"]]
BOT_MENTION = f"<@{BOT_USER['id']}>"


class DiscordHarness:
    def __init__(
        self, client: DiscordClient, fake: FakeDiscord, core: Core, runner: asyncio.Task[None]
    ) -> None:
        self.client, self.fake, self.core, self.runner = client, fake, core, runner
        self.bot = client.bot
        self._arrived: dict[tuple[str, int], asyncio.Event] = {}
        handle, forget, change = self.bot.on_message, self.bot.on_delete, self.bot.on_edit

        def on_message(message: Any) -> None:  # note each arrival, so tests can await it
            handle(message)
            self._event(message.id).set()

        def on_delete(event: Any) -> None:  # a deletion is its own arrival, not the message's
            forget(event)
            self._event(event.message_id, "delete").set()

        def on_edit(event: Any) -> None:
            change(event)
            self._event(event.message_id, "edit").set()

        self.bot.on_message = on_message  # type: ignore[method-assign]
        self.bot.on_delete = on_delete  # type: ignore[method-assign]
        self.bot.on_edit = on_edit  # type: ignore[method-assign]

    def _event(self, message_id: int, kind: str = "message") -> asyncio.Event:
        return self._arrived.setdefault((kind, message_id), asyncio.Event())

    async def send(
        self,
        content: str,
        author: dict[str, Any] = ALICE,
        *,
        channel: int = CHANNEL,
        guild: bool = True,
        mentions: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
        settle: bool = True,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if mentions is None:
            mentions = [BOT_USER] if BOT_MENTION in content else []
        data = self.fake.message(
            channel, content, author, guild=guild, mentions=mentions, reply_to=reply_to,
            attachments=attachments,
        )  # fmt: skip
        await self.fake.dispatch_message(data)
        if settle:
            await self.settle(int(data["id"]))
        return data

    async def settle(self, message_id: int, kind: str = "message") -> None:
        await asyncio.wait_for(self._event(message_id, kind).wait(), 10)
        await self.bot.tasks.idle()

    async def delete(self, message: dict[str, Any]) -> None:
        payload = {"id": message["id"], "channel_id": message["channel_id"]}
        if message.get("guild_id"):
            payload["guild_id"] = message["guild_id"]
        await self.fake.dispatch("MESSAGE_DELETE", payload)
        await self.settle(int(message["id"]), "delete")

    async def edit(self, message: dict[str, Any], content: str) -> None:
        """The author changes a message's text (MESSAGE_UPDATE carries the whole message)."""
        edited = {**message, "content": content, "edited_timestamp": message["timestamp"]}
        await self.fake.dispatch("MESSAGE_UPDATE", edited)
        await self.settle(int(message["id"]), "edit")

    async def close(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self.runner, 10)
        await self.core.aclose()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


async def make_harness(
    fake_openai: FakeOpenAI, fake: FakeDiscord, prefix: str, **env: str
) -> DiscordHarness:
    core = redis_core(fake_openai, aioredis.Redis.from_url(REDIS_URL), prefix)
    discord_settings = load_discord_settings(
        _env_file=None, DISCORD_BOT_TOKEN="fake-token", DISCORD_API_URL=fake.url,
        DISCORD_EDIT_INTERVAL="0.2", **env,
    )  # fmt: skip
    client = make_client(core, discord_settings, guild_ready_timeout=0.05)
    runner = asyncio.create_task(client.start("fake-token"))
    ready = asyncio.create_task(client.ready.wait())
    done, _ = await asyncio.wait({runner, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if runner in done:
        ready.cancel()
        runner.result()  # raises what went wrong
    assert ready in done, "discord.py never became ready"
    return DiscordHarness(client, fake, core, runner)


@pytest.fixture
async def discord_bot(
    fake_openai: FakeOpenAI, fake_discord: FakeDiscord, clean_prefix: str
) -> AsyncIterator[DiscordHarness]:
    harness = await make_harness(fake_openai, fake_discord, clean_prefix)
    yield harness
    await harness.close()
