"""What to do with a Discord message, decided from plain facts about it. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.intents import Route, command_in

_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_EMOJI = re.compile(r"<a?(:\w+:)\d+>")


@dataclass(frozen=True, slots=True)
class MessageFacts:
    content: str
    author_is_bot: bool
    is_dm: bool
    in_thread: bool
    mentions_me: bool  # the bot is written in the text: not @everyone, not a role, not a reply ping
    replies_to_me: bool
    addressed_to_others: bool  # names or replies to someone else
    thread_known: bool


def mentions(content: str, user_id: int) -> bool:
    return any(int(found) == user_id for found in _USER.findall(content))


def other_mentions(content: str, user_id: int) -> bool:
    return any(int(found) != user_id for found in _USER.findall(content))


def command_word(content: str, me: int) -> str | None:
    stripped = _USER.sub(lambda m: "" if int(m.group(1)) == me else m.group(0), content)
    return command_in(stripped)


def route(facts: MessageFacts, me: int) -> Route:
    if facts.author_is_bot:
        return Route.IGNORE
    if facts.is_dm or facts.mentions_me:
        word = command_word(facts.content, me)
        if word == "summarize":
            return Route.SUMMARIZE
        if word == "forget":
            return Route.FORGET
        return Route.ANSWER
    if facts.replies_to_me:
        return Route.ANSWER
    if facts.in_thread and facts.thread_known:
        return Route.OBSERVE if facts.addressed_to_others else Route.ANSWER
    return Route.IGNORE


def plain_text(content: str, *, me: int, users: dict[int, str], roles: dict[int, str],
               channels: dict[int, str]) -> str:  # fmt: skip
    """Discord markup as a person reads it: names for mentions, no raw ids."""
    content = _USER.sub(
        lambda m: "" if int(m.group(1)) == me else "@" + users.get(int(m.group(1)), "someone"),
        content,
    )
    content = _ROLE.sub(lambda m: "@" + roles.get(int(m.group(1)), "role"), content)
    content = _CHANNEL.sub(lambda m: "#" + channels.get(int(m.group(1)), "channel"), content)
    return _EMOJI.sub(lambda m: m.group(1), content).strip()


def thread_name(question: str) -> str:
    """A thread title from the question: its first line, at most 80 characters."""
    first = " ".join(question.split("\n", 1)[0].split())
    if not first:
        return "Conversation"
    return first if len(first) <= 80 else first[:79].rstrip() + "…"
