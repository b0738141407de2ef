"""Slack's standard export (a folder, or its zip) as channel-log messages, for
`python -m bot import slack-export PATH`.

The export holds `channels.json` (public channels) and `groups.json` (private ones, in exports
that include them), `users.json`, and one folder per channel of `<YYYY-MM-DD>.json` files, each
a list of messages shaped as the Events API's; a thread reply carries `thread_ts`. Each message
goes through the live path's own reading (adapters.slack.events.read_event), so subtypes, bots
and malformed entries are left out exactly as they are when the bot is running. Direct messages
are never logged live, so they are not imported either.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from adapters.slack.events import Ignored, SlackMessage, read_event, readable_text, ts_time
from bot.errors import ConfigError
from bot.history_import import Exported, ExportedHistory
from bot.store.keys import channel_scope
from bot.summaries.sources import SourceMessage


class ExportFiles:
    """The export's JSON files, from a folder or a zip (at its root or under one folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            self._zip = None
            self.names = sorted(str(p.relative_to(path).as_posix()) for p in path.rglob("*.json"))
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self.names = sorted(n for n in self._zip.namelist() if n.endswith(".json"))
        else:
            raise ConfigError("PATH", f"{path} is neither a folder nor a zip of Slack's export")
        roots = [n[: -len("users.json")] for n in self.names if n.endswith("users.json")]
        self.root = min(roots, key=len) if roots else ""

    def json(self, name: str) -> Any:
        full = self.root + name
        if full not in self.names:
            return None
        if self._zip is not None:
            return json.loads(self._zip.read(full))
        return json.loads((self.path / full).read_text(encoding="utf-8"))

    def days(self, folder: str) -> list[str]:
        """The day files of a channel's folder, oldest first."""
        prefix = f"{self.root}{folder}/"
        return [n[len(self.root) :] for n in self.names if n.startswith(prefix)]


def display_name(user: dict[str, Any]) -> str:
    found = user.get("profile")
    profile: dict[str, Any] = found if isinstance(found, dict) else {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"),
                 user.get("name")):  # fmt: skip
        if isinstance(name, str) and name.strip():
            return name.strip()
    return str(user.get("id", "someone"))


def _reason(ignored: Ignored) -> str:
    why = ignored.reason
    if why == "subtype bot_message":
        return "from bots"
    if why.startswith("subtype"):
        return "system notices (joins, topics, pins…)"
    if why == "from a bot" or why.startswith("from the bot") or why == "from Slackbot":
        return "from bots"
    return "malformed or empty"


def read_export(path: Path, options: Mapping[str, str]) -> ExportedHistory:
    files = ExportFiles(path)
    users = [u for u in files.json("users.json") or [] if isinstance(u, dict)]
    names = {str(u.get("id")): display_name(u) for u in users}
    workspace = options.get("workspace") or next(
        (str(u["team_id"]) for u in users if isinstance(u.get("team_id"), str)), ""
    )
    if not workspace:
        raise ConfigError("--workspace", "the export does not name its workspace; pass T…")
    url = (options.get("url") or "").rstrip("/")
    channels = [
        c
        for listing in ("channels.json", "groups.json")
        for c in files.json(listing) or []
        if isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("name"), str)
    ]
    history = ExportedHistory(iter(()))
    history.names = {channel_scope("slack", workspace, c["id"]): f"#{c['name']}" for c in channels}
    for listing in ("dms.json", "mpims.json"):
        conversations = files.json(listing) or []
        if conversations:
            history.skipped["direct-message conversations (never logged)"] += len(conversations)
    history.messages = _messages(files, channels, workspace, names, url, history)
    return history


def _messages(
    files: ExportFiles,
    channels: list[dict[str, Any]],
    workspace: str,
    names: dict[str, str],
    url: str,
    history: ExportedHistory,
) -> Iterator[Exported]:
    for channel in channels:
        cid, scope = channel["id"], channel_scope("slack", workspace, channel["id"])
        for day in files.days(channel["name"]):
            if not PurePosixPath(day).stem[:4].isdigit():
                continue
            raw = files.json(day)
            for entry in raw if isinstance(raw, list) else []:
                if not isinstance(entry, dict):
                    history.skipped["malformed or empty"] += 1
                    continue
                event = {k: v for k, v in entry.items() if k != "edited"}  # the text as it is
                event["channel"] = cid
                read = read_event({"event": event, "team_id": workspace}, bot_user_id="",
                                  bot_id=None)  # fmt: skip
                if not isinstance(read, SlackMessage):
                    why = _reason(read) if isinstance(read, Ignored) else "edit or deletion notices"
                    history.skipped[why] += 1
                    continue
                yield Exported(scope, _source(read, names, url))


def _source(message: SlackMessage, names: dict[str, str], url: str) -> SourceMessage:
    link = ""
    if url:
        link = f"{url}/archives/{message.channel}/p{message.ts.replace('.', '')}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
    return SourceMessage(
        message_id=message.ts,
        author=names.get(message.user, message.user),
        text=readable_text(message, bot_user_id="", names=names),
        at=ts_time(message.ts),
        link=link,
        author_id=message.user,
    )
