"""Flat tables from a manifest (messages, attachments, problems) as CSV, JSON Lines or JSON, with filters.

Streaming: records are grouped as they come (a message, then its parts and problems, see
docs/manifest.md for the order), so a message filter can look at its attachments and a problem can
be tied to its message, while only one message's records are held at a time.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

from leaktriage.errors import UsageError
from leaktriage.text.fold import fold


def custodian_key(name: str) -> str:
    """A custodian's name as --custodian compares it: folded words, sorted."""
    return " ".join(sorted(_WORD.findall(fold(name))))


_WORD = re.compile(r"[^\W_]+")


class FilterError(UsageError):
    """A filter that cannot be used as given (shown as a usage error)."""


# -- grouping ---------------------------------------------------------------------------------------

@dataclass
class Group:
    """A message with its parts and problems, or a file/other record with its own problems."""

    head: dict
    custodian: Optional[str] = None
    parts: List[dict] = field(default_factory=list)
    problems: List[dict] = field(default_factory=list)

    @property
    def is_message(self) -> bool:
        return self.head.get("record") == "message"


def groups(records: Iterable[dict]) -> Iterator[Group]:
    """Group a record stream: each message or file record opens a group; parts and problems join the
    open group when their locator lies inside it. duplicate_group, mailbox and summary records come alone."""
    cur: Optional[Group] = None
    unit_custodian: Optional[str] = None
    for rec in records:
        kind = rec["record"]
        if kind in ("message", "file"):
            if cur is not None:
                yield cur
            if kind == "file" and "parent" not in rec:
                unit_custodian = rec.get("custodian")
            cur = Group(rec, rec.get("custodian") or unit_custodian)
            continue
        if kind in ("part", "problem") and cur is not None:
            loc = rec["locator"]
            base = cur.head["locator"]
            # an attached message (base X#1.2) holds the entities X#1.2.1, X#1.2.1.3, ...: a problem on one
            # of them must not close the group (its later parts would be lost: issue #14, item 6)
            inside_entity = "#" in base and cur.is_message and loc.startswith(base + ".")
            if kind == "part" and rec.get("message") == base or loc == base or loc.startswith(base + "#") \
                    or inside_entity or (kind == "problem" and loc.startswith(base + "!")):
                (cur.parts if kind == "part" else cur.problems).append(rec)
                continue
        if cur is not None:
            yield cur
            cur = None
        if kind == "problem":
            g = Group(rec, unit_custodian)
            g.problems.append(rec)
            yield g
        else:
            yield Group(rec, unit_custodian if kind in ("part",) else None)
    if cur is not None:
        yield cur


# -- filters ----------------------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)?)?)?$")


def parse_bound(text: str, upper: bool) -> str:
    """A date bound as an ISO string comparable with manifest dates (UTC).

    YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]; --until is inclusive (2017-03 means up to the
    end of March 2017)."""
    m = _DATE.match(text.strip())
    if not m:
        raise FilterError("bad date %r (use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)" % text)
    y, mo, d, hh, mi, ss = m.groups()
    try:
        datetime(int(y), int(mo or 1), int(d or 1), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError as exc:
        raise FilterError("bad date %r: %s" % (text, exc))
    if upper:
        # inclusive: pad the missing parts with their largest value (string comparison on ISO dates)
        return "%s-%s-%sT%s:%s:%sZ" % (y, mo or "12", d or "31", hh or "23", mi or "59", ss or "59")
    return "%s-%s-%sT%s:%s:%sZ" % (y, mo or "01", d or "01", hh or "00", mi or "00", ss or "00")


def _addrs(msg: dict, *keys: str) -> List[str]:
    out = []
    for k in keys:
        for a in msg.get(k) or ():
            addr = (a.get("address") or "").strip().lower()
            if addr:
                out.append(addr)
    return out


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2] if "@" in addr else ""


def _type_match(pattern: str, value: Optional[str]) -> bool:
    if not value:
        return False
    value = value.lower()
    if pattern.endswith("/*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _code_match(pattern: str, code: str) -> bool:
    """CODE matches itself; a prefix without a dot part matches the family (base64 -> base64.*)."""
    return code == pattern or code.startswith(pattern.rstrip(".") + ".")


@dataclass
class Filters:
    senders: Tuple[str, ...] = ()          # --from (address, case-insensitive)
    domains: Tuple[str, ...] = ()          # --domain (any participant; subdomains included)
    since: Optional[str] = None
    until: Optional[str] = None
    has_attachment: Optional[bool] = None  # --has-attachment / --no-attachment
    types: Tuple[str, ...] = ()            # --type (detected type of an attachment; image/* allowed)
    findings: Tuple[str, ...] = ()         # --finding (problem or indicator code, or family prefix)
    custodians: Tuple[str, ...] = ()       # --custodian, as custodian_key()s: the words, folded, in any order
    seen_custodians: Dict[str, str] = field(default_factory=dict)   # key -> a name as written, while reading

    @classmethod
    def build(cls, senders=(), domains=(), since=None, until=None, has_attachment=False,
              no_attachment=False, types=(), findings=(), custodians=()) -> "Filters":
        if has_attachment and no_attachment:
            raise FilterError("--has-attachment and --no-attachment exclude each other")
        s = parse_bound(since, False) if since else None
        u = parse_bound(until, True) if until else None
        if s and u and s > u:
            raise FilterError("--since %s is after --until %s: nothing can match" % (since, until))
        for t in types:
            if "/" not in t:
                raise FilterError("bad --type %r: use a MIME type such as application/pdf or image/*" % t)
        for d in domains:
            if "@" in d or not d.strip("."):
                raise FilterError("bad --domain %r: give a domain such as example.org (use --from for an address)" % d)
        for a in senders:
            if "@" not in a:
                raise FilterError("bad --from %r: give an address such as alice@example.org (use --domain for a domain)" % a)
        return cls(tuple(a.strip().lower() for a in senders), tuple(d.strip().strip(".").lower() for d in domains),
                   s, u, True if has_attachment else (False if no_attachment else None),
                   tuple(t.strip().lower() for t in types), tuple(f.strip() for f in findings),
                   tuple(custodian_key(c) for c in custodians))

    def active(self) -> bool:
        return bool(self.senders or self.domains or self.since or self.until or self.has_attachment is not None
                    or self.types or self.findings or self.custodians)

    @property
    def message_level(self) -> bool:
        """Filters that need a message (a file-level problem cannot pass them)."""
        return bool(self.senders or self.domains or self.since or self.until or self.has_attachment is not None)

    # the message-level test, shared by all tables
    def custodian_ok(self, name: Optional[str]) -> bool:
        """--custodian matches the way search matches words: case, accents and ligatures folded,
        words in any order, punctuation ignored ("Julie Besancon" finds "BESANÇON_Julie")."""
        if not self.custodians:
            return True
        key = custodian_key(name or "")
        if name and key not in self.seen_custodians:
            self.seen_custodians[key] = name
        return key in self.custodians

    def unmatched_custodians(self) -> List[str]:
        """The --custodian values that matched no custodian of what was read, each with a hint."""
        out = []
        for want in self.custodians:
            if want in self.seen_custodians:
                continue
            names = sorted(set(self.seen_custodians.values()))
            words = set(want.split())
            best = max(names, key=lambda n: (len(words & set(custodian_key(n).split())), n), default=None)
            hint = ""
            if best is not None and words & set(custodian_key(best).split()):
                hint = "; did you mean %r?" % best
            elif names:
                hint = "; custodians: %s" % ", ".join(repr(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
            out.append("no custodian matches %r%s" % (want, hint))
        return out

    def message_ok(self, g: Group) -> bool:
        msg = g.head
        if self.custodians and not self.custodian_ok(g.custodian):
            return False
        if self.senders:
            if not set(_addrs(msg, "from", "sender")) & set(self.senders):
                return False
        if self.domains:
            doms = {_domain(a) for a in _addrs(msg, "from", "sender", "to", "cc", "bcc")}
            if not any(d == want or d.endswith("." + want) for d in doms for want in self.domains):
                return False
        if self.since or self.until:
            d = msg.get("date")
            if not d or (self.since and d < self.since) or (self.until and d > self.until):
                return False
        if self.has_attachment is not None:
            if bool(msg.get("attachments")) != self.has_attachment:
                return False
        return True

    def attachment_ok(self, part: dict) -> bool:
        if self.types and not any(_type_match(t, part.get("magic")) or _type_match(t, part.get("content_type"))
                                  for t in self.types):
            return False
        return True

    def message_findings(self, g: Group) -> List[str]:
        codes = list(g.head.get("problem_codes") or ())
        codes += [i.get("code") for i in g.head.get("indicators") or () if i.get("code")]
        codes += [p["code"] for p in g.problems]
        return codes

    def findings_ok(self, codes: Iterable[str]) -> bool:
        if not self.findings:
            return True
        return any(_code_match(f, c) for c in codes for f in self.findings)


# -- tables -----------------------------------------------------------------------------------------

def _join(addrs) -> List[str]:
    return [a.get("address") or a.get("name") or "" for a in addrs or ()]


def _first(addrs, key="address") -> Optional[str]:
    for a in addrs or ():
        return a.get(key)
    return None


MESSAGE_COLUMNS: Dict[str, Callable[[Group], object]] = {
    "locator": lambda g: g.head["locator"],
    "custodian": lambda g: g.custodian,
    "mailbox": lambda g: g.head.get("mailbox"),
    "source": lambda g: g.head.get("source"),
    "date": lambda g: g.head.get("date"),
    "from": lambda g: _first(g.head.get("from")),
    "from_name": lambda g: _first(g.head.get("from"), "name"),
    "to": lambda g: _join(g.head.get("to")),
    "cc": lambda g: _join(g.head.get("cc")),
    "bcc": lambda g: _join(g.head.get("bcc")),
    "subject": lambda g: g.head.get("subject"),
    "message_id": lambda g: g.head.get("message_id"),
    "in_reply_to": lambda g: g.head.get("in_reply_to"),
    "attachments": lambda g: g.head.get("attachments", 0),
    "attachment_names": lambda g: g.head.get("attachment_names"),
    "size": lambda g: g.head.get("length"),
    "sha256": lambda g: g.head.get("sha256"),
    "canonical_sha256": lambda g: g.head.get("canonical_sha256"),
    "md5": lambda g: g.head.get("md5"),
    "sha1": lambda g: g.head.get("sha1"),
    "problem_codes": lambda g: g.head.get("problem_codes"),
    "dkim": lambda g: g.head.get("dkim_summary"),
    "indicators": lambda g: sorted({i.get("code") for i in g.head.get("indicators") or () if i.get("code")}),
    "parent": lambda g: g.head.get("parent"),
    "offset": lambda g: g.head.get("offset"),
    "date_raw": lambda g: g.head.get("date_raw"),
}
MESSAGE_DEFAULT = ["locator", "custodian", "mailbox", "date", "from", "to", "cc", "subject", "message_id",
                   "attachments", "size", "sha256", "problem_codes", "dkim"]

ATTACHMENT_COLUMNS: Dict[str, Callable[[Group, dict], object]] = {
    "locator": lambda g, p: p["locator"],
    "message": lambda g, p: p.get("message"),
    "custodian": lambda g, p: g.custodian,
    "mailbox": lambda g, p: g.head.get("mailbox"),
    "date": lambda g, p: g.head.get("date"),
    "from": lambda g, p: _first(g.head.get("from")),
    "subject": lambda g, p: g.head.get("subject"),
    "filename": lambda g, p: p.get("filename"),
    "content_type": lambda g, p: p.get("content_type"),
    "magic": lambda g, p: p.get("magic"),
    "mismatch": lambda g, p: p.get("mismatch"),
    "size": lambda g, p: p.get("size"),
    "sha256": lambda g, p: p.get("sha256"),
    "md5": lambda g, p: p.get("md5"),
    "sha1": lambda g, p: p.get("sha1"),
    "disposition": lambda g, p: p.get("disposition"),
    "path": lambda g, p: p.get("path"),
    "problems": lambda g, p: sorted({q["code"] for q in g.problems if q["locator"] == p["locator"]}),
}
ATTACHMENT_DEFAULT = ["locator", "custodian", "date", "from", "subject", "filename", "content_type", "magic",
                      "mismatch", "size", "sha256"]

PROBLEM_COLUMNS: Dict[str, Callable[[Group, dict], object]] = {
    "locator": lambda g, p: p["locator"],
    "code": lambda g, p: p.get("code"),
    "severity": lambda g, p: p.get("severity"),
    "stage": lambda g, p: p.get("stage"),
    "message": lambda g, p: p.get("message"),
    "offset": lambda g, p: p.get("offset"),
    "length": lambda g, p: p.get("length"),
    "custodian": lambda g, p: g.custodian,
    "in_message": lambda g, p: g.head["locator"] if g.is_message else None,
    "detail": lambda g, p: p.get("detail"),
}
PROBLEM_DEFAULT = ["locator", "code", "severity", "stage", "message", "offset", "length", "custodian"]

TABLES = {
    "messages": (MESSAGE_COLUMNS, MESSAGE_DEFAULT),
    "attachments": (ATTACHMENT_COLUMNS, ATTACHMENT_DEFAULT),
    "problems": (PROBLEM_COLUMNS, PROBLEM_DEFAULT),
}


def choose_fields(table: str, fields: Optional[str]) -> List[str]:
    cols, default = TABLES[table]
    if not fields:
        return list(default)
    if fields.strip() == "all":
        return list(cols)
    out = []
    for f in fields.split(","):
        f = f.strip()
        if not f:
            continue
        if f not in cols:
            raise FilterError("unknown field %r for table %s; choose from: %s" % (f, table, ", ".join(cols)))
        if f not in out:
            out.append(f)
    if not out:
        raise FilterError("--fields is empty")
    return out


def check_filters_for(table: str, flt: Filters) -> None:
    """Filters that mean nothing for a table are errors, not silently ignored."""
    if table == "problems" and flt.types:
        raise FilterError("--type filters attachments or messages, not problems (use --finding CODE)")
    if table == "attachments" and flt.has_attachment is False:
        raise FilterError("--no-attachment with --table attachments can match nothing")


def rows(records: Iterable[dict], table: str, fields: Sequence[str], flt: Filters) -> Iterator[Dict[str, object]]:
    cols = TABLES[table][0]
    for g in groups(records):
        if table == "messages":
            if not g.is_message or not flt.message_ok(g):
                continue
            atts = [p for p in g.parts if p.get("attachment") and p.get("message") == g.head["locator"]]
            if flt.types and not any(flt.attachment_ok(p) for p in atts):
                continue
            if not flt.findings_ok(flt.message_findings(g)):
                continue
            yield {f: cols[f](g) for f in fields}
        elif table == "attachments":
            if not g.is_message or not flt.message_ok(g):
                continue
            for p in g.parts:
                if not p.get("attachment") or p.get("message") != g.head["locator"]:
                    continue
                if not flt.attachment_ok(p):
                    continue
                if flt.findings:
                    codes = [q["code"] for q in g.problems if q["locator"] == p["locator"]]
                    codes += ["type.mismatch_declared" if m == "declared-type" else "type.mismatch_extension"
                              for m in p.get("mismatch") or ()]
                    if not flt.findings_ok(codes):
                        continue
                yield {f: cols[f](g, p) for f in fields}
        else:
            for p in g.problems:
                if flt.message_level and not (g.is_message and flt.message_ok(g)):
                    continue
                if flt.custodians and not flt.custodian_ok(g.custodian):
                    continue
                if not flt.findings_ok([p["code"]]):
                    continue
                yield {f: cols[f](g, p) for f in fields}


# -- writers ----------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v, guard: bool) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        v = "; ".join("" if x is None else str(x) for x in v)
    elif isinstance(v, dict):
        v = json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    else:
        v = str(v)
    if guard and v and v[0] in _FORMULA and not _is_number(v):
        v = "'" + v
    return v


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def write(out: TextIO, rows_: Iterable[Dict[str, object]], fields: Sequence[str], fmt: str,
          formula_guard: bool = True) -> int:
    n = 0
    if fmt == "csv":
        w = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        w.writerow(fields)
        for r in rows_:
            w.writerow([_cell(r[f], formula_guard) for f in fields])
            n += 1
    elif fmt == "jsonl":
        for r in rows_:
            out.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    else:  # json: one array, streamed
        out.write("[")
        for r in rows_:
            out.write(("\n" if n == 0 else ",\n") + json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            n += 1
        out.write("\n]\n" if n else "]\n")
    return n
