"""The conversation analyses of the index (issue #16): threads, corroboration of copies,
near-duplicates and correspondents, written into the search database (see docs/conversations.md).

    DocumentTexts   a MessageAnalysis (index workers): keeps the extracted text of each attachment
                    (compressed, first copy of each content only) for the near-duplicate pass
    Conversations   a DumpPass (main process, after every message is in): reads the manifest the index
                    was built from (meta `manifest`: the fields the index does not keep, References,
                    Thread-Index, preamble/epilogue, part offsets) and rewrites, wholesale:
                      messages.thread_id / parent / parent_locator / parent_missing / thread_method /
                      thread_depth / thread_key, tables threads, thread_gaps, copy_groups, message_copies, findings of kind 'copy'
                      (copy.contradiction, copy.corroborated, copy.message_id_reused),
                      near_duplicate_groups, near_duplicates, persons, person_addresses, person_edges.

Texts: bodies for near-duplicates are the index's own `messages.body`; the copies that corroboration
compares get their body parts (and text/* attachments) decoded here, through the one resolver and the
charsets the scan chose (leaktriage.manifest.mailtext), part by part, since plain and HTML bodies are
compared apart. Everything is keyed by locator and sorted: the rows are the same whatever the worker
count of the index.

The pass is skipped when the manifest and the set of indexed messages are those it last ran on (meta
`conversations_input`), so re-indexing an unchanged dump stays cheap; meta `conversations_seconds`
records the time of each stage of its last run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zlib
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

from leaktriage.conversations.people import SQL as PEOPLE_SQL   # the correspondents' tables, as the library writes them

DOC_SCHEMA = """
CREATE TABLE IF NOT EXISTS document_texts (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    locator TEXT NOT NULL,
    sha256 TEXT,
    text BLOB
);
CREATE INDEX IF NOT EXISTS document_texts_message ON document_texts(message_id);
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    subject TEXT,
    messages INTEGER,
    emails INTEGER,
    missing INTEGER,
    first_date TEXT,
    last_date TEXT,
    custodians TEXT,
    depth INTEGER,
    methods TEXT,
    root TEXT,
    root_locator TEXT,
    root_missing INTEGER,
    missing_ids TEXT
);
CREATE INDEX IF NOT EXISTS threads_first_date ON threads(first_date);
CREATE TABLE IF NOT EXISTS thread_gaps (
    thread_id TEXT NOT NULL,
    key TEXT NOT NULL,
    parent TEXT
);
CREATE INDEX IF NOT EXISTS thread_gaps_thread ON thread_gaps(thread_id);
CREATE TABLE IF NOT EXISTS copy_groups (
    id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    copies INTEGER,
    variants INTEGER,
    independent_custodians INTEGER,
    differing_parts TEXT,
    custodians TEXT,
    header_message_id TEXT,
    record TEXT
);
CREATE INDEX IF NOT EXISTS copy_groups_verdict ON copy_groups(verdict);
CREATE TABLE IF NOT EXISTS message_copies (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    copy_group TEXT NOT NULL REFERENCES copy_groups(id),
    variant INTEGER,
    role TEXT,
    custodian TEXT,
    locator TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_copies_message ON message_copies(message_id);
CREATE INDEX IF NOT EXISTS message_copies_group ON message_copies(copy_group);
CREATE TABLE IF NOT EXISTS near_duplicate_groups (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    texts INTEGER,
    messages INTEGER,
    similarity_min REAL,
    similarity_max REAL,
    threshold REAL,
    record TEXT
);
CREATE TABLE IF NOT EXISTS near_duplicates (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    near_group TEXT NOT NULL REFERENCES near_duplicate_groups(id),
    kind TEXT NOT NULL,
    locator TEXT NOT NULL,
    text_key TEXT
);
CREATE INDEX IF NOT EXISTS near_duplicates_message ON near_duplicates(message_id);
CREATE INDEX IF NOT EXISTS near_duplicates_group ON near_duplicates(near_group);
""" + PEOPLE_SQL + """
CREATE INDEX IF NOT EXISTS person_edges_target ON person_edges(target);
"""

# what the pass keeps of a manifest message / part record
_MSG_KEYS = ("locator", "message_id", "in_reply_to", "references", "subject", "date", "custodian", "mailbox",
             "source", "from", "sender", "to", "cc", "bcc", "canonical_sha256", "dkim_summary", "reconstructed",
             "offset", "length", "sha256", "unquoted_sha256", "mbox", "line_endings")
_PART_KEYS = ("locator", "message", "path", "content_type", "attachment", "filename", "sha256", "charset",
              "charset_declared", "charset_source", "body_offset", "body_length", "cte", "uu_offset", "preamble",
              "epilogue", "replaced_bytes")
_THREAD_HEADERS = ("thread-index", "thread-topic")


def _json(v) -> str:
    return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------------------------
# per message, in the index workers: the text of each attachment, for near-duplicates

class DocumentTexts:
    """Keeps each attachment's extracted text (zlib, first copy of each content: later copies of the
    same bytes come as "reused" and are found through attachments.sha256)."""

    name = "document-texts"
    version = 1
    schema = DOC_SCHEMA

    def analyse(self, msg):
        out = []
        for a in msg.attachments:
            if a.text and a.text.strip():
                out.append((a.locator, a.sha256, zlib.compress(a.text.encode("utf-8", "surrogatepass"), 6)))
        return out

    def store(self, con: sqlite3.Connection, message_id: int, result) -> None:
        if result:
            con.executemany("INSERT INTO document_texts (message_id, locator, sha256, text) VALUES (?, ?, ?, ?)",
                            [(message_id,) + tuple(r) for r in result])


def document_text(blob) -> Optional[str]:
    if blob is None:
        return None
    return zlib.decompress(blob).decode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------------------------
# per dump

def read_messages(manifest_path: str, wanted: Iterable[str]) -> List[dict]:
    """The manifest's message records of the messages in `wanted` (the index's), reduced to what
    the conversation analyses use, sorted by locator."""
    from leaktriage.manifest.reader import Manifest
    wanted = set(wanted)
    msgs: List[dict] = []
    # the build has just read and checked this manifest (digest included): not checked twice
    for r in Manifest(manifest_path, allow_modified=True).records(want=lambda line: b'"record":"message"' in line):
        if r.get("record") == "message" and r.get("locator") in wanted:
            d = {k: r[k] for k in _MSG_KEYS if k in r}
            d["headers"] = [h for h in r.get("headers") or () if isinstance(h, dict)
                            and str(h.get("name", "")).lower() in _THREAD_HEADERS]
            msgs.append(d)
    msgs.sort(key=lambda m: m["locator"])
    return msgs


_MESSAGE_FIELD = re.compile(rb'"message":("(?:[^"\\]|\\.)*")')


def read_parts(manifest_path: str, of: Iterable[str]) -> Dict[str, List[dict]]:
    """{message locator: its part records, reduced} for the messages in `of` only (the copies to
    compare): the parts of the other messages are never decoded nor kept."""
    from leaktriage.manifest.reader import Manifest
    of = set(of)
    parts: Dict[str, List[dict]] = {}
    if not of:
        return parts

    def want(line: bytes) -> bool:
        if b'"record":"part"' not in line:
            return False
        mo = _MESSAGE_FIELD.search(line)
        return mo is None or json.loads(mo.group(1)) in of

    for r in Manifest(manifest_path, allow_modified=True).records(want=want):
        if r.get("record") == "part" and r.get("message") in of:
            parts.setdefault(r["message"], []).append({k: r[k] for k in _PART_KEYS if k in r})
    return parts


class _BodyTexts:
    """Decoded texts of a message's body parts and text/* attachments (HTML as HTML), through the
    resolver (with the index workers' cache budget: an archive is read once for its messages, which
    come in locator order); the last KEEP messages decoded are kept (corroboration then asks for the
    differing passages of the copies of one email in turn)."""

    KEEP = 4

    def __init__(self, dump_root: Optional[str]):
        self.resolver = None
        if dump_root:
            from leaktriage.manifest.resolver import Resolver
            self.resolver = Resolver(dump_root, budget=96 << 20)
        self.kept: "OrderedDict[str, Dict[str, str]]" = OrderedDict()

    def texts(self, msg: dict, parts: List[dict]) -> Dict[str, str]:
        got = self.kept.get(msg["locator"])
        if got is not None:
            self.kept.move_to_end(msg["locator"])
            return got
        out: Dict[str, str] = {}
        want = [p for p in parts if "body_offset" in p and "uu_offset" not in p and (
            (not p.get("attachment") and p.get("content_type") in ("text/plain", "text/html"))
            or (p.get("attachment") and str(p.get("content_type") or "").startswith("text/")))]
        if want and self.resolver is not None:
            from leaktriage.manifest.mailtext import part_text
            try:
                data = self.resolver.message(msg, unquoted=True)
            except Exception:  # noqa: BLE001 - unreadable now: compared by the parts' digests instead
                data = None
            if data is not None:
                for p in want:
                    try:
                        out[p["locator"]] = part_text(data, p)[0]
                    except Exception:  # noqa: BLE001 - a damaged part: its digest is compared
                        pass
        self.kept[msg["locator"]] = out
        if len(self.kept) > self.KEEP:
            self.kept.popitem(last=False)
        return out


_WORKER: Dict[str, object] = {}


def _meta_value(con, key: str) -> Optional[str]:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _copies_init(dump_root: Optional[str]) -> None:
    _WORKER["bodies"] = _BodyTexts(dump_root)


def _copies_batch(batch: List[tuple]) -> list:
    """[(Copy, {part locator: decoded text})] of a batch of (message record, part records)."""
    from leaktriage.conversations.copies import Copy
    bodies = _WORKER["bodies"]
    out = []
    for m, ps in batch:
        texts = bodies.texts(m, ps)
        out.append((Copy.from_records(m, ps, texts), texts))
    return out


def _copies_died(batch: List[tuple], _exitcode=None) -> list:
    """A worker died on this batch: its copies are compared by the digests of their parts."""
    from leaktriage.conversations.copies import Copy
    return [(Copy.from_records(m, ps, {}), {}) for m, ps in batch]


class Conversations:
    """Threads, corroboration of copies, near-duplicates, correspondents (see the module docstring)."""

    name = "conversations"
    version = 1
    PARALLEL_MIN = 400                 # copies to compare before worker processes are worth starting
    schema = DOC_SCHEMA + SCHEMA     # document_texts too: without DocumentTexts, it is just empty

    def __init__(self, threshold=None, workers: Optional[int] = None, neardup_workers: int = 1):
        self.threshold = threshold      # near-duplicates: None = the library's THRESHOLDS
        self.workers = workers          # processes decoding the copies (None: index --workers, at most 4)
        self.neardup_workers = neardup_workers

    def run(self, con: sqlite3.Connection) -> None:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        ids = dict(con.execute("SELECT locator, id FROM messages"))
        h = hashlib.sha256()
        for loc in sorted(ids):
            h.update(loc.encode("utf-8", "surrogatepass") + b"\x00")
        stamp = "%s %s %s" % (meta.get("manifest_sha256"), h.hexdigest(), self.version)
        if meta.get("conversations_input") == stamp and meta.get("manifest_sha256"):
            return
        manifest = meta.get("manifest")
        seconds = {}
        t0 = time.monotonic()
        msgs = read_messages(manifest, ids) if manifest else []
        for stage, run in (("read", None), ("threads", lambda: self.threads(con, msgs, ids)),
                           ("copies", lambda: self.copies(con, msgs, manifest, ids, meta.get("dump"))),
                           ("near_duplicates", lambda: self.near(con, ids)), ("correspondents", lambda: self.people(con, msgs))):
            if run is not None:
                run()
            t1 = time.monotonic()
            seconds[stage] = round(t1 - t0, 2)
            t0 = t1
        con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        [("conversations_input", stamp), ("conversations_seconds", _json(seconds))])

    # threads ---------------------------------------------------------------------------------
    def threads(self, con, msgs: List[dict], ids: Dict[str, int]) -> None:
        from leaktriage.conversations.threads import build_threads
        res = build_threads(msgs)
        rows = []
        for t in res.threads:
            r = t.record()
            rows.append((t.thread_id, t.subject, t.messages, t.emails, len(t.missing_ids), t.first_date, t.last_date,
                         _json(list(t.custodians)), t.depth, _json(dict(t.methods)), t.root, t.root_locator,
                         int(t.root_locator is None), _json(r.get("missing_ids", []))))
        con.execute("CREATE TEMP TABLE IF NOT EXISTS new_threads (id TEXT PRIMARY KEY)")
        con.execute("DELETE FROM new_threads")
        con.executemany("INSERT INTO new_threads (id) VALUES (?)", [(r[0],) for r in rows])
        con.executemany("INSERT INTO threads (id, subject, messages, emails, missing, first_date, last_date, custodians,"
                        " depth, methods, root, root_locator, root_missing, missing_ids) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET subject=excluded.subject, "
                        "messages=excluded.messages, emails=excluded.emails, missing=excluded.missing, "
                        "first_date=excluded.first_date, last_date=excluded.last_date, custodians=excluded.custodians,"
                        " depth=excluded.depth, methods=excluded.methods, root=excluded.root, "
                        "root_locator=excluded.root_locator, root_missing=excluded.root_missing, "
                        "missing_ids=excluded.missing_ids", rows)
        con.execute("UPDATE messages SET thread_id = NULL, parent = NULL, parent_locator = NULL, "
                    "parent_missing = NULL, thread_method = NULL, thread_depth = NULL, thread_key = NULL "
                    "WHERE thread_id IS NOT NULL")
        con.executemany("UPDATE messages SET thread_id = ?, parent = ?, parent_locator = ?, parent_missing = ?, "
                        "thread_method = ?, thread_depth = ?, thread_key = ? WHERE id = ?",
                        [(m.thread_id, m.parent, m.parent_locator, None if m.parent is None else int(m.parent_missing),
                          m.method, m.depth, res.keys.get(m.locator), ids[m.locator])
                         for m in res.members if m.locator in ids])
        con.execute("DELETE FROM thread_gaps")
        con.executemany("INSERT INTO thread_gaps (thread_id, key, parent) VALUES (?, ?, ?)", res.gaps)
        con.execute("DELETE FROM threads WHERE id NOT IN (SELECT id FROM new_threads)")
        con.execute("DROP TABLE new_threads")

    # corroboration ---------------------------------------------------------------------------
    def copies(self, con, msgs: List[dict], manifest: Optional[str], ids: Dict[str, int],
               dump_root: Optional[str]) -> None:
        from leaktriage.conversations.copies import duplicate_candidates
        cand = duplicate_candidates(msgs)
        parts = read_parts(manifest, cand) if manifest else {}
        # the decoded texts of the copies, kept (compressed) in a scratch database for the differing
        # passages: reading a message again out of a large archive costs the whole archive
        scratch_dir = tempfile.mkdtemp(prefix="leaktriage-copies-")
        scratch = sqlite3.connect(os.path.join(scratch_dir, "texts.db"))
        scratch.execute("CREATE TABLE t (locator TEXT PRIMARY KEY, text BLOB)")
        doc_text: Dict[str, Optional[str]] = {}
        try:
            self._copies(con, msgs, parts, ids, dump_root, cand, scratch, doc_text)
        finally:
            _WORKER.pop("bodies", None)        # with one process, the resolver and its cache lived here
            scratch.close()
            shutil.rmtree(scratch_dir, ignore_errors=True)

    def _copies(self, con, msgs, parts, ids, dump_root, cand, scratch, doc_text) -> None:
        from leaktriage.conversations.copies import corroborate
        from leaktriage.manifest.reader import top_path

        def copies():
            # decoded in worker processes, in batches of one top-level file (one read of an archive), in order
            batches: List[List[tuple]] = []
            last = None
            for m in msgs:
                if m["locator"] in cand:
                    top = top_path(m["locator"])
                    if top != last or len(batches[-1]) >= 100:
                        batches.append([])
                        last = top
                    batches[-1].append((m, parts.get(m["locator"], [])))
            from leaktriage.pool import default_workers, ordered
            workers = self.workers
            if workers is None:     # as many as the index was told to use (meta workers; 0: the CPUs), at most 4
                asked = int(_meta_value(con, "workers") or 0)
                workers = min(asked or default_workers(), 4)
            if len(cand) < self.PARALLEL_MIN:
                workers = 1
            for got in ordered(_copies_batch, batches, workers, _copies_init, (dump_root,),
                               on_died=_copies_died):
                for copy, texts in got:
                    scratch.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)", [
                        (k, zlib.compress(v.encode("utf-8", "surrogatepass"), 1)) for k, v in sorted(texts.items())])
                    yield copy

        def text_of(ploc: str) -> Optional[str]:
            row = scratch.execute("SELECT text FROM t WHERE locator = ?", (ploc,)).fetchone()
            if row is not None:
                return document_text(row[0])
            if ploc not in doc_text:     # a document: its extracted text (this copy's, or the same bytes')
                row = con.execute("SELECT d.text FROM document_texts d WHERE d.locator = ? UNION ALL "
                                  "SELECT d.text FROM attachments a JOIN document_texts d ON d.sha256 = a.sha256 "
                                  "WHERE a.locator = ? LIMIT 1", (ploc, ploc)).fetchone()
                doc_text[ploc] = document_text(row[0]) if row else None
            return doc_text[ploc]

        res = corroborate(copies(), text_of=text_of)
        con.execute("DELETE FROM findings WHERE kind = 'copy'")
        con.execute("DELETE FROM message_copies")
        con.execute("DELETE FROM copy_groups")
        grows, mrows = [], []
        for g in res.groups:
            diffs = sorted({d["part"] for d in g.get("differences") or ()})
            custs = sorted({c for v in g["variants"] for c in v["custodians"]})
            grows.append((g["group"], g["verdict"], len(g["copies"]), len(g["variants"]), g["independent_custodians"],
                          ", ".join(diffs) or None, _json(custs), g.get("message_id"), _json(g)))
            for c in g["copies"]:
                if c["locator"] in ids:
                    mrows.append((ids[c["locator"]], g["group"], c["variant"], c["role"], c.get("custodian"),
                                  c["locator"]))
        con.executemany("INSERT INTO copy_groups (id, verdict, copies, variants, independent_custodians, "
                        "differing_parts, custodians, header_message_id, record) VALUES (?,?,?,?,?,?,?,?,?)", grows)
        con.executemany("INSERT INTO message_copies (message_id, copy_group, variant, role, custodian, locator) "
                        "VALUES (?,?,?,?,?,?)", mrows)
        frows = [(ids[loc], "copy", ind["code"], ind["severity"], None, None, ind["explanation"], _json(ind["evidence"]))
                 for loc, ind in res.indicators if loc in ids]
        con.executemany("INSERT INTO findings (message_id, kind, code, severity, domain, selector, explanation, "
                        "detail) VALUES (?,?,?,?,?,?,?,?)", frows)

    # near-duplicates -------------------------------------------------------------------------
    def near(self, con, ids: Dict[str, int]) -> None:
        con.execute("DELETE FROM near_duplicates")
        con.execute("DELETE FROM near_duplicate_groups")
        n_docs = con.execute("SELECT count(*) FROM messages WHERE length(body) > 0").fetchone()[0] + \
            con.execute("SELECT count(*) FROM document_texts").fetchone()[0]
        if n_docs < 2:
            return
        from leaktriage.conversations.neardup import Doc, near_duplicates

        def docs():
            for loc, body in con.execute("SELECT locator, body FROM messages WHERE length(body) > 0 ORDER BY locator"):
                yield Doc(loc, "body", body)
            for loc, sha, blob in con.execute("SELECT locator, sha256, text FROM document_texts ORDER BY locator"):
                yield Doc(loc, "attachment", document_text(blob), key=sha or ("locator:" + loc))

        res = near_duplicates(docs(), threshold=self.threshold, workers=self.neardup_workers)
        att_msgs: Dict[str, List[Tuple[int, str]]] = {}
        for g in res.groups:
            if g["kind"] == "attachment":
                for m in g["members"]:
                    att_msgs[m["key"]] = []
        if att_msgs:
            keys = list(att_msgs)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                for sha, mid, loc in con.execute("SELECT sha256, message_id, locator FROM attachments WHERE sha256 IN "
                                                 "(%s) ORDER BY locator" % ",".join("?" * len(chunk)), chunk):
                    att_msgs[sha].append((mid, loc))
        grows, mrows = [], []
        for g in res.groups:
            rows = []
            for m in g["members"]:
                if g["kind"] == "body":
                    rows += [(ids[i], g["group"], "body", i, m["key"]) for i in m["ids"] if i in ids]
                else:
                    got = att_msgs.get(m["key"]) or [r for i in m["ids"] for r in con.execute(
                        "SELECT message_id, locator FROM attachments WHERE locator = ?", (i,))]
                    rows += [(mid, g["group"], "attachment", loc, m["key"]) for mid, loc in got if mid is not None]
            grows.append((g["group"], g["kind"], len(g["members"]), len({r[0] for r in rows}), g["similarity_min"],
                          g["similarity_max"], g["threshold"], _json(g)))
            mrows += rows
        con.executemany("INSERT INTO near_duplicate_groups (id, kind, texts, messages, similarity_min, similarity_max, "
                        "threshold, record) VALUES (?,?,?,?,?,?,?,?)", grows)
        con.executemany("INSERT INTO near_duplicates (message_id, near_group, kind, locator, text_key) "
                        "VALUES (?,?,?,?,?)", mrows)

    # correspondents --------------------------------------------------------------------------
    def people(self, con, msgs: List[dict]) -> None:
        from leaktriage.conversations.people import correspondents
        g = correspondents(msgs)
        con.execute("DELETE FROM person_edges")
        con.execute("DELETE FROM person_addresses")
        con.execute("DELETE FROM persons")
        con.executemany("INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(n["id"], n["label"], int(n["role"]), n["sent"], n["received"], n.get("first_date"),
                          n.get("last_date"), _json(n["addresses"]), n.get("merged_by")) for n in g.nodes])
        con.executemany("INSERT INTO person_addresses VALUES (?, ?, ?, ?, ?, ?)",
                        [(a["address"], a["node"], a["name"], int(a["role"]), a["sent"], a["received"])
                         for a in g.addresses])
        con.executemany("INSERT INTO person_edges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(e["source"], e["target"], e["weight"], e["to"], e["cc"], e["bcc"], e.get("first_date"),
                          e.get("last_date")) for e in g.edges])

