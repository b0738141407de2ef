"""How much of people's files the bot takes on: sizes, counts, pages, image dimensions."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_file_bytes: int = 10 * MB  # one file (BOT_MAX_FILE_MB)
    max_message_bytes: int = 25 * MB  # every file of one message together
    max_files: int = 10  # files read per message; the rest are named and skipped
    max_pages: int = 300  # PDF pages read; a page flood is cut here
    max_pixels: int = (
        40_000_000  # a decoded image larger than this is refused (decompression bombs)
    )
    image_long_side: int = 2048  # images are downscaled to fit these before the model sees them
    image_short_side: int = 768
    keep_chars: int = 100_000  # document text kept with the turn for follow-ups
    concurrency: int = 4  # downloads and extractions of one message at once


def size_text(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} bytes"
