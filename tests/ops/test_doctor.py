"""`python -m bot doctor` against the fakes: every check passing, and each failure it exists to
catch, one line each with the fix, exit 1, and the same as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REDIS_URL
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import RedisServer, bot_env, free_port
from tests.fakes.slack_server import FakeSlack

KEY = "sk-test-doctor"


async def doctor(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", *args, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert b"Traceback" not in err, err.decode()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.fixture
def healthy(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, fake_discord: FakeDiscord
) -> dict[str, str]:
    """Everything configured and everything right."""
    fake_openai.accepted_key = KEY
    fake_openai.known_models = {"gpt-4o-mini", "gpt-4o"}
    fake_discord.registered_commands = [
        {"name": "summarize", "description": "Summarize the recent conversation here"},
        {"name": "ask", "description": "Answer from this channel's history, citing it"},
        {"name": "usage", "description": "Your token usage and what is left today"},
        {"name": "forget", "description": "Clear my memory of this thread or DM"},
    ]
    return bot_env(
        OPENAI_BASE_URL=fake_openai.url, OPENAI_API_KEY=KEY, OPENAI_MODEL="gpt-4o-mini",
        REDIS_URL=REDIS_URL, SLACK_BOT_TOKEN="xoxb-doctor", SLACK_SIGNING_SECRET="s3cret",
        SLACK_API_URL=fake_slack.url, DISCORD_BOT_TOKEN="discord-doctor",
        DISCORD_API_URL=fake_discord.url,
    )  # fmt: skip


NOTHING_ON_DISK = "Redis keeps nothing on disk"


def lines(out: str, status: str) -> list[str]:
    """The lines of `status`; the suite's own Redis keeps nothing on disk, which is warned of
    (tested below) and left out here."""
    return [
        line for line in out.splitlines() if line.startswith(status) and NOTHING_ON_DISK not in line
    ]


async def test_everything_right_every_check_passes(tmp_path, healthy: dict[str, str]) -> None:
    code, out = await doctor(tmp_path, healthy)
    assert code == 0, out
    assert not lines(out, "FAIL") and not lines(out, "warn"), out
    for expected in (
        "answers and accepts the key (2 listed models)",
        "model gpt-4o-mini answers",
        "accepts images",
        "Redis 7",
        "nothing is evicted",
        "workspace Team",
        "all 14 scopes",
        "HTTP mode: signing secret set",
        "the Message Content intent is enabled",
        "scope=bot+applications.commands",
        "permissions=",
        "slash commands in sync: ask, forget, summarize, usage",
    ):
        assert expected in out, expected
    code, raw = await doctor(tmp_path, healthy, "--json")
    report: dict[str, Any] = json.loads(raw)
    assert code == 0 and report["ok"] is True
    assert {c["area"] for c in report["checks"]} == {"model", "redis", "slack", "discord"}


async def test_a_revoked_slack_token(tmp_path, healthy, fake_slack: FakeSlack) -> None:
    fake_slack.revoked.add("xoxb-doctor")
    code, out = await doctor(tmp_path, healthy)
    [line] = lines(out, "FAIL")
    assert code == 1 and "Slack refused SLACK_BOT_TOKEN (token_revoked)" in line
    assert "reinstall the app" in line


async def test_a_missing_scope(tmp_path, healthy, fake_slack: FakeSlack) -> None:
    fake_slack.scopes -= {"files:read", "commands"}
    code, out = await doctor(tmp_path, healthy)
    [line] = lines(out, "FAIL")
    assert code == 1 and "missing scopes: commands, files:read" in line
    assert "OAuth & Permissions" in line


async def test_socket_mode_app_token_refused(tmp_path, healthy, fake_slack: FakeSlack) -> None:
    fake_slack.revoked.add("xapp-1-doctor")
    code, out = await doctor(tmp_path, dict(healthy, SLACK_APP_TOKEN="xapp-1-doctor"))
    [line] = lines(out, "FAIL")
    assert code == 1 and "Slack refused SLACK_APP_TOKEN (token_revoked)" in line


async def test_a_wrong_model_name_lists_the_ones_there_are(tmp_path, healthy) -> None:
    code, out = await doctor(tmp_path, dict(healthy, OPENAI_MODEL="gpt-5-turbo-nonexistent"))
    [line] = lines(out, "FAIL")
    assert code == 1 and "model gpt-5-turbo-nonexistent" in line
    assert "set OPENAI_MODEL to one of: gpt-4o, gpt-4o-mini" in line


async def test_a_refused_key(tmp_path, healthy) -> None:
    code, out = await doctor(tmp_path, dict(healthy, OPENAI_API_KEY="sk-wrong"))
    [line] = lines(out, "FAIL")
    assert code == 1 and "refused the key (401)" in line and "check OPENAI_API_KEY" in line
    assert "sk-wrong" not in out


async def test_a_model_without_images_is_a_warning(
    tmp_path, healthy, fake_openai: FakeOpenAI
) -> None:
    fake_openai.vision = False
    code, out = await doctor(tmp_path, healthy)
    [line] = lines(out, "warn")
    assert code == 0 and "does not accept images" in line and "OPENAI_VISION=off" in line


async def test_redis_down(tmp_path, healthy) -> None:
    code, out = await doctor(
        tmp_path, dict(healthy, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    )
    [line] = lines(out, "FAIL")
    assert code == 1 and "cannot reach Redis at redis://127.0.0.1:" in line
    assert "start Redis, or fix REDIS_URL" in line


async def test_an_eviction_policy_that_can_drop_threads(tmp_path, healthy) -> None:
    server = RedisServer(tmp_path)
    await server.start()
    try:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(server.url)
        await client.config_set("maxmemory", "100mb")
        await client.config_set("maxmemory-policy", "allkeys-lru")
        await client.aclose()
        code, out = await doctor(tmp_path, dict(healthy, REDIS_URL=server.url))
    finally:
        await server.stop()
    [line] = lines(out, "warn")
    assert code == 0 and "maxmemory-policy allkeys-lru" in line and "noeviction" in line


async def test_a_redis_that_keeps_nothing_on_disk_is_warned_of(tmp_path, healthy) -> None:
    server = RedisServer(tmp_path)  # appendonly yes
    await server.start()
    try:
        code, out = await doctor(tmp_path, dict(healthy, REDIS_URL=server.url))
        assert code == 0 and "Redis keeps its data on disk (AOF)" in out
        assert NOTHING_ON_DISK not in out
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(server.url)
        await client.config_set("appendonly", "no")
        await client.config_set("save", "")
        await client.aclose()
        code, out = await doctor(tmp_path, dict(healthy, REDIS_URL=server.url))
    finally:
        await server.stop()
    [line] = [line for line in out.splitlines() if NOTHING_ON_DISK in line]
    assert code == 0 and line.startswith("warn") and "a restart loses" in line
    assert "appendonly yes" in line


async def test_a_cluster_named_as_a_single_node_and_as_a_cluster(
    tmp_path, healthy, local_cluster
) -> None:
    plain = local_cluster.url.replace("redis+cluster://", "redis://")
    code, out = await doctor(tmp_path, dict(healthy, REDIS_URL=plain))
    [line] = lines(out, "FAIL")
    assert code == 1 and "this Redis is a Cluster node" in line and "redis+cluster://" in line
    code, out = await doctor(tmp_path, dict(healthy, REDIS_URL=local_cluster.url))
    assert code == 0 and "Redis Cluster: the cluster client is used" in out


async def test_discord_token_intent_and_commands(
    tmp_path, healthy, fake_discord: FakeDiscord
) -> None:
    fake_discord.app_flags = 0
    fake_discord.registered_commands = fake_discord.registered_commands[:1]
    code, out = await doctor(tmp_path, healthy)
    [failed] = lines(out, "FAIL")
    assert code == 1 and "the Message Content intent is not enabled" in failed
    assert "Privileged Gateway Intents" in failed
    [warned] = lines(out, "warn")
    assert "missing: ask, forget, usage" in warned and "syncs them when it starts" in warned
    fake_discord.token_ok = False
    code, out = await doctor(tmp_path, healthy)
    [failed] = lines(out, "FAIL")
    assert code == 1 and "Discord refused DISCORD_BOT_TOKEN" in failed


async def test_nothing_configured_says_what_to_set(tmp_path) -> None:
    code, out = await doctor(tmp_path, bot_env())
    [failed] = lines(out, "FAIL")
    assert code == 1 and "no model is configured" in failed and "OPENAI_BASE_URL=" in failed
    assert "REDIS_URL is not set" in out and "neither Slack nor Discord is configured" in out
    assert failed.count("no model is configured") == 1  # said once, not twice
    code, out = await doctor(
        tmp_path, bot_env(BOT_PRICES="nonsense", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    )
    first = out.splitlines()[0]
    assert code == 1 and first.startswith("FAIL  settings")
    assert "BOT_PRICES: cannot read 'nonsense'" in first
    assert "cannot reach http://127.0.0.1:9/v1" in out  # reported, and the rest still checked
    assert "neither Slack nor Discord is configured" in out


async def test_a_model_the_server_does_not_list_fails_even_when_it_answers(
    tmp_path, healthy, fake_openai: FakeOpenAI
) -> None:
    fake_openai.known_models = None  # answers any name, as some servers do…
    fake_openai.listed_models = ["gpt-4o", "gpt-4o-mini"]  # …but lists only these
    code, out = await doctor(tmp_path, dict(healthy, OPENAI_MODEL="gpt-5-typo"))
    [failed] = lines(out, "FAIL")
    assert code == 1 and "model gpt-5-typo is not among the 2 models" in failed
    assert "set OPENAI_MODEL to one of: gpt-4o, gpt-4o-mini" in failed
