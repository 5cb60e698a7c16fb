"""What is this file? Decided from its content (magic numbers, then mail structure, then libmagic),
never from its name."""
from __future__ import annotations

import re
import struct
from typing import Optional, Tuple

from leaktriage.content import types
from leaktriage.content.mailshape import looks_like_mbox, looks_like_message

SNIFF_PREFIX = 64 * 1024

SIGNATURES = (
    (0, b"PK\x03\x04", "zip"), (0, b"PK\x05\x06", "zip"), (0, b"PK\x07\x08", "zip"),
    (0, b"\x1f\x8b", "gzip"), (0, b"BZh", "bzip2"), (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"), (0, b"Rar!\x1a\x07", "rar"), (0, b"!BDN", "pst"),
    (0, b"\x78\x9f\x3e\x22", "tnef"), (257, b"ustar", "tar"),
)


def is_office_document(prefix: bytes) -> bool:
    """An OOXML (docx, xlsx, pptx) or OpenDocument file: a zip, but a document, not an archive.
    Opening it would list its XML parts as members; leaktriage records it as one document (its
    metadata is read by auth.docmeta)."""
    if prefix[:4] != b"PK\x03\x04":
        return False
    head = prefix[:8192]
    return b"[Content_Types].xml" in head or b"mimetypeapplication/vnd.oasis.opendocument" in head \
        or (b"docProps/" in head and (b"word/" in head or b"xl/" in head or b"ppt/" in head))


_EMLX_COUNT = re.compile(rb"\A[ \t]*(\d{1,15})[ \t]*\r?\n")
_EMLX_HEADER = re.compile(rb"\A(?:[!-9;-~]+[ \t]*:|From )")


def looks_like_emlx(prefix: bytes) -> bool:
    """Apple Mail .emlx: a byte-count line followed by a header field."""
    m = _EMLX_COUNT.match(prefix[:64])
    if not m:
        return False
    rest = prefix[m.end():m.end() + 200]
    return bool(rest) and bool(_EMLX_HEADER.match(rest))


def tar_header_ok(block: bytes) -> bool:
    """A tar header block whose checksum is right: POSIX (ustar) and pre-POSIX (v7) tars alike."""
    if len(block) < 512:
        return False
    field = block[148:156]
    try:
        want = int(field.replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    s = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    if want != s:
        # old tars (Sun, early GNU) summed signed bytes; tarfile and GNU tar accept either sum
        high = sum(1 for b in block[:148] if b > 127) + sum(1 for b in block[156:512] if b > 127)
        if not high or want != s - 256 * high:
            return False
    return any(block[:100])


_MSG_MARKERS = ("__substg1.0_".encode("utf-16-le"), "__properties_version1.0".encode("utf-16-le"),
                "__nameid_version1.0".encode("utf-16-le"))
_MSG_CLSIDS = (bytes.fromhex("0b0d020000000000c000000000000046"),)
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def ole_is_msg(prefix: bytes) -> bool:
    """An OLE2 file that is an Outlook .msg: property streams named __substg1.0_..., or the
    root entry's CLSID (its directory must be within the prefix)."""
    if any(m in prefix for m in _MSG_MARKERS):
        return True
    try:
        shift = struct.unpack_from("<H", prefix, 30)[0]
        first_dir = struct.unpack_from("<I", prefix, 48)[0]
        if shift > 16:
            return False
        off = (first_dir + 1) * (1 << shift)
        root = prefix[off:off + 128]
        return len(root) == 128 and root[80:96] in _MSG_CLSIDS
    except struct.error:
        return False


def _structure_kind(prefix: bytes) -> Optional[str]:
    """Kinds told by structure rather than a magic number: Apple .emlx, a pre-POSIX tar."""
    if looks_like_emlx(prefix):
        return "emlx"
    if tar_header_ok(prefix[:512]):
        return "tar"
    return None


def container_kind(prefix: bytes) -> Optional[str]:
    """Kind of a container or message from its first bytes, or None (for attachments and members)."""
    if is_office_document(prefix):
        return None
    for off, sig, kind in SIGNATURES:
        if prefix[off:off + len(sig)] == sig:
            return kind
    if prefix[:8] == OLE_SIGNATURE:
        return "msg" if ole_is_msg(prefix) else None
    k = _structure_kind(prefix)
    if k:
        return k
    if looks_like_mbox(prefix):
        return "mbox"
    if looks_like_message(prefix):
        return "message"
    return None


def sniff(data, size: int) -> Tuple[str, str, str]:
    """(kind, sniffed_by, magic MIME type) for a whole file's content (or its prefix)."""
    if size == 0:
        return "empty", "empty", "application/x-empty"
    prefix = bytes(data[:SNIFF_PREFIX])
    # mail is told before magic numbers (libmagic is slow on text), except a tar whose first
    # member name reads like a header line: NUL bytes do not stop mail, a valid tar header does
    if not (b"\x00" in prefix[:512] and tar_header_ok(prefix[:512])):
        if looks_like_mbox(prefix):
            return "mbox", "from-line", types.magic_type(prefix)
        if looks_like_message(prefix):
            return "message", "header-block", types.magic_type(prefix, text_hint=True)
    magic = types.magic_type(prefix)
    if is_office_document(prefix):
        return "document", "signature", magic
    for off, sig, kind in SIGNATURES:
        if prefix[off:off + len(sig)] == sig:
            return kind, "signature", magic
    if prefix[:8] == OLE_SIGNATURE:
        return ("msg" if ole_is_msg(prefix) or magic == "application/vnd.ms-outlook" else "ole"), "signature", magic
    k = _structure_kind(prefix)
    if k:
        return k, "structure", magic
    # a zip with bytes in front of it (self-extractor stub, hidden archive): its end record is at the end
    if size >= 22 and b"PK\x05\x06" in bytes(data[max(0, size - 65557):]):
        return "zip", "signature-tail", magic
    return "other", "libmagic", magic
