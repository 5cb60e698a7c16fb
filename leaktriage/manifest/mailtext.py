"""The text of one message as a person reads it, from its manifest records and its bytes.

    body = message_body(data, parts)      -> Body: text, the parts it came from, notes
    text, notes = part_text(data, part)   -> one text part, transfer-decoded, in the scan's charset

`data` is the message as sent (mbox '>From ' quoting undone: Resolver.message(rec, unquoted=True)),
the bytes every part record's offsets refer to; `parts` are the message's own part records (those
whose `message` is its locator). The body is what a mail program shows: in a multipart/alternative the
text/plain part when there is one, otherwise the HTML part turned into text (leaktriage.text); outside
alternatives every inline text part in order. Attachments, uuencoded files and attached messages are
not body (attached messages are messages of their own).

Each text part is decoded with the charset the scan recorded for it (`charset`, the codec it used after
checking the declared one), so `show --text`, the index and the manifest agree on every character.
Nothing here raises on bad input: every failure is a Note with a code of leaktriage.text (TEXT_CODES)
and the locator of the part, never a silent empty string. Used by `leaktriage show --text` and by the
search index (leaktriage.search.message_text).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from leaktriage.mail import charsets, transfer
from leaktriage.text import TEXT_CODES, TextLimits, extract_html

HTML_TYPES = ("text/html", "text/enriched", "text/richtext")


@dataclass(frozen=True)
class Note:
    """A problem met while reading a message's text: a code of leaktriage.text and where."""

    locator: str
    code: str
    message: str
    detail: Optional[dict] = None

    @property
    def severity(self) -> str:
        return TEXT_CODES[self.code][0]


@dataclass
class Body:
    text: str = ""
    parts: List[str] = field(default_factory=list)     # locators of the parts the text came from
    html_only: bool = False                              # the text came from HTML (no plain part)
    notes: List[Note] = field(default_factory=list)


def body_parts(parts: List[dict]) -> List[dict]:
    """The parts whose text is the body, in order (see the module docstring)."""
    by_path = {p.get("path"): p for p in parts}
    plain_parents = set()
    for p in parts:
        if p.get("content_type") == "text/plain" and not p.get("attachment") and "uu_offset" not in p:
            plain_parents.add((p.get("path") or "").rpartition(".")[0])
    out = []
    for p in parts:
        if p.get("attachment") or "uu_offset" in p or "body_offset" not in p:
            continue
        ct = p.get("content_type")
        if ct == "text/plain":
            out.append(p)
        elif ct in HTML_TYPES:
            parent = (p.get("path") or "").rpartition(".")[0]
            pp = by_path.get(parent)
            if parent in plain_parents and pp is not None and pp.get("content_type") == "multipart/alternative":
                continue   # the HTML alternative of a plain part: the same text twice
            out.append(p)
    return out


SINGLE_BYTE = frozenset({"cp1252", "iso8859-1", "latin_1", "iso8859-15", "cp1250", "iso8859-2", "mac-roman"})


def _utf8_multibyte(b: bytes) -> bool:
    """Valid UTF-8 holding at least one multi-byte character: text in a single-byte charset almost
    never is (it would need 'Ã' or 'Â' followed by a byte of 0x80-0xBF at every non-ASCII place)."""
    try:
        return len(b.decode("utf-8")) < len(b)
    except UnicodeDecodeError:
        return False


def part_text(data: bytes, p: dict) -> Tuple[str, List[Note]]:
    """A text part's body, transfer-decoded and decoded with the charset the scan used."""
    notes: List[Note] = []
    loc = p.get("locator", "")
    raw = data[p["body_offset"]:p["body_offset"] + p["body_length"]]
    dec = transfer.decode(bytes(raw), p.get("cte"))[0]
    codec = charsets.lookup(p.get("charset")) if p.get("charset") else None
    text = None
    if codec:
        text = charsets.decode_strict(dec, codec)
        if text is None:
            try:
                text = dec.decode(codec, "replace")
                notes.append(Note(loc, "text.charset_replaced", "bytes not valid in %s were replaced by U+FFFD "
                                  "(as the scan did: %s bytes)" % (codec, p.get("replaced_bytes", "?")),
                                  {"charset": codec}))
            except LookupError:
                text = None
    if text is None:   # no recorded charset (an old manifest) or one Python does not know: the scan's rule
        tr = charsets.decode_text(dec, p.get("charset_declared"))
        text = tr.text
        if tr.replaced_bytes:
            notes.append(Note(loc, "text.charset_replaced", "%d bytes not valid in %s were replaced by U+FFFD"
                              % (tr.replaced_bytes, tr.charset), {"charset": tr.charset}))
    if codec in SINGLE_BYTE and p.get("charset_source", "declared") == "declared" and not dec.isascii() \
            and _utf8_multibyte(dec):
        notes.append(Note(loc, "text.charset_suspect", "decoded as %s, as declared and recorded by the scan, but "
                          "the bytes are valid UTF-8: the text may read as mojibake" % codec, {"charset": codec}))
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), notes


def message_body(data: bytes, parts: List[dict], limits: Optional[TextLimits] = None) -> Body:
    """The body of a message (see the module docstring); never raises."""
    body = Body()
    texts: List[str] = []
    chosen = body_parts(parts)
    for p in chosen:
        loc = p.get("locator", "")
        try:
            t, notes = part_text(data, p)
            body.notes.extend(notes)
            if p.get("content_type") in HTML_TYPES:
                r = extract_html(t, limits=limits) if limits else extract_html(t)
                body.notes.extend(Note(loc, q.code, q.message) for q in r.problems
                                  if q.code != "text.empty")
                if r.text is None:
                    continue
                t = r.text
            texts.append(t)
            body.parts.append(loc)
        except Exception as exc:  # noqa: BLE001 - a damaged part is a note, never an exception
            body.notes.append(Note(loc, "text.internal_error", "%s: %s" % (type(exc).__name__, str(exc)[:300])))
    body.html_only = bool(chosen) and all(p.get("content_type") in HTML_TYPES for p in chosen)
    body.text = "\n\n".join(t.strip("\n") for t in texts if t.strip())
    return body
