"""Answers in flight: recorded durably from the moment a reply is shown until it is saved.

A process can die mid-answer (OOM, node loss, a deploy's second signal). The record says which
message was being answered, by which process (`owner`), and where the platform shows the reply
(`reply`, opaque to the core: channel and message ids, as the adapter wrote them). Any replica
that sees a record whose owner stopped renewing its liveness ends that reply with a sentence and
saves the user's turn (bot.recovery), so nothing stays half-written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.conversation import IncomingMessage, ThreadRef


@dataclass(frozen=True, slots=True)
class PendingAnswer:
    message: IncomingMessage
    reply: dict[str, Any] = field(default_factory=dict)  # where the adapter shows the answer
    owner: str = ""  # the process answering it
    started: float = 0.0  # time.time() when the answer began

    @property
    def thread(self) -> ThreadRef:
        return self.message.thread

    @property
    def shown(self) -> bool:
        """Whether the reply has messages on the platform (the adapter records their ids under
        "ids"); if not, settling it posts a new message."""
        return bool(self.reply.get("ids"))

    @property
    def key(self) -> str:
        """Unique per answered message within its thread."""
        return self.message.message_id or f"at:{self.started:.6f}"

    def owned_by(self, owner: str) -> PendingAnswer:
        return replace(self, owner=owner)

    def to_json(self) -> str:
        m = self.message
        t = m.thread
        return json.dumps(
            {
                "thread": [t.platform, t.workspace, t.channel, t.thread, t.place],
                "text": m.text,
                "author_id": m.author_id,
                "author_name": m.author_name,
                "message_id": m.message_id,
                "at": m.at.isoformat(),
                "reply": self.reply,
                "owner": self.owner,
                "started": self.started,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> PendingAnswer:
        data = json.loads(raw)
        platform, workspace, channel, thread, *place = (str(p) for p in data["thread"])
        message = IncomingMessage(
            thread=ThreadRef(platform, workspace, channel, thread, *place),
            text=str(data.get("text", "")),
            author_id=str(data.get("author_id", "")),
            author_name=str(data.get("author_name", "")),
            message_id=str(data.get("message_id", "")),
            at=datetime.fromisoformat(data["at"]),
        )
        reply = data.get("reply")
        return cls(
            message=message,
            reply=reply if isinstance(reply, dict) else {},
            owner=str(data.get("owner", "")),
            started=float(data.get("started") or 0.0),
        )
