"""Where a streamed Discord reply goes: a thread or channel, the first message as a reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from adapters.streaming import EditRefused

NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2000


class DiscordSink:
    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        reply_to: discord.Message | None = None,
        on_post: Callable[[discord.Message], Awaitable[None]] | None = None,
    ) -> None:
        self._channel = channel
        self._reply_to = reply_to
        self._on_post = on_post
        self._sent: dict[str, discord.Message] = {}

    async def prepare(self) -> bool:
        return True  # Discord's pace is kept per channel by ChannelPace

    async def post(self, text: str) -> str:
        reference, self._reply_to = self._reply_to, None  # only the first message is a reply
        if reference is not None:
            message = await reference.reply(text, mention_author=False, allowed_mentions=NO_PINGS)
        else:
            message = await self._channel.send(text, allowed_mentions=NO_PINGS)
        self._sent[str(message.id)] = message
        if self._on_post is not None:
            await self._on_post(message)
        return str(message.id)

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        try:
            self._sent[message_id] = await self._sent[message_id].edit(
                content=text, allowed_mentions=NO_PINGS
            )
        except discord.NotFound as exc:  # deleted meanwhile: the text goes in a new message
            raise EditRefused(f"message {message_id} is gone") from exc

    async def delete(self, message_id: str) -> None:
        message = self._sent.pop(message_id, None)
        if message is not None:
            await message.delete()


class PartialSink:
    """Messages known only by id (posted by another process), edited and deleted by id."""

    def __init__(self, channel: discord.PartialMessageable) -> None:
        self._channel = channel

    async def prepare(self) -> bool:
        return True

    async def post(self, text: str) -> str:
        return str((await self._channel.send(text, allowed_mentions=NO_PINGS)).id)

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        try:
            await self._channel.get_partial_message(int(message_id)).edit(
                content=text, allowed_mentions=NO_PINGS
            )
        except discord.NotFound as exc:
            raise EditRefused(f"message {message_id} is gone") from exc

    async def delete(self, message_id: str) -> None:
        await self._channel.get_partial_message(int(message_id)).delete()
