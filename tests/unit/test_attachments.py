"""Files sent in a conversation (core/attachments.py): taken by what their bytes are, never by
their names; refused with a message that says what to send instead; offered for download under
a clean name with the real type's extension. Every sample is made here, small and real: a PDF,
images by Pillow, Office and OpenDocument files by zipfile as their programs lay them out, an
ELF and a Windows program header, a web page."""

from __future__ import annotations

import gzip
import io
import re
import struct
import zipfile
from urllib.parse import unquote

import pytest
from PIL import Image

from core.attachments import (
    MAX_NAME,
    AttachmentRefused,
    Checked,
    check,
    content_disposition,
)

MB = 1024 * 1024
LIMIT = 25 * MB
TAKEN = "send a PDF, an image, a Word, Excel or PowerPoint document, a ZIP, or plain text"

PDF = (
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
    b"trailer <</Root 1 0 R>>\n%%EOF\n"
)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
TEXT = "text/plain; charset=utf-8"


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, fmt)
    return out.getvalue()


def archive(*entries: tuple[str, str | bytes], stored_first: bool = False) -> bytes:
    """A ZIP of `entries` in that order (OpenDocument's `mimetype` first and uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, (name, data) in enumerate(entries):
            stored = stored_first and n == 0
            zf.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def office(main_part: str, main_type: str, first: str = "[Content_Types].xml") -> bytes:
    """An Office Open XML package: [Content_Types].xml naming the main part, the package's
    relationships and the part itself; `first` is the entry written first (Word writes
    [Content_Types].xml first, other programs don't always)."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{main_type}"/></Types>'
    )
    entries = [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", '<?xml version="1.0"?><Relationships/>'),
        (main_part, '<?xml version="1.0"?><document/>'),
    ]
    entries.sort(key=lambda entry: entry[0] != first)
    return archive(*entries)


def docx(first: str = "[Content_Types].xml") -> bytes:
    return office("word/document.xml", f"{DOCX_TYPE}.main+xml", first)


def open_document(mimetype: str) -> bytes:
    return archive(
        ("mimetype", mimetype),
        ("content.xml", '<?xml version="1.0"?><office:document-content/>'),
        ("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest/>'),
        stored_first=True,
    )


def elf() -> bytes:
    """The header of a 64-bit x86 Linux program."""
    header = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    return header + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 0, 0, 0
    )


def windows_program() -> bytes:
    """An MZ header pointing to a PE header (a 32-bit x86 Windows program)."""
    pe = bytearray(512)
    pe[0:2] = b"MZ"
    pe[0x3C:0x40] = struct.pack("<I", 0x80)
    pe[0x80:0x84] = b"PE\x00\x00"
    pe[0x84:0x86] = struct.pack("<H", 0x14C)  # i386
    pe[0x94:0x96] = struct.pack("<H", 0xE0)  # size of the optional header
    pe[0x96:0x98] = struct.pack("<H", 0x0102)  # executable, 32-bit
    pe[0x98:0x9A] = struct.pack("<H", 0x10B)  # PE32
    return bytes(pe)


WEB_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Hi</title></head>"
    b"<body><script>alert(document.cookie)</script></body></html>\n"
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)


# ---------------------------------------------------------------- what is taken


@pytest.mark.parametrize(
    ("data", "name", "content_type", "filename"),
    [
        (PDF, "Brief.pdf", "application/pdf", "Brief.pdf"),
        (image("PNG"), "chart.png", "image/png", "chart.png"),
        (image("JPEG"), "photo.JPEG", "image/jpeg", "photo.jpeg"),
        (image("GIF"), "anim.gif", "image/gif", "anim.gif"),
        (image("WEBP"), "pic.webp", "image/webp", "pic.webp"),
        (docx(), "Report.docx", DOCX_TYPE, "Report.docx"),
        (office("xl/workbook.xml", f"{XLSX_TYPE}.main+xml"), "Q3.xlsx", XLSX_TYPE, "Q3.xlsx"),
        (office("ppt/presentation.xml", f"{PPTX_TYPE}.main+xml"), "D.pptx", PPTX_TYPE, "D.pptx"),
        (open_document(ODT), "Essay.odt", ODT, "Essay.odt"),
        (open_document(ODS), "Sums.ods", ODS, "Sums.ods"),
        (open_document(ODP), "Talk.odp", ODP, "Talk.odp"),
        (
            archive(("notes.txt", "hi"), ("tool.exe", windows_program())),
            "work.zip",
            "application/zip",
            "work.zip",
        ),
        ("Dear Ada,\nthe draft — Lin ✓\n".encode(), "letter.txt", TEXT, "letter.txt"),
        (b"name,hours\nAda,12\r\nLin,30\r\n", "hours.csv", "text/csv; charset=utf-8", "hours.csv"),
        (b"# Plan\n\n- research\n", "PLAN.md", "text/markdown; charset=utf-8", "PLAN.md"),
    ],
)
def test_what_we_take_is_taken_as_what_it_is(
    data: bytes, name: str, content_type: str, filename: str
) -> None:
    extension = filename.rpartition(".")[2]
    assert check(data, name, LIMIT) == Checked(content_type, extension, filename, len(data))


@pytest.mark.parametrize("first", ["_rels/.rels", "word/document.xml"])
def test_a_word_document_is_told_from_a_zip_whatever_order_its_parts_are_in(first: str) -> None:
    """libmagic knows an Office document only when [Content_Types].xml comes first: the
    archive's own table of types decides."""
    taken = check(docx(first), "Report.docx", LIMIT)
    assert (taken.content_type, taken.filename) == (DOCX_TYPE, "Report.docx")
    # And the other way round: a plain ZIP called .docx is a ZIP.
    plain = check(archive(("a.txt", "x")), "Report.docx", LIMIT)
    assert (plain.content_type, plain.filename) == ("application/zip", "Report.zip")


def test_text_with_a_byte_order_mark_and_a_file_named_for_another_type() -> None:
    assert check("\ufeffhej då\n".encode(), "hej.txt", LIMIT).filename == "hej.txt"
    # A PDF called .txt is a PDF, offered as one.
    pdf = check(PDF, "notes.txt", LIMIT)
    assert (pdf.content_type, pdf.extension, pdf.filename) == (
        "application/pdf",
        "pdf",
        "notes.pdf",
    )
    # Text named for something else keeps its name and is offered as text.
    script = check(b"#!/bin/sh\necho hello\n", "build.sh", LIMIT)
    assert (script.content_type, script.filename) == ("text/plain; charset=utf-8", "build.sh.txt")
    assert check(b"not really a pdf\n", "fake.pdf", LIMIT).filename == "fake.pdf.txt"
    # .csv and .md by name only when the content is text.
    with pytest.raises(AttachmentRefused, match="not a type we take"):
        check(elf(), "hours.csv", LIMIT)
    assert check(PDF, "hours.csv", LIMIT).filename == "hours.pdf"


# ---------------------------------------------------------------- what is refused


@pytest.mark.parametrize(
    ("data", "name", "looks_like"),
    [
        (elf(), "report.pdf", "it looks like a program"),
        (windows_program(), "report.pdf", "it looks like a Windows program"),
        (windows_program(), "setup.exe", "it looks like a Windows program"),
        (WEB_PAGE, "report.pdf", "it looks like a web page, which can carry script"),
        (WEB_PAGE, "page.html", "it looks like a web page, which can carry script"),
        (SVG, "logo.svg", "it looks like an SVG drawing, which can carry script"),
        (archive(("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")), "app.zip", "Java"),
        (bytes(range(256)) * 16, "data.bin", "we can't tell what it is"),
        (b"\x00\x01\x02 binary \x00 with text", "notes.txt", "we can't tell what it is"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64, "a.mp3", "sound"),
    ],
)
def test_what_we_do_not_take_is_refused_saying_what_to_send(
    data: bytes, name: str, looks_like: str
) -> None:
    with pytest.raises(AttachmentRefused) as refused:
        check(data, name, LIMIT)
    message = str(refused.value)
    assert message.startswith("That file is not a type we take (")
    assert looks_like in message and message.endswith(f"): {TAKEN}")


def test_the_exact_words_of_a_refusal() -> None:
    with pytest.raises(AttachmentRefused) as refused:
        check(windows_program(), "invoice.pdf", LIMIT)
    assert str(refused.value) == (
        "That file is not a type we take (it looks like a Windows program): send a PDF, an "
        "image, a Word, Excel or PowerPoint document, a ZIP, or plain text"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "That file is empty: choose one with something in it"),
        ("café crème\n".encode("latin-1"), "That text is not in UTF-8: save it as UTF-8"),
        ("hello\n".encode("utf-16"), "That text is not in UTF-8"),
        (
            office("word/document.xml", "application/vnd.ms-word.document.macroEnabled.main+xml"),
            "That document has macros, which can run programs: save it without them",
        ),
        (
            bytes.fromhex("D0CF11E0A1B11AE1")
            + b"\x00" * 16
            + bytes.fromhex("3E000300FEFF0900")
            + b"\x00" * 488,
            "That file is in an older Word, Excel or PowerPoint format, or protected by a "
            "password: save it as .docx, .xlsx or .pptx without a password",
        ),
        (
            gzip.compress(b"hello" * 100, mtime=0),
            "That archive is not a ZIP: send the files as a ZIP",
        ),
        (image("TIFF"), "That image is not a PNG, JPEG, GIF or WebP: save it as one of those"),
        (b"PK\x03\x04" + b"not a zip at all" * 8, "That ZIP is damaged"),
    ],
)
def test_refusals_that_say_how_to_fix_the_file(data: bytes, message: str) -> None:
    with pytest.raises(AttachmentRefused, match=message):
        check(data, "file.dat", LIMIT)


def test_a_file_over_the_limit_is_refused_with_both_sizes() -> None:
    big = PDF + b"\x00" * (31 * MB - len(PDF))
    with pytest.raises(AttachmentRefused) as refused:
        check(big, "big.pdf", LIMIT)
    assert str(refused.value) == "That file is 31 MB: choose one of 25 MB or less"
    exactly = PDF + b"\x00" * (LIMIT - len(PDF))
    assert check(exactly, "big.pdf", LIMIT).size == LIMIT


# ---------------------------------------------------------------- the name it is offered under


@pytest.mark.parametrize(
    ("sent_as", "offered_as"),
    [
        ("C:\\Users\\ada\\Desktop\\Brief.pdf", "Brief.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.pdf"),  # right-to-left override: no disguise
        ("tab\tand\nnewline.pdf", "tabandnewline.pdf"),
        ('a "quoted" <name>?.pdf', "a _quoted_ _name__.pdf"),
        ("   spaced    out   .pdf", "spaced out.pdf"),
        ("", "file.pdf"),
        ("...", "file.pdf"),
        (".pdf", "pdf.pdf"),
        ("report", "report.pdf"),
        ("v1.2", "v1.2.pdf"),  # an extension nobody knows is kept
        ("scan.PDF", "scan.pdf"),
        ("CON.pdf", "_CON.pdf"),
        ("Résumé – Ada Lovelace.pdf", "Résumé – Ada Lovelace.pdf"),
        ("報告書.pdf", "報告書.pdf"),
    ],
)
def test_the_name_is_cleaned_and_ends_with_the_real_type(sent_as: str, offered_as: str) -> None:
    assert check(PDF, sent_as, LIMIT).filename == offered_as


def test_a_long_name_is_cut_keeping_its_extension() -> None:
    name = check(PDF, "a" * 500 + ".pdf", LIMIT).filename
    assert len(name) == MAX_NAME and name.endswith("a.pdf")
    text = check(b"hello\n", "é" * 300 + ".csv", LIMIT).filename
    assert len(text) == MAX_NAME and text.endswith("é.csv")


# ---------------------------------------------------------------- downloads

# RFC 6266: a quoted-string of printable ASCII (no quote or backslash inside), then RFC 5987's
# ext-value: charset, empty language, attr-chars and percent-encoded bytes.
DISPOSITION = re.compile(
    r'attachment; filename="(?P<fallback>[ !#-\[\]-~]+)"; '
    r"filename\*=UTF-8''(?P<encoded>(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+)"
)


@pytest.mark.parametrize(
    ("filename", "fallback"),
    [
        ("Brief.pdf", "Brief.pdf"),
        ("Résumé – Ada.pdf", "Resume  Ada.pdf"),
        ("報告書.pdf", "file.pdf"),
        ('say "hi" \\ 100%.txt', "say _hi_ _ 100_.txt"),
        ("noextension", "noextension"),
    ],
)
def test_content_disposition_names_the_file_for_every_browser(filename: str, fallback: str) -> None:
    """The ASCII name for old clients, and RFC 5987's exact one, which browsers prefer."""
    header = content_disposition(filename)
    found = DISPOSITION.fullmatch(header)
    assert found, header
    assert found["fallback"] == fallback
    assert unquote(found["encoded"], errors="strict") == filename


def test_content_disposition_of_a_name_with_control_characters() -> None:
    header = content_disposition("evil\r\nSet-Cookie: x=1.pdf")
    assert DISPOSITION.fullmatch(header), header
    assert header.startswith('attachment; filename="evilSet-Cookie: x=1.pdf"')
