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


def decode_text(data: bytes) -> str:
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


def _line_sections(lines: list[str], label: str = "lines") -> Iterator[Section]:
    start = 0
    while start < len(lines):
        end = start
        size = 0
        while end < len(lines) and end - start < LINES_PER_SECTION and size < SECTION_CHARS:
            size += len(lines[end]) + 1
            end += 1
        first, last = start + 1, end
        where = f"{label[:-1]} {first}" if first == last else f"{label} {first}–{last}"
        yield Section(where, "\n".join(lines[start:end]))
        start = end


def read_text_file(name: str, data: bytes) -> Document:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(f"{name} looks like a binary file, not text, so I cannot read it.")
    lines = decode_text(data).splitlines()
    return Document(name, "text", tuple(_line_sections(lines)), total_units=len(lines))


def read_pdf(name: str, data: bytes, *, max_pages: int) -> Document:
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
        notes.append(f"only the first {max_pages} of its {total} pages were read")
    if empty:
        notes.append(f"{empty} page{'s' if empty > 1 else ''} had no text (scans or images)")
    return Document(name, "pdf", tuple(sections), total_units=total, note="; ".join(notes))


def read_docx(name: str, data: bytes) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

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


def read_document(name: str, kind: FileKind, data: bytes, *, max_pages: int) -> Document:
    if kind == "pdf":
        return read_pdf(name, data, max_pages=max_pages)
    if kind == "docx":
        return read_docx(name, data)
    return read_text_file(name, data)
