"""The Discord adapter as the core discovers it: light to import (settings only), so a process
that does not run Discord never loads discord.py; `serve` imports the runner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.discord.settings import DiscordSettings
from bot.settings import read_settings

if TYPE_CHECKING:
    from bot.core import Core


class DiscordAdapter:
    name = "discord"
    interactive = False

    def configured(self) -> bool:
        try:
            return read_settings(DiscordSettings).bot_token is not None
        except Exception:
            return True  # let serve() report the invalid setting

    def requirement(self) -> str:
        return "set DISCORD_BOT_TOKEN for Discord"

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        from adapters.discord.runner import serve

        await serve(core, options)


ADAPTER = DiscordAdapter()
