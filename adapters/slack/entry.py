"""The Slack adapter as the core discovers it (see adapters/lazy.py)."""

from adapters.lazy import LazyAdapter
from adapters.slack.settings import SlackSettings

ADAPTER = LazyAdapter(
    "slack",
    SlackSettings,
    "set SLACK_BOT_TOKEN plus SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN "
    "(Socket Mode) for Slack",
    "adapters.slack.runner",
    "adapters.slack.doctor",
    export=("slack-export", "adapters.slack.export"),
    access="adapters.slack.access",
)
