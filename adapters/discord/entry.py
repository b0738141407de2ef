"""The Discord adapter as the core discovers it (see adapters/lazy.py)."""

from adapters.discord.settings import DiscordSettings
from adapters.lazy import LazyAdapter

ADAPTER = LazyAdapter(
    "discord",
    DiscordSettings,
    "set DISCORD_BOT_TOKEN for Discord",
    "adapters.discord.runner",
    "adapters.discord.doctor",
    homes="adapters.discord.summaries",
    export=("discord-export", "adapters.discord.export"),
    access="adapters.discord.access",
)
