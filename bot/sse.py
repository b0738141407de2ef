"""Server-sent events, read lean: the `data:` payloads of a byte stream, however it is split.

The openai SDK builds a pydantic object per streamed chunk, which cost most of a process's CPU
under load; the bot reads the stream's bytes itself and parses each payload with orjson.
"""

from __future__ import annotations


class DataLines:
    """Feed bytes as they arrive; get the complete `data:` payloads so far, in order."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, piece: bytes) -> list[bytes]:
        if not piece:
            return []
        *lines, self._rest = (self._rest + piece).split(b"\n")
        found = []
        for line in lines:
            if line.startswith(b"data:"):
                found.append(line[5:].strip())
        return found

    def close(self) -> list[bytes]:
        """A last line the server did not end with a newline."""
        rest, self._rest = self._rest, b""
        return [rest[5:].strip()] if rest.startswith(b"data:") else []
