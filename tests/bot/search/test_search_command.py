"""`python -m bot search` over the channel logs in Redis, as an operator or an evaluation runs."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from bot.store.keys import channel_scope
from bot.summaries.channel_log import RedisChannelLog
from bot.summaries.sources import SourceMessage
from tests.conftest import REDIS_URL
from tests.fakes.processes import bot_env


async def search(tmp_path, prefix: str, *args: str, stdin: str = "") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "search", *args, cwd=tmp_path,
        env=bot_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 30)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_queries_on_stdin_give_one_json_line_each_with_the_hits(
    tmp_path, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    now = datetime.now(UTC)
    said = [
        ("C1", "1700000000.000100", "Priya owns the billing service since March"),
        ("C1", "1700000000.000200", "lunch at noon?"),
        ("C2", "1700000000.000300", "the billing dashboard moved to Grafana"),
    ]
    for n, (channel, ts, text) in enumerate(said):
        await log.record(channel_scope("slack", "T1", channel), SourceMessage(
            ts, "Mina", text, now - timedelta(minutes=10 - n), link=f"https://x/{ts}"))  # fmt: skip
    queries = "who owns the billing service?\nwhat is the weather on mars?\n"
    out = await search(tmp_path, clean_prefix, "--channel", "C1", stdin=queries)
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["query"] == "who owns the billing service?" and first["found"]
    top = first["hits"][0]
    assert (top["id"], top["channel"], top["author"]) == ("1700000000.000100", "slack:T1:C1",
                                                         "Mina")  # fmt: skip
    assert top["link"] == "https://x/1700000000.000100" and top["time"].endswith("+00:00")
    assert all(h["channel"] == "slack:T1:C1" for h in first["hits"])  # --channel kept to C1
    assert second == {"query": "what is the weather on mars?", "found": False, "hits": []}
    everywhere = await search(tmp_path, clean_prefix, "billing", "--json")
    assert {h["channel"] for h in json.loads(everywhere)["hits"]} == {"slack:T1:C1", "slack:T1:C2"}


async def test_as_a_person_search_keeps_to_the_channels_they_can_read_now(
    tmp_path, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    from tests.fakes.slack_server import FakeSlack

    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    now = datetime.now(UTC)
    for channel, text in (("C1", "billing service runbook"), ("C2", "billing layoffs plan")):
        said = SourceMessage(f"1700000000.00010{channel[-1]}", "Bob", text, now)
        await log.record(channel_scope("slack", "T1", channel), said)
    slack = FakeSlack()
    await slack.start()
    try:
        for channel, private in (("C1", False), ("C2", True)):
            slack.channel_info[channel] = {"id": channel, "name": channel.lower(),
                                           "is_channel": True, "is_private": private,
                                           "is_member": True}  # fmt: skip
        slack.members["C2"] = ["UBOB", "UBOT"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "search", "billing", "--as", "UALICE", "--json",
            cwd=tmp_path, env=bot_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix,
                                      SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await slack.stop()
    assert process.returncode == 0, err.decode()
    hits = json.loads(out)["hits"]
    assert [h["channel"] for h in hits] == ["slack:T1:C1"]  # C2 is private and Alice not in it


async def test_as_a_discord_member_search_keeps_to_the_channels_their_roles_let_them_read(
    tmp_path, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """No gateway from the command line: the guild's roles, the member and each channel's
    overwrites are fetched over REST, and the same rule as `/ask` decides."""
    from tests.fakes.discord_server import GUILD, PEOPLE, FakeDiscord

    secret, rooms, view = 7001, 7002, 1 << 10
    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    now = datetime.now(UTC)
    for channel, text in ((secret, "billing layoffs plan"), (rooms, "billing service runbook")):
        said = SourceMessage(str(channel * 10), "Bob", text, now)
        await log.record(channel_scope("discord", str(GUILD), str(channel)), said)
    fake = FakeDiscord()
    await fake.start()
    try:
        for cid, private in ((secret, True), (rooms, False)):
            overwrites = [
                {"id": str(GUILD), "type": 0, "allow": "0", "deny": str(view)},
                {"id": str(PEOPLE["bob"]), "type": 1, "allow": str(view), "deny": "0"},
            ] if private else []  # fmt: skip
            fake.channels[cid] = {"id": str(cid), "type": 0, "name": f"c{cid}", "nsfw": False,
                                  "guild_id": str(GUILD), "position": 1, "parent_id": None,
                                  "permission_overwrites": overwrites}  # fmt: skip
        seen = {}
        for who in ("carol", "bob"):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "search", "billing", "--as", str(PEOPLE[who]),
                "--json", cwd=tmp_path,
                env=bot_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix,
                            DISCORD_BOT_TOKEN="x.y.z", DISCORD_API_URL=fake.url),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err.decode()
            seen[who] = sorted(h["channel"] for h in json.loads(out)["hits"])
    finally:
        await fake.stop()
    assert seen["carol"] == [f"discord:{GUILD}:{rooms}"]  # @everyone may not view the secret
    assert seen["bob"] == sorted(f"discord:{GUILD}:{c}" for c in (secret, rooms))
