"""The Discord adapter's settings."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import read_settings


def _ids(value: str) -> frozenset[int]:
    found = set()
    for part in value.split(","):
        part = part.strip()
        if part:
            if not part.isdigit():
                raise ConfigError("DISCORD_ALLOWED_*", f"{part!r} is not a numeric Discord id")
            found.add(int(part))
    return frozenset(found)


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(None, alias="DISCORD_BOT_TOKEN")
    api_url: str | None = Field(None, alias="DISCORD_API_URL")
    allowed_guilds: str = Field("", alias="DISCORD_ALLOWED_GUILDS")
    allowed_channels: str = Field("", alias="DISCORD_ALLOWED_CHANNELS")
    edit_interval: float = Field(1.5, alias="DISCORD_EDIT_INTERVAL", ge=0.2, le=10)
    # Sharding: several processes split a large bot's guilds. Neither set: discord.py runs the
    # shard count Discord recommends (one per ~1,000 guilds) in this process.
    shard_count: int | None = Field(None, alias="DISCORD_SHARD_COUNT", ge=1, le=10_000)
    shard_ids_text: str = Field("", alias="DISCORD_SHARD_IDS")

    @property
    def shard_ids(self) -> list[int] | None:
        if not self.shard_ids_text.strip():
            return None
        ids = []
        for part in self.shard_ids_text.split(","):
            part = part.strip()
            if not part.isdigit():
                raise ConfigError("DISCORD_SHARD_IDS", f"{part!r} is not a shard number")
            ids.append(int(part))
        if self.shard_count is None:
            raise ConfigError("DISCORD_SHARD_IDS", "needs DISCORD_SHARD_COUNT (the total)")
        if any(i >= self.shard_count for i in ids):
            raise ConfigError(
                "DISCORD_SHARD_IDS", f"shards are numbered 0 to {self.shard_count - 1}"
            )
        return sorted(set(ids))

    @property
    def guild_allowlist(self) -> frozenset[int]:
        return _ids(self.allowed_guilds)

    @property
    def channel_allowlist(self) -> frozenset[int]:
        return _ids(self.allowed_channels)

    def allows(self, guild_id: int | None, channel_ids: tuple[int, ...]) -> bool:
        """DMs pass the guild list; a thread passes if it or its parent channel is listed."""
        guilds, channels = self.guild_allowlist, self.channel_allowlist
        if guild_id is not None and guilds and guild_id not in guilds:
            return False
        return guild_id is None or not channels or any(c in channels for c in channel_ids)


def load_discord_settings(**overrides: object) -> DiscordSettings:
    settings = read_settings(DiscordSettings, **overrides)
    if settings.bot_token is None or not settings.bot_token.get_secret_value().strip():
        raise ConfigError("DISCORD_BOT_TOKEN", "is not set; copy the token from the Bot page")
    settings.guild_allowlist, settings.channel_allowlist, settings.shard_ids  # noqa: B018 - fail early
    return settings
