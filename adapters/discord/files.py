"""Discord attachments: what a message carries, forwarded ones included, and their fetcher.

Attachment URLs are signed CDN links that need no token, so nothing secret is ever sent.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
import discord

from adapters.downloads import download
from bot.files.refs import FileRef


def _refs(attachments: Iterable[discord.Attachment]) -> list[FileRef]:
    return [
        FileRef(
            platform="discord",
            name=a.filename[:200],
            url=a.url,
            size=a.size if isinstance(a.size, int) and a.size >= 0 else 0,
            mimetype=a.content_type or "",
            file_id=str(a.id),
        )
        for a in attachments
        if a.url and a.filename
    ]


def attachment_refs(message: discord.Message) -> tuple[FileRef, ...]:
    """The files of a message and of the messages forwarded in it."""
    refs = _refs(message.attachments)
    for snapshot in getattr(message, "message_snapshots", None) or []:
        refs += _refs(snapshot.attachments)
    return tuple(refs)


class DiscordFiles:
    """The core's FileFetcher for Discord."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, ref: FileRef, limit: int) -> bytes | bytearray:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return await download(self._session, ref.url, name=ref.name, limit=limit)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
