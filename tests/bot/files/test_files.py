"""Reading shared files: kinds, documents, images, quoting within a budget, screening."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.errors import FileProblem
from bot.files.documents import Document, Section, read_docx, read_pdf, read_text_file
from bot.files.images import fitted_size, prepare_image
from bot.files.kinds import kind_of
from bot.files.limits import MB, FileLimits
from bot.files.quoting import quote_documents
from bot.files.reading import FileReader
from bot.files.refs import FileRef
from bot.tokens import EstimatingCounter
from tests.fakes.documents import docx_bomb, docx_bytes, image_bytes, pdf_bytes

COUNTER = EstimatingCounter()


@pytest.mark.parametrize(
    ("name", "mimetype", "kind"),
    [
        ("shot.PNG", "", "image"),
        ("photo", "image/jpeg", "image"),
        ("report.pdf", "application/octet-stream", "pdf"),
        ("notes.docx", "", "docx"),
        ("server.log", "application/octet-stream", "text"),
        ("data.csv", "text/csv", "text"),
        ("Dockerfile", "", "text"),
        ("config", "application/json", "text"),
        ("archive.zip", "application/zip", "unsupported"),
        ("slides.pptx", "", "unsupported"),
    ],
)
def test_kinds_by_extension_then_type(name: str, mimetype: str, kind: str) -> None:
    assert kind_of(name, mimetype) == kind


def test_pdf_pages_are_cited_and_pages_without_text_noted() -> None:
    data = pdf_bytes(["Revenue grew 12%\nCosts fell", "", "Outlook: cautious"])
    document = read_pdf("q3.pdf", data, max_pages=50)
    assert [s.where for s in document.sections] == ["p. 1", "p. 3"]
    assert "Revenue grew 12%" in document.sections[0].text
    assert document.total_units == 3
    assert "1 page had no text" in document.note


def test_pdf_page_flood_is_cut_at_the_cap() -> None:
    document = read_pdf("big.pdf", pdf_bytes([f"page {n}" for n in range(1, 13)]), max_pages=5)
    assert [s.where for s in document.sections][-1] == "p. 5"
    assert "pages 6 to 12 were never read" in document.note


def test_encrypted_corrupt_and_empty_pdfs_are_one_sentence_each() -> None:
    with pytest.raises(FileProblem, match="password-protected"):
        read_pdf("secret.pdf", pdf_bytes(["x"], password="hunter2"), max_pages=5)
    with pytest.raises(FileProblem, match="damaged or not really a PDF"):
        read_pdf("broken.pdf", b"%PDF-1.7\nthis is not a pdf at all", max_pages=5)
    with pytest.raises(FileProblem, match="no text I can read"):
        read_pdf("scan.pdf", pdf_bytes(["", ""]), max_pages=5)


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256", "AES-256-R5", "RC4-128"])
def test_an_encrypted_pdf_with_an_empty_password_is_read(algorithm: str) -> None:
    data = pdf_bytes(["the budget is approved"], password="", algorithm=algorithm)
    document = read_pdf("open.pdf", data, max_pages=5)
    assert "the budget is approved" in document.sections[0].text


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-128"])
def test_a_pdf_that_really_needs_a_password_says_so(algorithm: str) -> None:
    data = pdf_bytes(["x"], password="hunter2", algorithm=algorithm)
    with pytest.raises(FileProblem, match="password-protected"):
        read_pdf("secret.pdf", data, max_pages=5)


def test_word_paragraphs_and_tables() -> None:
    document = read_docx("plan.docx", docx_bytes(["Goal: ship", "Owner: Mina"], [["Q1", "beta"]]))
    assert "Goal: ship" in document.text and "Q1 | beta" in document.text
    with pytest.raises(FileProblem, match="not really a Word document"):
        read_docx("plan.docx", b"PK\x03\x04 nope")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("café crème brûlée, déjà vu — naïve façade\n" * 20, "cp1252"),
        ("こんにちは、世界。ログの行です。\n" * 20, "shift_jis"),
        ("Grüße aus Köln\n" * 20, "utf-16"),
        ("plain ascii\n" * 20, "utf-8"),
    ],
)
def test_text_in_any_charset(text: str, encoding: str) -> None:
    document = read_text_file("notes.txt", text.encode(encoding))
    assert document.text.splitlines()[0] == text.splitlines()[0]


def test_binary_posing_as_text_is_refused() -> None:
    with pytest.raises(FileProblem, match="binary file"):
        read_text_file("app.log", b"\x7fELF\x00\x00\x01\x02" * 100)


def test_long_text_is_cited_by_line_ranges() -> None:
    lines = [f"2026-11-29 line {n}" for n in range(1, 201)]
    document = read_text_file("app.log", "\n".join(lines).encode())
    assert [s.where for s in document.sections] == ["lines 1–80", "lines 81–160", "lines 161–200"]


def test_images_are_downscaled_to_both_limits() -> None:
    image = prepare_image(
        "wide.png", image_bytes(4000, 1000), long_side=2048, short_side=768, max_pixels=10**8
    )
    assert (image.width, image.height) == (2048, 512)
    assert image.original == (4000, 1000)
    assert image.mimetype == "image/jpeg"
    tall = prepare_image(
        "tall.jpg", image_bytes(1500, 3000, "JPEG"), long_side=2048, short_side=768,
        max_pixels=10**8,
    )  # fmt: skip
    assert (tall.width, tall.height) == (768, 1536)
    decoded = Image.open(io.BytesIO(tall.data))
    assert decoded.size == (768, 1536)


def test_transparency_is_kept_as_png_and_small_images_are_not_enlarged() -> None:
    image = prepare_image(
        "icon.png",
        image_bytes(64, 32, alpha=True),
        long_side=2048,
        short_side=768,
        max_pixels=10**8,
    )
    assert image.mimetype == "image/png" and (image.width, image.height) == (64, 32)


def test_huge_and_broken_images_are_refused() -> None:
    with pytest.raises(FileProblem, match="larger than I can open"):
        prepare_image(
            "bomb.png", image_bytes(3000, 3000), long_side=2048, short_side=768, max_pixels=10**6
        )
    with pytest.raises(FileProblem, match="not really an image"):
        prepare_image("x.png", b"\x89PNG\r\n\x1a\nnope", long_side=2048, short_side=768,
                      max_pixels=10**8)  # fmt: skip


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "ICO", "PPM", "TGA"])
def test_formats_the_models_do_not_take_never_reach_a_decoder(fmt: str) -> None:
    data = image_bytes(64, 64, fmt)  # named .png, as a Photoshop file was
    with pytest.raises(FileProblem, match="damaged or not really an image"):
        prepare_image("mock-up.png", data, long_side=2048, short_side=768, max_pixels=10**8)


def test_a_truncated_gif_is_damaged_not_something_went_wrong() -> None:
    data = image_bytes(64, 64, "GIF")
    for cut in (13, 20, 40, 60):  # headers without frames: EOFError inside Pillow
        with pytest.raises(FileProblem, match="damaged or not really an image"):
            prepare_image("cat.gif", data[:cut], long_side=2048, short_side=768, max_pixels=10**8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_the_four_documented_formats_are_read(fmt: str) -> None:
    prepared = prepare_image("ok", image_bytes(64, 48, fmt), long_side=2048, short_side=768,
                             max_pixels=10**8)  # fmt: skip
    assert prepared.original == (64, 48)


@given(st.integers(1, 20_000), st.integers(1, 20_000), st.integers(64, 4096), st.integers(64, 4096))
def test_fitted_size_respects_both_limits_and_shape(w: int, h: int, long: int, short: int) -> None:
    fw, fh = fitted_size(w, h, long, short)
    assert max(fw, fh) <= max(long, max(w, h)) and fw <= w and fh <= h
    if max(w, h) > long or min(w, h) > short:
        assert max(fw, fh) <= long + 1 and min(fw, fh) <= short + 1


def _document(name: str, sections: list[str]) -> Document:
    return Document(
        name, "pdf", tuple(Section(f"p. {i}", t) for i, t in enumerate(sections, 1)), len(sections)
    )


def test_a_long_document_is_quoted_as_far_as_it_fits_with_a_note() -> None:
    pages = [f"Page {n}: " + "words " * 300 for n in range(1, 101)]
    quoted = quote_documents(COUNTER, [_document("manual.pdf", pages)], 3000)
    assert quoted.tokens <= 3000
    assert "[p. 1]" in quoted.text and "[p. 100]" not in quoted.text
    assert len(quoted.notes) == 1 and "manual.pdf is too long" in quoted.notes[0]
    assert "to p. 100" in quoted.notes[0]


def test_a_docx_that_unpacks_to_too_much_is_refused_before_it_is_unpacked() -> None:
    bomb = docx_bomb(400_000)  # about 14 MB of XML in a few tens of KB
    assert len(bomb) < 200_000
    with pytest.raises(FileProblem, match=r"bomb.docx unpacks to 1\d\.\d MB, more than the 12 MB"):
        read_docx("bomb.docx", bomb)
    small = read_docx("fine.docx", docx_bomb(1_000))  # the same shape, small: read
    assert small.total_units == 1_000


def test_a_pdf_past_the_page_cap_says_which_pages_were_never_read() -> None:
    pages = [f"Page {n}: " + "words " * 60 for n in range(1, 31)]
    data = pdf_bytes(pages + [f"late page {n}" for n in range(31, 51)])
    document = read_pdf("huge.pdf", data, max_pages=30)
    quoted = quote_documents(COUNTER, [document], 800)
    [note] = quoted.notes
    assert "to p. 30" in note and "was left out" in note  # read, but did not fit
    assert "pages 31 to 50 were never read" in note  # never read at all
    whole = quote_documents(COUNTER, [document], 100_000)  # everything read fits
    assert whole.notes == ("huge.pdf: pages 31 to 50 were never read (I read at most the first "
                           "30 pages).",)  # fmt: skip


def test_small_documents_are_quoted_whole_and_share_the_rest() -> None:
    small = _document("small.pdf", ["tiny page"])
    large = _document("large.pdf", ["lots " * 2000, "more " * 2000])
    quoted = quote_documents(COUNTER, [large, small], 2000)
    assert "tiny page" in quoted.text and quoted.tokens <= 2000
    assert [n.split(" ")[0] for n in quoted.notes] == ["large.pdf"]


@given(
    st.lists(st.lists(st.text(min_size=0, max_size=400), min_size=1, max_size=6), max_size=4),
    st.integers(0, 5000),
)
def test_quoting_never_exceeds_its_budget(docs: list[list[str]], budget: int) -> None:
    documents = [_document(f"d{i}.pdf", pages) for i, pages in enumerate(docs)]
    quoted = quote_documents(COUNTER, documents, budget)
    assert quoted.tokens <= budget
    assert COUNTER.count(quoted.text) <= budget + 2 * len(documents)


class NoFetcher:
    async def fetch(self, ref: FileRef, limit: int) -> bytes:
        raise AssertionError(f"{ref.name} should not have been downloaded")


def test_screening_by_metadata_before_download() -> None:
    reader = FileReader(FileLimits(max_file_bytes=10 * MB, max_message_bytes=15 * MB, max_files=3))
    reader.register("slack", NoFetcher())
    refs = [
        FileRef("slack", "a.png", "u", size=8 * MB),
        FileRef("slack", "b.zip", "u", size=10),
        FileRef("slack", "c.pdf", "u", size=11 * MB),
        FileRef("slack", "d.pdf", "u", size=1),
        FileRef("slack", "e.pdf", "u", size=1),
    ]
    accepted, problems = reader.screen(refs)
    assert [r.name for r in accepted] == ["a.png"]
    assert "I cannot read b.zip" in problems[0] and "PDFs" in problems[0]
    assert "c.pdf is 11 MB, over my limit of 10 MB per file" in problems[1]
    assert "at most 3 files per message, so I skipped d.pdf, e.pdf" in problems[2]
    reader.limits = FileLimits(max_message_bytes=9 * MB)
    accepted, problems = reader.screen([refs[0], FileRef("slack", "f.pdf", "u", size=2 * MB)])
    assert [r.name for r in accepted] == ["a.png"] and "may add up to 9 MB" in problems[0]


@given(st.text(alphabet=st.sampled_from("ab é\n\r\t한"), max_size=3000))
def test_text_sections_keep_every_line_and_count_them(text: str) -> None:
    from bot.files.documents import text_sections

    sections, lines = text_sections(text)
    if not text:
        assert sections == [] and lines == 0
        return
    assert lines == text.count("\n") + (0 if text.endswith("\n") else 1)
    assert "\n".join(s.text for s in sections) == text.removesuffix("\n")
    ranges = [s.where.split(" ")[-1].split("–") for s in sections]
    firsts = [int(r[0]) for r in ranges]
    lasts = [int(r[-1]) for r in ranges]
    assert firsts[0] == 1 and lasts[-1] == lines
    assert all(b == a + 1 for a, b in zip(lasts, firsts[1:], strict=False))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions in a few dozen bytes: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + (chunk(b"IEND", b""))
    )


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_header_only(100_000, 100_000)
    assert len(bomb) < 100
    with pytest.raises(FileProblem, match="larger than I can open"):
        prepare_image("bomb.png", bomb, long_side=2048, short_side=768, max_pixels=40_000_000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
file_like = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values, "url_private": json_values, "url_private_download": json_values,
        "size": json_values, "mimetype": json_values, "mode": json_values, "id": json_values,
    },
)  # fmt: skip


shared_like = st.fixed_dictionaries({}, optional={"files": st.lists(file_like)})


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "files": st.lists(file_like | json_values, max_size=4) | json_values,
            "attachments": st.lists(shared_like | json_values, max_size=3) | json_values,
        },
    )
)
def test_slack_file_payloads_of_any_shape_never_raise(event: dict) -> None:
    from adapters.slack.files import file_refs

    for ref in file_refs(event):
        assert isinstance(ref.name, str) and ref.name and isinstance(ref.url, str) and ref.url
        assert isinstance(ref.size, int) and ref.size >= 0
