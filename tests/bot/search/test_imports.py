"""`python -m bot import`: Slack's export (folder or zip) and DiscordChatExporter's JSON into the
channel logs, shaped as the real exports are; importing twice adds nothing; what is left out is
counted with its reason; and the imported history is what search finds."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from tests.bot.search.test_search_command import search
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import bot_env

NOW = time.time()


def ts(days_ago: float, n: int = 0) -> str:
    return f"{NOW - days_ago * 86_400:.0f}.{n:06d}"


def slack_export(folder: Path) -> Path:
    """A Slack export as Slack writes it: channels.json, users.json, one folder per channel
    of day files; messages in the Events API's shape (blocks, user_profile, client_msg_id)."""
    folder.mkdir()
    users = [
        {"id": "U01MINA", "team_id": "T0TEAM", "name": "mina", "real_name": "Mina Park",
         "profile": {"display_name": "mina", "real_name": "Mina Park"}},
        {"id": "U02BOB", "team_id": "T0TEAM", "name": "bob", "real_name": "Bob",
         "profile": {"display_name": "", "real_name": "Bob Stone"}},
    ]  # fmt: skip
    channels = [{"id": "C0GENERAL", "name": "general", "created": 1600000000,
                 "creator": "U01MINA", "members": ["U01MINA", "U02BOB"],
                 "topic": {"value": ""}, "purpose": {"value": ""}}]  # fmt: skip
    (folder / "users.json").write_text(json.dumps(users))
    (folder / "channels.json").write_text(json.dumps(channels))
    (folder / "dms.json").write_text(json.dumps([{"id": "D0DM", "members": ["U01MINA"]}]))
    root, reply = ts(2, 1), ts(2, 2)
    day = [
        {"type": "message", "subtype": "channel_join", "user": "U02BOB", "ts": ts(2, 0),
         "text": "<@U02BOB> has joined the channel"},
        {"client_msg_id": "a1", "type": "message", "user": "U01MINA", "ts": root,
         "text": "We decided: the retry policy is three attempts with backoff, <@U02BOB> owns it",
         "team": "T0TEAM", "user_team": "T0TEAM", "source_team": "T0TEAM",
         "user_profile": {"real_name": "Mina Park", "display_name": "mina"},
         "blocks": [{"type": "rich_text", "elements": []}], "thread_ts": root,
         "reply_count": 1, "reply_users": ["U02BOB"], "latest_reply": reply},
        {"client_msg_id": "a2", "type": "message", "user": "U02BOB", "ts": reply,
         "text": "ok, staging database belongs to me too", "thread_ts": root,
         "parent_user_id": "U01MINA", "edited": {"user": "U02BOB", "ts": ts(2, 3)}},
        {"type": "message", "subtype": "bot_message", "bot_id": "B01", "ts": ts(2, 4),
         "text": "Deploy finished", "username": "deploybot"},
        {"type": "message", "user": "U01MINA", "ts": ts(30), "text": "an old retry note"},
    ]  # fmt: skip
    (folder / "general").mkdir()
    (folder / "general" / "2026-12-05.json").write_text(json.dumps(day))
    return folder


def zipped(folder: Path) -> Path:
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as z:
        for path in folder.rglob("*.json"):
            z.write(path, path.relative_to(folder).as_posix())
    return archive


def discord_export(path: Path) -> Path:
    """One channel as DiscordChatExporter writes it (JSON)."""
    at = datetime.now(UTC) - timedelta(days=1)

    def message(mid: str, kind: str, content: str, bot: bool = False, **extra: object) -> dict:
        return {"id": mid, "type": kind, "timestamp": at.isoformat(), "timestampEdited": None,
                "callEndedTimestamp": None, "isPinned": False, "content": content,
                "author": {"id": "42", "name": "bot" if bot else "priya", "discriminator": "0000",
                           "nickname": "Bot" if bot else "Priya", "color": None, "isBot": bot,
                           "roles": [], "avatarUrl": ""},
                "attachments": [], "embeds": [], "stickers": [], "reactions": [],
                "mentions": [], **extra}  # fmt: skip

    data = {
        "guild": {"id": "900", "name": "Team", "iconUrl": ""},
        "channel": {"id": "901", "type": "GuildTextChat", "categoryId": "1", "category": "Text",
                    "name": "ops", "topic": None},
        "dateRange": {"after": None, "before": None},
        "exportedAt": datetime.now(UTC).isoformat(),
        "messages": [
            message("1100", "Default", "The on-call rotation for billing is weekly, Priya leads"),
            message("1101", "GuildMemberJoin", ""),
            message("1102", "Reply", "and incidents go to #ops-alerts",
                    reference={"messageId": "1100", "channelId": "901", "guildId": "900"}),
            message("1103", "Default", "Answered.", bot=True),
            message("1104", "Default", "", attachments=[{"id": "5", "url": "u",
                    "fileName": "runbook.pdf", "fileSizeBytes": 10}]),
        ],
        "messageCount": 5,
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


async def run_import(tmp_path: Path, prefix: str, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "import", *args, cwd=tmp_path,
        env=bot_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode().strip(), err.decode().strip()


async def test_a_slack_export_is_imported_once_and_found_by_search(
    tmp_path: Path, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    folder = slack_export(tmp_path / "export")
    url = "--url=https://acme.slack.com"
    code, out, err = await run_import(tmp_path, clean_prefix, "slack-export", str(folder), url)
    assert code == 0, err
    assert out.startswith("imported 2 messages into 1 channel in ")
    for left_out in ("1 older than BOT_CHANNEL_LOG_DAYS", "1 system notices", "1 from bots",
                     "1 direct-message conversations"):  # fmt: skip
        assert left_out in out, out
    hits = json.loads(await search(tmp_path, clean_prefix, "retry policy", "--json"))["hits"]
    top = hits[0]
    assert top["channel"] == "slack:T0TEAM:C0GENERAL" and top["author"] == "mina"
    assert "@Bob Stone owns it" in top["text"]  # mentions read as names, as live
    assert top["link"] == f"https://acme.slack.com/archives/C0GENERAL/p{top['id'].replace('.', '')}"
    reply = json.loads(await search(tmp_path, clean_prefix, "staging database", "--json"))
    assert "?thread_ts=" in reply["hits"][0]["link"]  # a thread reply links into its thread
    # the same export again, as its zip: nothing is added
    code, out, err = await run_import(tmp_path, clean_prefix, "slack-export", str(zipped(folder)))
    assert code == 0, err
    assert out.startswith("imported 0 messages") and "2 already imported or logged" in out


async def test_an_import_embeds_each_message_once_and_the_vectors_serve_every_search(
    tmp_path: Path, redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    folder = slack_export(tmp_path / "export")
    embeddings = {"OPENAI_EMBEDDING_MODEL": "fake-embedding", "OPENAI_BASE_URL": fake_openai.url}
    code, out, err = await run_import(tmp_path, clean_prefix, "slack-export", str(folder),
                                      **embeddings)  # fmt: skip
    assert code == 0, err
    assert out.startswith("imported 2 messages") and out.endswith("; embedded 2"), out
    assert fake_openai.embedding_requests == 1 and len(fake_openai.embedded) == 2  # one batch
    fake_openai.synonyms = {"approach": "policy", "retries": "retry"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "search", "approach to retries", "--json", cwd=tmp_path,
        env=bot_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix,
                    OPENAI_EMBEDDING_MIN_SIMILARITY="0.25", **embeddings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    found, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    result = json.loads(found)
    assert result["found"] and "retry policy" in result["hits"][0]["text"]
    assert fake_openai.embedded[2:] == ["approach to retries"]  # only the question embedded


async def test_a_discord_export_is_imported_with_jump_links(
    tmp_path: Path, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    path = discord_export(tmp_path / "ops.json")
    code, out, err = await run_import(tmp_path, clean_prefix, "discord-export", str(path))
    assert code == 0, err
    assert out.startswith("imported 3 messages into 1 channel") and "1 from bots" in out
    assert "1 system notices" in out
    hits = json.loads(await search(tmp_path, clean_prefix, "on-call rotation", "--json"))["hits"]
    assert hits[0]["link"] == "https://discord.com/channels/900/901/1100"
    assert hits[0]["author"] == "Priya" and hits[0]["channel"] == "discord:900:901"
    files = json.loads(await search(tmp_path, clean_prefix, "runbook", "--json"))["hits"]
    assert files and files[0]["id"] == "1104"
    code, out, _ = await run_import(tmp_path, clean_prefix, "discord-export", str(path))
    assert out.startswith("imported 0 messages") and "3 already imported" in out


async def test_an_export_that_is_not_one_is_one_line(tmp_path: Path, clean_prefix: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = await run_import(tmp_path, clean_prefix, "slack-export", "notes.txt")
    assert code == 2 and err.splitlines() == [
        "error: PATH: notes.txt is neither a folder nor a zip of Slack's export"
    ]


async def test_a_running_search_finds_history_imported_after_it_caught_up(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    from bot.search.channel_search import ChannelSearch
    from bot.summaries.channel_log import RedisChannelLog
    from bot.summaries.sources import SourceMessage

    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    scope = "slack:T1:C1"
    now = datetime.now(UTC)
    await log.record(scope, SourceMessage("2.0", "Bob", "lunch at noon?", now))
    search = ChannelSearch(log)
    assert not (await search.retrieve("retry policy decision", [scope])).found
    older = SourceMessage("1.0", "Mina", "the retry policy decision: three attempts",
                          now - timedelta(days=2))  # fmt: skip
    await log.record_many(scope, [older])  # an import, while this replica runs
    found = await search.retrieve("retry policy decision", [scope])
    assert found.found and found.hits[0].message.id == "1.0"


async def test_what_the_log_trims_away_leaves_every_replicas_index_too(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    from bot.search.channel_search import EXPIRE_EVERY, ChannelSearch
    from bot.summaries.channel_log import RedisChannelLog
    from bot.summaries.sources import SourceMessage

    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=100)  # fmt: skip
    scope, now = "slack:T1:C1", datetime.now(UTC)
    await log.record(scope, SourceMessage("1.0", "Mina", "the retry policy is three attempts", now))
    clock = [time.time()]
    search = ChannelSearch(log, clock=lambda: clock[0])
    assert (await search.retrieve("retry policy", [scope])).found
    for n in range(100):  # the log keeps 100: the retry message is trimmed away by count
        await log.record(scope, SourceMessage(f"2.{n}", "Bob", f"lunch plan number {n}", now))
    assert (await search.retrieve("retry policy", [scope])).found  # until the next look...
    clock[0] += EXPIRE_EVERY
    assert not (await search.retrieve("retry policy", [scope])).found  # ...a minute at most
