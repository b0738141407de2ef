"""What `python -m bot run` prints when it cannot start or cannot reach a platform: one line each,
naming what to change, with no traceback."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import BotProcess, bot_env, free_port, run_bot
from tests.fakes.slack_server import FakeSlack


async def test_an_ops_port_in_use_is_one_line_naming_the_variable(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await run_bot(tmp_path, bot_env(
            OPENAI_BASE_URL=fake_openai.url, SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET="s", SLACK_API_URL=fake_slack.url, PORT=str(free_port()),
            OPS_PORT=str(port), OPS_HOST="127.0.0.1",
        ))  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    text = stderr.decode()
    assert process.returncode == 2, text
    assert text.strip().splitlines()[-1] == (
        f"error: OPS_PORT: port {port} on 127.0.0.1 is in use (another bot on this host?); "
        "set OPS_PORT to a free port, or 0 to serve no operations endpoint"
    )
    assert "Traceback" not in text and "stopped" not in text


async def test_a_rejected_token_ends_in_its_one_line_not_after_stopped(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.token_ok = False
    process = await run_bot(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, SLACK_BOT_TOKEN="xoxb-bad", SLACK_SIGNING_SECRET="s",
        SLACK_API_URL=fake_slack.url, PORT=str(free_port()),
    ))  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert [line for line in lines if "error" in line.lower()] == [
        "error: SLACK_BOT_TOKEN: was rejected by Slack (invalid_auth)"
    ]
    assert not any(line.endswith(" stopped") for line in lines)


async def test_an_unreachable_discord_is_one_line_per_attempt_without_voice_warnings(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    closed = free_port()  # nothing listens here
    bot = BotProcess(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, DISCORD_BOT_TOKEN="abc.def.ghi",
        DISCORD_API_URL=f"http://127.0.0.1:{closed}/api/v10",
    ))  # fmt: skip
    await bot.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while bot.log().count("restarting in") < 2:  # the first retry comes after 1 s
            assert asyncio.get_running_loop().time() < deadline, bot.log()
            await asyncio.sleep(0.1)  # a log file gives no other signal
        bot.signal(signal.SIGTERM)
        await bot.wait(15)
    finally:
        await bot.stop()
    log = bot.log()
    failed = [line for line in log.splitlines() if "discord adapter failed" in line]
    assert len(failed) >= 2 and "restarting in 1 s" in failed[0]
    assert "restarting in 2 s" in failed[1]
    assert "Traceback" not in log and "voice" not in log


async def test_run_with_only_a_model_says_what_is_wrong_with_redis_and_what_is_missing(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    process = await run_bot(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    ))  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines[-2].startswith("error: REDIS_URL: Redis at redis://127.0.0.1:")  # checked first
    assert lines[-1].startswith("error: run: no platform is configured")
