"""Files on this machine, for the console: `/attach PATH` shares one with the next message."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from bot.errors import FileProblem
from bot.files.limits import size_text
from bot.files.refs import FileRef


def local_ref(path: str) -> FileRef:
    """A reference to a readable regular file; FileProblem (the sentence to show) otherwise."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileProblem(f"There is no file at {path}.")
    mimetype, _ = mimetypes.guess_type(file.name)
    return FileRef("console", file.name, str(file.resolve()), file.stat().st_size, mimetype or "")


class LocalFiles:
    """The core's FileFetcher for the console: reads the file, at most `limit` bytes."""

    async def fetch(self, ref: FileRef, limit: int) -> bytes:
        def read() -> bytes:
            with open(ref.url, "rb") as handle:
                data = handle.read(limit + 1)
            if len(data) > limit:
                raise FileProblem(f"{ref.name} is larger than my limit of {size_text(limit)}.")
            return data

        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise FileProblem(f"I could not read {ref.name}: {exc.strerror}.") from None
