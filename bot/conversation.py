"""Values the core passes around: which thread, what was said, by whom."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.files.refs import FileRef

Role = Literal["user", "assistant"]

# A single message this long is already far past every platform's own limit.
MAX_TURN_CHARS = 40_000


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """One conversation: a thread on a platform. DMs and the console use a thread of their own."""

    platform: str
    workspace: str
    channel: str
    thread: str
    # The channel whose Redis hash slot (and channel log) the thread shares, where it is not
    # `channel`: a Discord thread is a channel of its own under its parent.
    place: str = ""

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"

    @property
    def home(self) -> str:
        """The channel this thread's messages are logged in and its keys are kept with."""
        return self.place or self.channel


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored message of a thread, from a person or from the bot."""

    role: Role
    text: str
    author_id: str = ""
    author_name: str = ""
    message_id: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tokens: int = 0  # counted once when the turn is made, so planning a prompt only adds ints
    # Images shared without a question: shown to the model with the next question, then dropped.
    files: tuple[FileRef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "role": self.role,
            "text": self.text,
            "author_id": self.author_id,
            "author_name": self.author_name,
            "message_id": self.message_id,
            "at": self.at.isoformat(),
            "tokens": self.tokens,
        }
        if self.files:
            data["files"] = [f.to_json() for f in self.files]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Turn:
        role: Role = "assistant" if data.get("role") == "assistant" else "user"
        return cls(
            role=role,
            text=data.get("text", ""),
            author_id=data.get("author_id", ""),
            author_name=data.get("author_name", ""),
            message_id=data.get("message_id", ""),
            at=datetime.fromisoformat(data["at"]) if data.get("at") else datetime.now(UTC),
            tokens=int(data.get("tokens") or 0),
            files=tuple(
                FileRef.from_json(f) for f in data.get("files") or () if isinstance(f, dict)
            ),
        )


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A person's message as an adapter hands it to the core."""

    thread: ThreadRef
    text: str
    author_id: str
    author_name: str
    message_id: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    files: tuple[FileRef, ...] = ()  # attachments, and those of messages shared into it

    def as_turn(self, tokens: int = 0) -> Turn:
        return Turn(
            role="user",
            text=self.text[:MAX_TURN_CHARS],
            author_id=self.author_id,
            author_name=self.author_name or self.author_id,
            message_id=self.message_id,
            at=self.at,
            tokens=tokens,
        )


@dataclass(frozen=True, slots=True)
class ThreadState:
    """What memory holds for one thread: a rolling summary of folded turns, then the recent ones."""

    summary: str = ""
    turns: tuple[Turn, ...] = ()

    def has_message(self, message_id: str) -> bool:
        return bool(message_id) and any(t.message_id == message_id for t in self.turns)
