"""Files for tests, built here: PNG and JPEG images, PDFs (with pypdf) and Word documents."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(width: int, height: int, fmt: str = "PNG", *, alpha: bool = False) -> bytes:
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height), (200, 30, 30, 128) if alpha else (30, 120, 200))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(
    pages: list[str], *, password: str | None = None, algorithm: str = "RC4-128"
) -> bytes:
    """A PDF whose page n shows the lines of pages[n] in Helvetica ("" makes a page without text)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        commands = ["BT", "/F1 11 Tf", "14 TL", "50 740 Td"]
        for line in text.split("\n") if text else []:
            commands.append(f"({_escape(line)}) Tj T*")
        commands.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(commands).encode("latin-1", "replace") if text else b"")
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})}
        )
    if password is not None:  # "" with an owner password: opens in any viewer, as pypdf's tests
        writer.encrypt(password, owner_password="owner-only", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_bomb(paragraphs: int) -> bytes:
    """A small DOCX whose document.xml unpacks to about 36 bytes a paragraph (2 million: 70 MB),
    shaped as the 330 KB upload that took gigabytes."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(docx_bytes(["seed"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode()
                head, _, tail = text.partition("<w:body>")
                body = "<w:p><w:r><w:t>a</w:t></w:r></w:p>" * paragraphs
                data = (head + "<w:body>" + body + tail.split("</w:body>")[-1]).encode()
                data = data.replace(b"</w:document>", b"</w:body></w:document>")
            bomb.writestr(item.filename, data)
    return out.getvalue()
