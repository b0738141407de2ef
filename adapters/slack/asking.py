"""`/ask QUESTION` on Slack: ack at once, then the grounded answer by response_url, only to the
asker unless they added `public`."""

from __future__ import annotations

import logging
import re
from typing import Any

from adapters.slack.mentions import SlackBot, failure_sentence
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.summaries import NOT_ENABLED, Ack, Respond, payer_of_command, send
from bot.errors import InvalidRequest
from bot.search.ask_args import AskRequest, parse_ask

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")

log = logging.getLogger(__name__)

NOT_READABLE = "You cannot read {where}, so I will not search it for you."
NAME_IT = "Name the channel as a link (type # and pick it), so I know which one you mean."
NOTHING_READABLE = "There is no channel I keep a history of that you can read."
ONLY_YOU = "_Only you see this: it draws on channels not everyone here can read._\n\n"


async def on_ask_command(
    bot: SlackBot, ack: Ack, command: dict[str, Any], respond: Respond
) -> None:
    try:
        request = parse_ask(str(command.get("text") or ""))
    except InvalidRequest as exc:
        await ack(response_type="ephemeral", text=exc.user_message())
        return
    team, channel = str(command.get("team_id", "")), str(command.get("channel_id", ""))
    if not bot.settings.allows(team, channel):
        await ack(response_type="ephemeral", text=NOT_ENABLED)
        return
    if request.channel and not _CHANNEL_ID.match(request.channel):
        await ack(response_type="ephemeral", text=NAME_IT)
        return
    searching = "every channel you can read" if request.everywhere else "the channel"
    await ack(response_type="ephemeral", text=f"Searching {searching}…")
    bot.tasks.spawn(answer_ask(bot, command, request, respond), name="slack-ask")


async def targets(
    bot: SlackBot, command: dict[str, Any], request: AskRequest
) -> tuple[list[str], str]:
    """The channel ids to search and how to name them; InvalidRequest when the asker may not.
    The channel asked in is readable by whoever asked there (Slack let them run the command)."""
    team, here = str(command.get("team_id", "")), str(command.get("channel_id", ""))
    user = str(command.get("user_id", ""))
    name = str(command.get("channel_name") or "")
    if request.everywhere:
        logged = await bot.engine.logged_channels(bot.scope(team, ""))
        ids = [scope.rsplit(":", 1)[-1] for scope in logged]
        readable = [c for c in ids if c == here] + await bot.access.readable(
            user, [c for c in ids if c != here]
        )
        if not readable:
            raise InvalidRequest(NOTHING_READABLE)
        count = len(readable)
        return readable, f"the {count} channel{'s' if count != 1 else ''} you can read"
    if request.channel and request.channel != here:
        where = f"#{request.channel_name}" if request.channel_name else "that channel"
        if not await bot.access.can_read(user, request.channel):
            raise InvalidRequest(NOT_READABLE.format(where=where))
        return [request.channel], where
    return [here], f"#{name}" if name and name not in ("directmessage", "privategroup") else "here"


async def answer_ask(
    bot: SlackBot, command: dict[str, Any], request: AskRequest, respond: Respond
) -> None:
    team, here = str(command.get("team_id", "")), str(command.get("channel_id", ""))
    public = request.public
    try:
        channels, where = await targets(bot, command, request)
        prefix = ""
        others = [c for c in channels if c != here]
        if public and not all([await bot.access.is_public(c) for c in others]):
            # The audience rule: posted here, it may cite only what everyone here can read.
            public, prefix = False, ONLY_YOU
        answer = await bot.engine.ask(
            request.question, channels=[bot.scope(team, c) for c in channels], where=where,
            dialect="markdown", payer=payer_of_command(command),
        )  # fmt: skip
        text = prefix + to_mrkdwn(answer.text)
    except Exception as exc:
        log.warning("/ask failed: %s", exc)
        text, public = failure_sentence(exc), False
    await send(respond, text, public=public)
