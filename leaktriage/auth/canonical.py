"""Split raw message bytes for DKIM/ARC work, undo line-ending artefacts, canonicalise.

Header fields are kept as raw bytes exactly as they are in the message (folding included) so that
"simple" canonicalisation sees them unchanged. Nothing here raises on hostile input.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

Header = Tuple[bytes, bytes]   # (name as written before the colon, value after the colon incl. CRLFs)

_BARE_LF = re.compile(rb"(?<!\r)\n")
_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")

# artefact labels (reported in "artefacts" lists)
ART_LF = "lf-only line endings converted to CRLF"
ART_CR = "cr-only line endings converted to CRLF"
ART_BARE_LF = "bare LF line endings converted to CRLF (mixed line endings)"
ART_FROM_LINE = "leading mbox 'From ' separator line ignored"
ART_BAD_LINE = "header line that is not a field ignored"
ART_FROM_QUOTE = "mbox '>From ' quoting undone in the body"


def normalise_line_endings(raw: bytes, eol: Optional[str] = None) -> Tuple[bytes, List[str]]:
    """Return (CRLF text, artefacts). LF-only and CR-only files are converted; in mixed files bare
    LF becomes CRLF (as dkimpy and every MTA would); bare CR inside a CRLF file is left alone.
    eol: the message record's line_endings census when the caller has it ("crlf" skips the counts)."""
    if eol == "crlf":
        return raw, []
    if b"\r\n" not in raw:
        if b"\n" in raw:
            return raw.replace(b"\n", b"\r\n"), [ART_LF]
        if b"\r" in raw:
            return raw.replace(b"\r", b"\r\n"), [ART_CR]
        return raw, []
    if raw.count(b"\n") != raw.count(b"\r\n"):  # C-speed counts; the regex only when needed
        return _BARE_LF.sub(b"\r\n", raw), [ART_BARE_LF]
    return raw, []


def split_message(data: bytes) -> Tuple[List[Header], bytes, List[str]]:
    """Split CRLF text into raw header fields and body. Body is everything after the first empty
    line (empty if there is none)."""
    headers: List[List[bytes]] = []
    notes: List[str] = []
    pos = 0
    n = len(data)
    body = b""
    first = True
    while pos < n:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            line, nxt, term = data[pos:], n, b"\r\n"
        else:
            line, nxt, term = data[pos:eol], eol + 2, b"\r\n"
        if line == b"":
            body = data[nxt:]
            break
        if line[:1] in (b" ", b"\t"):
            if headers:
                headers[-1][1] += line + term
            else:
                notes.append(ART_BAD_LINE)
        else:
            m = _NAME.match(line)
            if m:
                headers.append([m.group(1) + m.group(2), line[m.end():] + term])
            elif first and line.startswith(b"From "):
                notes.append(ART_FROM_LINE)
            else:
                notes.append(ART_BAD_LINE)
        first = False
        pos = nxt
    return [(h[0], h[1]) for h in headers], body, sorted(set(notes), key=notes.index)


def header_name(h: Header) -> str:
    return h[0].strip().decode("ascii", "replace").lower()


# --- canonicalisation (RFC 6376 3.4) ---------------------------------------------------------

_WSP = re.compile(rb"[ \t]+")


def canon_header(h: Header, alg: str) -> bytes:
    """One canonicalised header field, terminated by CRLF."""
    name, value = h
    if alg == "simple":
        return name + b":" + value
    v = value.replace(b"\r\n", b"")
    v = _WSP.sub(b" ", v).strip(b" \t")
    return name.strip(b" \t").lower() + b":" + v + b"\r\n"


def canon_body(body: bytes, alg: str) -> bytes:
    if alg == "relaxed":
        # RFC 6376 3.4.4 with bytes methods instead of regular expressions (which cost ~10% of a
        # scan on bodies with big base64 attachments): every run of WSP becomes one space (tabs to
        # spaces, then runs of spaces halved until none is left), then a space before CRLF goes
        b = body.replace(b"\t", b" ") if b"\t" in body else body
        while b"  " in b:
            b = b.replace(b"  ", b" ")
        if b" \r\n" in b:
            b = b.replace(b" \r\n", b"\r\n")
    else:
        b = body
    # drop trailing empty lines
    while b.endswith(b"\r\n\r\n"):
        b = b[:-2]
    if b == b"\r\n":
        b = b""
    if b and not b.endswith(b"\r\n"):
        b += b"\r\n"
    if alg == "simple" and b == b"":
        b = b"\r\n"
    return b


def select_headers(headers: List[Header], names: List[str]) -> List[Header]:
    """RFC 6376 5.4.2: each listed name takes the next instance from the bottom up; names with no
    remaining instance select nothing."""
    out: List[Header] = []
    lastindex = {}
    for nm in names:
        i = lastindex.get(nm, len(headers))
        while i > 0:
            i -= 1
            if header_name(headers[i]) == nm:
                out.append(headers[i])
                break
        lastindex[nm] = i
    return out


_BTAG = re.compile(rb"((?:^|[;\s])b[ \t\r\n]*=)[^;]*", re.S)


def strip_b_tag(value: bytes) -> bytes:
    """Empty the b= tag value of a signature header field (keeping everything else byte-exact)."""
    return _BTAG.sub(lambda m: m.group(1), value, count=1)


def unquote_mbox_from(body: bytes) -> bytes:
    """Undo one level of mboxrd '>From ' quoting."""
    return re.sub(rb"(?m)^>(>*From )", rb"\1", body)
