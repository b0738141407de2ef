"""A channel's messages for a summary window: from the channel log, and from the platform's
history API only for the part of the window the log does not cover."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.errors import StoreUnavailable
from bot.summaries.channel_log import ChannelLog
from bot.summaries.sources import SourceMessage
from bot.summaries.windows import Window

log = logging.getLogger(__name__)

# fetch(oldest, latest, most): the newest `most` messages between the two times, oldest first.
Fetch = Callable[[datetime | None, datetime | None, int], Awaitable[list[SourceMessage]]]
MOST = 5000  # messages read for a time window at the most


async def window_messages(
    channel_log: ChannelLog | None,
    scope: str,
    window: Window,
    fetch: Fetch,
    *,
    since: datetime | None = None,
    most: int = MOST,
) -> list[SourceMessage]:
    """The window's messages, oldest first: at most `window.count`, or for a time window at most
    `most` (the newest). Callers ask for one more than the summarizer takes, so that a window that
    is too large reaches it whole enough to say that it was cut, and where."""
    start = since or (
        datetime.now(UTC) - timedelta(seconds=window.seconds) if window.seconds else None
    )
    most = window.count or most
    logged: list[SourceMessage] = []
    covers_from: datetime | None = None
    if channel_log is not None:
        try:
            found = await channel_log.read(scope, since=start, most=most)
            logged, covers_from = found.messages, found.covers_from
        except StoreUnavailable as exc:
            log.warning("channel log unavailable, reading history instead: %s", exc)
    if covers_from is None:
        return after(await fetch(start, None, most), since)
    missing = most - len(logged)
    gap: list[SourceMessage] = []
    if missing > 0 and (start is None or start < covers_from):
        gap = await fetch(start, covers_from, missing)
    merged: dict[str, SourceMessage] = {m.message_id: m for m in gap}
    merged.update({m.message_id: m for m in logged})
    return after(sorted(merged.values(), key=lambda m: m.at)[-most:], since)


def after(messages: list[SourceMessage], since: datetime | None) -> list[SourceMessage]:
    """`since` is where the previous summary ended: its last message is not new."""
    return messages if since is None else [m for m in messages if m.at > since]
