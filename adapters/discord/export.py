"""DiscordChatExporter's JSON as channel-log messages, for `python -m bot import discord-export`.

One file is one channel or thread: `guild`, `channel` and `messages`, each message with `id`,
`type`, `timestamp`, `content`, `author` (`isBot`, `nickname`, `name`) and `attachments`. A
thread is a channel of its own there, as it is in the live log (adapters.discord.summaries).
People's messages ("Default", "Reply") are kept; system notices and bots are left out, as on
the live path; direct messages are never logged live, so they are not imported either. PATH
may be one file or a folder of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.history_import import Exported, ExportedHistory
from bot.store.keys import channel_scope
from bot.summaries.sources import SourceMessage

PEOPLE = frozenset({"Default", "Reply"})
DIRECT = frozenset({"DirectTextChat", "DirectGroupTextChat"})


def read_export(path: Path, options: Mapping[str, str]) -> ExportedHistory:
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError("PATH", f"{path} is neither a DiscordChatExporter JSON file nor a folder")
    history = ExportedHistory(iter(()))
    history.messages = _messages(files, history)
    return history


def _messages(files: list[Path], history: ExportedHistory) -> Iterator[Exported]:
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            guild, channel = str(data["guild"]["id"]), data["channel"]
            cid, messages = str(channel["id"]), data["messages"]
        except (OSError, ValueError, KeyError, TypeError):
            history.skipped["files that are not DiscordChatExporter JSON"] += 1
            continue
        if channel.get("type") in DIRECT or guild == "0":
            history.skipped["direct messages (never logged)"] += len(messages)
            continue
        scope = channel_scope("discord", guild, cid)
        history.names[scope] = f"#{channel.get('name', cid)}"
        for message in messages if isinstance(messages, list) else []:
            source = _source(message, guild, cid)
            if isinstance(source, str):
                history.skipped[source] += 1
            else:
                yield Exported(scope, source)


def _source(message: Any, guild: str, channel: str) -> SourceMessage | str:
    """The message as a log entry, or why it is left out."""
    if not isinstance(message, dict) or not isinstance(message.get("author"), dict):
        return "malformed or empty"
    if message.get("type") not in PEOPLE:
        return "system notices (joins, pins, thread starts…)"
    author = message["author"]
    if author.get("isBot"):
        return "from bots"
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    files = [a.get("fileName") for a in message.get("attachments") or [] if isinstance(a, dict)]
    listed = ", ".join(f for f in files if isinstance(f, str))
    text = (text + (f"\n(files: {listed})" if listed else "")).strip()
    try:
        at = datetime.fromisoformat(str(message["timestamp"]))
        mid = str(int(message["id"]))
    except (KeyError, ValueError):
        return "malformed or empty"
    if not text:
        return "malformed or empty"
    name = author.get("nickname") or author.get("name") or str(author.get("id", "someone"))
    return SourceMessage(
        message_id=mid,
        author=str(name),
        text=text,
        at=at,
        link=f"https://discord.com/channels/{guild}/{channel}/{mid}",
        author_id=str(author.get("id", "")),
    )
