"""The app manifests ask for exactly what the adapter handles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.slack.doctor import SCOPES
from adapters.slack.listeners import (
    ASK_COMMAND,
    SUMMARIZE_COMMAND,
    SUMMARIZE_SHORTCUT,
    USAGE_COMMAND,
)
from adapters.slack.runner import EVENTS_PATH
from adapters.slack.settings import SlackSettings

FOLDER = Path(__file__).parents[3] / "adapters" / "slack"
EVENTS = {"app_mention", "assistant_thread_started", "assistant_thread_context_changed",
          "message.channels", "message.groups", "message.im", "message.mpim",
          "member_joined_channel"}  # fmt: skip


@pytest.mark.parametrize("mode", ["socket-mode", "http"])
def test_manifest_matches_the_code(mode: str) -> None:
    manifest = yaml.safe_load((FOLDER / f"manifest.{mode}.yml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == EVENTS
    assert settings["socket_mode_enabled"] is (mode == "socket-mode")
    assert settings["interactivity"]["is_enabled"] is True
    pane = manifest["features"]["assistant_view"]
    defaults = SlackSettings.model_fields["assistant_prompts"].default.split(",")
    assert [p["message"] for p in pane["suggested_prompts"]] == defaults
    assert pane["assistant_description"]
    command, usage, ask = manifest["features"]["slash_commands"]
    [shortcut] = manifest["features"]["shortcuts"]
    assert (command["command"], usage["command"], ask["command"]) == (
        SUMMARIZE_COMMAND, USAGE_COMMAND, ASK_COMMAND,
    )  # fmt: skip
    assert usage.get("url") == command.get("url") == ask.get("url")
    assert ask["should_escape"] is True  # channels arrive as <#C123|name> for in:#channel
    assert shortcut["callback_id"] == SUMMARIZE_SHORTCUT and shortcut["type"] == "message"
    urls = [
        settings["event_subscriptions"].get("request_url"),
        settings["interactivity"].get("request_url"),
        command.get("url"),
    ]
    if mode == "http":
        assert all(url and url.endswith(EVENTS_PATH) for url in urls)
    else:
        assert urls == [None, None, None]
