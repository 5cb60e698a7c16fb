"""Splitting mbox files on real 'From ' separator lines, with byte offsets.

Rules (docs/manifest.md, "mbox"):
- a separator is a line starting 'From ' that looks like an envelope line (sender and a date, or
  Thunderbird's 'From - date'), at the start of the file or of a line, followed by a header line;
  any other 'From ' line is a body line (reported as mbox.unquoted_from, never split on);
- the line break just before a separator belongs to the separator (RFC 4155's blank line); the
  message is everything between; the last message runs to the end of the file;
- a Content-Length header is honoured when it lands exactly on the next separator (or the end),
  then 'From ' lines inside that body are not separators (mboxcl/cl2);
- '>From ' quoting: mboxrd ('>>From ' present: one '>' removed from every '>+From ' line) or mboxo
  ('>From ' -> 'From '); mboxcl2 files (Content-Length on every message and unquoted 'From ' body
  lines) are not un-quoted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from leaktriage.mail import headers
from leaktriage.content.pages import ReleaseBehind
from leaktriage.content.mailshape import ENVELOPE_LINE, FROM_LINE, HEADER_LINE


MARKER_CAP = 1024      # bytes of a 'From ' separator line read and kept


@dataclass(slots=True)
class Entry:
    marker_offset: int
    marker: bytes
    offset: int          # first header byte
    end: int             # end of the message (exclusive)
    content_length: Optional[int] = None
    content_length_used: bool = False


@dataclass
class Split:
    entries: List[Entry] = field(default_factory=list)
    problems: List[Tuple[str, int, int, dict]] = field(default_factory=list)  # code, offset, length, detail
    variant: str = "unknown"


_RD = re.compile(rb"^>(>*From )", re.M)
_O = re.compile(rb"^>(From )", re.M)


def _find(buf, sub: bytes, start: int, end: int, window: int = 32 << 20) -> int:
    """buf.find, window by window, releasing the pages of a memory-mapped file behind the search."""
    from leaktriage.content.pages import release
    pos = start
    while pos < end:
        stop = min(end, pos + window)
        i = buf.find(sub, pos, min(end, stop + len(sub)))
        if i >= 0 or stop >= end:
            if i > pos + 8192:
                release(buf, pos, i - 4096)
            return i
        release(buf, pos, stop)
        pos = stop
    return -1


def _line_end(buf, i: int, end: int) -> int:
    nl = buf.find(b"\n", i, end)
    return end if nl < 0 else nl + 1


def _is_separator(buf, i: int, end: int, start: int = 0) -> bool:
    """A 'From ' line at i that separates messages: it looks like an envelope line and a header
    line (or another 'From ' line, or the end) follows it; or it is a strict envelope line
    (ENVELOPE_LINE) at the start or after a blank line, whatever follows (a message with no header
    field, or a damaged one)."""
    le = _line_end(buf, i, end)
    line = bytes(buf[i:min(le, i + MARKER_CAP)]).rstrip(b"\r\n")
    if not FROM_LINE.match(line):
        return False
    nxt = bytes(buf[le:min(end, le + 200)])
    if not nxt:
        return True
    if b"\x00" in nxt:
        nxt = nxt.replace(b"\x00", b"")    # a NUL in the first field name does not hide the message
    if HEADER_LINE.match(nxt) or nxt.startswith(b"From "):
        return True
    return bool(ENVELOPE_LINE.match(line)) and (
        i <= start or buf[i - 2:i] == b"\n\n" or buf[i - 3:i] == b"\n\r\n")


def _strip_eol(buf, lo: int, i: int) -> int:
    if i - 2 >= lo and buf[i - 2:i] == b"\r\n":
        return i - 2
    if i - 1 >= lo and buf[i - 1:i] in (b"\n", b"\r"):
        return i - 1
    return i


def _content_length(buf, start: int, end: int) -> Tuple[Optional[int], int]:
    """(Content-Length value or None, body start) of the message starting at `start`."""
    hdr_end, body_start = headers.find_header_end(buf, start, min(end, start + (1 << 20)))
    block = bytes(buf[start:hdr_end])
    m = re.search(rb"(?im)^content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?$", block)
    return (int(m.group(1)) if m else None), body_start


def split(buf, start: int, end: int) -> Split:
    res = Split()
    if buf[start:start + 3] == b"\xef\xbb\xbf":
        start += 3
    # candidate separators
    cands: List[int] = []
    rejected: List[int] = []
    if buf[start:start + 5] == b"From " and _is_separator(buf, start, end, start):
        cands.append(start)
    pos = start
    behind = ReleaseBehind(buf, start)
    while True:
        i = _find(buf, b"\nFrom ", pos, end)
        if i < 0:
            break
        i += 1
        (cands if _is_separator(buf, i, end, start) else rejected).append(i)
        pos = i
        behind.reached(i)
    if not cands:
        return res
    first = cands[0]
    if first > start and bytes(buf[start:first]).strip():
        res.problems.append(("mbox.junk_before_first", start, first - start, {}))
    # walk candidates, honouring Content-Length
    entries: List[Entry] = []
    idx = 0
    cl_all = True
    body_from_lines = 0
    behind = ReleaseBehind(buf, start)
    while idx < len(cands):
        m = cands[idx]
        behind.reached(m)
        le = _line_end(buf, m, end)
        marker = bytes(buf[m:min(le, m + MARKER_CAP)]).rstrip(b"\r\n")
        if le - m > MARKER_CAP:     # a From line is a few dozen bytes; the record keeps 1 KiB
            res.problems.append(("limit.value_cut", m, le - m,
                                 {"field": "mbox.marker", "kept": MARKER_CAP, "not_kept": le - m - MARKER_CAP}))
        cl, body_start = _content_length(buf, le, end)
        nxt_idx = idx + 1
        used = False
        if cl is not None:
            target = body_start + cl
            # the separator may follow after up to two line breaks
            ok_at = None
            for skip in ((b"", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n") if target <= end else ()):
                p = target + len(skip)
                if buf[target:p] == skip and (p >= end or (buf[p:p + 5] == b"From " and _is_separator(buf, p, end))):
                    ok_at = p
                    break
            if ok_at is not None:
                used = True
                # skip candidates inside the body
                while nxt_idx < len(cands) and cands[nxt_idx] < ok_at:
                    body_from_lines += 1
                    nxt_idx += 1
                if ok_at < end and (nxt_idx >= len(cands) or cands[nxt_idx] != ok_at):
                    cands.insert(nxt_idx, ok_at)
                    # keep order
                msg_end = target
            else:
                # a Content-Length beyond the end of the file is a lie or a truncation: we cannot
                # tell, so it is reported as a mismatch and the From lines decide
                res.problems.append(("mbox.content_length_mismatch", m, le - m,
                                     {"content_length": cl, "beyond_end": target > end}))
        else:
            cl_all = False
        if not used:
            if nxt_idx < len(cands):
                msg_end = _strip_eol(buf, le, cands[nxt_idx])
            else:
                msg_end = end  # the last message keeps its final line break (as MimeKit and mime4j do)
        entries.append(Entry(m, marker, le, msg_end, cl, used))
        if le >= msg_end:
            res.problems.append(("mbox.empty_message", m, le - m, {}))
        idx = nxt_idx
    # body 'From ' lines that were not separators
    cand_set = set(c for c in cands)
    for r in rejected:
        if r not in cand_set:
            res.problems.append(("mbox.unquoted_from", r, _line_end(buf, r, end) - r, {}))
    res.problems.sort(key=lambda p: p[1])
    res.entries = entries
    # quoting variant
    if cl_all and body_from_lines and entries:
        res.variant = "mboxcl2"
    elif _find(buf, b"\n>>From ", start, end) >= 0:
        res.variant = "mboxrd"
    elif _find(buf, b"\n>From ", start, end) >= 0:
        res.variant = "mboxo"
    return res


def unquote(data: bytes, variant: str) -> Tuple[bytes, int]:
    """Undo '>From ' quoting as the variant requires. Returns (bytes, number of lines changed)."""
    if b">From " not in data or variant in ("mboxcl2", "unknown"):
        return data, 0
    rx = _RD if variant == "mboxrd" else _O
    out, n = rx.subn(rb"\1", data)
    return out, n
