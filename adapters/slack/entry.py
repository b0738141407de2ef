"""The Slack adapter as the core discovers it: light to import (settings only), so a process
that does not run Slack never loads slack_bolt; `serve` imports the runner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.slack.settings import SlackSettings
from bot.settings import read_settings

if TYPE_CHECKING:
    from bot.core import Core


class SlackAdapter:
    name = "slack"
    interactive = False

    def configured(self) -> bool:
        try:
            return read_settings(SlackSettings).bot_token is not None
        except Exception:
            return True  # let serve() report the invalid setting

    def requirement(self) -> str:
        return (
            "set SLACK_BOT_TOKEN plus SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN "
            "(Socket Mode) for Slack"
        )

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        from adapters.slack.runner import serve

        await serve(core, options)


ADAPTER = SlackAdapter()
