"""Hidden timestamps that must agree with the Date header, and client fingerprints.

* Gmail MIME boundaries ``000000000000`` + 16 hex digits (``0000000000007e1d0b05992df7ad``): hex
  digits 18..25 followed by digits 12..17 are the microseconds since 1970 when the MIME tree was
  built (see shared/corpora/dkim-real/SOURCE.md: ``000000000000eb957105992df7ad`` decodes to
  2019-12-08 09:33:15.542897Z). The last two digits are not time.
* Gmail X-Received: ``with SMTP id <id>.<ms since 1970>;`` (or a ``t=`` tag).
* Outlook Thread-Index: base64 of a conversation index; byte 0 is reserved, bytes 1..5 are the top
  40 bits of a FILETIME (100 ns since 1601) of the conversation start, then 5-byte child blocks add
  the time of each reply (1 bit delta code, 31 bits delta, shifted left 18 or 23 bits).
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

from leaktriage.auth.codes import indicator
from leaktriage.auth.received import iso, parse_date

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


def thread_index_time(value: str) -> Optional[Tuple[datetime, int]]:
    """(time of this message in the conversation, number of replies encoded)."""
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", value or ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5:
        return None
    ft = int.from_bytes(raw[1:6], "big") << 24
    for k in range(22, len(raw), 5):
        v = int.from_bytes(raw[k:k + 4], "big")
        delta = v & 0x7FFFFFFF
        ft += delta << (23 if v >> 31 else 18)
    try:
        t = _FILETIME_EPOCH + timedelta(microseconds=ft // 10)
    except OverflowError:
        return None
    if not (_SANE[0] - timedelta(days=365 * 10) <= t < _SANE[1]):
        return None
    return t, (len(raw) - 22) // 5


def hidden_timestamps(headers: Sequence[Tuple[str, str]]) -> List[Dict[str, Any]]:
    """[{"source", "value", "time"}] found in the headers (Content-Type boundaries of the top-level
    entity only: the caller may pass part headers as well)."""
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
                r = thread_index_time(value)
                if r:
                    out.append({"source": "thread-index", "value": (value or "").strip()[:200], "time": iso(r[0]), "replies": r[1]})
        except Exception:
            continue
    return out


def timestamp_indicators(headers: Sequence[Tuple[str, str]], stamps: Optional[List[Dict[str, Any]]] = None,
                         tolerance: timedelta = TOLERANCE) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    date_v = next((v for n, v in headers if n.strip().lower() == "date"), None)
    dt = parse_date(date_v)
    if stamps is None:
        stamps = hidden_timestamps(headers)
    if dt is not None:
        for st in stamps:
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
