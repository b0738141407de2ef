"""Slack's part of `python -m bot doctor`: the bot token, the scopes it was granted against those
the manifests ask for, and Socket Mode's app token or HTTP mode's signing secret."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.slack.runner import EVENTS_PATH
from adapters.slack.settings import SlackSettings
from adapters.slack.web import _client
from bot.doctor import Check
from bot.settings import read_settings

AREA = "slack"
# What adapters/slack/manifest.*.yml ask for (tests/adapters/slack/test_manifest.py checks).
SCOPES = frozenset(
    [
        "app_mentions:read",
        "assistant:write",
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "files:read",
        "groups:history",
        "groups:read",
        "im:history",
        "im:read",
        "mpim:history",
        "mpim:read",
        "users:read",
    ]
)
REINSTALL = (
    "copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions, and reinstall the "
    "app if it was revoked"
)


def _header(headers: object, name: str) -> str:
    for key, value in dict(headers or {}).items():  # type: ignore[call-overload]
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return ""


async def checks() -> list[Check]:
    settings = read_settings(SlackSettings)
    if settings.bot_token is None:
        return [Check.fail(AREA, "SLACK_BOT_TOKEN is not set", REINSTALL)]
    token = settings.bot_token.get_secret_value()
    if not token.startswith("xoxb-"):
        return [Check.fail(AREA, "SLACK_BOT_TOKEN is not a bot token (xoxb-…)", REINSTALL)]
    found: list[Check] = []
    client = _client(token, settings.api_url, None)
    try:
        try:
            identity = await client.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "error"
            return [Check.fail(AREA, f"Slack refused SLACK_BOT_TOKEN ({error})", REINSTALL)]
        except (aiohttp.ClientError, OSError) as exc:
            return [Check.fail(AREA, f"cannot reach Slack: {exc}", "check the connection")]
        found.append(
            Check.ok(
                AREA,
                f"bot token valid: workspace {identity.get('team')} "
                f"({identity.get('team_id')}), bot user "
                f"@{identity.get('user')}",
            )
        )
        granted = {s.strip() for s in _header(identity.headers, "x-oauth-scopes").split(",")}
        missing = sorted(SCOPES - granted)
        if missing:
            found.append(
                Check.fail(
                    AREA,
                    f"missing scopes: {', '.join(missing)}",
                    "add them under OAuth & Permissions → Bot Token Scopes (or "
                    "create the app from adapters/slack/manifest.*.yml), then "
                    "reinstall the app",
                )
            )
        else:
            found.append(Check.ok(AREA, f"all {len(SCOPES)} scopes the manifest asks for granted"))
        found.append(await _mode(settings, client))
    finally:
        await client.session.close()  # type: ignore[union-attr]
    return found


async def _mode(settings: SlackSettings, client: object) -> Check:
    if settings.app_token is not None:
        app_token = settings.app_token.get_secret_value()
        if not app_token.startswith("xapp-"):
            return Check.fail(
                AREA,
                "SLACK_APP_TOKEN is not an app-level token (xapp-…)",
                "create one with connections:write under Basic Information",
            )
        try:
            await client.apps_connections_open(app_token=app_token)  # type: ignore[attr-defined]
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "error"
            return Check.fail(
                AREA,
                f"Slack refused SLACK_APP_TOKEN ({error})",
                "create an app-level token with connections:write under Basic "
                "Information, and enable Socket Mode",
            )
        return Check.ok(AREA, "Socket Mode: the app token opens a connection")
    if settings.signing_secret is None:
        return Check.fail(
            AREA,
            "HTTP mode without SLACK_SIGNING_SECRET",
            "copy the Signing Secret from Basic Information, or set "
            "SLACK_APP_TOKEN for Socket Mode",
        )
    return Check.ok(
        AREA, f"HTTP mode: signing secret set; Slack posts to {EVENTS_PATH} on port {settings.port}"
    )
