"""The slack_bolt app: every subscribed event, the slash command and the shortcut get a listener.

process_before_response is on, so Slack's HTTP response is sent when a listener returns; every
listener returns within milliseconds (events only hand the payload to the bot; the command and
the shortcut ack first) and the real work runs in the background.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.bot import SlackBot
from adapters.slack.summaries import Ack, Respond, on_summarize_command, on_summarize_shortcut

log = logging.getLogger(__name__)

SUMMARIZE_COMMAND = "/summarize"
SUMMARIZE_SHORTCUT = "summarize_thread"


def _not_the_token_notice(record: logging.LogRecord) -> bool:
    # Bolt reads SLACK_BOT_TOKEN itself and warns that our configured client wins; it should.
    return "will be unused" not in record.getMessage()


def build_app(bot: SlackBot, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    bolt_log = logging.getLogger("slack_bolt")
    if _not_the_token_notice not in bolt_log.filters:
        bolt_log.addFilter(_not_the_token_notice)
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        process_before_response=True,
        logger=bolt_log,
    )

    async def on_event(body: dict[str, Any]) -> None:
        bot.on_event(body)

    app.event("app_mention")(on_event)
    app.event("message")(on_event)

    async def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        await on_summarize_command(bot, ack, command, respond)

    async def on_shortcut(ack: Ack, shortcut: dict[str, Any], respond: Respond) -> None:
        await on_summarize_shortcut(bot, ack, shortcut, respond)

    app.command(SUMMARIZE_COMMAND)(on_command)
    app.shortcut(SUMMARIZE_SHORTCUT)(on_shortcut)

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("listener failed on %s: %s", body.get("type"), error, exc_info=error)

    app.error(on_error)
    return app
