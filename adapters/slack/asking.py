"""`/ask QUESTION` on Slack: ack at once, then the grounded answer by response_url, only to the
asker unless they added `public`."""

from __future__ import annotations

import logging
from typing import Any

from adapters.slack.mentions import SlackBot, failure_sentence
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.summaries import NOT_ENABLED, Ack, Respond, payer_of_command, send
from bot.errors import InvalidRequest
from bot.search.ask_args import AskRequest, parse_ask

log = logging.getLogger(__name__)

ONLY_HERE = (
    "For now I search only the channel you ask in: run /ask there (searching another channel or "
    "everywhere needs checks of who may read what that are not built yet)."
)


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
    if request.everywhere or (request.channel and request.channel != channel):
        await ack(response_type="ephemeral", text=ONLY_HERE)
        return
    await ack(response_type="ephemeral", text="Searching this channel…")
    bot.tasks.spawn(answer_ask(bot, command, request, respond), name="slack-ask")


async def answer_ask(
    bot: SlackBot, command: dict[str, Any], request: AskRequest, respond: Respond
) -> None:
    team, channel = str(command.get("team_id", "")), str(command.get("channel_id", ""))
    name = str(command.get("channel_name") or "")
    where = f"#{name}" if name and name not in ("directmessage", "privategroup") else "here"
    public = request.public
    try:
        answer = await bot.engine.ask(
            request.question, channels=[bot.scope(team, channel)], where=where,
            dialect="markdown", payer=payer_of_command(command),
        )  # fmt: skip
        text = to_mrkdwn(answer.text)
    except Exception as exc:
        log.warning("/ask failed: %s", exc)
        text, public = failure_sentence(exc), False
    await send(respond, text, public=public)
