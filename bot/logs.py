"""Logging: text or JSON lines (LOG_FORMAT), with what is known of the event being handled,
and secrets scrubbed from every record at every level.

Adapters `bind` the event's platform, id and thread key when they start handling it; every line
logged while handling it (in that task) carries them.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_fields", default=None
)

# Token shapes, so even a secret the settings never saw (one in an error text) is scrubbed.
_TOKENS = re.compile(
    r"xox[abposer]-[A-Za-z0-9-]{6,}"  # Slack bot, user, app, refresh tokens
    r"|xapp-[A-Za-z0-9-]{6,}"
    r"|sk-[A-Za-z0-9_-]{16,}"  # OpenAI keys
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=[Bb]ot )[A-Za-z0-9._-]{20,}"  # Discord's Authorization header
    r"|[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}"  # Discord bot tokens
)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def bind(**fields: Any) -> None:
    """Add fields to every log line of the current task from now on."""
    current = _FIELDS.get() or {}
    _FIELDS.set({**current, **{k: v for k, v in fields.items() if v not in (None, "")}})


class Redactor(logging.Filter):
    """Replaces known secret values and anything shaped like a token with `[redacted]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _TOKENS.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.scrub(message), None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        record.exc_info = None if record.exc_text else record.exc_info
        fields = _FIELDS.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_text:
            line["error"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The plain format, with the event's fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = [
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        ]
        if extra:
            first, _, rest = text.partition("\n")
            text = f"{first} [{' '.join(extra)}]" + (f"\n{rest}" if rest else "")
        return text


def configure(level: int, *, json: bool, secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr in the chosen format, scrubbed of `secrets`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
