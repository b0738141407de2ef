"""The slack_bolt app: every subscribed event, the slash commands and the shortcut get a listener.

process_before_response is on, so Slack's HTTP response is sent when a listener returns; every
listener returns within milliseconds (events only hand the payload to the bot; the command and
the shortcut ack first) and the real work runs in the background.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.asking import on_ask_command
from adapters.slack.assistant import build_assistant
from adapters.slack.feedback import FEEDBACK_ACTION, on_feedback
from adapters.slack.mentions import SlackBot
from adapters.slack.summaries import Ack, Respond, on_summarize_command, on_summarize_shortcut
from adapters.slack.usage import on_usage_command
from bot.store.kv import InProcessNotes, Notes

log = logging.getLogger(__name__)

SUMMARIZE_COMMAND = "/summarize"
SUMMARIZE_SHORTCUT = "summarize_thread"
USAGE_COMMAND = "/usage"
ASK_COMMAND = "/ask"


def _not_the_token_notice(record: logging.LogRecord) -> bool:
    # Bolt reads SLACK_BOT_TOKEN itself and warns that our configured client wins; it should.
    return "will be unused" not in record.getMessage()


def retry_number(headers: dict[str, Any]) -> int:
    """X-Slack-Retry-Num (slack_bolt puts Socket Mode's retry_attempt there too); 0 if absent."""
    value = headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(value[0] if isinstance(value, list | tuple) else value)
    except (TypeError, ValueError):
        return 0


def build_app(
    bot: SlackBot, client: AsyncWebClient, signing_secret: str | None, notes: Notes | None = None
) -> AsyncApp:
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

    # Bolt asks auth.test on the first request and caches it; a burst at start-up would ask it
    # once per request until the first answer came back. The bot has asked it already.
    for middleware in app._async_middleware_list:
        if isinstance(middleware, AsyncSingleTeamAuthorization) and bot.web.auth_test is not None:
            middleware.auth_test_result = bot.web.auth_test
    # the assistant pane, before the generic listeners
    app.use(build_assistant(bot, notes or InProcessNotes(), retry_number))

    socket_mode = signing_secret is None

    async def on_event(body: dict[str, Any], request: AsyncBoltRequest) -> BoltResponse | None:
        retry = retry_number(request.headers)
        if socket_mode:  # acked at once; the claim follows, kept trying while Redis is down
            taken = bot.take(body, retry)
        else:  # HTTP: claimed first, so a Redis outage answers 503 and Slack delivers again
            taken = await bot.accept(body, retry)
        if taken:
            return None  # acked: 200, or the Socket Mode envelope ack
        return BoltResponse(status=503, body="")  # deliver it again later

    app.event("app_mention")(on_event)
    app.event("message")(on_event)

    async def on_member_joined(body: dict[str, Any]) -> None:
        bot.on_member_joined(body)

    app.event("member_joined_channel")(on_member_joined)

    async def on_other_event(body: dict[str, Any]) -> None:
        # Slack counts a 404 as a failed delivery and can turn an app's events off: an event
        # type the manifest does not ask for (an old subscription, a new Slack feature) is
        # acknowledged with one line instead of bolt's warning and its 404.
        event = body.get("event")
        kind = event.get("type") if isinstance(event, dict) else None
        log.info("event %r is not one the bot handles: acknowledged, ignored", kind)

    app.event(re.compile(".*"))(on_other_event)  # last: only what nothing above took

    async def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        await on_summarize_command(bot, ack, command, respond)

    async def on_usage(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        await on_usage_command(bot, ack, command, respond)

    async def on_ask(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        await on_ask_command(bot, ack, command, respond)

    async def on_shortcut(ack: Ack, shortcut: dict[str, Any], respond: Respond) -> None:
        await on_summarize_shortcut(bot, ack, shortcut, respond)

    async def on_feedback_click(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await on_feedback(bot.feedback, ack, body, respond)

    app.action(FEEDBACK_ACTION)(on_feedback_click)
    app.command(SUMMARIZE_COMMAND)(on_command)
    app.command(USAGE_COMMAND)(on_usage)
    app.command(ASK_COMMAND)(on_ask)
    app.shortcut(SUMMARIZE_SHORTCUT)(on_shortcut)

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("listener failed on %s: %s", body.get("type"), error, exc_info=error)

    app.error(on_error)
    return app
