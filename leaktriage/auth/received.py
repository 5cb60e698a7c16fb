"""Received chain: hops and timing indicators.

Headers are listed newest first (each server adds its Received on top); ``parse_received_chain``
keeps that order (hop 0 = the last server, the receipt at the mailbox). The "first hop" is the
bottom-most Received header, the earliest server to see the message.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from leaktriage.auth.codes import indicator

SKEW = timedelta(minutes=5)           # clock skew allowed between two servers
MAX_DELAY = timedelta(days=7)         # longest plausible delay between two hops
DATE_AFTER_FIRST_HOP = timedelta(minutes=15)   # Date later than the first server saw the mail
DATE_BEFORE_FIRST_HOP = timedelta(days=1)      # Date much earlier than the first hop

_KEYWORDS = ("from", "by", "via", "with", "id", "for")
_IPV6 = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?)\]|\(([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})\)")
# IPv4 addresses: a dotted quad bounded by characters outside [\d.] on both sides, so a whole
# run of digits and dots (at least 7 long); the quad is tried only on those runs, not at every
# position as a lookaround regex would
_DIGITS_AND_DOTS = re.compile(r"[\d.]{7,}")
_QUAD = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}")


def ipv4_addresses(text: str) -> List[str]:
    """Dotted-quad IPv4 addresses in text, in order (tests: equal to a lookaround regex)."""
    return [r for r in _DIGITS_AND_DOTS.findall(text) if _QUAD.fullmatch(r)]


def parse_date(value: Optional[str]) -> Optional[datetime]:
    """RFC 5322 date -> aware UTC datetime, or None. A date without zone is taken as UTC."""
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except Exception:
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def iso(dt: Optional[datetime]) -> Optional[str]:
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_WORD_OR_PAREN = re.compile(r"[()]|[^\s()]+")


def _top_level_words(text: str) -> List[Tuple[int, str, int]]:
    """(position, word, paren depth) of whitespace-separated words (parentheses split words)."""
    out = []
    depth = 0
    for m in _WORD_OR_PAREN.finditer(text):
        w = m.group()
        if w == "(":
            depth += 1
        elif w == ")":
            depth = max(0, depth - 1)
        else:
            out.append((m.start(), w, depth))
    return out


def parse_received(value: str) -> Dict[str, Any]:
    """One Received header value -> {"from", "by", "via", "with", "id", "for", "date", "ips", "raw"}."""
    v = " ".join((value or "").split())   # re.sub(r"\s+", " ", value).strip(): same white space
    hop: Dict[str, Any] = {k: None for k in _KEYWORDS}
    date_part = None
    semi = v.rfind(";")
    clauses = v
    if semi >= 0:
        date_part = v[semi + 1:].strip()
        clauses = v[:semi]
    words = _top_level_words(clauses)
    for k, (pos, w, depth) in enumerate(words):
        lw = w.lower()
        if depth == 0 and lw in _KEYWORDS and hop[lw] is None and k + 1 < len(words):
            nxt = words[k + 1]
            if nxt[2] != 0:
                continue
            if lw == "with":
                ws = []
                for _, w2, dep in words[k + 1:]:
                    if dep == 0 and w2.lower() in _KEYWORDS:
                        break
                    if dep == 0:
                        ws.append(w2)
                hop[lw] = " ".join(ws).rstrip(";") or None
            else:
                hop[lw] = nxt[1].strip("<>;") if lw == "for" else nxt[1].rstrip(";")
    dt = parse_date(date_part)
    hop["date"] = iso(dt)
    ips: List[str] = []
    for ip in ipv4_addresses(clauses):
        if ip not in ips:
            ips.append(ip)
    for m in _IPV6.finditer(clauses):
        ip = m.group(1) or m.group(2)
        if ip and ip.count(":") >= 2 and ip not in ips:
            ips.append(ip)
    hop["ips"] = ips
    return hop


def parse_received_chain(headers: Sequence[Tuple[str, str]]) -> List[Dict[str, Any]]:
    """All Received headers in header order (newest first), each parsed, with "index"."""
    hops = []
    for name, value in headers:
        if name.strip().lower() == "received":
            try:
                hop = parse_received(value)
            except Exception:
                hop = {k: None for k in _KEYWORDS}
                hop.update(date=None, ips=[])
            hop["index"] = len(hops)
            hops.append(hop)
    return hops


def receipt_time(hops: Sequence[Dict[str, Any]]) -> Optional[datetime]:
    """When the message was received at its destination: the date of the top-most dated hop."""
    for hop in hops:
        if hop.get("date"):
            return datetime.fromisoformat(hop["date"].replace("Z", "+00:00"))
    return None


def received_indicators(hops: Sequence[Dict[str, Any]], date_header: Optional[str]
                        ) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    dated: List[Tuple[int, datetime]] = []
    for hop in hops:
        if hop.get("date"):
            dated.append((hop["index"], datetime.fromisoformat(hop["date"].replace("Z", "+00:00"))))
        else:
            out.append(indicator("auth.received_date_invalid", {"hop": hop.get("index"), "by": hop.get("by")},
                                 "This Received header has no readable date, so it cannot be placed in time."))
    # chronological: bottom (earliest) to top
    chron = list(reversed(dated))
    for (ia, ta), (ib, tb) in zip(chron, chron[1:]):
        delay = tb - ta
        ev = {"earlier_hop": ia, "earlier_date": iso(ta), "later_hop": ib, "later_date": iso(tb),
              "delay_seconds": int(delay.total_seconds())}
        if delay < -SKEW:
            out.append(indicator("auth.received_out_of_order", {**ev, "skew_allowed_seconds": int(SKEW.total_seconds())},
                                 "Hop %d says it received the message %d s before hop %d handed it on: the dates are out of order." % (ib, -int(delay.total_seconds()), ia)))
        elif delay > MAX_DELAY:
            out.append(indicator("auth.received_long_delay", {**ev, "max_delay_seconds": int(MAX_DELAY.total_seconds())},
                                 "More than 7 days passed between two consecutive hops."))
    dt = parse_date(date_header) if date_header else None
    if dt is not None and chron:
        first_idx, first = chron[0]
        delta = dt - first
        ev = {"date": iso(dt), "first_hop": first_idx, "first_hop_date": iso(first),
              "delta_seconds": int(delta.total_seconds())}
        if delta > DATE_AFTER_FIRST_HOP:
            out.append(indicator("auth.date_far_from_first_hop", {**ev, "allowed_seconds": int(DATE_AFTER_FIRST_HOP.total_seconds())},
                                 "The Date header is later than the time the first server received the message."))
        elif -delta > DATE_BEFORE_FIRST_HOP:
            out.append(indicator("auth.date_far_from_first_hop", {**ev, "allowed_seconds": -int(DATE_BEFORE_FIRST_HOP.total_seconds())},
                                 "The Date header is more than a day before the first server received the message."))
    return out
