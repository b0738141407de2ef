"""Slack event payloads to what the bot should do with them. Pure: no I/O.

Both `app_mention` and `message` events come through `read_event`, so one message delivered as
both is read the same way, and the (channel, ts) claim makes sure it is handled once.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.intents import Route, command_in
from adapters.slack.files import file_refs
from bot.files.refs import FileRef

SLACKBOT = "USLACKBOT"  # Slack's own notices in a DM: never a question

# Subtypes that are real messages from people; every other subtype is hidden or a system notice.
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    team: str
    channel: str
    channel_type: str
    user: str
    text: str  # raw Slack text, mentions still as <@U…>
    ts: str
    thread_ts: str | None
    mentions_bot: bool
    mentioned_users: tuple[str, ...]  # other people it mentions
    shared: tuple[tuple[str, str], ...] = ()  # (author, text) of messages shared or forwarded in it
    files: tuple[str, ...] = ()  # names of the files attached to it
    attachments: tuple[FileRef, ...] = ()  # those files (and shared messages' files) to read
    author_team: str = ""  # the author's own workspace (another organization's in Slack Connect)

    @property
    def wordless(self) -> bool:
        """Nothing to read but files (or a bare mention): not a question in itself."""
        said = _USER_MENTION.sub("", self.text).strip()
        return not said and not any(text.strip() for _, text in self.shared)

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"

    @property
    def reply_thread_ts(self) -> str | None:
        """Where the answer goes: the thread, or under the message; in a DM, where it was said."""
        if self.is_dm:
            return self.thread_ts
        return self.thread_ts or self.ts

    @property
    def conversation(self) -> str:
        """The thread id the core uses: a DM is one running conversation unless threaded."""
        return self.reply_thread_ts or "dm"


@dataclass(frozen=True, slots=True)
class Deletion:
    team: str
    channel: str
    deleted_ts: str
    thread_ts: str | None


@dataclass(frozen=True, slots=True)
class Edit:
    """A person changed a message's text: `message` is it as it reads now."""

    message: SlackMessage

    @property
    def team(self) -> str:
        return self.message.team

    @property
    def channel(self) -> str:
        return self.message.channel


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


def _id(value: object) -> str | None:
    """A Slack id or timestamp: a non-empty string of printable characters, or None."""
    if isinstance(value, str) and value and len(value) <= 64 and value.isprintable():
        return value
    return None


def workspace_of(body: dict[str, Any]) -> str:
    """The workspace an event belongs to for the bot: the installation it was delivered to
    (`authorizations`), then the workspace it happened in (`context_team_id`). In a Slack Connect
    channel the envelope's `team_id` and the event's `team` are the author's organization, which
    changes from message to message: keyed by them, a thread started by one organization was
    unknown to a follow-up from the other."""
    authorizations = body.get("authorizations")
    if isinstance(authorizations, list):
        for authorization in authorizations:
            if isinstance(authorization, dict) and (team := _id(authorization.get("team_id"))):
                return team
    event = body.get("event")
    event = event if isinstance(event, dict) else {}
    return (
        _id(body.get("context_team_id")) or _id(body.get("team_id")) or _id(event.get("team"))
        or ""
    )  # fmt: skip


def read_event(
    body: dict[str, Any], *, bot_user_id: str, bot_id: str | None
) -> SlackMessage | Deletion | Edit | Ignored:
    """What a signed event body says; anything of the wrong shape is Ignored with the reason, so
    nothing is ever posted to a channel named by garbage."""
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") not in ("message", "app_mention"):
        return Ignored("not a message event")
    team = workspace_of(body)
    channel = _id(event.get("channel"))
    subtype = event.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return Ignored("malformed: subtype is not a string")
    if subtype == "message_deleted":
        previous = event.get("previous_message")
        previous = previous if isinstance(previous, dict) else {}
        deleted = _id(event.get("deleted_ts")) or _id(previous.get("ts"))
        if not channel or not deleted:
            return Ignored("deletion without a message")
        return Deletion(team, channel, deleted, _id(previous.get("thread_ts")))
    if subtype == "message_changed":
        return _edit(body, event, channel, bot_user_id=bot_user_id, bot_id=bot_id)
    if subtype not in PERSON_SUBTYPES:
        return Ignored(f"subtype {subtype}")
    if event.get("bot_id") or event.get("bot_profile"):
        return Ignored("from a bot")
    if event.get("edited"):  # an edited mention comes again as app_mention, with a new event id
        return Ignored("an edit (edits never trigger an answer)")
    user = _id(event.get("user"))
    if user == SLACKBOT:
        return Ignored("from Slackbot")
    if not user or user == bot_user_id:
        return Ignored("from the bot itself" if user == bot_user_id else "no author")
    text = event.get("text")
    ts = _id(event.get("ts"))
    thread_ts = event.get("thread_ts")
    if (
        not channel
        or not ts
        or not isinstance(text, str)
        or (thread_ts is not None and _id(thread_ts) is None)
    ):
        return Ignored("malformed message: a field of the wrong type")
    mentioned = _USER_MENTION.findall(text)
    channel_type = _id(event.get("channel_type")) or (
        "im" if channel.startswith("D") else "channel"
    )
    return SlackMessage(
        team=team,
        channel=channel,
        channel_type=channel_type,
        user=user,
        text=text,
        ts=ts,
        thread_ts=thread_ts if thread_ts != ts else None,
        mentions_bot=bot_user_id in mentioned,
        mentioned_users=tuple(dict.fromkeys(u for u in mentioned if u != bot_user_id)),
        shared=shared_messages(event),
        files=file_names(event),
        attachments=file_refs(event),
        author_team=_id(event.get("user_team")) or _id(event.get("team")) or team,
    )


def _edit(
    body: dict[str, Any],
    event: dict[str, Any],
    channel: str | None,
    *,
    bot_user_id: str,
    bot_id: str | None,
) -> Edit | Ignored:
    now, before = event.get("message"), event.get("previous_message")
    if not isinstance(now, dict) or not channel:
        return Ignored("edit without a message")
    if isinstance(before, dict) and before.get("text") == now.get("text"):
        return Ignored("edit that left the text as it was (an unfurl)")
    inner = {k: v for k, v in now.items() if k != "edited"}
    inner["channel"] = channel
    read = read_event({**body, "event": inner}, bot_user_id=bot_user_id, bot_id=bot_id)
    if isinstance(read, SlackMessage):
        return Edit(read)
    return read if isinstance(read, Ignored) else Ignored("edit of something else")


def shared_messages(event: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Messages shared or forwarded into this one travel as attachments, unfurls of links to
    Slack messages too: their author and text, as far as Slack gives them."""
    found: list[tuple[str, str]] = []
    attachments = event.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        if not (attachment.get("is_share") or attachment.get("is_msg_unfurl")
                or attachment.get("message_blocks") or attachment.get("is_forwarded")):  # fmt: skip
            continue
        text = attachment.get("text") or attachment.get("fallback") or ""
        author = attachment.get("author_name") or attachment.get("author_subname") or ""
        if isinstance(text, str) and text.strip():
            found.append((author if isinstance(author, str) else "", text))
    return tuple(found)


def file_names(event: dict[str, Any]) -> tuple[str, ...]:
    names = []
    files = event.get("files")
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict):
            name = item.get("name") or item.get("title")
            if isinstance(name, str) and name:
                names.append(name)
    return tuple(names)


def readable_text(
    message: SlackMessage, *, bot_user_id: str, names: dict[str, str], list_files: bool = True
) -> str:
    """What the model reads of a message: its text, shared messages quoted, file names listed
    (unless the files themselves go with it)."""
    parts = [plain_text(message.text, bot_user_id=bot_user_id, names=names)]
    for author, text in message.shared:
        quoted = "\n".join(
            "> " + line
            for line in plain_text(text, bot_user_id=bot_user_id, names=names).split("\n")
        )
        parts.append((f"(shared from {author})\n" if author else "(shared)\n") + quoted)
    if message.files and list_files:
        parts.append("(attached: " + ", ".join(message.files) + ")")
    return "\n\n".join(p for p in parts if p.strip())


def command_word(message: SlackMessage, bot_user_id: str) -> str | None:
    """`@bot summarize` / `@bot forget` (bare words in a DM), else None."""
    stripped = _USER_MENTION.sub(
        lambda m: "" if m.group(1) == bot_user_id else m.group(0), message.text
    )
    return command_in(stripped)


def route(message: SlackMessage, *, bot_user_id: str, thread_known: bool) -> Route:
    if message.is_dm or message.mentions_bot:
        command = command_word(message, bot_user_id)
        if command == "summarize":
            return Route.SUMMARIZE
        if command == "forget":
            return Route.FORGET
        return Route.ANSWER
    if message.thread_ts and thread_known:
        # In a thread the bot is part of, a message that names someone else is for them.
        return Route.OBSERVE if message.mentioned_users else Route.ANSWER
    return Route.IGNORE


def plain_text(text: str, *, bot_user_id: str, names: dict[str, str]) -> str:
    """Slack text as a person reads it: names for mentions, labels for links, no entities."""
    text = _USER_MENTION.sub(
        lambda m: "" if m.group(1) == bot_user_id else "@" + names.get(m.group(1), m.group(1)), text
    )
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@group", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    return html.unescape(text).strip()


def ts_time(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)
