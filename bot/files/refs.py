"""A file as an adapter saw it, and the port through which the core fetches its bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.files.kinds import FileKind, kind_of


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file attached to a message: never its bytes, only where the platform keeps them."""

    platform: str
    name: str
    url: str  # where the platform's fetcher downloads it (private: never shown or logged)
    size: int = 0  # bytes, as the platform says; 0 when it did not say
    mimetype: str = ""
    file_id: str = ""
    unopened: str = ""  # the sentence to say when the platform would not let the bot open it

    @property
    def kind(self) -> FileKind:
        return kind_of(self.name, self.mimetype)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "name": self.name,
            "url": self.url,
            "size": self.size,
            "mimetype": self.mimetype,
            "id": self.file_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRef:
        return cls(
            platform=str(data.get("platform", "")),
            name=str(data.get("name", "")),
            url=str(data.get("url", "")),
            size=int(data.get("size") or 0),
            mimetype=str(data.get("mimetype", "")),
            file_id=str(data.get("id", "")),
        )


class FileFetcher(Protocol):
    """Downloads a platform's file. Raises `bot.errors.FileProblem` (with the sentence for the
    user) when the file is gone, refused, or turns out larger than `limit` bytes while streaming."""

    async def fetch(self, ref: FileRef, limit: int) -> bytes | bytearray: ...
