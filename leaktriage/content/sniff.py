"""What is this file? Decided from its content (magic numbers, then mail structure, then libmagic),
never from its name."""
from __future__ import annotations

import re
from typing import Optional, Tuple

from leaktriage.content import filetypes

SNIFF_PREFIX = 64 * 1024

# A 'From ' separator line of an mbox: "From sender date" (qmail/procmail/Thunderbird "From - date").
FROM_LINE = re.compile(
    rb"From \S*[ \t]+(?:[A-Z][a-z]{2}[ ,]|\d{1,2} |[A-Z][a-z]{2}\s*$|\d{4}-\d{2}-\d{2}|.*\d{1,2}:\d{2}).*$|"
    rb"From \S+@\S+\s*$|From -.*$")
HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_GOOD_LINE = re.compile(rb"^(?:[!-9;-~]+[ \t]*:|[ \t])", re.M)
KNOWN = re.compile(rb"(?im)^(from|to|cc|subject|date|received|return-path|message-id|mime-version|"
                   rb"delivered-to|x-mailer|content-type|reply-to|sender|x-original-to|in-reply-to|"
                   rb"references|dkim-signature|x-received|thread-index|user-agent|x-gmail-labels|"
                   rb"x-mozilla-status|newsgroups|x-uid|resent-from|envelope-to|content-transfer-encoding|"
                   rb"authentication-results|arc-seal|x-ms-exchange-organization-authas|bcc)[ \t]*:")

SIGNATURES = (
    (0, b"PK\x03\x04", "zip"), (0, b"PK\x05\x06", "zip"), (0, b"PK\x07\x08", "zip"),
    (0, b"\x1f\x8b", "gzip"), (0, b"BZh", "bzip2"), (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"), (0, b"Rar!\x1a\x07", "rar"), (0, b"!BDN", "pst"),
    (0, b"\x78\x9f\x3e\x22", "tnef"), (257, b"ustar", "tar"),
)


def _blank_line(p: bytes, end: int) -> int:
    """Start of the first match of \\r?\\n\\r?\\n within p[:end], or end: bytes searches find
    the first LF followed by LF or CRLF; a CR just before it starts the match."""
    hits = [j for j in (p.find(b"\n\n", 0, end), p.find(b"\n\r\n", 0, end)) if j >= 0]
    if not hits:
        return end
    j = min(hits)
    return j - 1 if j and p[j - 1] == 13 else j


def _strip_bom(prefix: bytes) -> bytes:
    return prefix[3:] if prefix.startswith(b"\xef\xbb\xbf") else prefix


def looks_like_message(prefix: bytes) -> bool:
    """An RFC 5322 header block: the first line is a field and a known mail header appears in it."""
    # leading blank or white-space-only lines happen in real dumps (copy/paste, broken exports)
    p = _strip_bom(prefix).lstrip(b" \t\r\n")
    if p.startswith(b"From ") and not p.startswith(b"From: "):
        nl = p.find(b"\n")
        p = p[nl + 1:] if nl >= 0 else b""
    if not HEADER_LINE.match(p):
        return False
    end = min(len(p), 16384)
    block = p[:_blank_line(p, end)]
    if b"\x00" in block[:512]:
        return False
    lines = block.split(b"\n", 60)[:60]
    # lines that are a field or a continuation, counted by one regex pass (a match never
    # crosses a line break, so each line start is tried exactly once)
    good = len(_GOOD_LINE.findall(b"\n".join(lines) if len(lines) == 60 else block))
    if good < max(1, len(lines) // 2):
        return False
    if block[:6].upper() == b"BEGIN:":  # iCalendar / vCard
        return False
    names = set()
    for m in KNOWN.finditer(block):
        names.add(m.group(1).lower())
        if len(names) == 2:
            return True
    return len(names) == 1 and bool(KNOWN.match(p))


def looks_like_mbox(prefix: bytes) -> bool:
    p = _strip_bom(prefix)
    if not p.startswith(b"From "):
        return False
    nl = p.find(b"\n")
    line = p[:nl if nl >= 0 else len(p)].rstrip(b"\r")
    if not FROM_LINE.match(line):
        return False
    rest = p[nl + 1:] if nl >= 0 else b""
    return looks_like_message(rest) or not rest.strip()


def is_office_document(prefix: bytes) -> bool:
    """An OOXML (docx, xlsx, pptx) or OpenDocument file: a zip, but a document, not an archive.
    Opening it would list its XML parts as members; leaktriage records it as one document (its
    metadata is read by auth.docmeta)."""
    if prefix[:4] != b"PK\x03\x04":
        return False
    head = prefix[:8192]
    return b"[Content_Types].xml" in head or b"mimetypeapplication/vnd.oasis.opendocument" in head \
        or (b"docProps/" in head and (b"word/" in head or b"xl/" in head or b"ppt/" in head))


def container_kind(prefix: bytes) -> Optional[str]:
    """Kind of a container or message from its first bytes, or None (for attachments and members)."""
    if is_office_document(prefix):
        return None
    for off, sig, kind in SIGNATURES:
        if prefix[off:off + len(sig)] == sig:
            return kind
    if prefix[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "msg" if _ole_is_msg(prefix) else None
    try:
        from leaktriage.containers import sniff_extra
        k = sniff_extra(prefix)
        if k:
            return k
    except ImportError:
        pass
    if looks_like_mbox(prefix):
        return "mbox"
    if looks_like_message(prefix):
        return "message"
    return None


def _ole_is_msg(prefix: bytes) -> bool:
    # Outlook .msg stores its properties in streams named __substg1.0_XXXXXXXX (UTF-16 names).
    return "__substg1.0_".encode("utf-16-le") in prefix or "__properties_version1.0".encode("utf-16-le") in prefix


def sniff(data, size: int) -> Tuple[str, str, str]:
    """(kind, sniffed_by, magic MIME type) for a whole file's content (or its prefix)."""
    if size == 0:
        return "empty", "empty", "application/x-empty"
    prefix = bytes(data[:SNIFF_PREFIX])
    if looks_like_mbox(prefix):
        return "mbox", "from-line", filetypes.magic_type(prefix)
    if looks_like_message(prefix):
        return "message", "header-block", filetypes.magic_type(prefix, text_hint=True)
    magic = filetypes.magic_type(prefix)
    if is_office_document(prefix):
        return "document", "signature", magic
    for off, sig, kind in SIGNATURES:
        if prefix[off:off + len(sig)] == sig:
            return kind, "signature", magic
    if prefix[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return ("msg" if _ole_is_msg(prefix) or magic == "application/vnd.ms-outlook" else "ole"), "signature", magic
    try:
        from leaktriage.containers import sniff_extra
        k = sniff_extra(prefix)
        if k:
            return k, "structure", magic
    except ImportError:
        pass
    if looks_like_mbox(prefix):
        return "mbox", "from-line", magic
    if looks_like_message(prefix):
        return "message", "header-block", magic
    # a zip with bytes in front of it (self-extractor stub, hidden archive): its end record is at the end
    if size >= 22 and b"PK\x05\x06" in bytes(data[max(0, size - 65557):]):
        return "zip", "signature-tail", magic
    return "other", "libmagic", magic
