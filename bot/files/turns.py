"""How a message's files read in the prompt and in memory. Pure.

In the prompt: the question, then each document quoted whole or in part, then a line per image
sent with it. In memory: the same, with document text capped and every image named as shown
once, so later answers never pretend to still see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.conversation import Turn
from bot.files.documents import Document
from bot.files.quoting import Quoted
from bot.files.reading import FileReading
from bot.files.refs import FileRef
from bot.summaries.sources import SourceMessage

DESCRIBE = "Please describe or summarize the attached file(s)."
NO_VISION = "I cannot see images with the model I use, so I answered from the text alone"


def image_lines(reading: FileReading, *, stored: bool) -> list[str]:
    lines = []
    for image in reading.images:
        if stored:
            lines.append(
                f"[image {image.name} was shown with this message; it is no longer visible]"
            )
        else:
            lines.append(f"[image {image.name} attached below, {image.width}×{image.height}]")
    lines += [
        f"[image {ref.name} was shared but not shown to the assistant]" for ref in reading.unseen
    ]
    return lines


def file_turn_text(
    question: str,
    reading: FileReading,
    quoted: Quoted,
    *,
    keep: int | None,
    unread: Sequence[str] = (),
) -> str:
    """The user's message with its files; `keep` caps the document text (memory's copy)."""
    documents = quoted.text if keep is None else quoted.text[:keep]
    if keep is not None and len(quoted.text) > keep:
        documents += "\n[… the rest of the file text is not kept]"
    parts = [
        question.strip(),
        documents,
        *quoted.notes,
        *image_lines(reading, stored=keep is not None),
        f"[attached but not readable: {', '.join(unread)}]" if unread else "",
    ]
    return "\n\n".join(p for p in parts if p)


def unshown_images(history: Sequence[Turn]) -> list[FileRef]:
    """Images shared after the bot's last answer without a question, oldest first."""
    found: list[FileRef] = []
    for turn in reversed(history):
        if turn.role != "user":
            break
        found[:0] = [f for f in turn.files if f.kind == "image"]
    return found


def acknowledgement(reading: FileReading, names: Sequence[str]) -> str:
    """What the bot says to files dropped without a word: no model call."""
    readable = [n for n in names if n in reading.names or any(r.name == n for r in reading.unseen)]
    if not readable:
        return " ".join(reading.problems) or "I could not read those files."
    listed = ", ".join(readable[:-1]) + (" and " if len(readable) > 1 else "") + readable[-1]
    sentence = f"Got {listed} — what would you like to know?"
    return " ".join([sentence, *reading.problems])


def document_sources(documents: Sequence[Document], at: datetime) -> list[SourceMessage]:
    """Passages of documents as the summarizer's sources, cited by page or line range."""
    several = len(documents) > 1
    return [
        SourceMessage(
            message_id=f"{document.name}#{index}",
            author=document.name,
            text=section.text,
            at=at,
            where=f"{document.name}, {section.where}" if several else section.where,
        )
        for document in documents
        for index, section in enumerate(document.sections)
    ]
