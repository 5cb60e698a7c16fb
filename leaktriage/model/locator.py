"""Locators: stable, parseable names for every item of a dump.

Grammar (see docs/manifest.md):

    locator  = path *( "!" segment ) [ "#" partpath ... ]
    segment  = kind ":" value

`path` and every segment value are escaped: the bytes ``%``, ``!``, ``#``, control bytes (< 0x20 and
0x7f) and bytes that are not valid UTF-8 become ``%XX``; everything else stays UTF-8. Splitting on
``!`` and ``#`` and percent-decoding gives back the raw bytes of every name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

ROOT = "."
SEGMENT_KINDS = ("mbox", "zip", "tar", "7z", "rar", "gz", "bz2", "xz", "uu", "hqx", "tnef", "msg", "pst",
                 "att", "emlx")

_SPECIAL = frozenset(b"%!#") | frozenset(range(0x20)) | {0x7F}
_NEEDS = re.compile(r"[%!#\x00-\x1f\x7f\udc80-\udcff]")


def escape(name: Union[str, bytes]) -> str:
    """Escape a raw name (bytes, or str that may carry surrogate escapes) for use in a locator."""
    if isinstance(name, str):
        if not _NEEDS.search(name):
            return name
        raw = name.encode("utf-8", "surrogateescape")
    else:
        raw = name
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and not _NEEDS.search(text):
            return text
    out: List[str] = []
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b < 0x80:
            out.append("%%%02X" % b if b in _SPECIAL else chr(b))
            i += 1
            continue
        # find the longest valid UTF-8 sequence starting here (1 char)
        for ln in (2, 3, 4):
            chunk = raw[i:i + ln]
            try:
                out.append(chunk.decode("utf-8"))
                i += ln
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("%%%02X" % b)
            i += 1
    return "".join(out)


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")


def unescape(text: str) -> bytes:
    """Inverse of escape(): the raw bytes of a name."""
    out = bytearray()
    pos = 0
    for m in _PCT.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def segment(kind: str, value: Union[str, bytes, int]) -> str:
    """Build one locator segment, e.g. segment("zip", "a/b.eml") -> "zip:a/b.eml"."""
    if kind not in SEGMENT_KINDS:
        raise ValueError("unknown locator segment kind %r" % kind)
    return "%s:%s" % (kind, escape(value) if not isinstance(value, int) else value)


def child(parent: str, seg: str) -> str:
    """Locator of an item found inside `parent` (a file, a member, or a decoded MIME part)."""
    return parent + "!" + seg


def part(message_locator: str, partpath: str) -> str:
    """Locator of MIME entity `partpath` ("1", "1.2", ...) of a message."""
    return message_locator + "#" + partpath


@dataclass(frozen=True)
class Step:
    """One step of a parsed locator: kind is "path", "part", or a segment kind."""

    kind: str
    value: str

    def raw(self) -> bytes:
        return unescape(self.value)


class LocatorError(ValueError):
    pass


def parse(loc: str) -> List[Step]:
    """Split a locator into steps. Raises LocatorError on malformed input."""
    if not loc:
        raise LocatorError("empty locator")
    steps: List[Step] = []
    first = True
    for chunk in loc.split("!"):
        head, *parts = chunk.split("#")
        if first:
            if not head:
                raise LocatorError("locator %r has no path" % loc)
            steps.append(Step("path", head))
            first = False
        else:
            kind, sep, value = head.partition(":")
            if not sep or kind not in SEGMENT_KINDS:
                raise LocatorError("bad segment %r in locator %r" % (head, loc))
            steps.append(Step(kind, value))
        for p in parts:
            if not re.fullmatch(r"1(\.\d+)*", p):
                raise LocatorError("bad part path %r in locator %r" % (p, loc))
            steps.append(Step("part", p))
    return steps


def split_part(loc: str) -> Tuple[str, Optional[str]]:
    """Split a part locator into (message locator, part path); part path None if not a part."""
    last = loc.rsplit("!", 1)[-1]
    if "#" not in last:
        return loc, None
    base, _, pp = loc.rpartition("#")
    return base, pp
