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


CONSOLE_PROBE = """
import asyncio, sys
from bot.assembly import build_core
from bot.settings import load_settings

async def main():
    core = await build_core(load_settings(_env_file=None))
    print("openai" in sys.modules)
    core.model.warm()  # what the console does in a thread once the prompt shows
    print("openai" in sys.modules)
    await core.aclose()

asyncio.run(main())
"""


def test_the_console_prompt_does_not_wait_for_the_model_sdk() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    out = subprocess.run(
        [sys.executable, "-c", CONSOLE_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True"]  # built without it, loaded after


SERVE_PROBE = """
import asyncio, sys
from bot.assembly import build_core
from bot.settings import load_settings

async def main():
    core = await build_core(load_settings(_env_file=None))
    await core.start()  # what `python -m bot run` does before any platform connects
    print("openai" in sys.modules)
    core.stop()
    await core.aclose()

asyncio.run(main())
"""


def test_a_serving_bot_loads_the_model_sdk_before_it_takes_events() -> None:
    """Loading it at the first answer held the event loop for most of a second, in the middle
    of the first burst of mentions (bench.socket_mode)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    out = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True"]
