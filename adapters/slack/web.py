"""The Slack Web API calls the bot makes, over slack_sdk's AsyncWebClient."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

PAGE = 200  # conversations.* page size
NAME_CACHE_SIZE = 5000

# Slack error codes users can act on, as sentences.
API_ERRORS = {
    "not_in_channel": "I am not in this channel; invite me with /invite and try again.",
    "channel_not_found": "I cannot see this channel; invite me with /invite and try again.",
    "missing_scope": "I lack a Slack permission for this; an admin needs to reinstall me.",
    "ratelimited": "Slack is rate limiting me right now; please try again in a minute.",
    "invalid_auth": "My Slack token was rejected; an admin needs to check SLACK_BOT_TOKEN.",
    "not_authed": "My Slack token was rejected; an admin needs to check SLACK_BOT_TOKEN.",
}


def api_error_sentence(error: SlackApiError) -> str:
    code = str(error.response.get("error", "")) if error.response is not None else ""
    return API_ERRORS.get(
        code, f"Slack refused my request ({code or 'unknown error'}); please try again."
    )


def make_client(token: str, api_url: str | None) -> AsyncWebClient:
    kwargs: dict[str, Any] = {"token": token, "timeout": 15}
    if api_url:
        kwargs["base_url"] = api_url if api_url.endswith("/") else api_url + "/"
    # One session for every call: without it slack_sdk opens a new connection per request.
    client = AsyncWebClient(session=aiohttp.ClientSession(), **kwargs)
    # slack_sdk retries only connection errors by default; 429s and 5xx are retried too,
    # after Retry-After, so no answer is lost to a rate limit.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    return client


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    bot_id: str | None
    team_id: str
    url: str = ""  # the workspace's address, for permalinks


class SlackWeb:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._names: dict[str, str] = {}

    async def close(self) -> None:
        if self.client.session is not None:
            await self.client.session.close()

    async def identity(self) -> Identity:
        answer = await self.client.auth_test()
        return Identity(
            user_id=str(answer["user_id"]),
            bot_id=answer.get("bot_id"),
            team_id=str(answer.get("team_id", "")),
            url=str(answer.get("url", "")),
        )

    async def name_of(self, user_id: str) -> str:
        """A person's display name, asked of Slack once and then cached."""
        if user_id in self._names:
            return self._names[user_id]
        try:
            answer = await self.client.users_info(user=user_id)
            user = answer.get("user") or {}
            profile = user.get("profile") or {}
            name = str(
                profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                or user.get("name") or user_id
            )  # fmt: skip
        except SlackApiError as exc:
            log.info("users.info %s failed: %s", user_id, exc.response.get("error"))
            return user_id  # not cached: it may work next time
        if len(self._names) >= NAME_CACHE_SIZE:
            self._names.pop(next(iter(self._names)))
        self._names[user_id] = name
        return name

    async def names_of(self, user_ids: set[str]) -> dict[str, str]:
        return {user_id: await self.name_of(user_id) for user_id in sorted(user_ids)}

    async def thread(
        self, channel: str, thread_ts: str, *, most: int = 1000
    ) -> list[dict[str, Any]]:
        """A thread's messages, oldest first (the parent included), at most `most`."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(messages) < most:
            answer = await self.client.conversations_replies(
                channel=channel, ts=thread_ts, limit=PAGE, cursor=cursor
            )
            messages.extend(answer.get("messages") or [])
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return messages[-most:] if len(messages) > most else messages

    async def history(
        self, channel: str, *, oldest: float | None, most: int, latest: float | None = None
    ) -> list[dict[str, Any]]:
        """Top-level messages since `oldest`, oldest first; the newest `most` of them."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(messages) < most:
            answer = await self.client.conversations_history(
                channel=channel,
                oldest=f"{oldest:.6f}" if oldest else None,
                latest=f"{latest:.6f}" if latest else None,
                limit=min(PAGE, most - len(messages)),
                cursor=cursor,
            )
            messages.extend(answer.get("messages") or [])  # newest first
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not answer.get("has_more"):
                break
        return list(reversed(messages[:most]))

    async def post(self, channel: str, text: str, thread_ts: str | None) -> str:
        answer = await self.client.chat_postMessage(
            channel=channel,
            text=text,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            link_names=False,
            parse="none",
        )
        return str(answer["ts"])

    async def update(self, channel: str, ts: str, text: str) -> None:
        await self.client.chat_update(
            channel=channel, ts=ts, text=text, link_names=False, parse="none"
        )


@dataclass
class SlackSink:
    """Where one streamed reply goes: a channel, under a thread (or top level in a DM)."""

    web: SlackWeb
    channel: str
    thread_ts: str | None

    async def post(self, text: str) -> str:
        return await self.web.post(self.channel, text, self.thread_ts)

    async def edit(self, message_id: str, text: str) -> None:
        await self.web.update(self.channel, message_id, text)
