"""The Slack adapter's settings, under the names Slack's own tools use."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import read_settings


def _names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    api_url: str | None = Field(None, alias="SLACK_API_URL")
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(3000, alias="PORT", ge=1, le=65535)
    allowed_teams: str = Field("", alias="SLACK_ALLOWED_TEAMS")
    allowed_channels: str = Field("", alias="SLACK_ALLOWED_CHANNELS")
    edit_interval: float = Field(1.0, alias="SLACK_EDIT_INTERVAL", ge=0.2, le=10)
    # auto: native streaming (chat.startStream), falling back to edits where Slack refuses it
    streaming: Literal["auto", "native", "edits"] = Field("auto", alias="SLACK_STREAMING")
    feedback: bool = Field(True, alias="SLACK_FEEDBACK")
    assistant_prompts: str = Field(
        "Summarize this channel,What did I miss?", alias="SLACK_ASSISTANT_PROMPTS"
    )

    @property
    def prompts(self) -> list[str]:
        """The pane's suggested prompts (Slack shows up to four)."""
        return [p.strip() for p in self.assistant_prompts.split(",") if p.strip()][:4]

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def team_allowlist(self) -> frozenset[str]:
        return _names(self.allowed_teams)

    @property
    def channel_allowlist(self) -> frozenset[str]:
        return _names(self.allowed_channels)

    def allows(self, team: str, channel: str) -> bool:
        teams, channels = self.team_allowlist, self.channel_allowlist
        return (not teams or team in teams) and (not channels or channel in channels)


def load_slack_settings(**overrides: object) -> SlackSettings:
    settings = read_settings(SlackSettings, **overrides)
    if settings.bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN", "is not set; copy the Bot User OAuth Token (xoxb-…)")
    if not settings.bot_token.get_secret_value().startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
    if settings.app_token and not settings.app_token.get_secret_value().startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-")
    if not settings.socket_mode and settings.signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET",
            "is required in HTTP mode (without SLACK_APP_TOKEN); it is under Basic Information "
            "in your Slack app's settings",
        )
    return settings
