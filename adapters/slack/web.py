"""The Slack Web API calls the bot makes, over slack_sdk's AsyncWebClient."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.api_metrics import api_trace, slack_method
from adapters.slack.budget import SlackBudget
from adapters.streaming import FINAL_PATIENCE, EditRefused
from bot.errors import BotError

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


def make_client(
    token: str, api_url: str | None, *, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The client for every call that must get through: 429s and 5xx are retried."""
    client = _client(token, api_url, session)
    # slack_sdk retries only connection errors by default; 429s and 5xx are retried too,
    # after Retry-After, so no answer is lost to a rate limit.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    return client


def _client(
    token: str, api_url: str | None, session: aiohttp.ClientSession | None
) -> AsyncWebClient:
    kwargs: dict[str, Any] = {"token": token, "timeout": 15}
    if api_url:
        kwargs["base_url"] = api_url if api_url.endswith("/") else api_url + "/"
    # One session for every call: without it slack_sdk opens a new connection per request.
    # Its trace counts every call and 429 by method (/metrics).
    session = session or aiohttp.ClientSession(trace_configs=[api_trace("slack", slack_method)])
    return AsyncWebClient(session=session, **kwargs)


def _retry_after(error: SlackApiError) -> float:
    headers = error.response.headers if error.response is not None else {}
    value = headers.get("Retry-After") or headers.get("retry-after") or "1"
    try:
        return max(0.0, float(value[0] if isinstance(value, list) else value))
    except ValueError:
        return 1.0


# chat.update errors that mean the message will never take this edit: post anew instead.
UNEDITABLE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    bot_id: str | None
    team_id: str
    url: str = ""  # the workspace's address, for permalinks


class SlackWeb:
    def __init__(self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic):
        self.client = client
        # For calls that decide for themselves what a 429 means (edits are optional until the
        # last one; a refused stream falls back to edits), no SDK retry. One pause for the
        # workspace's edits: Slack's limit is per method.
        self.no_wait_client = _client(client.token or "", client.base_url, client.session)
        self._edits_paused_until = float("-inf")
        self._clock = clock
        self.budget: SlackBudget | None = None  # the workspace's shared rate budget
        self._names: dict[str, str] = {}
        self._asking: dict[str, asyncio.Future[str]] = {}  # users.info calls under way
        self.auth_test: Any = None

    async def close(self) -> None:
        if self.client.session is not None:
            await self.client.session.close()

    async def identity(self) -> Identity:
        answer = await self.client.auth_test()
        self.auth_test = answer  # slack_bolt's authorization reuses it (see listeners.py)
        return Identity(
            user_id=str(answer["user_id"]),
            bot_id=answer.get("bot_id"),
            team_id=str(answer.get("team_id", "")),
            url=str(answer.get("url", "")),
        )

    async def name_of(self, user_id: str) -> str:
        """A person's display name, asked of Slack once and then cached; those who want it
        while it is being asked wait for that call (a burst of fifty messages from one person,
        each logged and answered, made a hundred)."""
        if user_id in self._names:
            return self._names[user_id]
        asking = self._asking.get(user_id)
        if asking is None:
            asking = self._asking[user_id] = asyncio.ensure_future(self._ask_name(user_id))
            asking.add_done_callback(lambda _: self._asking.pop(user_id, None))
        return await asyncio.shield(asking)  # one who stops waiting cancels no one else's

    async def _ask_name(self, user_id: str) -> str:
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

    def known_names(self, user_ids: set[str]) -> dict[str, str] | None:
        """The display names of `user_ids` if every one is cached already, else None."""
        if all(u in self._names for u in user_ids):
            return {u: self._names[u] for u in user_ids}
        return None

    async def names_of(self, user_ids: set[str]) -> dict[str, str]:
        ordered = sorted(user_ids)
        return dict(zip(ordered, await asyncio.gather(*map(self.name_of, ordered)), strict=True))

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
        if self.budget is not None:
            await self.budget.wait_to_post(channel)
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

    async def update(
        self,
        channel: str,
        ts: str,
        text: str,
        blocks: list[Any] | None = None,
        *,
        optional: bool = False,
        paid: bool = False,
        patience: float = FINAL_PATIENCE,
    ) -> None:
        wait = self._edits_paused_until - self._clock()
        if wait > 0:
            raise EditRefused("chat.update is rate limited", retry_after=wait)
        if self.budget is not None and not paid:
            if not optional:
                try:  # a final edit waits a while for room, then the answer is posted anew
                    await asyncio.wait_for(self.budget.wait("chat.update"), patience)
                except TimeoutError:
                    raise EditRefused("no chat.update budget for the final text") from None
            elif not await self.budget.may("chat.update"):
                raise EditRefused("the workspace's chat.update budget is kept for final text",
                                  retry_after=1.0)  # fmt: skip
        try:
            await self.no_wait_client.chat_update(
                channel=channel, ts=ts, text=text, blocks=blocks, link_names=False, parse="none"
            )
        except SlackApiError as exc:
            code = str(exc.response.get("error", "")) if exc.response is not None else ""
            if (
                exc.response is not None and exc.response.status_code == 429
            ) or code == "ratelimited":
                wait = _retry_after(exc)
                self._edits_paused_until = self._clock() + wait
                if self.budget is not None:
                    with contextlib.suppress(BotError):
                        await self.budget.refused("chat.update", wait)
                raise EditRefused("chat.update is rate limited", retry_after=wait) from exc
            if code in UNEDITABLE:
                raise EditRefused(f"chat.update refused: {code}") from exc
            raise

    async def both_can_read(self, channel: str, user: str) -> bool:
        """Whether the bot is in `channel` and `user` can read it: anyone in the workspace can
        read a public channel; a private channel, group DM or DM only its members."""
        return await self.can_read_with(await self.channel_info(channel), channel, user)

    async def can_read_with(self, info: dict[str, Any], channel: str, user: str) -> bool:
        """`both_can_read`, given the channel's conversations.info."""
        if not info.get("is_member"):
            return False
        return is_public(info) or await self.has_member(channel, user)

    async def channel_info(self, channel: str) -> dict[str, Any]:
        """conversations.info's channel ({} when Slack will not say)."""
        try:
            info = (await self.client.conversations_info(channel=channel)).get("channel")
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", channel, exc.response.get("error"))
            return {}
        return info if isinstance(info, dict) else {}

    async def has_member(self, channel: str, user: str) -> bool:
        cursor: str | None = None
        while True:
            try:
                answer = await self.client.conversations_members(
                    channel=channel, cursor=cursor, limit=PAGE
                )
            except SlackApiError as exc:
                log.info("conversations.members %s: %s", channel, exc.response.get("error"))
                return False
            if user in (answer.get("members") or []):
                return True
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False

    async def delete(self, channel: str, ts: str) -> None:
        if self.budget is not None:
            await self.budget.wait("chat.delete")
        await self.client.chat_delete(channel=channel, ts=ts)


def is_public(info: dict[str, Any]) -> bool:
    """A channel anyone in the workspace can read (not private, not a DM)."""
    return bool(info) and not (info.get("is_private") or info.get("is_im") or info.get("is_mpim"))


@dataclass
class SlackSink:
    """Where one streamed reply goes: a channel, under a thread (or top level in a DM).

    With `final_blocks`, the answer's last message is finished as blocks (its text, then the
    feedback buttons)."""

    web: SlackWeb
    channel: str
    thread_ts: str | None
    final_blocks: Callable[[str], list[Any]] | None = None
    patience: float = FINAL_PATIENCE  # how long a final edit waits for the workspace's budget
    prepaid: int = 0  # final edits already paid for from the workspace's chat.update budget

    async def prepare(self) -> bool:
        """A placeholder only when its final edit can be paid for now; else the answer is posted
        whole when it is finished (one message, no edits)."""
        if self.web.budget is None:
            return True
        if await self.web.budget.prepay_final():
            self.prepaid += 1
            return True
        return False

    async def post(self, text: str) -> str:
        return await self.web.post(self.channel, text, self.thread_ts)

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        blocks = self.final_blocks(text) if final and self.final_blocks else None
        paid = not optional and self.prepaid > 0
        self.prepaid -= 1 if paid else 0
        await self.web.update(
            self.channel, message_id, text, blocks, optional=optional, paid=paid,
            patience=self.patience,
        )  # fmt: skip

    async def delete(self, message_id: str) -> None:
        await self.web.delete(self.channel, message_id)
