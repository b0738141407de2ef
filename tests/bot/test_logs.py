"""Log lines: JSON with the event's fields, and secrets scrubbed whatever the level or shape."""

from __future__ import annotations

import asyncio
import json
import logging

from bot.logs import JsonFormatter, Redactor, TextFormatter, bind


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("bot.test", logging.DEBUG, __file__, 1, message, args, info)


def test_known_secrets_and_token_shapes_are_redacted_everywhere() -> None:
    redactor = Redactor(["hunter2-signing-secret"])
    try:
        raise RuntimeError("auth failed for xoxb-1234-5678-abcdefgh with Bearer abc.def.ghi123")
    except RuntimeError as exc:
        key = "sk-proj-abcdefghijklmnop1234"
        line = record("secret %s and key %s", "hunter2-signing-secret", key, exc=exc)
    redactor.filter(line)
    text = JsonFormatter().format(line)
    for secret in ("hunter2-signing-secret", "sk-proj-abcdefghijklmnop1234", "xoxb-1234-5678",
                   "abc.def.ghi123"):  # fmt: skip
        assert secret not in text
    assert text.count("[redacted]") >= 4
    assert json.loads(text)["level"] == "debug"


def test_a_discord_token_is_redacted() -> None:
    token = "MTE5OTk5OTk5OTk5OTk5OTk5.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
    line = record("login with %s", token)
    Redactor().filter(line)
    assert token not in line.getMessage()


async def test_bound_fields_reach_the_lines_of_their_task_only() -> None:
    redactor = Redactor()

    async def handling() -> logging.LogRecord:
        bind(platform="slack", event="Ev1", thread_key="slack:T1:C1:1.2")
        line = record("answered")
        redactor.filter(line)
        return line

    inside = await asyncio.create_task(handling())
    outside = record("elsewhere")
    redactor.filter(outside)
    data = json.loads(JsonFormatter().format(inside))
    assert data["platform"] == "slack" and data["thread_key"] == "slack:T1:C1:1.2"
    assert "platform" not in json.loads(JsonFormatter().format(outside))
    assert (
        TextFormatter()
        .format(inside)
        .endswith("[platform=slack event=Ev1 thread_key=slack:T1:C1:1.2]")
    )
