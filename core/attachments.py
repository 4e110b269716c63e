"""Files sent in a conversation: taken only if their content is a type we take, whatever they
are called or say they are.

The type is read from the bytes by libmagic (python-magic; Debian's libmagic1), the `file`
command's library: it tells text from binary, UTF-8 from other encodings, and knows programs,
web pages and SVG by content. A ZIP's kind is read from the archive itself (zipfile): an Office
document is a ZIP whose `[Content_Types].xml` names its main part, an OpenDocument one whose
`mimetype` entry names it. libmagic alone only knows them when that entry comes first, and some
programs write it later.

Taken: PDF; PNG, JPEG, GIF and WebP images; UTF-8 text; Word, Excel and PowerPoint documents
(.docx, .xlsx, .pptx), OpenDocument ones (.odt, .ods, .odp); ZIP archives. Refused: anything
else (programs, web pages and SVG, which can carry script, documents with macros, older Office
formats, unknown bytes), an empty file, a file over the size limit. The name a file is offered
under is cleaned (no path, no control characters, bounded) and ends with its real type's
extension: a PDF called "notes.txt" is downloaded as "notes.pdf".
"""

from __future__ import annotations

import io
import mimetypes
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from urllib.parse import quote

import magic

from core.images import megabytes


class AttachmentRefused(ValueError):
    """The file is not one we take; the message says why and what to do, in plain words."""


@dataclass(frozen=True)
class Checked:
    """A file taken: the type it is served with, its extension, the name it is offered under
    (safe to show and to put in Content-Disposition, with `content_disposition`), its size."""

    content_type: str
    extension: str
    filename: str
    size: int


@dataclass(frozen=True)
class Kind:
    content_type: str
    extensions: tuple[str, ...]  # the first is given to a name with another one


PDF = Kind("application/pdf", ("pdf",))
PNG = Kind("image/png", ("png",))
JPEG = Kind("image/jpeg", ("jpg", "jpeg"))
GIF = Kind("image/gif", ("gif",))
WEBP = Kind("image/webp", ("webp",))
ZIP = Kind("application/zip", ("zip",))
DOCX = Kind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",))
XLSX = Kind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
PPTX = Kind("application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",))
ODT = Kind("application/vnd.oasis.opendocument.text", ("odt",))
ODS = Kind("application/vnd.oasis.opendocument.spreadsheet", ("ods",))
ODP = Kind("application/vnd.oasis.opendocument.presentation", ("odp",))
# Text is served as text (never as a type a browser would run), in UTF-8; .csv and .md keep
# their names' extensions, any other text is .txt.
TEXT = Kind("text/plain; charset=utf-8", ("txt",))
CSV = Kind("text/csv; charset=utf-8", ("csv",))
MARKDOWN = Kind("text/markdown; charset=utf-8", ("md", "markdown"))

# What libmagic says -> the kind, for the types known by their first bytes.
BY_MAGIC = {
    "application/pdf": PDF,
    "image/png": PNG,
    "image/jpeg": JPEG,
    "image/gif": GIF,
    "image/webp": WEBP,
}
# libmagic's names for a ZIP and the formats made of one: the archive itself tells which.
ZIP_FAMILY = frozenset(
    {
        "application/zip",
        "application/x-zip-compressed",
        "application/java-archive",
        "application/x-java-archive",
        "application/vnd.android.package-archive",
        "application/epub+zip",
    }
)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a first entry, or an empty archive
# The main part's type in an Office document's [Content_Types].xml.
OFFICE_PARTS = {
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
}
OPEN_DOCUMENTS = {kind.content_type.encode(): kind for kind in (ODT, ODS, ODP)}
# Parts a ZIP's check reads, at most this long each (never the whole archive unpacked).
PART_LIMIT = 1024 * 1024

# Markup that a browser runs script in: refused even though it is text.
ACTIVE_MARKUP = {
    "text/html": "a web page, which can carry script",
    "application/xhtml+xml": "a web page, which can carry script",
    "image/svg+xml": "an SVG drawing, which can carry script",
}
OLD_OFFICE = frozenset(
    {
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.ms-office",
        "application/x-ole-storage",
        "application/cdfv2",
    }
)
ARCHIVES = frozenset(
    {
        "application/x-rar",
        "application/vnd.rar",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-tar",
        "application/zstd",
    }
)
LOOKS_LIKE = {
    "application/vnd.microsoft.portable-executable": "a Windows program",
    "application/x-dosexec": "a Windows program",
    "application/x-msdownload": "a Windows program",
    "application/x-msi": "a Windows installer",
    "application/x-executable": "a program",
    "application/x-pie-executable": "a program",
    "application/x-sharedlib": "a program",
    "application/x-mach-binary": "a Mac program",
    "application/x-apple-diskimage": "a disk image",
    "application/x-iso9660-image": "a disk image",
    "application/java-archive": "a Java program",
    "application/x-java-archive": "a Java program",
    "application/vnd.android.package-archive": "an Android app",
    **ACTIVE_MARKUP,
}
KINDS_TAKEN = "send a PDF, an image, a Word, Excel or PowerPoint document, a ZIP, or plain text"
# Characters no file name keeps: path separators, and those Windows refuses in a name.
UNSAFE_CHARACTERS = re.compile(r'[\\/:*?"<>|]')
SPACES = re.compile(r"\s+")
# Control characters in text other than tab, line feed, form feed, carriage return and escape
# (a log's colours): a file with them is binary, whatever decodes.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# Extensions of known types: Python's own table (not the system's /etc/mime.types, which
# differs from machine to machine), ours, and common ones the table lacks.
KNOWN_EXTENSIONS = frozenset(
    extension.lstrip(".") for table in mimetypes.MimeTypes().types_map for extension in table
) | frozenset(
    {"docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "odt", "ods", "odp", "md", "markdown"}
    | {"msi", "dmg", "apk", "jar", "ps1", "rar", "7z", "gz", "heic"}
)
MAX_NAME = 120  # characters of a cleaned name, extension included
WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(1, 10)}
)


def check(data: bytes, filename: str, max_bytes: int) -> Checked:
    """The file taken, as it is to be stored and served; AttachmentRefused if not taken."""
    if not data:
        raise AttachmentRefused("That file is empty: choose one with something in it")
    if len(data) > max_bytes:
        raise AttachmentRefused(
            f"That file is {megabytes(len(data))}: choose one of {megabytes(max_bytes)} or less"
        )
    kind = _kind(data, filename)
    name = safe_filename(filename, kind)
    return Checked(kind.content_type, name.rpartition(".")[2], name, len(data))


def _kind(data: bytes, filename: str) -> Kind:
    sniffed = magic.from_buffer(data, mime=True).lower()
    if sniffed in ZIP_FAMILY or data.startswith(ZIP_SIGNATURES):
        return _zip_kind(data)
    if sniffed in BY_MAGIC:
        return BY_MAGIC[sniffed]
    if sniffed in ACTIVE_MARKUP:
        raise _not_taken(ACTIVE_MARKUP[sniffed])
    if text := _text_kind(data, filename):
        return text
    if sniffed.startswith("text/") or sniffed in ("application/json", "application/csv"):
        raise AttachmentRefused(
            "That text is not in UTF-8: save it as UTF-8 (your editor's Save As or Export "
            "offers it) and send it again"
        )
    if sniffed in OLD_OFFICE:
        # (A document protected by a password is such a file too, whatever its extension.)
        raise AttachmentRefused(
            "That file is in an older Word, Excel or PowerPoint format, or protected by a "
            "password: save it as .docx, .xlsx or .pptx without a password and send that"
        )
    if sniffed in ARCHIVES:
        raise AttachmentRefused("That archive is not a ZIP: send the files as a ZIP")
    if sniffed.startswith("image/") and sniffed != "image/x-tga":  # (a weak guess of libmagic's)
        raise AttachmentRefused(
            "That image is not a PNG, JPEG, GIF or WebP: save it as one of those and send it again"
        )
    if sniffed.startswith("audio/"):
        raise _not_taken("a sound recording")
    if sniffed.startswith("video/"):
        raise _not_taken("a video")
    raise _not_taken(LOOKS_LIKE.get(sniffed))


def _not_taken(looks_like: str | None) -> AttachmentRefused:
    why = f"it looks like {looks_like}" if looks_like else "we can't tell what it is"
    return AttachmentRefused(f"That file is not a type we take ({why}): {KINDS_TAKEN}")


def _text_kind(data: bytes, filename: str) -> Kind | None:
    """Plain text in UTF-8 (a byte order mark allowed), with no control characters: as .csv or
    .md when its name says so, else .txt. None if the bytes are not such text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if CONTROL.search(text):
        return None
    extension = _extension(filename)
    for kind in (CSV, MARKDOWN):
        if extension in kind.extensions:
            return kind
    return TEXT


def _zip_kind(data: bytes) -> Kind:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise AttachmentRefused(
            "That ZIP is damaged (it could not be opened): make it again and send the new one"
        ) from err
    with archive:
        names = set(archive.namelist())
        if "[Content_Types].xml" in names:
            types = _part(archive, "[Content_Types].xml")
            if b"macroEnabled" in types:
                raise AttachmentRefused(
                    "That document has macros, which can run programs: save it without them "
                    "(as .docx, .xlsx or .pptx) and send that"
                )
            for part, kind in OFFICE_PARTS.items():
                if part in types:
                    return kind
        if "mimetype" in names:
            kind_of = OPEN_DOCUMENTS.get(_part(archive, "mimetype").strip())
            if kind_of is not None:
                return kind_of
        if "META-INF/MANIFEST.MF" in names:
            raise _not_taken("a Java program")
        if "AndroidManifest.xml" in names or "classes.dex" in names:
            raise _not_taken("an Android app")
    return ZIP


def _part(archive: zipfile.ZipFile, name: str) -> bytes:
    """The first PART_LIMIT bytes of one entry, or nothing if it can't be read (encrypted,
    damaged): then it is taken as a plain ZIP."""
    try:
        with archive.open(name) as part:
            return part.read(PART_LIMIT)
    except (zipfile.BadZipFile, RuntimeError, ValueError, OSError, NotImplementedError):
        return b""


def _extension(filename: str) -> str:
    """The lower-case extension of a name (after the last dot), or ""."""
    stem, dot, extension = _base(filename).rpartition(".")
    return extension.lower() if dot and stem and EXTENSION.fullmatch(extension) else ""


def _base(filename: str) -> str:
    """The last part of a path, whichever separator the sender's system uses."""
    return re.split(r"[\\/]", filename)[-1]


def safe_filename(filename: str, kind: Kind) -> str:
    """A name to offer the file under: no path, no control or invisible characters (no
    right-to-left trick hiding the real extension), nothing Windows refuses, at most MAX_NAME
    characters, ending with an extension of its real type. A binary file's name with another
    type's extension has it replaced ("notes.txt", a PDF: "notes.pdf"); text keeps its name
    and gets .txt added ("build.sh": "build.sh.txt"), as does any name with an extension
    nobody knows ("v1.2", a PDF: "v1.2.pdf")."""
    name = unicodedata.normalize("NFC", _base(filename))
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = SPACES.sub(" ", UNSAFE_CHARACTERS.sub("_", name)).strip(" .")
    stem, extension = name, _extension(name)
    known = extension in KNOWN_EXTENSIONS
    if extension in kind.extensions or (known and kind is not TEXT):
        stem = name[: -len(extension) - 1]
    if extension not in kind.extensions:
        extension = kind.extensions[0]
    stem = stem.strip(" .") or "file"
    if stem.split(".")[0].lower() in WINDOWS_DEVICES:  # CON.txt is no name on Windows
        stem = f"_{stem}"
    stem = stem[: MAX_NAME - len(extension) - 1].rstrip(" .") or "file"
    return f"{stem}.{extension}"


def content_disposition(filename: str) -> str:
    """`Content-Disposition` for downloading `filename` (RFC 6266): the name in plain ASCII
    for old clients (accents dropped, other letters lost: "file" if nothing is left), and the
    exact name in UTF-8 (RFC 5987's filename*) for the others, which prefer it."""
    name = "".join(c for c in filename if not unicodedata.category(c).startswith("C"))
    name = name.strip() or "file"
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem, extension = _ascii(stem) or "file", _ascii(extension)
    fallback = f"{stem}.{extension}" if extension else stem
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _ascii(text: str) -> str:
    """`text` in printable ASCII for a quoted-string: accents dropped, quotes, backslashes and
    percent signs (which some browsers decode) made "_"."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    plain = "".join(c for c in plain if c.isprintable())
    return re.sub(r'["\\%]', "_", plain).strip(" .")
