"""Start-up imports only what runs: `--help` no SDK at all, a Slack-only start no discord.py."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from bot.cli import _choose, _parser
from bot.adapter_registry import discover
_parser().format_help()
chosen = [a.name for a in _choose("run", discover())]
print(chosen, sorted(m for m in ("discord", "slack_bolt", "openai") if m in sys.modules))
"""


def test_a_slack_only_start_and_help_import_no_other_platform() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    env["SLACK_BOT_TOKEN"] = "xoxb-probe"
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['slack'] []"
