"""Header blocks and header values: splitting, unfolding, RFC 2047, RFC 2231, addresses, dates.

Everything works on raw bytes first and keeps them: a record always carries the raw value beside
the decoded one. Nothing here raises on hostile input; problems are returned as codes.
"""
from __future__ import annotations

import binascii
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz
from typing import Dict, List, Optional, Tuple, Union

from leaktriage.mail import charsets

# ---------------------------------------------------------------------------
# header block

_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # printable ASCII except ':'


class Field:
    __slots__ = ("name", "raw", "offset", "length", "vstart", "_open")

    def __init__(self, name: str, raw: bytes, offset: int, length: Optional[int] = None,
                 vstart: Optional[int] = None):
        self.name = name      # as written (case kept)
        self.raw = raw        # raw value bytes after the colon, folding kept, final line break removed;
                              # at most VALUE_CAP bytes of it (see parse_fields)
        self.offset = offset  # offset of the field's first byte in the buffer
        self.length = len(raw) if length is None else length   # length of the whole raw value
        self.vstart = vstart  # offset of the raw value in the buffer (when parsed from one)
        self._open = None     # unfold(raw, strip=False), computed once

    @property
    def cut(self) -> bool:
        """True when raw holds only the first part of the value (the rest is in the buffer)."""
        return self.length > len(self.raw)

    def unfolded(self, strip: bool = True) -> bytes:
        """unfold(self.raw, strip); the several readers of one field share one unfolding."""
        u = self._open
        if u is None:
            u = self._open = unfold(self.raw, strip=False)
        return u.rstrip(b" \t") if strip else u


_FOLD = re.compile(rb"\r?\n(?=[ \t])|\r(?=[ \t])")


def unfold(raw: bytes, strip: bool = True) -> bytes:
    """Remove folding line breaks; strip surrounding white space (only leading when strip=False)."""
    if b"\n" in raw or b"\r" in raw:
        raw = _FOLD.sub(b"", raw)
        raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    return raw.strip(b" \t") if strip else raw.lstrip(b" \t")


def find_header_end(buf, start: int, end: int) -> Tuple[int, int]:
    """Return (end of header fields, start of body) for the header block starting at `start`.

    The blank line separating headers from body belongs to neither (it is the separator). When no
    blank line exists, the header block runs to `end` (and the body is empty).
    """
    if start >= end:
        return end, end
    # a block that starts with an empty line has no headers
    if buf[start:start + 1] == b"\n":
        return start, start + 1
    if buf[start:start + 2] == b"\r\n":
        return start, start + 2
    # look in a window first: a header block is small, the body after it may be megabytes
    win = min(end, start + 65536)
    # search first for the blank line of the block's own line-ending style, then for the other one
    # only before it (searching for an absent pattern reads the whole window)
    nl = buf.find(b"\n", start, win)
    if nl > start and buf[nl - 1:nl] == b"\r":
        i2 = buf.find(b"\n\r\n", start, win)
        i1 = buf.find(b"\n\n", start, i2 + 2 if i2 >= 0 else win)
    else:
        i1 = buf.find(b"\n\n", start, win)
        i2 = buf.find(b"\n\r\n", start, i1 + 2 if i1 >= 0 else win)
    if i1 < 0 and i2 < 0 and win < end:
        i1 = buf.find(b"\n\n", max(start, win - 2), end)
        i2 = buf.find(b"\n\r\n", max(start, win - 2), end)
    # (when one was found in the window, any occurrence of the other after the window comes later)
    cands = []
    if i1 >= 0:
        cands.append((i1 + 1, i1 + 2))
    if i2 >= 0:
        cands.append((i2 + 1, i2 + 3))
    if not cands:
        return end, end
    return min(cands)


# Field names that only mail uses: a run of lines after a junk line must hold one of them before
# the junk line is read past (a body that starts without a blank line and says "Note: ..." is a body)
_MAIL_NAME = re.compile(rb"(?i)(?:from|to|cc|bcc|subject|date|received|return-path|message-id|"
                        rb"mime-version|delivered-to|reply-to|sender|in-reply-to|references|"
                        rb"thread-index|thread-topic|user-agent|importance|priority|organization|"
                        rb"(?:content|x|list|resent|arc|dkim|authentication|original)-[!-9;-~]+)\Z")


# What one header block may cost (a hostile header of 200 MB must not cost gigabytes, and the
# message record built from it must stay far below the manifest reader's MAX_LINE):
VALUE_CAP = 64 * 1024        # bytes kept of one field value (header.too_long beyond)
BLOCK_KEEP = 1 << 20         # bytes of values kept at VALUE_CAP per block; later values keep SMALL_CAP
SMALL_CAP = 1024
MAX_FIELDS = 2000            # fields read from one block; the rest of the block is not read
NAME_MAX = 1000              # a line whose colon comes later is not a field (RFC 5322: 998 per line)


_HEAD = NAME_MAX + 2


def _line_head(buf, pos: int, line_end: int) -> bytes:
    """The start of a line, enough to tell what it is (a field name is at most NAME_MAX bytes),
    without its CR when it is the whole line."""
    if line_end - pos > _HEAD:
        return buf[pos:pos + _HEAD]
    line = buf[pos:line_end]
    return line[:-1] if line.endswith(b"\r") else line


def _line_kind(line: bytes) -> int:
    """0: a field, 1: a continuation, 2: neither (junk), 3: a field with a mail header name."""
    if line[:1] in (b" ", b"\t"):
        return 1
    colon = line.find(b":", 0, NAME_MAX + 1)
    if colon <= 0:
        return 2
    name = line[:colon].rstrip(b" \t")
    if not _FIELD_NAME.fullmatch(name):
        return 2
    return 3 if _MAIL_NAME.match(name) else 0


def _census(buf, pos: int, end: int) -> Tuple[int, int, int]:
    """(fields, junk lines, offset of the last line that is a field with a mail name, or -1) in
    buf[pos:end]: one pass, counts only (a hostile block of millions of lines costs no memory)."""
    fields = junk = 0
    last_mail = -1
    while pos < end:
        nl = buf.find(b"\n", pos, end)
        nxt = end if nl < 0 else nl + 1
        k = _line_kind(_line_head(buf, pos, nxt).rstrip(b"\r\n"))
        if k == 2:
            junk += 1
        elif k != 1:
            fields += 1
            if k == 3:
                last_mail = pos
        pos = nxt
    return fields, junk, last_mail


class _Keeper:
    """Fields made from value spans under the block's budget (VALUE_CAP, BLOCK_KEEP, SMALL_CAP)."""

    def __init__(self, buf, problems):
        self.buf = buf
        self.problems = problems
        self.kept = 0
        self.cut = 0            # values cut to SMALL_CAP once BLOCK_KEEP was spent
        self.not_kept = 0       # their bytes not kept
        self.first_cut = None

    def field(self, name: str, offset: int, a: int, b: int) -> Field:
        buf = self.buf
        if b > a and buf[b - 1] == 13:       # the line's CR
            b -= 1
        length = b - a
        cap = VALUE_CAP if self.kept < BLOCK_KEEP else SMALL_CAP
        if length <= cap:
            self.kept += length
            return Field(name, buf[a:b], offset, length, a)
        self.kept += cap
        if cap == VALUE_CAP:
            self.problems.append(("header.too_long", offset, b - offset,
                                  {"header": name[:200], "kept": cap, "not_kept": length - cap}))
        else:
            self.cut += 1
            self.not_kept += length - cap
            if self.first_cut is None:
                self.first_cut = offset
        return Field(name, buf[a:a + cap], offset, length, a)


def parse_fields(buf, start: int, end: int, closed: bool = False
                 ) -> Tuple[List[Field], int, List[Tuple[str, int, Optional[int], Optional[dict]]], Optional[bytes]]:
    """Parse header fields in buf[start:end].

    Returns (fields, stop, problems, unixfrom) where `stop` is where parsing stopped: `end` normally,
    or the offset of the first line that is neither a field nor a continuation when that line
    starts the body. problems: (code, offset, length or None, detail or None). unixfrom: a leading
    mbox 'From ' line, if present (not a field).

    `closed`: a blank line ends the block at `end` (find_header_end found one). Then a line that
    is neither a field nor a continuation is junk inside the header block, read past like mail
    readers do (mutt and Thunderbird read fields up to the blank line; Python's email package
    stops), when what follows it up to the blank line is header fields: more field lines than
    other junk lines, one of them with a mail header name (Date, To, Content-Type, X-..., see
    _MAIL_NAME). It is recorded as header.invalid_line and the fields after it are kept. Otherwise
    (no blank line at all, or lines that read like text) the line starts the body, as in Python's
    email package (header.no_separator).

    Bounded cost whatever the block holds: the block is never copied; a field keeps at most
    VALUE_CAP bytes of its value (header.too_long; Field.length and Field.vstart say where the whole
    value is), and once BLOCK_KEEP bytes of values are kept, later values keep SMALL_CAP; after
    MAX_FIELDS fields the rest of the block is not read. Both are told by one limit.header_block
    problem saying how much was not kept or read.
    """
    fields: List[Field] = []
    problems: List[Tuple[str, int, Optional[int], Optional[dict]]] = []
    keep = _Keeper(buf, problems)
    unixfrom = None
    pos = start
    cur_name = None
    cur_start = 0
    cur_vstart = 0
    cur_end = 0
    census = None       # [fields, junk lines, last mail field] after the current line, once needed
    nul = buf.find(b"\x00", start, end)
    if nul >= 0:
        problems.append(("header.nul_bytes", nul, None, None))
    if buf[start:start + 3] == b"\xef\xbb\xbf":      # an editor's byte-order mark before the first field
        problems.append(("header.bom", start, 3, None))
        pos += 3
    first = True
    not_read = None
    while pos < end:
        nl = buf.find(b"\n", pos, end)
        if nl < 0:
            line_end = end
            nxt = end
        else:
            line_end = nl
            nxt = nl + 1
        if line_end - pos > _HEAD:
            line = buf[pos:pos + _HEAD]
        else:
            line = buf[pos:line_end]
            if line.endswith(b"\r"):
                line = line[:-1]
        if first and line.startswith(b"From ") and not line.startswith(b"From: "):
            unixfrom = keep.field("From (envelope line)", pos, pos, line_end).raw
            first = False
            pos = nxt
            continue
        if line[:1] in (b" ", b"\t"):
            if cur_name is None:
                problems.append(("header.leading_continuation", pos, None, None))
                # Python keeps it as a defect and ignores the line
            else:
                cur_end = line_end
            pos = nxt
            first = False
            continue
        colon = line.find(b":", 0, NAME_MAX + 1)
        name = line[:colon].rstrip(b" \t") if colon > 0 else b""
        if colon <= 0 or not _FIELD_NAME.fullmatch(name):
            if closed:
                if census is None:
                    census = list(_census(buf, nxt, end))
                else:
                    census[1] -= 1      # this line was counted when the census was taken
                if census[0] > census[1] and census[2] > pos:
                    # junk inside the header block: the fields after it are kept
                    text, _ = charsets.decode_header_bytes(line[:200])
                    problems.append(("header.invalid_line", pos, line_end - pos - (buf[line_end - 1:line_end] == b"\r"),
                                     {"line": text}))
                    first = False
                    pos = nxt
                    continue
            # not a header line: it starts the body
            if cur_name is not None:
                fields.append(keep.field(cur_name, cur_start, cur_vstart, cur_end))
            problems.append(("header.no_separator", pos, None, None))
            return fields, pos, _with_limit(problems, keep, None), unixfrom
        if census is not None:
            census[0] -= 1
        if cur_name is not None:
            fields.append(keep.field(cur_name, cur_start, cur_vstart, cur_end))
            if len(fields) >= MAX_FIELDS:
                cur_name = None
                not_read = pos
                break
        cur_name = name.decode("ascii")
        cur_start = pos
        cur_vstart = pos + colon + 1
        cur_end = line_end
        first = False
        pos = nxt
    if cur_name is not None:
        fields.append(keep.field(cur_name, cur_start, cur_vstart, cur_end))
    return fields, end, _with_limit(problems, keep, (not_read, end) if not_read is not None else None), unixfrom


def _with_limit(problems, keep: _Keeper, not_read: Optional[Tuple[int, int]]):
    """problems plus one limit.header_block when the block's budget cut values or fields were not read."""
    if keep.cut or not_read:
        detail = {"values_cut": keep.cut, "bytes_not_kept": keep.not_kept, "kept_per_value": SMALL_CAP,
                  "block_keep": BLOCK_KEEP}
        offset = keep.first_cut
        length = None
        if not_read:
            a, b = not_read
            buf = keep.buf
            detail.update(max_fields=MAX_FIELDS, bytes_not_read=b - a,
                          lines_not_read=_count(buf, b"\n", a, b) + (buf[b - 1:b] != b"\n"))
            if offset is None:
                offset, length = a, b - a
        problems.append(("limit.header_block", offset, length, detail))
    return problems


def _count(buf, sub: bytes, a: int, b: int, chunk: int = 16 << 20) -> int:
    """buf.count(sub, a, b) for bytes and memory maps alike (a one-byte sub)."""
    if isinstance(buf, (bytes, bytearray)):
        return buf.count(sub, a, b)
    return sum(bytes(buf[x:min(b, x + chunk)]).count(sub) for x in range(a, b, chunk))


def get(fields: List[Field], name: str) -> Optional[Field]:
    lname = name.lower()
    for f in fields:
        if f.name.lower() == lname:
            return f
    return None


def get_all(fields: List[Field], name: str) -> List[Field]:
    lname = name.lower()
    return [f for f in fields if f.name.lower() == lname]


# ---------------------------------------------------------------------------
# RFC 2047 encoded words

_EW = re.compile(r"=\?([^?\s*]+)(\*[^?\s]*)?\?([bBqQ])\?([^?]*?)\?=")
_QHEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_q(s: str) -> bytes:
    b = s.encode("latin-1", "replace").replace(b"_", b" ")
    return _QHEX.sub(lambda m: bytes([int(m.group(1), 16)]), b)


def _decode_b(s: str) -> Tuple[bytes, bool]:
    t = re.sub(r"[^A-Za-z0-9+/]", "", s.split("=")[0] if "=" in s.rstrip("=") else s.rstrip("="))
    ok = True
    if len(s.rstrip("=")) != len(t) or (len(s) % 4 and s.endswith("=")):
        ok = False
    rem = len(t) % 4
    if rem == 1:
        t = t[:-1]
        ok = False
    elif rem:
        t += "=" * (4 - rem)
    try:
        return binascii.a2b_base64(t.encode("ascii")), ok
    except (binascii.Error, ValueError):
        return b"", False


def decode_words(text: str) -> Tuple[str, List[str]]:
    """Decode RFC 2047 encoded-words in `text` (already a str).

    Lenient like real mail readers: encoded-words inside quoted strings and words glued to other
    text are decoded; whitespace between adjacent encoded-words is dropped; adjacent words in the
    same charset are joined as bytes before decoding (so a character split across two words
    survives). Returns (decoded, problem codes).
    """
    if "=?" not in text:
        return text, []
    problems: List[str] = []
    out: List[str] = []
    pos = 0
    pending: List[Tuple[str, bytes]] = []  # (charset, bytes) of adjacent encoded words

    def flush():
        if not pending:
            return
        # join runs with the same charset
        runs: List[List] = []
        for cs, b in pending:
            if runs and runs[-1][0] == cs:
                runs[-1][1] += b
            else:
                runs.append([cs, bytearray(b)])
        for cs, b in runs:
            codec = charsets.lookup(cs)
            if codec is None:
                if charsets.refused(cs):
                    problems.append("charset.refused")
                elif cs.lower() not in charsets.ALIASES:
                    problems.append("header.encoded_word_unknown_charset")
                t, _ = charsets.decode_header_bytes(bytes(b))
            else:
                t = charsets.decode_strict(bytes(b), codec)
                if t is None:
                    problems.append("header.encoded_word_invalid")
                    t, _ = charsets.decode_header_bytes(bytes(b)) if codec != "utf-8" else (
                        bytes(b).decode("utf-8", "replace"), None)
            out.append(t)
        pending.clear()

    for m in _EW.finditer(text):
        gap = text[pos:m.start()]
        if pending and gap.strip(" \t\r\n") == "":
            pass  # whitespace between encoded words disappears
        else:
            flush()
            out.append(gap)
        cs, _lang, enc, payload = m.groups()
        if enc in "bB":
            data, ok = _decode_b(payload)
            if not ok:
                problems.append("header.encoded_word_invalid")
        else:
            data = _decode_q(payload)
        pending.append((cs.lower(), data))
        pos = m.end()
    flush()
    out.append(text[pos:])
    return "".join(out), sorted(set(problems))


def decode_value(raw: Union[bytes, Field]) -> Tuple[str, List[str], Optional[str]]:
    """Unfold and decode an unstructured header value (raw bytes or a Field). Returns (text,
    problems, 8-bit charset)."""
    # an unstructured value keeps its trailing white space
    u = raw.unfolded(strip=False) if isinstance(raw, Field) else unfold(raw, strip=False)
    text, cs8 = charsets.decode_header_bytes(u)
    problems = ["header.8bit"] if cs8 else []
    dec, p = decode_words(text)
    return dec, problems + p, cs8


# ---------------------------------------------------------------------------
# parameters (Content-Type, Content-Disposition), RFC 2231

def _split_params(s: str) -> List[str]:
    out, cur, q, esc = [], [], False, False
    for ch in s:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\" and q:
            cur.append(ch)
            esc = True
        elif ch == '"':
            q = not q
            cur.append(ch)
        elif ch == ";" and not q:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = re.sub(r"\\(.)", r"\1", v[1:-1])
    elif v.startswith('"'):
        v = v[1:]
    return v


def parse_params(value: str) -> Tuple[str, Dict[str, str], Dict[str, str], List[str]]:
    """Parse 'type/sub; a=b; c*=utf-8''x' into (main value lower-cased, params, raw params, problems).

    params: decoded values (RFC 2231 continuations and charsets joined and decoded; RFC 2047 words
    in quoted values decoded too, as many mailers write them). raw: the values as written (for
    continuations, the raw pieces joined with '').
    """
    pieces = _split_params(value)
    main = pieces[0].strip().lower()
    problems: List[str] = []
    simple: Dict[str, str] = {}
    ext: Dict[str, Dict[int, Tuple[str, bool]]] = {}
    raw: Dict[str, str] = {}
    for p in pieces[1:]:
        if "=" not in p:
            continue
        k, _, v = p.partition("=")
        k = k.strip().lower()
        v = v.strip()
        if not k:
            continue
        m = re.fullmatch(r"([^*]+)\*(?:(\d+)(\*)?|(\*))?", k)
        if m and "*" in k:
            base = m.group(1)
            idx = int(m.group(2)) if m.group(2) is not None else 0
            encoded = bool(m.group(3) or m.group(4) or (m.group(2) is None))
            ext.setdefault(base, {})[idx] = (v if encoded else _unquote(v), encoded)
            raw[base] = raw.get(base, "") + v
        else:
            if k not in simple:
                simple[k] = _unquote(v)
                raw[k] = v
    params: Dict[str, str] = {}
    for k, v in simple.items():
        dec, probs = decode_words(v) if "=?" in v else (v, [])
        problems += probs
        params[k] = dec
    for base, parts in ext.items():
        charset = None
        buf = bytearray()
        for i in sorted(parts):
            v, encoded = parts[i]
            if encoded:
                if i == 0 and v.count("'") >= 2:
                    charset, _lang, v = v.split("'", 2)
                    v = _unquote(v)
                buf += re.sub(rb"%([0-9A-Fa-f]{2})", lambda mm: bytes([int(mm.group(1), 16)]),
                              v.encode("utf-8", "surrogateescape"))
            else:
                buf += v.encode("utf-8", "surrogateescape")
        codec = charsets.lookup(charset) if charset else None
        if codec is None and charsets.refused(charset):
            problems.append("charset.refused")
        text = charsets.decode_strict(bytes(buf), codec or "utf-8")
        if text is None:
            text, _ = charsets.decode_header_bytes(bytes(buf))
            problems.append("header.encoded_word_invalid")
        params[base] = text  # RFC 2231 value wins over a plain one
    return main, params, raw, sorted(set(problems))


# ---------------------------------------------------------------------------
# addresses

def _tokens(s: str):
    """Yield (kind, text): 'q' quoted string, 'c' comment, 'a' angle addr, ',' ':' ';' and 'w' words."""
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch == '"':
            j, buf = i + 1, []
            while j < n and s[j] != '"':
                if s[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(s[j])
                j += 1
            yield "q", "".join(buf)
            i = j + 1
        elif ch == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                if s[j] == "\\" and j + 1 < n:
                    buf.append(s[j + 1])
                    j += 2
                    continue
                if s[j] == "(":
                    depth += 1
                elif s[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                buf.append(s[j])
                j += 1
            yield "c", "".join(buf)
            i = j + 1
        elif ch == "<":
            j = s.find(">", i + 1)
            if j < 0:
                yield "a", s[i + 1:]
                i = n
            else:
                yield "a", s[i + 1:j]
                i = j + 1
        elif ch in ",:;":
            yield ch, ch
            i += 1
        else:
            j = i
            while j < n and s[j] not in ' \t\r\n"(<,:;':
                j += 1
            if j == i:  # stray '>' or similar
                j = i + 1
            yield "w", s[i:j]
            i = j


def parse_addresses(raw: bytes) -> Tuple[List[Dict[str, Optional[str]]], List[str]]:
    """Parse an address-list header value into [{"name", "address"[, "group"]}].

    Parses the raw structure first and decodes RFC 2047 words in display names afterwards, so an
    encoded name holding a comma stays one name.
    """
    text, cs8 = charsets.decode_header_bytes(unfold(raw))
    problems: List[str] = ["header.8bit"] if cs8 else []
    out: List[Dict[str, Optional[str]]] = []
    group: Optional[str] = None
    phrase: List[str] = []
    comments: List[str] = []
    angle: Optional[str] = None
    toks = list(_tokens(text))

    def emit():
        nonlocal phrase, comments, angle
        if angle is not None:
            name = " ".join(phrase).strip() or None
            addr = "".join(_strip_comments(angle).split())
            if addr.lower().startswith("mailto:"):
                addr = addr[7:]
            # strip source routes <@a,@b:user@host>
            if addr.startswith("@") and ":" in addr:
                addr = addr.split(":", 1)[1]
        elif phrase:
            joined = "".join(phrase) if len(phrase) > 1 and any("@" in p for p in phrase) else " ".join(phrase)
            # addr-spec: words (local@domain), maybe with a comment as the name
            addr = joined.replace(" ", "") if "@" in joined else joined
            name = " ".join(comments).strip() or None
            if "@" not in addr and addr:
                problems.append("header.address_invalid")
        else:
            phrase, comments, angle = [], [], None
            return
        if angle is None and addr and "@" not in addr and "=?" in addr:
            # an encoded-word standing for the whole address (seen in phishing mail)
            dec, p = decode_words(addr)
            if "@" in dec and " " not in dec.strip():
                addr, name = dec.strip(), name
                problems.extend(p)
                if "header.address_invalid" in problems:
                    problems.remove("header.address_invalid")
        if name:
            name, p = decode_words(name)
            problems.extend(p)
        rec: Dict[str, Optional[str]] = {}
        if name:
            rec["name"] = name
        if addr:
            rec["address"] = addr
        if group:
            rec["group"] = group
        if rec:
            out.append(rec)
        phrase, comments, angle = [], [], None

    for kind, val in toks:
        if kind == ",":
            emit()
        elif kind == ":" and angle is None and group is None:
            g = " ".join(phrase).strip()
            group, _ = decode_words(g) if g else ("", [])
            phrase, comments = [], []
        elif kind == ";":
            emit()
            group = None
        elif kind == "a":
            if angle is not None:
                problems.append("header.address_invalid")
                emit()
            angle = val
        elif kind == "c":
            comments.append(val)
        elif kind in ("q", "w"):
            if angle is not None:
                # text after <addr>: unusual but seen; keep it as part of the name
                phrase.append(val)
            else:
                phrase.append(val)
        elif kind == ":":
            phrase.append(":")
    emit()
    return out, sorted(set(problems))


def _strip_comments(s: str) -> str:
    if "(" not in s:    # nothing to strip (a backslash only escapes inside a comment)
        return s
    out, depth, i = [], 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and depth and i + 1 < len(s):
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------
# dates

_FR_MONTHS = {"janv": "Jan", "janvier": "Jan", "févr": "Feb", "fevr": "Feb", "février": "Feb", "fevrier": "Feb",
              "mars": "Mar", "avr": "Apr", "avril": "Apr", "mai": "May", "juin": "Jun", "juil": "Jul",
              "juillet": "Jul", "août": "Aug", "aout": "Aug", "sept": "Sep", "septembre": "Sep", "oct": "Oct",
              "octobre": "Oct", "nov": "Nov", "novembre": "Nov", "déc": "Dec", "dec": "Dec", "décembre": "Dec",
              "decembre": "Dec"}
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?")


def _fmt_tz(offset_seconds: Optional[int]) -> Optional[str]:
    if offset_seconds is None:
        return None
    sign = "+" if offset_seconds >= 0 else "-"
    m = abs(offset_seconds) // 60
    return "%s%02d%02d" % (sign, m // 60, m % 60)


def utc_iso(dt: datetime) -> str:
    d = dt.astimezone(timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (d.year, d.month, d.day, d.hour, d.minute, d.second)


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_YEAR_DMY = re.compile(r"\b\d{1,2}[\s-]+%s[\s-]+(\d+)\b" % _MONTH, re.I)
_YEAR_ASCTIME = re.compile(r"\b%s\s+\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?\s+(?:[a-z]{1,5}\s+|[+-]\d{4}\s+)?(\d+)\b"
                           % _MONTH, re.I)


def _year_as_written(s: str, parsed: int) -> int:
    """The year of a date as its digits say. email.utils turns every year below 100 into 19xx/20xx
    (and by its own rule, 69-99 -> 19xx): a year written with four digits ('0001') is that year,
    RFC 5322 section 4.3 maps two digits 00-49 to 20xx and 50-99 to 19xx, and three digits to
    1900 + n. `parsed` is email.utils' year, kept when the written one cannot be found."""
    m = _YEAR_DMY.search(s) or _YEAR_ASCTIME.search(s)
    if m is None:
        return parsed + (2000 if parsed < 50 else 1900) if parsed < 100 else parsed
    tok = m.group(1)
    v = int(tok)
    if (v + (1900 if v > 68 else 2000) if v < 100 else v) != parsed:
        return parsed       # not the token email.utils read as the year
    if len(tok) >= 4:
        return v
    if len(tok) == 3:
        return v + 1900
    return v + (2000 if v < 50 else 1900)


def parse_date(raw: str) -> Tuple[Optional[str], Optional[str]]:
    """Parse a Date header value. Returns (UTC ISO-8601 'YYYY-MM-DDTHH:MM:SSZ', '+HHMM') or (None, None).

    A date without a zone is taken as UTC and its zone reported as None.
    """
    s = " ".join(raw.split())
    if "(" in s:
        s = " ".join(_strip_comments(s).split())
    s = re.sub(r"\s*:\s*", ":", s)  # obsolete syntax: "09 :  55 : 06"
    if not s:
        return None, None
    t = None
    s2 = None
    try:
        t = parsedate_tz(s)
    except Exception:
        t = None
    if t is None:
        # French month names and day names ("lun. 3 avr. 2017 10:00:00 +0200")
        s2 = re.sub(r"[A-Za-zéûè]+\.?", lambda m: _FR_MONTHS.get(m.group(0).rstrip(".").lower(), m.group(0)), s)
        if s2 != s:
            try:
                t = parsedate_tz(s2)
            except Exception:
                t = None
    if t is None:
        m = _ISO.search(s)
        if m:
            y, mo, d, hh, mi, ss, tz = m.groups()
            off = 0
            if tz and tz != "Z":
                tz = tz.replace(":", "")
                off = (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60) * (1 if tz[0] == "+" else -1)
            try:
                dt = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss or 0),
                              tzinfo=timezone(timedelta(seconds=off)))
            except ValueError:
                return None, None
            return utc_iso(dt), _fmt_tz(off) if tz else None
        return None, None
    y, mo, d, hh, mi, ss, _, _, _, off = t
    y = _year_as_written(s2 if s2 is not None else s, y)
    try:
        dt = datetime(y, mo, d, hh, mi, min(ss, 59), tzinfo=timezone.utc)
        if off is not None:
            if abs(off) > 24 * 3600:
                return None, None
            dt = dt - timedelta(seconds=off)
    except (ValueError, OverflowError):
        return None, None
    return utc_iso(dt), _fmt_tz(off)


def normalize_msgid(text: str) -> str:
    """A Message-ID without comments and without the white space obsolete syntax allows inside."""
    t = text.strip()
    if "(" in t:
        t = _strip_comments(t).strip()
    m = re.match(r"<([^<>]*)>", t)
    if m:
        return "<%s>" % "".join(m.group(1).split())
    return t


def parse_msgids(raw: str) -> List[str]:
    """Message-IDs in a References/In-Reply-To value, in order (bare tokens when no brackets)."""
    if "(" in raw:
        raw = _strip_comments(raw)
    ids = ["<%s>" % "".join(m.split()) for m in re.findall(r"<([^<>]*)>", raw)]
    if ids:
        return ids
    return [w for w in raw.split() if "@" in w]
