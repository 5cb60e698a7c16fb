"""Apple Mail .emlx reader.

Layout: a first line holding the byte count of the message (ASCII digits), then exactly that many
bytes of RFC 5322 message, then an XML property list with Apple Mail's facts about the message
(flags bit field, dates as seconds since 1970, remote id, original mailbox). A `.partial.emlx`
has the same layout; Apple Mail stored its large attachments outside, next to it.
"""
from __future__ import annotations

import plistlib
import re
from typing import Iterator, Union

from leaktriage.model.locator import segment
from leaktriage.containers.base import Child, Context, Problem, iso_timestamp

_COUNT = re.compile(rb"\A[ \t]*(\d{1,15})[ \t]*\r?\n")

# Apple Mail message flags (bit field in the plist "flags" key)
_FLAG_BITS = {0: "read", 1: "deleted", 2: "answered", 3: "encrypted", 4: "flagged", 5: "recent",
              6: "draft", 7: "initial", 8: "forwarded", 9: "redirected", 23: "signed", 24: "is_junk",
              25: "is_not_junk", 29: "junk_level_recorded", 30: "highlight_in_toc"}
_DATE_KEYS = ("date-received", "date-sent", "date-last-viewed")


def decode_flags(flags: int) -> dict:
    out = {name: bool(flags >> bit & 1) for bit, name in _FLAG_BITS.items()}
    out["attachment_count"] = (flags >> 10) & 0x3F
    out["priority"] = (flags >> 16) & 0x7F
    return out


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def read_emlx(data: bytes, ctx: Context) -> Iterator[Union[Child, Problem]]:
    try:
        yield from _read_emlx(bytes(data), ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("emlx.bad_count", "unexpected error while reading the .emlx: %s: %s" % (type(e).__name__, e))


def _read_emlx(data: bytes, ctx: Context) -> Iterator[Union[Child, Problem]]:
    problems: list = []
    facts: dict = {"source": "emlx", "reconstructed": False}
    m = _COUNT.match(data[:64])
    if not m:
        nl = data.find(b"\n")
        start = nl + 1 if nl != -1 else 0
        msg = data[start:]
        plist_bytes = b""
        yield Problem("emlx.bad_count", "the first line is not a byte count", offset=0)
    else:
        count = int(m.group(1))
        start = m.end()
        msg = data[start:start + count]
        plist_bytes = data[start + count:]
        facts["byte_count"] = count
        if len(msg) < count:
            problems.append(Problem("emlx.truncated", "the .emlx holds %d message bytes, its first line says %d"
                                    % (len(msg), count), offset=start, detail={"declared": count, "present": len(msg)}))
    plist = None
    if plist_bytes.strip():
        try:
            plist = plistlib.loads(plist_bytes.lstrip(), fmt=plistlib.FMT_XML)
        except Exception as e:  # noqa: BLE001
            yield Problem("emlx.plist_invalid", "trailing property list unreadable: %s" % e,
                          offset=len(data) - len(plist_bytes), length=len(plist_bytes))
    elif m:
        yield Problem("emlx.plist_invalid", "no trailing property list", offset=len(data))
    if isinstance(plist, dict):
        pl = {}
        for k, v in plist.items():
            if k in _DATE_KEYS and isinstance(v, (int, float)):
                pl[k] = iso_timestamp(v)
            else:
                pl[k] = _jsonable(v)
        if isinstance(plist.get("flags"), int):
            pl["flags_decoded"] = decode_flags(plist["flags"])
        facts["plist"] = pl
    if b"X-Apple-Content-Length" in msg[:1 << 20] or _is_partial(ctx):
        problems.append(Problem("emlx.partial", "Apple Mail .partial.emlx: some attachments were stored outside the message"))
        facts["partial"] = True
    yield Child(segment=segment("emlx", "message"), name="message", data=msg,
                meta={"offset": start, "size": len(msg)}, kind="message", message=facts, problems=problems)


def _is_partial(ctx: Context) -> bool:
    return (ctx.locator or "").lower().endswith(".partial.emlx")
