"""Who may read which Slack channel, asked of Slack at question time and kept a minute at most:
search never shows anyone what they could not read themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from adapters.slack.web import SlackWeb, is_public

TTL = 60.0  # seconds an answer about a channel or a membership is trusted
CHECKS_AT_ONCE = 8
MOST = 50_000  # answers kept before the expired ones are dropped


class SlackAccess:
    def __init__(self, web: SlackWeb, clock: Callable[[], float] = time.monotonic) -> None:
        self._web = web
        self._clock = clock
        self._infos: dict[str, tuple[dict[str, Any], float]] = {}
        self._reads: dict[tuple[str, str], tuple[bool, float]] = {}
        self._gate = asyncio.Semaphore(CHECKS_AT_ONCE)

    async def _info(self, channel: str) -> dict[str, Any]:
        """conversations.info, asked once a minute at most per channel."""
        now = self._clock()
        known = self._infos.get(channel)
        if known is not None and known[1] > now:
            return known[0]
        async with self._gate:
            info = await self._web.channel_info(channel)
        self._infos = _fresh(self._infos, now)
        self._infos[channel] = (info, now + TTL)
        return info

    async def can_read(self, user: str, channel: str) -> bool:
        """The person can read `channel` now: a public channel of the workspace, or one they are
        a member of (and the bot is in it, or it would have no log)."""
        now = self._clock()
        known = self._reads.get((user, channel))
        if known is not None and known[1] > now:
            return known[0]
        info = await self._info(channel)
        async with self._gate:
            readable = await self._web.can_read_with(info, channel, user)
        self._reads = _fresh(self._reads, now)
        self._reads[(user, channel)] = (readable, now + TTL)
        return readable

    async def readable(self, user: str, channels: Sequence[str]) -> list[str]:
        answers = await asyncio.gather(*(self.can_read(user, c) for c in channels))
        return [c for c, ok in zip(channels, answers, strict=True) if ok]

    async def is_public(self, channel: str) -> bool:
        """Anyone in the workspace can read it (not private, not a DM)."""
        return is_public(await self._info(channel))


async def readable_scopes(user: str, scopes: Sequence[str]) -> list[str]:
    """The channel scopes (slack:T…:C…) `user` can read now, asked of Slack with the bot's
    token: `python -m bot search --as USER`."""
    from adapters.slack.settings import SlackSettings
    from adapters.slack.web import make_client
    from bot.errors import ConfigError
    from bot.settings import read_settings

    settings = read_settings(SlackSettings)
    if settings.bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN", "--as asks Slack who may read what; set it")
    web = SlackWeb(make_client(settings.bot_token.get_secret_value(), settings.api_url))
    try:
        ids = [scope.rsplit(":", 1)[-1] for scope in scopes]
        readable = set(await SlackAccess(web).readable(user, ids))
    finally:
        await web.close()
    return [scope for scope in scopes if scope.rsplit(":", 1)[-1] in readable]


def _fresh(answers: dict[Any, tuple[Any, float]], now: float) -> dict[Any, tuple[Any, float]]:
    if len(answers) <= MOST:
        return answers
    return {k: v for k, v in answers.items() if v[1] > now}
