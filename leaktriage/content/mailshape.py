"""The shape of mail in bytes: an RFC 5322 header block, an mbox 'From ' separator line.

Pure byte tests, no other leaktriage module: the sniffer, the type detector and the mbox splitter
all ask the same questions the same way."""
from __future__ import annotations

import re

# A 'From ' separator line of an mbox: "From sender date" (qmail/procmail/Thunderbird "From - date").
FROM_LINE = re.compile(
    rb"From \S*[ \t]+(?:[A-Z][a-z]{2}[ ,]|\d{1,2} |[A-Z][a-z]{2}\s*$|\d{4}-\d{2}-\d{2}|.*\d{1,2}:\d{2}).*$|"
    rb"From \S+@\S+\s*$|From -.*$")
# The envelope line RFC 4155 describes, strictly: "From " sender asctime-date (with an optional zone),
# as mbox writers put it ("From MAILER-DAEMON Wed Mar  1 10:00:00 2017", Thunderbird's "From - ...").
# A line this precise separates messages even when the message after it has no header field.
ENVELOPE_LINE = re.compile(
    rb"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    rb"\d{1,2},? +\d{1,2}:\d{2}(?::\d{2})?(?: +(?:[A-Z]{1,5}|[+-]\d{4}))? +\d{4}(?: +[+-]\d{4})?[ \t\r]*$")
HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_GOOD_LINE = re.compile(rb"^(?:[!-9;-~]+[ \t]*:|[ \t])", re.M)
KNOWN = re.compile(rb"(?im)^(from|to|cc|subject|date|received|return-path|message-id|mime-version|"
                   rb"delivered-to|x-mailer|content-type|reply-to|sender|x-original-to|in-reply-to|"
                   rb"references|dkim-signature|x-received|thread-index|user-agent|x-gmail-labels|"
                   rb"x-mozilla-status|newsgroups|x-uid|resent-from|envelope-to|content-transfer-encoding|"
                   rb"authentication-results|arc-seal|x-ms-exchange-organization-authas|bcc)[ \t]*:")

def _blank_line(p: bytes, end: int) -> int:
    """Start of the first match of \\r?\\n\\r?\\n within p[:end], or end: bytes searches find
    the first LF followed by LF or CRLF; a CR just before it starts the match."""
    hits = [j for j in (p.find(b"\n\n", 0, end), p.find(b"\n\r\n", 0, end)) if j >= 0]
    if not hits:
        return end
    j = min(hits)
    return j - 1 if j and p[j - 1] == 13 else j


def strip_bom(prefix: bytes) -> bytes:
    """Without a UTF-8 byte-order mark."""
    return prefix[3:] if prefix.startswith(b"\xef\xbb\xbf") else prefix


def looks_like_message(prefix: bytes) -> bool:
    """An RFC 5322 header block: the first line is a field and a known mail header appears in it."""
    # leading blank or white-space-only lines happen in real dumps (copy/paste, broken exports)
    p = strip_bom(prefix).lstrip(b" \t\r\n")
    if p.startswith(b"From ") and not p.startswith(b"From: "):
        nl = p.find(b"\n")
        p = p[nl + 1:] if nl >= 0 else b""
    if not HEADER_LINE.match(p):
        return False
    end = min(len(p), 16384)
    block = p[:_blank_line(p, end)]
    # NUL bytes are a defect of the mail (header.nul_bytes), not a reason not to read it as mail;
    # the sniffer keeps binary containers that happen to start like a header line (a tar member
    # named "From: ...") out of here
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
    """An mbox: a 'From ' envelope line, then a message. The first message alone does not decide:
    with a strict envelope line (ENVELOPE_LINE) the message after it may have no header field at all
    (Apache Tika's simple.mbox), and a damaged first message is passed over when a later separator
    in the prefix is followed by a message."""
    p = strip_bom(prefix)
    if not p.startswith(b"From "):
        return False
    nl = p.find(b"\n")
    line = p[:nl if nl >= 0 else len(p)].rstrip(b"\r")
    if not FROM_LINE.match(line):
        return False
    rest = p[nl + 1:] if nl >= 0 else b""
    if looks_like_message(rest) or not rest.strip() or ENVELOPE_LINE.match(line):
        return True
    return _later_separator(p, nl + 1)


def _later_separator(p: bytes, pos: int, tries: int = 64) -> bool:
    """A 'From ' line after a blank line in p[pos:] that matches FROM_LINE and is followed by a
    message (at most `tries` candidates, so a text file full of 'From ' lines stays cheap)."""
    while tries > 0:
        i = p.find(b"\nFrom ", pos)
        if i < 0:
            return False
        i += 1
        tries -= 1
        pos = i
        if not (p[i - 2:i] == b"\n\n" or p[i - 3:i] == b"\n\r\n"):
            continue
        nl = p.find(b"\n", i)
        if nl < 0:
            return False
        if FROM_LINE.match(p[i:nl].rstrip(b"\r")) and looks_like_message(p[nl + 1:]):
            return True
    return False
