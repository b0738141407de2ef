"""Documents as text with locations: PDF pages, Word paragraphs, text lines. Pure, CPU-bound:
callers run these in a worker thread."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from charset_normalizer import from_bytes

from bot.errors import FileProblem
from bot.files.kinds import FileKind
from bot.files.limits import MB, size_text

log = logging.getLogger(__name__)

LINES_PER_SECTION = 80  # a text file is cited by line ranges of about this size
SECTION_CHARS = 6_000  # …and a section never grows much past this many characters


@dataclass(frozen=True, slots=True)
class Section:
    where: str  # "p. 3", "lines 81–160", "paragraphs 1–40": how a summary cites it
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    kind: FileKind
    sections: tuple[Section, ...]
    total_units: int = 0  # pages of a PDF, lines of a text file, paragraphs of a Word file
    note: str = ""  # what was not read and why (a page cap, pages without text)

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.sections)

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.sections)

    def describe(self) -> str:
        units = {"pdf": "page", "text": "line", "docx": "paragraph"}.get(self.kind, "part")
        count = self.total_units
        return f"{count:,} {units}{'' if count == 1 else 's'}"


Data = bytes | bytearray


def decode_text(data: Data) -> str:
    """Bytes in any charset as text: UTF-8 (with or without BOM) at once, else detected."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    matches = list(from_bytes(data[: 256 * 1024]))  # a sample: a 10 MB log is uniform
    if not matches:
        return data.decode("latin-1")
    best = matches[0]
    encoding = best.encoding
    # Short Western text fits several Windows code pages; the most common one reads as well.
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= best.chaos + 0.15
            and match.coherence >= best.coherence
        ):
            encoding = "cp1252"
            break
    return data.decode(encoding, errors="replace")


def _where(label: str, first: int, last: int) -> str:
    return f"{label[:-1]} {first}" if first == last else f"{label} {first}–{last}"


def _line_sections(lines: list[str], label: str = "lines") -> Iterator[Section]:
    start = 0
    while start < len(lines):
        end = start
        size = 0
        while end < len(lines) and end - start < LINES_PER_SECTION and size < SECTION_CHARS:
            size += len(lines[end]) + 1
            end += 1
        yield Section(_where(label, start + 1, end), "\n".join(lines[start:end]))
        start = end


def text_sections(text: str) -> tuple[list[Section], int]:
    """Sections of about LINES_PER_SECTION lines, cut straight out of `text` (no list of every
    line: a 10 MB log would cost several times its size), and the number of lines."""
    sections: list[Section] = []
    start, line = 0, 1
    length = len(text)
    while start < length:
        end, lines = start, 0
        while lines < LINES_PER_SECTION and end < length and end - start < SECTION_CHARS:
            found = text.find("\n", end)
            end = length if found < 0 else found + 1
            lines += 1
        sections.append(
            Section(_where("lines", line, line + lines - 1), text[start:end].removesuffix("\n"))
        )
        line += lines
        start = end
    return sections, line - 1


# An Office file, unpacked: its markup is parsed into memory at several times its size.
MAX_MARKUP = 12 * MB
MAX_UNPACKED = 48 * MB  # every part together (images included: python-docx loads them all)
MAX_MEMBERS = 10_000


def read_text_file(name: str, data: Data | list[Data]) -> Document:
    """A text file in any charset. Given `[data]`, the list is emptied so the bytes can be freed
    as soon as they are decoded."""
    if isinstance(data, list):
        raw = data.pop()
        data = b""
    else:
        raw = data
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(f"{name} looks like a binary file, not text, so I cannot read it.")
    text = decode_text(raw).replace("\r\n", "\n")
    del raw
    sections, lines = text_sections(text)
    return Document(name, "text", tuple(sections), total_units=lines)


def read_pdf(name: str, data: Data, *, max_pages: int) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileProblem(f"{name} is password-protected, so I cannot read it.")
        total = len(reader.pages)
        sections: list[Section] = []
        empty = 0
        for number in range(min(total, max_pages)):
            text = (reader.pages[number].extract_text() or "").strip()
            if text:
                sections.append(Section(f"p. {number + 1}", text))
            else:
                empty += 1
    except FileProblem:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        log.info("unreadable PDF %s: %s: %s", name, type(exc).__name__, exc)
        raise FileProblem(f"{name} is damaged or not really a PDF, so I cannot read it.") from None
    except Exception as exc:  # pypdf raises many types on hostile input (NotImplementedError…)
        log.info("unreadable PDF %s: %s: %s", name, type(exc).__name__, exc)
        raise FileProblem(f"{name} is a PDF I cannot read.") from None
    if not sections:
        raise FileProblem(
            f"{name} has no text I can read (it may be scanned images); "
            "a screenshot of the page works better."
        )
    notes = []
    if total > max_pages:
        notes.append(
            f"pages {max_pages + 1:,} to {total:,} were never read "
            f"(I read at most the first {max_pages:,} pages)"
        )
    if empty:
        notes.append(f"{empty} page{'s' if empty > 1 else ''} had no text (scans or images)")
    return Document(name, "pdf", tuple(sections), total_units=total, note="; ".join(notes))


def check_unpacked(name: str, data: Data) -> None:
    """Refuse an archive-based file (DOCX) whose parts unpack to more than the bot reads: a
    330 KB upload unpacking to 101 MB of XML took 108 s and 1.5 GB. The sizes are the ones the
    archive declares, checked before anything is unpacked; zipfile never inflates a member past
    its declared size (a lying header ends in a CRC error), so they also bound the unpacking."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise FileProblem(f"{name} holds {len(members):,} parts, more than I open.")
            unpacked = sum(m.file_size for m in members)
            markup = sum(m.file_size for m in members if m.filename.endswith((".xml", ".rels")))
    except zipfile.BadZipFile:
        return  # python-docx says it is damaged, in its own sentence
    if markup > MAX_MARKUP or unpacked > MAX_UNPACKED:
        limit = MAX_MARKUP if markup > MAX_MARKUP else MAX_UNPACKED
        raise FileProblem(
            f"{name} unpacks to {size_text(max(markup, unpacked))}, more than the "
            f"{size_text(limit)} I read of one document; split it, or paste the part you mean."
        )


def read_docx(name: str, data: Data) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_unpacked(name, data)
    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                paragraphs.append(" | ".join(cell.text.strip() for cell in row.cells))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        log.info("unreadable Word file %s: %s: %s", name, type(exc).__name__, exc)
        raise FileProblem(
            f"{name} is damaged or not really a Word document, so I cannot read it."
        ) from None
    except Exception as exc:
        log.info("unreadable Word file %s: %s: %s", name, type(exc).__name__, exc)
        raise FileProblem(f"{name} is a Word document I cannot read.") from None
    kept = [p for p in paragraphs if p.strip()]
    if not kept:
        raise FileProblem(f"{name} has no text in it.")
    return Document(name, "docx", tuple(_line_sections(kept, "paragraphs")), total_units=len(kept))


def read_document(name: str, kind: FileKind, data: list[Data], *, max_pages: int) -> Document:
    """Read the bytes handed over in `data` (a one-item list, emptied here)."""
    if kind == "pdf":
        return read_pdf(name, data.pop(), max_pages=max_pages)
    if kind == "docx":
        return read_docx(name, data.pop())
    return read_text_file(name, data)
