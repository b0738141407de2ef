"""`/summarize` and the "Summarize thread" message shortcut: ack at once, answer by response_url."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.rendering import split_message
from adapters.slack.mentions import MESSAGE_LIMIT, SlackBot, failure_sentence
from adapters.slack.mrkdwn import escape, neutralise_pings, to_mrkdwn
from bot.conversation import ThreadRef
from bot.errors import InvalidRequest
from bot.summaries.windows import SummaryRequest, parse_summary_args
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[Any]]
Respond = Callable[..., Awaitable[Any]]
NOT_ENABLED = "I am not enabled in this channel."


async def send(respond: Respond, text: str, *, public: bool) -> None:
    kind = "in_channel" if public else "ephemeral"
    for chunk in split_message(text, MESSAGE_LIMIT):
        await respond(text=chunk, response_type=kind, replace_original=False)


def payer_of_command(command: dict[str, Any]) -> Payer:
    """Who a slash command's model calls are counted to."""
    return Payer(
        "slack",
        str(command.get("team_id", "")),
        str(command.get("channel_id", "")),
        str(command.get("user_id", "")),
        str(command.get("user_name") or ""),
    )


async def on_summarize_command(
    bot: SlackBot, ack: Ack, command: dict[str, Any], respond: Respond
) -> None:
    try:
        request = parse_summary_args(str(command.get("text") or ""))
    except InvalidRequest as exc:
        await ack(response_type="ephemeral", text=exc.user_message())
        return
    team, channel = str(command.get("team_id", "")), str(command.get("channel_id", ""))
    if not bot.settings.allows(team, channel):
        await ack(response_type="ephemeral", text=NOT_ENABLED)
        return
    await ack(response_type="ephemeral", text=f"Summarizing {request.window.describe()}…")
    bot.tasks.spawn(summarize_channel(bot, command, request, respond), name="slack-summarize")


async def summarize_channel(
    bot: SlackBot, command: dict[str, Any], request: SummaryRequest, respond: Respond
) -> None:
    team = str(command.get("team_id", ""))
    channel = str(command.get("channel_id", ""))
    user = str(command.get("user_id", ""))
    scope = bot.scope(team, channel)
    payer = payer_of_command(command)
    try:
        since = await bot.engine.summary_since(scope, user) if request.since else None
        window = request.window
        described = "what happened since your last summary" if since else window.describe()
        sources = await bot.channel_sources(team, channel, window, since=since)
        if not sources:
            await send(respond, f"Nobody wrote anything here in {described}.", public=False)
            return
        summary = await bot.engine.summarize_sources(
            sources, scope=scope, requester=user, payer=payer
        )
        text = to_mrkdwn(summary.text)
        if request.public:
            asker = neutralise_pings(escape(await bot.web.name_of(user)))  # names are user text
            text = f"*Summary of {described}* (asked by {asker})\n\n{text}"
        await send(respond, text, public=request.public)
    except Exception as exc:
        log.warning("channel summary failed: %s", exc)
        await send(respond, failure_sentence(exc), public=False)


async def on_summarize_shortcut(
    bot: SlackBot, ack: Ack, shortcut: dict[str, Any], respond: Respond
) -> None:
    await ack()
    bot.tasks.spawn(summarize_thread(bot, shortcut, respond), name="slack-summarize-thread")


async def summarize_thread(bot: SlackBot, shortcut: dict[str, Any], respond: Respond) -> None:
    message = shortcut.get("message") or {}
    channel = str((shortcut.get("channel") or {}).get("id", ""))
    team = str((shortcut.get("team") or {}).get("id", "") or bot.me.team_id)
    root = str(message.get("thread_ts") or message.get("ts") or "")
    if not channel or not root:
        await send(respond, "I could not tell which thread that message belongs to.", public=False)
        return
    if not bot.settings.allows(team, channel):
        await send(respond, NOT_ENABLED, public=False)
        return
    thread = ThreadRef("slack", team, channel, root)
    asker = shortcut.get("user") or {}
    payer = Payer("slack", team, channel, str(asker.get("id", "")), str(asker.get("name") or ""))
    try:
        known = await bot.engine.knows(thread)
        async with bot.engine.counted_to(payer):
            summary = await bot.thread_summary(team, channel, root, known=known)
        await send(respond, to_mrkdwn(summary.text), public=False)
    except Exception as exc:
        log.warning("thread summary failed: %s", exc)
        await send(respond, failure_sentence(exc), public=False)
