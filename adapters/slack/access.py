"""Who may read which Slack channel, asked of Slack at question time and kept a minute at most:
search never shows anyone what they could not read themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from slack_sdk.errors import SlackApiError

from adapters.slack.web import SlackWeb

TTL = 60.0  # seconds an answer about membership is trusted
CHECKS_AT_ONCE = 8


class SlackAccess:
    def __init__(self, web: SlackWeb, clock: Callable[[], float] = time.monotonic) -> None:
        self._web = web
        self._clock = clock
        self._reads: dict[tuple[str, str], tuple[bool, float]] = {}
        self._public: dict[str, tuple[bool, float]] = {}
        self._gate = asyncio.Semaphore(CHECKS_AT_ONCE)

    async def can_read(self, user: str, channel: str) -> bool:
        """The person can read `channel` now: a public channel of the workspace, or one they are
        a member of (and the bot is in it, or it would have no log)."""
        now = self._clock()
        known = self._reads.get((user, channel))
        if known is not None and known[1] > now:
            return known[0]
        async with self._gate:
            readable = await self._web.both_can_read(channel, user)
        if len(self._reads) > 50_000:
            self._reads = {k: v for k, v in self._reads.items() if v[1] > now}
        self._reads[(user, channel)] = (readable, now + TTL)
        return readable

    async def readable(self, user: str, channels: Sequence[str]) -> list[str]:
        answers = await asyncio.gather(*(self.can_read(user, c) for c in channels))
        return [c for c, ok in zip(channels, answers, strict=True) if ok]

    async def is_public(self, channel: str) -> bool:
        """Anyone in the workspace can read it (not private, not a DM)."""
        now = self._clock()
        known = self._public.get(channel)
        if known is not None and known[1] > now:
            return known[0]
        try:
            info = (await self._web.client.conversations_info(channel=channel)).get("channel")
        except SlackApiError:
            info = None
        public = isinstance(info, dict) and not (
            info.get("is_private") or info.get("is_im") or info.get("is_mpim")
        )
        self._public[channel] = (public, now + TTL)
        return public
