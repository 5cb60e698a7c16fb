"""Hidden timestamps that must agree with the Date header, and client fingerprints.

* Gmail MIME boundaries ``000000000000`` + 16 hex digits (``0000000000007e1d0b05992df7ad``): hex
  digits 18..25 followed by digits 12..17 are the microseconds since 1970 when the MIME tree was
  built (see shared/corpora/dkim-real/SOURCE.md: ``000000000000eb957105992df7ad`` decodes to
  2019-12-08 09:33:15.542897Z). The last two digits are not time.
* Gmail X-Received: ``with SMTP id <id>.<ms since 1970>;`` (or a ``t=`` tag).
* Outlook Thread-Index (see thread_index()): base64 of a conversation index: a 22-byte header and
  a 5-byte block per reply. Checked on real Outlook and Exchange headers of three kinds (byte 0 is
  0x01 in all of them, which is also the top byte of every FILETIME from 1972 to 2057):
  - legacy (Outlook <= 2007, Exchange 2003): bytes 0..5 are the top 48 bits of the FILETIME (100 ns
    since 1601) of the conversation start;
  - Exchange (the [MS-OXOMSG] PidTagConversationIndex layout): byte 0 reserved, bytes 1..5 the top 40
    bits of that FILETIME;
  - Outlook 2010+ desktop ("AQI...", "AQJ...": byte 1 is 0x02): no time in the header.
  The 16 bytes after the time are the conversation's GUID: version 4 in the first two (Data3
  big-endian in the legacy layout, little-endian in Exchange's), not in the third.
  Each reply block adds a delta (1 bit delta code, 31 bits shifted left 23 or 18) to bytes 0..5
  read as the top 48 bits of a FILETIME, in all three kinds; deltas keep 31 bits, so the time is
  known modulo 2**54 x 100 ns (57 years): it is the one after the conversation start (legacy,
  Exchange) or in 1996-2053 (no time in the header).
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

from leaktriage.auth.codes import indicator
from leaktriage.auth.received import iso
from leaktriage.mail.headers import parse_date as parse_header_date

TOLERANCE = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_GMAIL_BOUNDARY = re.compile(r'boundary\s*=\s*"?(000000000000[0-9a-f]{16})\b', re.I)
_SANE = (datetime(2004, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


def gmail_boundary_time(boundary: str) -> Optional[datetime]:
    b = (boundary or "").strip().strip('"').lower()
    if not re.fullmatch(r"000000000000[0-9a-f]{16}", b):
        return None
    us = int(b[18:26] + b[12:18], 16)
    try:
        t = _EPOCH + timedelta(microseconds=us)
    except OverflowError:
        return None
    return t if _SANE[0] <= t < _SANE[1] else None


def x_received_time(value: str) -> Optional[datetime]:
    v = value or ""
    m = re.search(r"\bt=(\d{10,13})\b", v) or re.search(r"\bid\s+\S*?\.(\d{13})\s*;", v)
    if not m:
        return None
    n = int(m.group(1))
    t = _EPOCH + (timedelta(milliseconds=n) if len(m.group(1)) == 13 else timedelta(seconds=n))
    return t if _SANE[0] <= t < _SANE[1] else None


# Outlook and Exchange exist from 1996 (Exchange 4.0); a 57-year window from there
ERA_START = datetime(1996, 1, 1, tzinfo=timezone.utc)
_FT_PER_US = 10
_WRAP = 1 << 54         # a reply's delta keeps 31 bits of 2**23 units of 100 ns


def _ft(t: datetime) -> int:
    return int((t - _FILETIME_EPOCH) / timedelta(microseconds=1)) * _FT_PER_US


_ERA_FT = (_ft(ERA_START), _ft(ERA_START) + _WRAP)


def _ft_time(ft: int) -> Optional[datetime]:
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ft // _FT_PER_US)
    except OverflowError:
        return None


def thread_index(value: str) -> Optional[Dict[str, Any]]:
    """Decode an Outlook Thread-Index: {"layout", "time", "start", "replies"} (times aware UTC;
    "start" None when the header holds no time; "time" None when nothing in the index gives one),
    or None when the value is not a conversation index leaktriage can read: not base64, not 22 + 5k
    bytes, byte 0 not 0x01, or a header of none of the three layouts (legacy and Exchange headers
    hold a version 4 GUID, with Data3 big- and little-endian; Outlook's headers without a time have
    0x02 in byte 1): random bytes pass about 3 times in 65,536. "implausible" is set when the
    conversation start lies outside 1996-2053: then "time" is not given. See the module docstring
    for the layouts."""
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", value or ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5 or raw[0] != 1:
        return None
    replies = (len(raw) - 22) // 5
    ft = int.from_bytes(raw[0:6], "big") << 16
    for k in range(22, len(raw), 5):
        v = int.from_bytes(raw[k:k + 4], "big")
        ft += (v & 0x7FFFFFFF) << (23 if v >> 31 else 18)
    guid = raw[6:22]
    v4_variant = guid[8] >> 6 == 2          # the GUID of a new conversation: RFC 4122 variant...
    if raw[1] == 1 and v4_variant and guid[7] >> 4 == 4:        # ... version 4, Data3 little-endian
        layout, start = "exchange", int.from_bytes(raw[1:6], "big") << 24
    elif raw[1] >= 0x80 and v4_variant and guid[6] >> 4 == 4:   # ... Data3 big-endian
        layout, start = "legacy", int.from_bytes(raw[0:6], "big") << 16
    elif raw[1] == 2:
        layout, start = "no-header-time", None
    else:
        return None
    out: Dict[str, Any] = {"layout": layout, "replies": replies, "start": None, "time": None}
    if start is not None:
        out["start"] = _ft_time(start)
        if not _ERA_FT[0] <= start < _ERA_FT[1]:
            out["implausible"] = "the conversation start it encodes (%s) is outside 1996-2053" % iso(out["start"])
            return out
        # the time of the last reply: after the start (less the header's truncation: 1.7 s)
        lo = start - (1 << 24) if replies else None
    else:
        lo = _ERA_FT[0] if replies else None
    if lo is None:
        out["time"] = out["start"]
    else:
        out["time"] = _ft_time(lo + (ft - lo) % _WRAP)
    return out


def thread_index_time(value: str) -> Optional[Tuple[datetime, int]]:
    """(time of this message in the conversation, number of replies encoded), when the index gives a
    plausible one."""
    r = thread_index(value)
    if r is None or r["time"] is None or r.get("implausible"):
        return None
    return r["time"], r["replies"]


RECEIPT_SLACK = timedelta(days=1)     # a hidden time this long after the message was received is impossible


def hidden_timestamps(headers: Sequence[Tuple[str, str]], received_at: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """[{"source", "value", "time", ...}] found in the headers (Content-Type boundaries of the top-level
    entity only: the caller may pass part headers as well). A time that cannot be true is kept with
    "implausible" saying why (never compared with the Date): a Thread-Index whose conversation start
    is outside 1996-2053, or any hidden time more than a day after `received_at` (the newest Received
    hop: a message is not made after it arrived)."""
    out: List[Dict[str, Any]] = []
    for name, value in headers:
        n = name.strip().lower()
        try:
            if n == "content-type":
                m = _GMAIL_BOUNDARY.search(value or "")
                if m:
                    t = gmail_boundary_time(m.group(1))
                    if t:
                        out.append({"source": "gmail-mime-boundary", "value": m.group(1), "time": iso(t)})
            elif n == "x-received":
                t = x_received_time(value)
                if t:
                    out.append({"source": "x-received", "value": re.sub(r"\s+", " ", value).strip()[:200], "time": iso(t)})
            elif n == "thread-index":
                r = thread_index(value)
                if r and (r["time"] is not None or r.get("implausible")):
                    st = {"source": "thread-index", "value": (value or "").strip()[:200], "layout": r["layout"],
                          "replies": r["replies"]}
                    if r["time"] is not None:
                        st["time"] = iso(r["time"])
                    if r["start"] is not None:
                        st["conversation_start"] = iso(r["start"])
                    if r.get("implausible"):
                        st["implausible"] = r["implausible"]
                    out.append(st)
        except Exception:
            continue
    if received_at is not None:
        for st in out:
            if "time" in st and not st.get("implausible") and \
                    datetime.fromisoformat(st["time"].replace("Z", "+00:00")) > received_at + RECEIPT_SLACK:
                st["implausible"] = "after the message was received (%s)" % iso(received_at)
    return out


def timestamp_indicators(headers: Sequence[Tuple[str, str]], stamps: Optional[List[Dict[str, Any]]] = None,
                         tolerance: timedelta = TOLERANCE, received_at: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """Hidden times against the Date: later beyond the tolerance (the Date may have been set back),
    earlier (a draft, or a Date set forward). A hidden time that is itself implausible, or a Date
    that is (before 1980 or after 2100), is never the ground for such an indicator:
    auth.hidden_time_implausible says so instead."""
    out: List[Dict[str, Any]] = []
    date_v = next((v for n, v in headers if n.strip().lower() == "date"), None)
    dt = _date(date_v)
    if stamps is None:
        stamps = hidden_timestamps(headers, received_at)
    for st in stamps:
        if st.get("implausible"):
            out.append(indicator("auth.hidden_time_implausible",
                                 {k: st[k] for k in ("source", "value", "layout", "time", "conversation_start", "implausible") if k in st},
                                 "The %s encodes a time that cannot be true (%s): it was not compared with the Date." % (st["source"], st["implausible"])))
    if dt is not None:
        for st in stamps:
            if st.get("implausible") or "time" not in st:
                continue
            t = datetime.fromisoformat(st["time"].replace("Z", "+00:00"))
            delta = (t - dt).total_seconds()
            ev = {"source": st["source"], "value": st["value"], "hidden_time": st["time"], "date": iso(dt),
                  "delta_seconds": round(delta, 3), "allowed_seconds": int(tolerance.total_seconds())}
            if delta > tolerance.total_seconds():
                out.append(indicator("auth.hidden_time_after_date", ev,
                                     "The %s says the message was made %s after its Date: the Date may have been set back." % (st["source"], _dur(delta))))
            elif -delta > tolerance.total_seconds():
                out.append(indicator("auth.hidden_time_before_date", ev,
                                     "The %s is %s before the Date (a draft composed long before sending, or a Date set forward)." % (st["source"], _dur(-delta))))
    out.extend(message_id_indicators(headers))
    return out


def _date(value: Optional[str]) -> Optional[datetime]:
    """The Date as the message record reads it (leaktriage.mail.headers.parse_date: the year as
    written), or None when it is missing, unreadable or implausible (header.date_implausible)."""
    if not value:
        return None
    utc, _tz = parse_header_date(value)
    if utc is None or not "1980" <= utc[:4] <= "2100":
        return None
    return datetime.fromisoformat(utc.replace("Z", "+00:00"))


def _dur(sec: float) -> str:
    sec = abs(sec)
    if sec < 3600:
        return "%d min" % (sec // 60)
    if sec < 86400 * 2:
        return "%.1f h" % (sec / 3600)
    return "%.1f days" % (sec / 86400)


# --- Message-ID style vs X-Mailer / User-Agent ---------------------------------------------------

def message_id_style(mid: Optional[str]) -> Optional[str]:
    m = (mid or "").strip()
    if re.search(r"@mail\.gmail\.com>?$", m, re.I):
        return "gmail"
    if re.search(r"\.prod\.outlook\.com>?$", m, re.I) or re.search(r"@[A-Z0-9]{4}PR\d{2}MB\d{4}\.", m):
        return "outlook-exchange-online"
    if re.match(r"<?[0-9a-f]{12}\$[0-9a-f]{8}\$[0-9a-f]{8}@", m, re.I):
        return "outlook-desktop"
    if re.match(r"<?[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}@", m):
        return "apple-mail"
    if re.match(r"<?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@", m):
        return "thunderbird"
    return None


def agent_family(headers: Sequence[Tuple[str, str]]) -> Tuple[Optional[str], Optional[str]]:
    for n, v in headers:
        if n.strip().lower() in ("x-mailer", "user-agent"):
            s = v or ""
            if re.search(r"thunderbird|icedove|seamonkey", s, re.I):
                return "thunderbird", s.strip()
            if re.search(r"microsoft (office )?outlook|outlook express|microsoft windows live mail", s, re.I):
                return "outlook-desktop", s.strip()
            if re.search(r"apple mail|iphone mail|ipad mail", s, re.I):
                return "apple-mail", s.strip()
    return None, None


_CONTRADICTS = {
    "outlook-desktop": {"thunderbird", "apple-mail"},
    "outlook-exchange-online": {"thunderbird", "apple-mail"},
    "gmail": {"thunderbird", "apple-mail", "outlook-desktop"},
    "apple-mail": {"thunderbird", "outlook-desktop"},
    "thunderbird": {"outlook-desktop", "apple-mail"},
}


def message_id_indicators(headers: Sequence[Tuple[str, str]]) -> List[Dict[str, Any]]:
    mid = next((v for n, v in headers if n.strip().lower() == "message-id"), None)
    style = message_id_style(mid)
    agent, agent_value = agent_family(headers)
    if style and agent and agent in _CONTRADICTS.get(style, ()):
        return [indicator("auth.message_id_agent_mismatch",
                          {"message_id": (mid or "").strip(), "message_id_style": style,
                           "agent": agent_value, "agent_family": agent},
                          "The Message-ID looks made by %s but the mail program header says %s." % (style, agent))]
    return []
