"""One email: its header fields, addresses, dates, identifiers, digests and MIME entities."""
from __future__ import annotations

import base64
import hashlib
import io
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from leaktriage.mail import charsets, headers, mime
from leaktriage.content.pages import release
from leaktriage.model.problems import problem_record
from leaktriage.model.records import is_entity, record

SINGLETONS = ("from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id",
              "in-reply-to", "references")

# Headers that define the email as its author's client wrote it. Everything else (Received,
# Delivered-To, Return-Path, X-Original-To, DKIM-Signature, ARC-*, Authentication-Results,
# X-MS-Exchange-*, mbox Status lines, ...) may differ between copies of one email.
CANONICAL_HEADERS = ("from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id",
                     "in-reply-to", "references", "mime-version", "content-type",
                     "content-transfer-encoding")


CHUNK = 16 << 20
BIG = 32 << 20          # messages larger than this are read in chunks, never copied whole
AUTH_MAX = 64 << 20     # DKIM/ARC checks are skipped above this size (limit.auth_skipped)


def _count(data, sub: bytes) -> int:
    if isinstance(data, bytes):
        return data.count(sub)
    n = 0
    for off in range(0, len(data), CHUNK):
        chunk = data[off:off + CHUNK + len(sub) - 1]
        release(data, off, off + CHUNK)
        n += chunk.count(sub)
        if len(sub) > 1 and len(chunk) > CHUNK:
            n -= chunk[CHUNK:].count(sub)  # counted again in the next chunk
    return n


def line_endings(data) -> str:
    nl = _count(data, b"\n")
    r = _count(data, b"\r")
    if not r:
        return "lf" if nl else "none"
    if not nl:
        return "cr"
    crlf = _count(data, b"\r\n")
    lf = nl - crlf
    cr = r - crlf
    kinds = [k for k, n in (("crlf", crlf), ("lf", lf), ("cr", cr)) if n]
    if not kinds:
        return "none"
    return kinds[0] if len(kinds) == 1 else "mixed"


def line_endings_and_canonical_digest(fields: List[headers.Field], data, body_start: int) -> Tuple[str, str]:
    """(line_endings(data), canonical SHA-256). The canonical digest covers the origin headers
    (unfolded, white space collapsed) and the body with line endings normalised to LF and trailing
    white space removed. Fewest passes over the bytes: a message without CR costs two memchr calls
    and the hash; otherwise one CRLF->LF replace serves both the census and the digest, and one
    count finds bare LFs."""
    h = _header_digest(fields, data)
    if not (isinstance(data, bytes) and len(data) <= BIG) or data[body_start - 1:body_start + 1] == b"\r\n":
        # a memory map, or a CR/LF pair split by the body start (CR-only headers): the plain way
        eol = line_endings(data)
        return eol, _canonical_plain(h, data, body_start, eol)
    if data.find(b"\r") < 0:       # memchr: LF-only or no line break at all
        eol = "lf" if data.find(b"\n") >= 0 else "none"
        norm, nb = data, body_start
    else:
        # io's newline decoder (C) turns CRLF and lone CR into LF and notes which kinds it saw,
        # in one pass: 2.4 times faster than bytes.replace plus a count. Latin-1 maps every byte
        # to the character of the same number, so the round trip keeps every other byte.
        dec = io.IncrementalNewlineDecoder(None, translate=True)
        norm = dec.decode(data.decode("latin-1"), final=True).encode("latin-1")
        seen = dec.newlines or ()
        if isinstance(seen, str):       # one kind: a string, not a tuple of one
            seen = (seen,)
        kinds = [k for k, nl in (("crlf", "\r\n"), ("lf", "\n"), ("cr", "\r")) if nl in seen]
        eol = kinds[0] if len(kinds) == 1 else "mixed"
        nb = body_start - data.count(b"\r\n", 0, body_start)
    end = max(nb, len(norm.rstrip(_TRAILING_WS)))
    with memoryview(norm) as view:
        h.update(view[nb:end])
    return eol, h.hexdigest()


def _header_digest(fields: List[headers.Field], data):
    h = hashlib.sha256()
    for f in fields:
        name = f.name.lower()
        if name in CANONICAL_HEADERS:
            if f.cut and f.vstart is not None:     # the whole value, from the message bytes
                h.update(name.encode("ascii") + b":")
                _collapse_into(h, data, f.vstart, f.vstart + f.length)
                h.update(b"\n")
            else:
                h.update(name.encode("ascii") + b":" + collapse_white_space(f.unfolded()) + b"\n")
    h.update(b"\n")
    return h


def _collapse_into(h, data, a: int, b: int, chunk: int = 1 << 20) -> None:
    """h.update(collapse_white_space(unfold(data[a:b]))), a chunk at a time: unfolding removes
    every CR and LF, then runs of white space become one space, none at the ends."""
    emitted = pending = False
    for off in range(a, b, chunk):
        c = bytes(data[off:min(b, off + chunk)]).translate(None, b"\r\n").translate(_WS_TO_SPACE)
        while b"  " in c:
            c = c.replace(b"  ", b" ")
        core = c.strip(b" ")
        if core:
            if emitted and (pending or c[:1] == b" "):
                h.update(b" ")
            h.update(core)
            emitted = True
            pending = c[-1:] == b" "
        elif c:
            pending = True


_TRAILING_WS = b"\n \t"
_ASCII_WS = b" \t\n\r\x0b\x0c"          # what bytes.split() splits on
_WS_TO_SPACE = bytes.maketrans(_ASCII_WS, b" " * len(_ASCII_WS))
COLLAPSE_SPLIT_MAX = 1 << 16


def collapse_white_space(value: bytes) -> bytes:
    """b" ".join(value.split()): runs of ASCII white space become one space, none at the ends.
    A long value (a header folded over megabytes) is done with bytes-wide passes instead: the
    split would make one object per word, some 40 times the value's size in memory."""
    if len(value) <= COLLAPSE_SPLIT_MAX:
        return b" ".join(value.split())
    # every white space byte to a space, then halve runs of spaces until none is left: a few
    # C-speed passes and never an object per word (re.sub builds a list of pieces, as split does)
    v = value.translate(_WS_TO_SPACE)
    while b"  " in v:
        v = v.replace(b"  ", b" ")
    return v.strip(b" ")


def _canonical_plain(h, data, body_start: int, eol: str) -> str:
    if isinstance(data, bytes) and len(data) <= BIG:
        body = data[body_start:]
        if eol == "crlf":       # no lone CR anywhere: one pass
            body = body.replace(b"\r\n", b"\n")
        elif eol not in ("lf", "none") and b"\r" in body:
            body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        h.update(body.rstrip(_TRAILING_WS))
        return h.hexdigest()
    # the same, chunk by chunk: a CR at a chunk's end waits for the next chunk, trailing white
    # space waits until something else follows it
    pending_cr = False
    tail = b""
    for off in range(body_start, len(data), CHUNK):
        c = bytes(data[off:off + CHUNK])
        release(data, off, off + CHUNK)
        if pending_cr:
            c = b"\r" + c
        pending_cr = c.endswith(b"\r")
        if pending_cr:
            c = c[:-1]
        c = tail + c.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        stripped = c.rstrip(_TRAILING_WS)
        tail = c[len(stripped):]
        h.update(stripped)
    return h.hexdigest()


def _header_entry(f: headers.Field) -> Tuple[dict, Optional[str], List[str]]:
    entry: Dict[str, str] = {"name": f.name}
    raw = f.raw
    if raw[:1] == b" ":
        raw = raw[1:]
    try:
        entry["raw"] = raw.decode("utf-8") if not raw.isascii() else raw.decode("ascii")
    except UnicodeDecodeError:
        entry["raw_b64"] = base64.b64encode(raw).decode("ascii")
    value, probs, _ = headers.decode_value(f)
    unfolded = f.unfolded()
    if not unfolded.isascii() or "=?" in value or value != unfolded.decode("ascii", "replace"):
        if value != entry.get("raw"):
            entry["value"] = value
    return entry, value, probs


def analyse(data: bytes, locator: str, *, source: str, parent: Optional[str], loc_base: Optional[str] = None,
            root_path: str = "1", algorithms: Sequence[str] = ("sha256",), known_digests: Optional[dict] = None,
            extra: Optional[dict] = None,
            container_kind: Callable[[bytes], Optional[str]] = None,
            auth: Optional[Callable[[dict, bytes, list, list], None]] = None) -> Tuple[List[dict], List[mime.Found], dict]:
    """Analyse one message. Returns (records: message + parts + problems, found items, facts).

    `data` is exactly the message (for mbox: without the From line, after un-quoting is decided by
    the caller, who passes digests of the stored bytes in `extra`). `auth`, when given, is called
    as auth(message_record, data, decoded_header_values, docs) to add the authenticity facts (the
    scanner passes leaktriage.auth.analyse.authenticate_record; mail does not depend on auth).
    """
    loc_base = loc_base or locator
    recs: List[dict] = []
    problems: List[dict] = []
    codes = set()

    def problem(loc, code, offset=None, length=None, detail=None, message=None):
        codes.add(code)
        return problem_record(loc, code, message=message, offset=offset, length=length, detail=detail)

    n = len(data)
    hdr_end, body_start = headers.find_header_end(data, 0, n)
    fields, stop, hprobs, unixfrom = headers.parse_fields(data, 0, hdr_end, closed=body_start > hdr_end)
    if stop < hdr_end:
        body_start = stop
    for code, off, length, detail in hprobs:
        problems.append(problem(locator, code, offset=off, length=length, detail=detail))
    if not fields:
        problems.append(problem(locator, "mime.empty_message"))

    hdr_list = []
    decoded: Dict[str, str] = {}
    seen: Dict[str, int] = {}
    # every decoding step works on values cut by parse_fields (headers.VALUE_CAP: a 100 MB header
    # line must not stall the scan or bloat the manifest); the canonical digest still covers the
    # real bytes
    decoded_values: List[Tuple[str, str]] = []
    bad_words = set()
    for f in fields:
        entry, value, probs = _header_entry(f)
        hdr_list.append(entry)
        decoded_values.append((f.name, value))
        for c in probs:
            if c != "header.8bit":
                bad_words.add((c, f.name))
        lname = f.name.lower()
        seen[lname] = seen.get(lname, 0) + 1
        if lname not in decoded:
            decoded[lname] = value
    p8 = set()
    for f in fields:
        if not f.raw.isascii():
            p8.add(f.name)
    if p8:
        problems.append(problem(locator, "header.8bit", detail={"headers": sorted(p8)}))
    for name in SINGLETONS:
        if seen.get(name, 0) > 1:
            problems.append(problem(locator, "header.duplicate_singleton",
                                    detail={"header": name, "count": seen[name]}))
    for c, name in sorted(bad_words):
        problems.append(problem(locator, c, detail={"header": name}))

    addrs: Dict[str, list] = {}
    for name, key in (("from", "from"), ("sender", "sender"), ("reply-to", "reply_to"), ("to", "to"),
                      ("cc", "cc"), ("bcc", "bcc")):
        lst = []
        bad = False
        for f in headers.get_all(fields, name):
            a, pr = headers.parse_addresses(f.raw)
            lst.extend(a)
            bad = bad or "header.address_invalid" in pr
        if lst:
            addrs[key] = lst
        if bad:
            problems.append(problem(locator, "header.address_invalid", detail={"header": name}))

    date_f = headers.get(fields, "date")
    date = date_tz = date_raw = None
    if date_f is not None:
        date_raw, _ = charsets.decode_header_bytes(date_f.unfolded())
        date, date_tz = headers.parse_date(date_raw)
        if date is None:
            problems.append(problem(locator, "header.date_invalid", detail={"value": date_raw[:200]}))
        elif not ("1980" <= date[:4] <= "2100"):
            problems.append(problem(locator, "header.date_implausible", detail={"value": date_raw[:200], "utc": date}))
    elif fields and not any(p[0] == "limit.header_block" and p[3].get("lines_not_read") for p in hprobs):
        # (a block too large to read to its end may hold a Date: limit.header_block says so)
        problems.append(problem(locator, "header.date_missing"))
    mid_f = headers.get(fields, "message-id")
    message_id = None
    if mid_f is not None:
        written = mid_f.unfolded().decode("utf-8", "replace")
        message_id = headers.normalize_msgid(written) or None
        if message_id and (message_id != written or not re.fullmatch(r"<[^<>\s]+>", message_id)):
            problems.append(problem(locator, "header.message_id_invalid", detail={"value": message_id[:200]}))
    irt = decoded.get("in-reply-to")
    refs = decoded.get("references")

    ents = mime.parse_entities(data, 0, n, loc_base, root_path, locator, algorithms=algorithms,
                               problem=problem, container_kind=container_kind,
                               first_fields=(fields, hdr_end, body_start))

    from leaktriage.content.digests import digests as _digests
    digests = known_digests or _digests(data, algorithms)
    eol, canonical = line_endings_and_canonical_digest(fields, data, body_start)
    msg = record(
        "message", locator, parent=parent, source=source, length=n, **digests,
        canonical_sha256=canonical,
        line_endings=eol, header_length=body_start,
        envelope=unixfrom.decode("utf-8", "replace") if unixfrom else None,
        headers=hdr_list, subject=decoded.get("subject"), date=date, date_raw=date_raw, date_tz=date_tz,
        message_id=message_id,
        in_reply_to=headers.parse_msgids(irt) or None if irt else None,
        references=headers.parse_msgids(refs) or None if refs else None,
        parts=sum(1 for p in ents.parts if is_entity(p)),
        attachments=ents.attachments, attachment_names=_names(ents.attachment_names, locator, problems, problem),
    )
    for k, v in addrs.items():
        msg[k] = v
    if extra:
        for k, v in extra.items():
            if v is not None:
                msg[k] = v
    if auth is not None:
        if n > AUTH_MAX:
            problems.append(problem(locator, "limit.auth_skipped", detail={"size": n, "max": AUTH_MAX}))
        else:
            auth(msg, bytes(data) if not isinstance(data, bytes) else data, decoded_values,
                 _documents(ents))
    all_codes = codes | ents.codes
    if all_codes:
        msg["problem_codes"] = sorted(all_codes)
    recs.append(msg)
    recs.extend(problems)
    # parts, each followed by its own problems, in entity order
    by_loc: Dict[str, List[dict]] = {}
    for p in ents.problems:
        by_loc.setdefault(p["locator"], []).append(p)
    for p in ents.parts:
        recs.append(p)
        recs.extend(by_loc.pop(p["locator"], ()))
    for rest in by_loc.values():  # problems on locators without a part record (none expected)
        recs.extend(rest)
    facts = {"date": date}
    return recs, ents.found, facts


NAMES_MAX = 1000        # attachment names listed in a message record (each part record has its own)
NAME_CHARS = 1024


def _names(names: List[str], locator: str, problems: list, problem) -> Optional[List[str]]:
    """The attachment names a message record lists: at most NAMES_MAX, each cut to NAME_CHARS
    characters (a hostile message can hold thousands of attachments with 64 KiB names); what was
    left out is said by a limit.value_cut problem."""
    if not names:
        return None
    if len(names) <= NAMES_MAX and all(len(n) <= NAME_CHARS for n in names):
        return names
    out = [n[:NAME_CHARS] for n in names[:NAMES_MAX]]
    problems.append(problem(locator, "limit.value_cut", detail={
        "field": "attachment_names", "listed": len(out), "not_listed": len(names) - len(out),
        "names_cut": sum(1 for n in names[:NAMES_MAX] if len(n) > NAME_CHARS), "kept_chars": NAME_CHARS}))
    return out


def _documents(ents) -> list:
    """The document metadata of the message's attachments, each with its locator and file name."""
    docs = []
    for p in ents.parts:
        dm = p.get("docmeta")
        if dm:
            d = dict(dm)
            d["locator"] = p["locator"]
            if p.get("filename"):
                d["filename"] = p["filename"]
            docs.append(d)
    return docs
