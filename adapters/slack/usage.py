"""`/usage`: ack at once, then the asker's tokens, cost and limits (admins: the workspace's top
channels and users) by response_url, only to them."""

from __future__ import annotations

import logging
from typing import Any

from adapters.slack.mentions import SlackBot, failure_sentence
from adapters.slack.mrkdwn import escape, neutralise_pings
from adapters.slack.summaries import Ack, Respond, payer_of_command, send
from bot.usage.tally import Payer

log = logging.getLogger(__name__)


async def on_usage_command(
    bot: SlackBot, ack: Ack, command: dict[str, Any], respond: Respond
) -> None:
    await ack()
    bot.tasks.spawn(show_usage(bot, payer_of_command(command), respond), name="slack-usage")


async def show_usage(bot: SlackBot, payer: Payer, respond: Respond) -> None:
    try:
        text = await bot.engine.quotas.report(
            payer,
            channel_label=lambda channel: f"<#{channel}>",
            name_label=lambda name: neutralise_pings(escape(name)),  # names are user text
        )
    except Exception as exc:
        log.warning("usage report failed: %s", exc)
        text = failure_sentence(exc)
    await send(respond, text, public=False)
