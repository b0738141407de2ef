"""Which conversation a Discord message belongs to (a thread, a DM, a chain of replies to the
bot), and what the model reads of it. Mixed into DiscordBot."""

from __future__ import annotations

import logging

import discord

from adapters.discord.files import attachment_refs
from adapters.discord.routing import plain_text
from adapters.discord.summaries import guild_id_of, is_thread, thread_in
from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.engine import ConversationEngine
from bot.errors import StoreUnavailable
from bot.store.kv import Notes

log = logging.getLogger(__name__)


class Conversations:
    """Provided by DiscordBot."""

    engine: ConversationEngine
    notes: Notes
    retention: int
    me: discord.ClientUser | None

    def thread_ref(self, message: discord.Message) -> ThreadRef:
        channel = message.channel
        guild_id = guild_id_of(message)
        if guild_id is None:
            return ThreadRef("discord", "@me", str(channel.id), "dm")
        if isinstance(channel, discord.Thread):
            return thread_in(guild_id, channel.parent_id, channel.id)
        return ThreadRef("discord", str(guild_id), str(channel.id), f"reply-{message.id}")

    async def chain_ref(self, message: discord.Message) -> ThreadRef:
        """A reply to a bot message in a channel continues that message's conversation."""
        base = self.thread_ref(message)
        if guild_id_of(message) is None or is_thread(message.channel) or message.reference is None:
            return base
        parent = message.reference.message_id
        try:
            known = await self.notes.get(f"discord:chain:{parent}")
        except StoreUnavailable:
            known = None
        return ThreadRef(base.platform, base.workspace, base.channel, known or f"reply-{parent}")

    async def remember_chain(self, ref: ThreadRef, message: discord.Message) -> None:
        try:
            await self.notes.put(f"discord:chain:{message.id}", ref.thread, ttl=self.retention)
        except StoreUnavailable as exc:
            log.warning("could not remember the reply chain of %s: %s", message.id, exc)

    def incoming(self, message: discord.Message, ref: ThreadRef) -> IncomingMessage:
        return IncomingMessage(
            thread=ref,
            text=self.text_of(message, list_files=False),
            files=attachment_refs(message),
            author_id=str(message.author.id),
            author_name=message.author.display_name,
            message_id=str(message.id),
            at=message.created_at,
        )

    def text_of(self, message: discord.Message, *, list_files: bool = True) -> str:
        """What the model reads: the text, forwarded messages quoted, stickers named, and files
        named unless the files themselves go with it."""
        users = {u.id: u.display_name for u in message.mentions}
        roles = {r.id: r.name for r in message.role_mentions}
        channels = {c.id: c.name for c in message.channel_mentions}
        me = self.me.id if self.me else 0
        parts = [plain_text(message.content, me=me, users=users, roles=roles, channels=channels)]
        for snapshot in getattr(message, "message_snapshots", None) or []:
            quoted = "\n".join("> " + line for line in snapshot.content.split("\n"))
            files = ", ".join(a.filename for a in snapshot.attachments) if list_files else ""
            parts.append("(forwarded)\n" + quoted + (f"\n(attached: {files})" if files else ""))
        if message.attachments and list_files:
            parts.append("(attached: " + ", ".join(a.filename for a in message.attachments) + ")")
        if message.stickers:
            parts.append("(sticker: " + ", ".join(s.name for s in message.stickers) + ")")
        return "\n\n".join(p for p in parts if p.strip())

    def wordless(self, message: discord.Message) -> bool:
        """Nothing written but a mention, and nothing forwarded."""
        me = self.me.id if self.me else 0
        said = plain_text(message.content, me=me, users={}, roles={}, channels={})
        forwarded = any(s.content.strip() for s in getattr(message, "message_snapshots", []) or [])
        return not said.strip() and not forwarded

    async def seed_chain(self, message: discord.Message, ref: ThreadRef) -> None:
        """A reply to a bot message the bot no longer remembers: start from that message."""
        resolved = message.reference.resolved if message.reference else None
        if isinstance(resolved, discord.Message) and resolved.content:
            turn = Turn(role="assistant", text=resolved.content, author_id=str(resolved.author.id),
                        author_name=self.engine.config.bot_name, message_id=str(resolved.id),
                        at=resolved.created_at)  # fmt: skip
            await self.engine.seed(ref, [turn])
