"""Build or update the search database (SQLite + FTS5) from a manifest and its dump.

    build_index(manifest_path, dump_root, db_path) -> IndexStats
    index_scan(manifest_path, dump_root, db_path)  -> IndexStats   (what `scan --db` calls)

The schema is in leaktriage.search.schema, the text of a message in leaktriage.search.message_text,
the analyses that plug in (per message, in the workers; per dump, after every message is in) in
leaktriage.search.analysis. The manifest is read with the one reader (leaktriage.manifest.reader),
bytes come back through the one resolver (leaktriage.manifest.resolver), workers run in the one pool
(leaktriage.pool); each worker extracts attachment text in its own IsolatedExtractor (leaktriage.text).

The full-text index holds *folded* text (leaktriage.text.fold.index_text: case, accents, ligatures,
apostrophes); the messages table keeps the original text for display. Every extraction failure is a
row in `problems` (origin 'index', codes INDEX_CODES and leaktriage.text's TEXT_CODES).

Incremental: rows are keyed by locator; a message whose manifest record is unchanged is kept as is,
changed ones are re-indexed, vanished ones deleted; the dump-wide passes then run again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from leaktriage import leftovers
from leaktriage.errors import EXIT_SCHEMA, DumpError, LeaktriageError, raise_if_interrupted
from leaktriage.manifest import danger
from leaktriage.manifest.reader import Manifest, top_path
from leaktriage.manifest.resolver import Resolver, holds_any
from leaktriage.pool import default_workers, ordered
from leaktriage.search import analysis
from leaktriage.text.fold import FOLD_VERSION, index_text
from leaktriage.search.message_text import LIMITS, AttachmentResult, Job, MessageResult, extract_message
from leaktriage.search.schema import (FTS_COLUMNS, SCHEMA_VERSION, connect, extension, init_db, problem_code,
                                      short_type)

# --------------------------------------------------------------------------------------------
# The manifest, through the one reader (leaktriage.manifest.reader): every line is checked as
# everywhere else, and nothing is written to the database before the whole manifest has been read.

@dataclass
class ManifestContent:
    messages: List[dict] = field(default_factory=list)          # parsed: new or changed messages only
    parts: Dict[str, List[dict]] = field(default_factory=dict)  # parts of those messages
    members: Dict[str, List[dict]] = field(default_factory=dict)  # documents inside their attached archives
    problems: List[dict] = field(default_factory=list)
    mailboxes: List[dict] = field(default_factory=list)     # mailbox records (mailbox-wide indicators)
    digests: Dict[str, str] = field(default_factory=dict)   # locator -> sha1 of its JSON line (parsed ones)
    locators: List[str] = field(default_factory=list)       # every message locator, in manifest order
    unchanged: int = 0
    sha256: Optional[str] = None


_MSG_DROP = ("headers", "received", "references", "container_meta", "arc_sets")
# A JSON string cannot contain an unescaped quote, so these byte patterns only match real keys.
_STRING = re.compile(rb'\s*("(?:[^"\\]|\\.)*")')


def _string_value(line: bytes, key: bytes) -> Optional[str]:
    """The first top-level-looking string value of key in a compact JSON line, without parsing it."""
    i = line.find(b'"' + key + b'":')
    if i < 0:
        return None
    mo = _STRING.match(line, i + len(key) + 3)
    return json.loads(mo.group(1)) if mo else None


def read_manifest(path: str, known: Optional[Dict[str, str]] = None, allow_modified: bool = False) -> ManifestContent:
    """Read a manifest for the index. With `known` (locator -> line digest already indexed), message
    records whose line is unchanged are only counted, not parsed: a re-index of an unchanged dump
    stays cheap. Raises ManifestError / SchemaVersionError / IntegrityError like every command."""
    m = ManifestContent()
    known = known or {}
    want: set = set()
    man = Manifest(path, allow_modified=allow_modified)

    def first_pass(line: bytes) -> bool:
        if b'"record":"message"' in line:
            loc = _string_value(line, b"locator")
            if loc is not None and known.get(loc) == hashlib.sha1(line).hexdigest():
                m.locators.append(loc)        # the same line as indexed before: not decoded
                m.unchanged += 1
                return False
            return True
        return b'"record":"problem"' in line or b'"record":"mailbox"' in line

    for line, r in man.records(raw=True, want=first_pass):
        kind = r["record"]
        if kind == "message":
            loc = r["locator"]
            m.locators.append(loc)
            for k in _MSG_DROP:
                r.pop(k, None)
            m.messages.append(r)
            m.digests[loc] = hashlib.sha1(line).hexdigest()
            want.add(loc)
        elif kind == "problem":
            m.problems.append(r)
        elif kind == "mailbox":
            m.mailboxes.append(r)
    m.sha256 = man.sha256
    if want:
        messages = set(m.locators)

        def second_pass(line: bytes) -> bool:
            if b'"record":"part"' in line:
                ref = _string_value(line, b"message")
                return ref is None or ref in want
            # a file inside a message: a member of an attached archive (X#1.3!zip:report.docx)
            return b'"record":"file"' in line and b"#" in line

        for r in man.records(want=second_pass):
            kind = r["record"]
            if kind == "part" and r.get("message") in want:
                p = {k: r[k] for k in _PART_KEEP if k in r}
                if r["locator"] in messages:
                    p["is_message"] = True    # an attached message: indexed as a message of its own
                m.parts.setdefault(r["message"], []).append(p)
            elif kind == "file" and "#" in r["locator"] and r["locator"] not in messages:
                owner = owner_locator(messages, r["locator"])
                if owner in want:
                    m.members.setdefault(owner, []).append({k: r[k] for k in _MEMBER_KEEP if k in r})
    return m


def owner_locator(messages, loc: str) -> Optional[str]:
    """The locator of the message an item is in: the item itself, or the nearest enclosing message
    (X#1.2.1 -> X#1.2 (an attached message) -> X; X#1.3!zip:a.eml#1.2!zip:b.pdf -> X#1.3!zip:a.eml)."""
    while True:
        if loc in messages:
            return loc
        base, sep, pp = loc.rpartition("#")
        if sep and "!" not in pp:
            loc = base + "#" + pp.rpartition(".")[0] if "." in pp else base
        elif "!" in loc:
            loc = loc[:loc.rindex("!")]
        else:
            return None


def _addr_text(lst: Optional[list]) -> str:
    out = []
    for a in lst or ():
        name, addr = a.get("name"), a.get("address")
        if name and addr:
            out.append("%s <%s>" % (name, addr))
        elif addr or name:
            out.append(addr or name)
        elif a.get("group"):
            out.append(a["group"])
    return ", ".join(out)


# --------------------------------------------------------------------------------------------
# The database

@dataclass
class IndexStats:
    messages: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    problems: int = 0
    text_failures: int = 0          # problem rows written by this run (origin 'index')
    attachments: int = 0            # attachments and archive members indexed by this run
    attachments_with_text: int = 0
    text_codes: Dict[str, int] = field(default_factory=dict)   # problem code -> rows written by this run
    seconds: float = 0.0
    db_bytes: int = 0
    rebuilt: bool = False

    def as_dict(self):
        return dict(self.__dict__)


def _fts_values(row) -> tuple:
    return tuple(index_text(v or "") for v in row)


def _message_row(r: dict, res: MessageResult, digest: str, att_text: Optional[str], risks, types) -> dict:
    frm = r.get("from") or r.get("sender") or []
    first = frm[0] if frm else {}
    date = r.get("date")
    names = r.get("attachment_names") or []
    return {
        "locator": r["locator"], "sha256": r.get("sha256") or "", "canonical_sha256": r.get("canonical_sha256"),
        "unquoted_sha256": r.get("unquoted_sha256"), "source": r.get("source"), "custodian": r.get("custodian"),
        "mailbox": r.get("mailbox"), "date": date, "month": date[:7] if date else None,
        "date_raw": r.get("date_raw"), "subject": r.get("subject"),
        "from_address": (first.get("address") or "").lower() or None, "from_name": first.get("name"),
        "from_text": _addr_text((r.get("from") or []) + (r.get("sender") or [])),
        "to_text": _addr_text(r.get("to")),
        "cc_text": _addr_text((r.get("cc") or []) + (r.get("bcc") or [])),
        "header_message_id": r.get("message_id"),
        "in_reply_to": " ".join(r.get("in_reply_to") or []) or None,
        "size": r.get("length"), "parts": r.get("parts"),
        "attachment_count": r.get("attachments") or 0,
        "attachment_names": "\n".join(names) or None,
        "attachment_types": json.dumps(types) if types else None,
        "dkim": r.get("dkim_summary") or ("none" if "dkim" in r else None),
        "risk": " ".join(risks) or None,
        "problem_codes": " ".join(r.get("problem_codes") or []) or None,
        "body": res.body, "attachment_text": att_text or None, "text_status": res.status, "record_sha1": digest,
    }


_MSG_COLS = ("locator", "sha256", "canonical_sha256", "unquoted_sha256", "source", "custodian", "mailbox",
             "date", "month", "date_raw", "subject", "from_address", "from_name", "from_text", "to_text",
             "cc_text", "header_message_id", "in_reply_to", "size", "parts", "attachment_count",
             "attachment_names", "attachment_types", "dkim", "risk", "problem_codes", "body", "attachment_text",
             "text_status", "record_sha1")
_INS_MSG = "INSERT INTO messages (email_id, %s) VALUES (?, %s)" % (", ".join(_MSG_COLS), ",".join("?" * len(_MSG_COLS)))
_INS_FTS = "INSERT INTO messages_fts(rowid, %s) VALUES (?, %s)" % (", ".join(FTS_COLUMNS), ",".join("?" * len(FTS_COLUMNS)))
_ATT_COLS = ("message_id", "locator", "part", "inside", "filename", "extension", "type", "content_type", "magic",
             "size", "sha256", "mismatch", "risk", "text_status", "text_format", "text_chars", "text_pages",
             "text_codes")
_INS_ATT = "INSERT INTO attachments (%s) VALUES (%s)" % (", ".join(_ATT_COLS), ",".join("?" * len(_ATT_COLS)))
_INS_PROB = ("INSERT INTO problems (message_id, locator, code, severity, stage, origin, description, byte_offset,"
             " detail) VALUES (?,?,?,?,?,?,?,?,?)")
_INS_FINDING = ("INSERT INTO findings (message_id, kind, code, severity, domain, selector, explanation, detail) "
                "VALUES (?,?,?,?,?,?,?,?)")


def _delete_messages(con: sqlite3.Connection, ids: List[int]) -> None:
    cols = ", ".join(FTS_COLUMNS)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = ",".join("?" * len(chunk))
        rows = con.execute("SELECT id, %s FROM messages WHERE id IN (%s)" % (cols, q), chunk).fetchall()
        con.executemany("INSERT INTO messages_fts(messages_fts, rowid, %s) VALUES ('delete', ?, %s)"
                        % (cols, ",".join("?" * len(FTS_COLUMNS))),
                        [(row[0],) + _fts_values(row[1:]) for row in rows])
        con.execute("DELETE FROM messages WHERE id IN (%s)" % q, chunk)


def _email_id(con, r: dict) -> int:
    """The email a message is a copy of: its same-email group (the scan's canonical_sha256)."""
    key = r.get("canonical_sha256") or ("locator:" + r["locator"])
    con.execute("INSERT OR IGNORE INTO emails (key) VALUES (?)", (key,))
    return con.execute("SELECT id FROM emails WHERE key = ?", (key,)).fetchone()[0]


def _insert_message(con, r: dict, res: MessageResult, digest: str, att_text: str, risks, types) -> int:
    row = _message_row(r, res, digest, att_text, risks, types)
    mid = con.execute(_INS_MSG, [_email_id(con, r)] + [row[c] for c in _MSG_COLS]).lastrowid
    con.execute(_INS_FTS, [mid] + [index_text(row[c] or "") for c in FTS_COLUMNS])
    addr_rows = []
    for role in ("from", "sender", "reply_to", "to", "cc", "bcc"):
        for pos, a in enumerate(r.get(role) or ()):
            addr = (a.get("address") or "").strip().lower() or None
            dom = addr.rpartition("@")[2] if addr and "@" in addr else None
            addr_rows.append((mid, role, pos, a.get("name") or a.get("group"), addr, dom))
    if addr_rows:
        con.executemany("INSERT INTO addresses (message_id, role, position, name, address, domain) "
                        "VALUES (?,?,?,?,?,?)", addr_rows)
    return mid


def _attachment_row(mid: int, rec: dict, ar: Optional[AttachmentResult]) -> tuple:
    member = rec.get("record") == "file"
    fn = rec.get("filename") if not member else (rec.get("path") or "").rpartition("/")[2] or None
    ar = ar or AttachmentResult()
    return (mid, rec["locator"], None if member else rec.get("path"), rec.get("parent") if member else None, fn,
            extension(fn), short_type(rec.get("magic"), rec.get("content_type"), fn), rec.get("content_type"),
            rec.get("magic"), rec.get("size"), rec.get("sha256"), " ".join(rec.get("mismatch") or []) or None,
            ar.risk, ar.status, ar.format, ar.chars, ar.pages, " ".join(ar.codes) or None)


def _finding_rows(mid: int, r: dict):
    for s in r.get("dkim") or ():
        yield (mid, "dkim", s.get("verdict") or "unknown", None, s.get("d"), s.get("s"), s.get("reason"),
               json.dumps(s, sort_keys=True, ensure_ascii=False, default=str))
    arc = r.get("arc")
    if isinstance(arc, dict) and arc.get("verdict") and arc.get("verdict") != "none":
        yield (mid, "arc", arc["verdict"], None, None, None, arc.get("reason"),
               json.dumps(arc, sort_keys=True, ensure_ascii=False, default=str))
    for ind in r.get("indicators") or ():
        yield (mid, "indicator", ind.get("code") or "unknown", ind.get("severity"), None, None,
               ind.get("explanation"), json.dumps(ind.get("evidence"), sort_keys=True, ensure_ascii=False, default=str))


def _mailbox_rows(ids: Dict[str, int], mailboxes: List[dict]):
    for box in mailboxes:
        for ind in box.get("indicators") or ():
            ev = ind.get("evidence") or {}
            detail = json.dumps(dict(ev, mailbox=box.get("locator")), sort_keys=True, ensure_ascii=False, default=str)
            for loc in ev.get("messages") or ():
                mid = ids.get(loc)
                if mid is not None:
                    yield (mid, "mailbox", ind.get("code") or "unknown", ind.get("severity"), None, None,
                           ind.get("explanation"), detail)


def _db_state(db_path: str, signature: str) -> str:
    """'absent', 'current' (same schema: update in place), 'old' (rebuild) or 'newer' (refuse)."""
    if not os.path.exists(db_path):
        return "absent"
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return "old"
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        return "old"
    if version > SCHEMA_VERSION:
        return "newer"
    if version != SCHEMA_VERSION or meta.get("fold_version") != str(FOLD_VERSION) or meta.get("complete") == "no" \
            or meta.get("analyses", "") != signature:
        return "old"
    return "current"


def build_index(manifest_path: str, dump_root: str, db_path: str, *, workers: int = 0,
                attachment_text: bool = True, progress=None, allow_modified: bool = False,
                analyses: Optional[Sequence[analysis.MessageAnalysis]] = None,
                passes: Optional[Sequence[analysis.DumpPass]] = None) -> IndexStats:
    """Create or update db_path from the manifest and the dump it describes.

    Nothing is changed before the whole manifest has been read and checked. A new (or rebuilt)
    database is written under a temporary name and renamed when complete; an existing one is
    updated in one transaction. Interrupted (Ctrl-C) or failed, the database is as it was.
    analyses / passes: the per-message analyses and dump-wide passes to run (default: those of
    leaktriage.search.analysis)."""
    t0 = time.monotonic()
    analyses = tuple(analysis.message_analyses() if analyses is None else analyses)
    passes = tuple(analysis.dump_passes() if passes is None else passes)
    signature = analysis.signature(analyses, passes) + ("" if attachment_text else " no-attachment-text")
    stats = IndexStats()
    state = _db_state(db_path, signature)
    if state == "newer":
        raise LeaktriageError("%s was built by a newer leaktriage (search schema newer than %d): upgrade "
                              "leaktriage, or index into another file" % (db_path, SCHEMA_VERSION), EXIT_SCHEMA)
    existing: Dict[str, tuple] = {}
    if state == "current":
        con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        try:
            existing = {loc: (i, sha, dig) for i, loc, sha, dig in
                        con.execute("SELECT id, locator, sha256, record_sha1 FROM messages")}
        finally:
            con.close()
    # a message is unchanged when its manifest line is byte-identical (same sha256, same facts)
    man = read_manifest(manifest_path, {loc: v[2] for loc, v in existing.items()}, allow_modified)
    if dump_root and not holds_any(dump_root, man.locators):
        # every message would be index.bytes_unavailable: an index of headers only, whose spheres and
        # personal data would be judged on nothing (and trusted by export --exclude-sphere)
        raise DumpError("none of the files the manifest's messages come from is in %s: is it the dump this "
                        "manifest was made from? (pass it with --dump)" % dump_root)
    stats.rebuilt = state == "old"
    if state == "current":
        target = db_path
    else:
        # left by an index killed by SIGTERM or kill -9 (Ctrl-C removes its own), each as big as an index
        leftovers.remove_left_by_dead(os.path.dirname(os.path.abspath(db_path)), os.path.basename(db_path) + ".building-")
        target = "%s.building-%s" % (db_path, leftovers.owner())
        if os.path.lexists(target):
            os.unlink(target)
    con = connect(target)
    con.isolation_level = None          # transactions are explicit: one for the whole update
    try:
        if state != "current":
            con.execute("PRAGMA journal_mode = OFF")   # a temporary file: discarded if anything fails
            con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA cache_size = -200000")
        init_db(con, [x.schema for x in analyses + passes if x.schema])
        con.execute("BEGIN")
        _fill(con, man, existing, stats, manifest_path, dump_root, workers, attachment_text, progress, analyses)
        _write_meta(con, manifest_path, dump_root, man.sha256, signature, workers)   # passes may read it
        for p in passes:
            p.run(con)
        stats.problems = con.execute("SELECT count(*) FROM problems").fetchone()[0]
        raise_if_interrupted()          # a Ctrl-C swallowed by an interpreter callback: nothing is committed
        con.execute("COMMIT")
        if stats.added or stats.updated or stats.removed:
            con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
            con.execute("ANALYZE")
        con.close()
    except BaseException:
        try:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()
        finally:
            if target != db_path and os.path.lexists(target):
                os.unlink(target)
        raise
    if target != db_path:
        try:
            raise_if_interrupted()
        except KeyboardInterrupt:
            os.unlink(target)
            raise
        os.replace(target, db_path)
    stats.seconds = round(time.monotonic() - t0, 3)
    stats.db_bytes = os.path.getsize(db_path)
    return stats


def _write_meta(con, manifest_path: str, dump_root: str, sha256: Optional[str], signature: str,
                workers: int = 0) -> None:
    meta = {"schema_version": SCHEMA_VERSION, "fold_version": FOLD_VERSION, "workers": workers or 0,
            "manifest": os.path.abspath(manifest_path), "manifest_sha256": sha256,
            "dump": os.path.abspath(dump_root), "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "analyses": signature, "complete": "yes"}
    con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])


def _fill(con, man: ManifestContent, existing: Dict[str, tuple], stats: IndexStats, manifest_path: str,
          dump_root: str, workers: int, attachment_text: bool, progress, analyses) -> None:
    seen = set(man.locators)
    stats.messages = len(seen)
    stats.unchanged = man.unchanged
    todo: List[dict] = []
    queued = set()
    for r in man.messages:
        loc = r["locator"]
        if loc in queued:
            continue
        queued.add(loc)
        if loc in existing:
            stats.updated += 1
        else:
            stats.added += 1
        todo.append(r)
    gone = [v[0] for loc, v in existing.items() if loc not in seen]
    stats.removed = len(gone)
    _delete_messages(con, gone + [existing[r["locator"]][0] for r in todo if r["locator"] in existing])
    by_loc = {r["locator"]: r for r in todo}
    by_name = {a.name: a for a in analyses}
    codes: Counter = Counter()

    def problem(mid, loc, code, message, detail):
        sev = problem_code(code)[0]
        con.execute(_INS_PROB, (mid, loc, code, sev, "index", "index", message, None,
                                json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else None))
        codes[code] += 1

    for job, res, reused in _extract_all(todo, man, dump_root, workers, attachment_text, progress, analyses):
        loc = res.locator
        r = by_loc.pop(loc)
        atts = [p for p in job.parts if p.get("attachment")] + job.members
        results = {a["locator"]: reused.get(a["locator"]) or res.attachments.get(a["locator"]) for a in atts}
        texts = [results[a["locator"]].text for a in atts if results[a["locator"]] and results[a["locator"]].text]
        for a in atts:     # bytes not read (--no-attachment-text, unreadable): the manifest's type and name
            if results[a["locator"]] is None or (results[a["locator"]].status is None and not results[a["locator"]].risk):
                rk = danger.classify(a.get("magic"), a.get("filename") or a.get("path"))
                if rk:
                    results[a["locator"]] = AttachmentResult(risk=rk, problems=list(
                        results[a["locator"]].problems if results[a["locator"]] else []))
        risks = sorted({x.risk for x in results.values() if x and x.risk})
        types = sorted({t for t in (short_type(a.get("magic"), a.get("content_type"), a.get("filename"))
                                    for a in atts) if t})
        mid = _insert_message(con, r, res, man.digests.get(loc), "\n\n".join(texts), risks, types)
        con.executemany(_INS_ATT, [_attachment_row(mid, a, results[a["locator"]]) for a in atts])
        stats.attachments += len(atts)
        stats.attachments_with_text += sum(1 for a in atts if results[a["locator"]] and results[a["locator"]].text)
        con.executemany(_INS_FINDING, list(_finding_rows(mid, r)))
        for ploc, code, message, detail in res.problems:
            problem(mid, ploc, code, message, detail)
        for a in atts:
            ar = results[a["locator"]]
            for code, message, detail in (ar.problems if ar else ()):
                problem(mid, a["locator"], code, message, detail)
        for name, result in res.analyses.items():
            by_name[name].store(con, mid, result)
    stats.text_failures = sum(codes.values())
    stats.text_codes = dict(sorted(codes.items()))
    # scan problems: replaced wholesale (cheap), linked to their message when they are inside one
    con.execute("DELETE FROM problems WHERE origin = 'scan'")
    ids = dict(con.execute("SELECT locator, id FROM messages"))
    rows = []
    for p in man.problems:
        ploc = p["locator"]
        owner = ids.get(owner_locator(ids, ploc) or "")
        rows.append((owner, ploc, p.get("code"), p.get("severity"), p.get("stage"), "scan", p.get("message"),
                     p.get("offset"), json.dumps(p["detail"], sort_keys=True, ensure_ascii=False)
                     if p.get("detail") else None))
    con.executemany(_INS_PROB, rows)
    # mailbox-wide indicators: replaced wholesale too, one row per message carrying the evidence
    con.execute("DELETE FROM findings WHERE kind = 'mailbox'")
    con.executemany(_INS_FINDING, list(_mailbox_rows(ids, man.mailboxes)))


def _extract_all(todo: List[dict], man: ManifestContent, dump_root: str, workers: int, with_attachments: bool,
                 progress=None, analyses=()):
    """Yield (job, MessageResult, {locator: reused AttachmentResult}) per message, in batch order.

    Each content (SHA-256) is extracted once: for the first message that holds it; later copies get
    that result handed over here (kept only until its last copy is inserted)."""
    if not todo:
        return
    # batches follow the dump layout: messages of one top-level file stay together (one read, one unzip)
    groups: "OrderedDict[str, List[Job]]" = OrderedDict()
    for r in todo:
        groups.setdefault(top_path(r["locator"]), []).append(
            Job(_slim(r), man.parts.get(r["locator"], []), man.members.get(r["locator"], [])))
    batches: List[List[Job]] = []
    for items in groups.values():
        for i in range(0, len(items), 200):
            batches.append(items[i:i + 200])
    # the extraction plan, in the order results come back: the first copy of each content is extracted
    first: Dict[str, str] = {}             # sha256 -> locator of its first copy
    later: Counter = Counter()             # sha256 -> copies after the first
    for batch in batches if with_attachments else ():
        for job in batch:
            reuse = set()
            for a in [p for p in job.parts if p.get("attachment")] + job.members:
                sha = a.get("sha256")
                if not sha or a.get("is_message"):
                    continue
                if sha in first:
                    reuse.add(a["locator"])
                    later[sha] += 1
                else:
                    first[sha] = a["locator"]
            job.reuse = frozenset(reuse)
    kept: Dict[str, AttachmentResult] = {}
    if workers is None or workers <= 0:
        workers = default_workers()
    if len(todo) < 200:
        workers = 1
    done = 0
    try:
        for batch, results in zip(batches, ordered(_worker_run, batches, workers, _worker_init,
                                                   (dump_root, with_attachments, tuple(analyses)),
                                                   on_died=_worker_died)):
            for job, res in zip(batch, results):
                reused: Dict[str, AttachmentResult] = {}
                for a in [p for p in job.parts if p.get("attachment")] + job.members:
                    sha, aloc = a.get("sha256"), a["locator"]
                    if aloc in job.reuse:
                        got = kept.get(sha)
                        reused[aloc] = got if got is not None else AttachmentResult(problems=[(
                            "index.text_not_extracted", "its first copy %s could not be read" % first[sha], None)])
                        later[sha] -= 1
                        if later[sha] <= 0:
                            kept.pop(sha, None)
                    elif sha and later.get(sha) and aloc in res.attachments and res.attachments[aloc].status:
                        kept[sha] = res.attachments[aloc]
                yield job, res, reused
            done += len(batch)
            if progress:
                progress(done, len(todo))
    finally:
        _worker_close()


_WORKER: Dict[str, object] = {}


def _worker_init(dump_root: str, with_attachments: bool, analyses=()):
    _WORKER["resolver"] = Resolver(dump_root, budget=256 << 20)
    _WORKER["att"] = with_attachments
    _WORKER["analyses"] = analyses
    _WORKER["extractor"] = None


def _extractor():
    ex = _WORKER.get("extractor")
    if ex is None:
        import multiprocessing
        from leaktriage.text import IsolatedExtractor
        # forked from this (single-threaded) worker: no re-import, and no re-run of a caller's script
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ex = _WORKER["extractor"] = IsolatedExtractor(LIMITS, start_method=method)
    return ex


def _worker_run(batch: List[Job]) -> List[MessageResult]:
    resolver = _WORKER["resolver"]
    ex = _extractor() if _WORKER["att"] else None
    return [extract_message(resolver, job, ex, _WORKER["analyses"], _WORKER["att"]) for job in batch]


def _worker_close() -> None:
    """The extractor of this process, when the work ran here (workers <= 1)."""
    ex = _WORKER.pop("extractor", None)
    if ex is not None:
        ex.close()


def _worker_died(batch: List[Job], _exitcode=None) -> List[MessageResult]:
    return [MessageResult(job.msg["locator"], None, "bytes_unavailable",
                          [(job.msg["locator"], "index.bytes_unavailable", "the process reading it died", None)])
            for job in batch]


_MSG_KEEP = ("locator", "offset", "length", "sha256", "unquoted_sha256", "mbox", "reconstructed", "date", "subject",
             "from", "sender", "to", "cc", "bcc", "custodian", "mailbox", "message_id", "in_reply_to", "source")
_PART_KEEP = ("locator", "path", "content_type", "cte", "charset", "charset_declared", "charset_source", "body_offset",
              "body_length", "attachment", "uu_offset", "size", "magic", "filename", "sha256", "mismatch",
              "replaced_bytes")
_MEMBER_KEEP = ("record", "locator", "parent", "path", "kind", "magic", "size", "sha256", "status", "encrypted")


def _slim(r: dict) -> dict:
    return {k: r[k] for k in _MSG_KEEP if k in r}


def index_scan(manifest_path: str, dump_root: str, db_path: str, **kw) -> IndexStats:
    """Index a freshly written manifest (what `scan --db` calls)."""
    return build_index(manifest_path, dump_root, db_path, **kw)
