"""Reading the files of one message: screened from metadata, fetched, turned into text or images."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.errors import FileProblem
from bot.files.documents import Document, read_document
from bot.files.images import PreparedImage, prepare_image
from bot.files.kinds import SUPPORTED
from bot.files.limits import FileLimits, size_text
from bot.files.refs import FileFetcher, FileRef

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FileReading:
    """What came of a message's files: text to quote, images to show, sentences for the user."""

    documents: list[Document] = field(default_factory=list)
    images: list[PreparedImage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unseen: list[FileRef] = field(default_factory=list)  # images not shown (vision off)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.documents] + [i.name for i in self.images]


class FileReader:
    """Fetches through the fetcher registered for each platform; never raises for one bad file."""

    def __init__(self, limits: FileLimits | None = None) -> None:
        self.limits = limits or FileLimits()
        self._fetchers: dict[str, FileFetcher] = {}

    def register(self, platform: str, fetcher: FileFetcher) -> None:
        self._fetchers[platform] = fetcher

    async def unregister(self, platform: str) -> None:
        """Forget a platform's fetcher and close its connections (an adapter stopping)."""
        fetcher = self._fetchers.pop(platform, None)
        close = getattr(fetcher, "aclose", None)
        if close is not None:
            await close()

    async def aclose(self) -> None:
        for platform in list(self._fetchers):
            await self.unregister(platform)

    def screen(self, refs: Sequence[FileRef]) -> tuple[list[FileRef], list[str]]:
        """The files worth downloading, and a sentence for each one that is not, judged from what
        the platform says of them (type, size, how many) before a byte is fetched."""
        limits = self.limits
        accepted: list[FileRef] = []
        problems: list[str] = []
        total = 0
        for index, ref in enumerate(refs):
            if index >= limits.max_files:
                rest = ", ".join(r.name for r in refs[index:])
                problems.append(
                    f"I read at most {limits.max_files} files per message, so I skipped {rest}."
                )
                break
            if ref.unopened:
                problems.append(ref.unopened)
            elif ref.kind == "unsupported":
                problems.append(f"I cannot read {ref.name}: {SUPPORTED}.")
            elif ref.size > limits.max_file_bytes:
                problems.append(
                    f"{ref.name} is {size_text(ref.size)}, over my limit of "
                    f"{size_text(limits.max_file_bytes)} per file, so I did not read it."
                )
            elif total + ref.size > limits.max_message_bytes:
                problems.append(
                    f"I skipped {ref.name}: the files of one message may add up to "
                    f"{size_text(limits.max_message_bytes)} at most."
                )
            elif ref.platform not in self._fetchers:
                problems.append(f"I cannot download files from {ref.platform} yet.")
            else:
                accepted.append(ref)
                total += ref.size
        return accepted, problems

    async def read(self, refs: Sequence[FileRef], *, images: bool = True) -> FileReading:
        """Read every file it can; with `images` False, images are listed as unseen, not fetched."""
        accepted, problems = self.screen(refs)
        reading = FileReading(problems=problems)
        wanted = [r for r in accepted if images or r.kind != "image"]
        reading.unseen = [r for r in accepted if r not in wanted]
        gate = asyncio.Semaphore(self.limits.concurrency)

        async def one(ref: FileRef) -> Document | PreparedImage | str:
            async with gate:
                try:
                    return await self._read_one(ref)
                except FileProblem as exc:
                    return exc.user_message()
                except Exception as exc:  # a file must never take the answer down with it
                    log.warning("reading %s failed: %s: %s", ref.name, type(exc).__name__, exc)
                    return f"Something went wrong while I read {ref.name}; please try again."

        for result in await asyncio.gather(*(one(r) for r in wanted)):
            if isinstance(result, str):
                reading.problems.append(result)
            elif isinstance(result, Document):
                reading.documents.append(result)
            else:
                reading.images.append(result)
        return reading

    async def _read_one(self, ref: FileRef) -> Document | PreparedImage:
        limits = self.limits
        fetcher = self._fetchers[ref.platform]
        data = await fetcher.fetch(ref, limits.max_file_bytes)
        log.info("fetched %s (%s) from %s", ref.name, size_text(len(data)), ref.platform)
        if ref.kind == "image":
            return await asyncio.to_thread(
                prepare_image,
                ref.name,
                data,
                long_side=limits.image_long_side,
                short_side=limits.image_short_side,
                max_pixels=limits.max_pixels,
            )
        handed = [data]  # the reader frees the bytes once decoded: peak memory stays near 2×
        del data
        return await asyncio.to_thread(
            read_document, ref.name, ref.kind, handed, max_pages=limits.max_pages
        )
