"""Which format a document is: from its bytes first, then libmagic's type, the declared content type,
and the file name's extension last.

Everything is data: FORMATS (name, family, MIME types, extensions, reader), SIGNATURES (magic numbers),
ZIP_MARKERS (the member that makes a zip an OOXML/ODF document). detect_format() reads them; it never
raises and never reads more than the zip directory and the first few KiB.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple


@dataclass(frozen=True)
class Format:
    name: str
    family: str                      # pdf | ooxml | odf | rtf | html | xml | text | image | archive | ole2 | message | binary
    mime_types: Tuple[str, ...]
    extensions: Tuple[str, ...]
    reader: Optional[str]            # key of the reader in extract.READERS, None: not extracted


_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."

FORMATS: Tuple[Format, ...] = (
    Format("pdf", "pdf", ("application/pdf", "application/x-pdf"), ("pdf",), "pdf"),
    Format("docx", "ooxml", (_OOXML + "wordprocessingml.document", _OOXML + "wordprocessingml.template",
                             "application/vnd.ms-word.document.macroenabled.12"), ("docx", "docm", "dotx", "dotm"), "docx"),
    Format("xlsx", "ooxml", (_OOXML + "spreadsheetml.sheet", _OOXML + "spreadsheetml.template",
                             "application/vnd.ms-excel.sheet.macroenabled.12"), ("xlsx", "xlsm", "xltx", "xltm"), "xlsx"),
    Format("pptx", "ooxml", (_OOXML + "presentationml.presentation", _OOXML + "presentationml.slideshow",
                             "application/vnd.ms-powerpoint.presentation.macroenabled.12"),
           ("pptx", "pptm", "ppsx", "potx"), "pptx"),
    Format("odt", "odf", (_ODF + "text", _ODF + "text-template"), ("odt", "ott"), "odf"),
    Format("ods", "odf", (_ODF + "spreadsheet", _ODF + "spreadsheet-template"), ("ods", "ots"), "odf"),
    Format("odp", "odf", (_ODF + "presentation", _ODF + "presentation-template"), ("odp", "otp"), "odf"),
    Format("odg", "odf", (_ODF + "graphics",), ("odg",), "odf"),
    Format("rtf", "rtf", ("text/rtf", "application/rtf", "text/richtext"), ("rtf",), "rtf"),
    Format("html", "html", ("text/html", "application/xhtml+xml"), ("html", "htm", "xhtml"), "html"),
    Format("xml", "xml", ("text/xml", "application/xml"), ("xml",), "xml"),
    Format("csv", "text", ("text/csv", "text/comma-separated-values", "text/tab-separated-values",
                           "application/csv"), ("csv", "tsv"), "plain"),
    Format("ics", "text", ("text/calendar",), ("ics", "ical"), "plain"),
    Format("vcf", "text", ("text/vcard", "text/x-vcard"), ("vcf",), "plain"),
    Format("txt", "text", ("text/plain",), ("txt", "text", "log", "md", "asc"), "plain"),
    # not extracted here: images need OCR, containers and messages are opened by the scan itself
    Format("jpeg", "image", ("image/jpeg", "image/pjpeg"), ("jpg", "jpeg", "jpe"), None),
    Format("png", "image", ("image/png",), ("png",), None),
    Format("gif", "image", ("image/gif",), ("gif",), None),
    Format("tiff", "image", ("image/tiff",), ("tif", "tiff"), None),
    Format("bmp", "image", ("image/bmp", "image/x-ms-bmp"), ("bmp",), None),
    Format("webp", "image", ("image/webp",), ("webp",), None),
    Format("heic", "image", ("image/heic", "image/heif"), ("heic", "heif"), None),
    Format("zip", "archive", ("application/zip", "application/x-zip-compressed"), ("zip",), None),
    Format("7z", "archive", ("application/x-7z-compressed",), ("7z",), None),
    Format("rar", "archive", ("application/x-rar", "application/vnd.rar", "application/x-rar-compressed"), ("rar",), None),
    Format("gz", "archive", ("application/gzip", "application/x-gzip"), ("gz", "tgz"), None),
    Format("bz2", "archive", ("application/x-bzip2",), ("bz2",), None),
    Format("xz", "archive", ("application/x-xz",), ("xz",), None),
    Format("tar", "archive", ("application/x-tar",), ("tar",), None),
    Format("doc", "ole2", ("application/msword",), ("doc", "dot"), None),
    Format("xls", "ole2", ("application/vnd.ms-excel",), ("xls", "xlt"), None),
    Format("ppt", "ole2", ("application/vnd.ms-powerpoint",), ("ppt", "pps"), None),
    Format("msg", "ole2", ("application/vnd.ms-outlook",), ("msg",), None),
    Format("ole2", "ole2", ("application/x-ole-storage", "application/cdfv2"), (), None),
    Format("eml", "message", ("message/rfc822",), ("eml",), None),
    Format("tnef", "message", ("application/ms-tnef", "application/vnd.ms-tnef"), ("dat",), None),
    Format("exe", "binary", ("application/x-dosexec", "application/x-msdownload", "application/vnd.microsoft.portable-executable"),
           ("exe", "dll", "scr"), None),
    Format("elf", "binary", ("application/x-executable", "application/x-sharedlib", "application/x-pie-executable"), (), None),
    Format("unknown", "binary", ("application/octet-stream",), (), None),
)

BY_NAME: Dict[str, Format] = {f.name: f for f in FORMATS}
_BY_MIME: Dict[str, Format] = {m: f for f in FORMATS for m in f.mime_types if f.name != "unknown"}
_BY_EXT: Dict[str, Format] = {}
for _f in FORMATS:
    for _e in _f.extensions:
        _BY_EXT.setdefault(_e, _f)

# (offset, magic bytes, format name). PDF is searched in the first KiB (readers accept junk before %PDF-).
SIGNATURES: Tuple[Tuple[int, bytes, str], ...] = (
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),
    (0, b"PK\x07\x08", "zip"),
    (0, b"{\\rtf", "rtf"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x1f\x8b", "gz"),
    (0, b"BZh", "bz2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (257, b"ustar", "tar"),
    (0, b"MZ", "exe"),
    (0, b"\x7fELF", "elf"),
    (0, b"\x78\x9f\x3e\x22", "tnef"),
)

# zip member whose presence makes a zip an OOXML document (checked in this order)
ZIP_MARKERS: Tuple[Tuple[str, str], ...] = (
    ("word/document.xml", "docx"),
    ("xl/workbook.xml", "xlsx"),
    ("ppt/presentation.xml", "pptx"),
)
# ODF: the stored "mimetype" member names the type
ODF_MIMETYPES: Dict[str, str] = {m: f.name for f in FORMATS if f.family == "odf" for m in f.mime_types}

# OLE2 stream names (UTF-16LE in the directory) that tell what a compound file is
OLE2_MARKERS: Tuple[Tuple[bytes, str], ...] = (
    ("EncryptedPackage".encode("utf-16-le"), "encrypted-ooxml"),
    ("WordDocument".encode("utf-16-le"), "doc"),
    ("Workbook".encode("utf-16-le"), "xls"),
    ("PowerPoint Document".encode("utf-16-le"), "ppt"),
    ("__substg1.0_".encode("utf-16-le"), "msg"),
)

_HTML_SNIFF = re.compile(rb"<(?:!doctype\s+html|html|head|body|meta|title|div|p|table|br|span|font|style|script)[\s>/]",
                         re.I)
_XML_DECL = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[\s?]")


@dataclass(frozen=True)
class Detection:
    format: Format
    detected_by: str                 # signature | zip-members | ole2 | text-sniff | libmagic | content-type | extension | none
    declared: Optional[Format] = None  # what the hints said, when they named a format
    note: Optional[str] = None       # e.g. "encrypted-ooxml", "zip-unreadable"


def extension(filename: Optional[str]) -> Optional[str]:
    if not filename or "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1].strip().lower()
    return ext if 0 < len(ext) <= 10 and ext.isalnum() else None


def _mime(value: Optional[str]) -> Optional[str]:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def hinted_formats(magic: Optional[str], content_type: Optional[str],
                   filename: Optional[str]) -> Iterable[Tuple[Format, str]]:
    """The formats the hints name, most trusted first: libmagic, content type, extension."""
    for value, source in ((magic, "libmagic"), (content_type, "content-type")):
        m = _mime(value)
        if m and m in _BY_MIME:
            yield _BY_MIME[m], source
    ext = extension(filename)
    if ext and ext in _BY_EXT:
        yield _BY_EXT[ext], "extension"


def _signature(data: bytes) -> Optional[str]:
    for off, magic, name in SIGNATURES:
        if data[off:off + len(magic)] == magic:
            return name
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def zip_kind(data: bytes) -> Tuple[Optional[str], Optional[str]]:
    """(format name, note) of a zip: docx/xlsx/pptx/odt/... or "zip"; (None, "zip-unreadable") when the
    central directory cannot be read (a truncated file)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            for member, name in ZIP_MARKERS:
                if member in names:
                    return name, None
            if "mimetype" in names:
                info = z.getinfo("mimetype")
                if info.file_size <= 200:
                    mt = z.read("mimetype").decode("ascii", "replace").strip().lower()
                    if mt in ODF_MIMETYPES:
                        return ODF_MIMETYPES[mt], None
            if "content.xml" in names and "META-INF/manifest.xml" in names:
                return "odt", "odf-without-mimetype"
            return "zip", None
    except Exception:
        # a local-header scan tells OOXML/ODF apart even without the central directory
        head = data[:1 << 16]
        for member, name in ZIP_MARKERS:
            if member.encode() in data[:4 << 20]:
                return name, "zip-unreadable"
        m = re.search(rb"mimetypeapplication/vnd\.oasis\.opendocument\.([a-z-]+)", head)
        if m:
            mt = _ODF + m.group(1).decode("ascii")
            if mt in ODF_MIMETYPES:
                return ODF_MIMETYPES[mt], "zip-unreadable"
        return None, "zip-unreadable"


def _ole2_kind(data: bytes) -> Optional[str]:
    window = data[:8 << 20]
    for marker, name in OLE2_MARKERS:
        if marker in window:
            return name
    return None


def _looks_textual(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if not head:
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls * 100 <= len(head)


def detect_format(data: bytes, *, content_type: Optional[str] = None, magic: Optional[str] = None,
                  filename: Optional[str] = None) -> Detection:
    hints = list(hinted_formats(magic, content_type, filename))
    declared = hints[0][0] if hints else None

    def hinted(family: str) -> Optional[Tuple[Format, str]]:
        for f, source in hints:
            if f.family == family:
                return f, source
        return None

    sig = _signature(data)
    if sig == "zip":
        name, note = zip_kind(data)
        if name is not None:
            return Detection(BY_NAME[name], "zip-members", declared, note)
        # unreadable zip: a truncated OOXML/ODF document is still what its hints say
        for family in ("ooxml", "odf"):
            h = hinted(family)
            if h:
                return Detection(h[0], h[1], declared, note)
        return Detection(BY_NAME["zip"], "signature", declared, note)
    if sig == "ole2":
        kind = _ole2_kind(data)
        if kind == "encrypted-ooxml":
            h = hinted("ooxml")
            return Detection(h[0] if h else BY_NAME["docx"], h[1] if h else "ole2", declared, kind)
        if kind:
            return Detection(BY_NAME[kind], "ole2", declared)
        h = hinted("ole2")
        return Detection(h[0] if h else BY_NAME["ole2"], h[1] if h else "signature", declared)
    if sig is not None:
        return Detection(BY_NAME[sig], "signature", declared)

    head = data[:8192]
    if _looks_textual(head):
        # text: markup sniffed from the bytes; the hints only tell plain-text flavours apart (csv, ics, ...)
        if _XML_DECL.match(head):
            if re.search(rb"<html[\s>]", head, re.I):
                return Detection(BY_NAME["html"], "text-sniff", declared)
            return Detection(BY_NAME["xml"], "text-sniff", declared)
        if _HTML_SNIFF.search(head[:4096]) and (declared is None or declared.family in ("html", "text", "binary")):
            if declared is None or declared.family == "html" or _HTML_SNIFF.search(head[:512]):
                return Detection(BY_NAME["html"], "text-sniff", declared)
        for f, source in hints:
            if f.family in ("text", "html", "xml", "rtf", "message"):
                return Detection(f, source, declared)
        return Detection(BY_NAME["txt"], "text-sniff", declared)
    # binary without a known signature: trust the hints (a damaged file keeps its declared format)
    for f, source in hints:
        if f.family not in ("text",):
            return Detection(f, source, declared)
    return Detection(BY_NAME["unknown"], "none", declared)
