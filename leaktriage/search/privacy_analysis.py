"""The private sphere in the index (issue #17): personal data, sensitive topics and work / personal.

Two pieces plug into the index (leaktriage.search.analysis):

- PrivacyAnalysis (a MessageAnalysis, in the index workers): leaktriage.privacy reads the subject, the
  body and each attachment's text once. Personal data (validated: IBAN mod 97, NIR key, Luhn, numbering
  plans...) go to table `pii`, sensitive-topic hits to `topics`, every e-mail address written in the
  text to `email_mentions` (whether it is personal depends on the mail providers of the whole dump),
  and the content signals the sphere model reads to `privacy.content`.
- SpherePass (a DumpPass, in the main process once every message is in): SphereModel.learn over the
  whole index (custodians' own addresses, the dump's mail providers, how private each correspondent's
  mail reads), then classify every message: `privacy.sphere`, `confidence`, `reasons`; the personal
  e-mail addresses (rows of `pii` with kind 'email', rewritten from `email_mentions`); each message's
  `sensitive` categories and `pii_kinds`. What it learned is kept in meta `privacy_knowledge`. An update
  of the index that changed no message does not redo it (meta `privacy_input`: a digest of the messages'
  ids and manifest records).

Offsets: `start`/`end` are Python string offsets into the text of the part: the subject, the body as
the index stores it (messages.body), or the attachment's extracted text (attachment `locator`).
An attachment whose bytes were already read for an earlier message (same SHA-256) is not read again:
its rows are copied from that first copy, with this message's locator.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Dict, List, Optional, Sequence, Tuple

# The tables (Datasette shows columns in this order: what a reader looks at first)
SCHEMA = """
CREATE TABLE IF NOT EXISTS privacy (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    sphere TEXT,
    confidence REAL,
    sensitive TEXT,
    pii_kinds TEXT,
    reasons TEXT,
    p_personal REAL,
    content TEXT
);
CREATE INDEX IF NOT EXISTS privacy_sphere ON privacy(sphere, message_id);
CREATE TABLE IF NOT EXISTS pii (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT,
    part TEXT,
    validated INTEGER,
    rule TEXT,
    normalized TEXT,
    locator TEXT,
    start INTEGER,
    "end" INTEGER
);
CREATE INDEX IF NOT EXISTS pii_kind_message ON pii(kind, message_id);
CREATE INDEX IF NOT EXISTS pii_message ON pii(message_id);
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    term TEXT,
    matched TEXT,
    part TEXT,
    weight INTEGER,
    language TEXT,
    locator TEXT,
    start INTEGER,
    "end" INTEGER
);
CREATE INDEX IF NOT EXISTS topics_message ON topics(message_id);
CREATE INDEX IF NOT EXISTS topics_category_message ON topics(category, message_id);
CREATE TABLE IF NOT EXISTS email_mentions (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    domain TEXT,
    part TEXT,
    locator TEXT,
    start INTEGER,
    "end" INTEGER
);
CREATE INDEX IF NOT EXISTS email_mentions_domain ON email_mentions(domain);
CREATE INDEX IF NOT EXISTS email_mentions_message ON email_mentions(message_id);
"""

SPHERES = ("personal", "work", "unknown")

# a part's result, compact and picklable:
#   (where, locator, sha256, findings, emails, topics, tu, words)
#   findings: (kind, start, end, value, normalized, validated, rule); emails: (start, end, value, normalized)
#   topics: (category, start, end, term, language, weight, matched text) - every category, the register cues included
Part = tuple


# single-byte charsets a scan may have read UTF-8 text with (text.charset_suspect, charset.mislabelled)
_MOJIBAKE_CODECS = ("cp1252", "latin-1", "hp_roman8", "mac_roman")


def utf8_repaired(text: str) -> Tuple[str, Optional[List[int]], List[Tuple[int, int]]]:
    """(text to analyse, map): lines of UTF-8 that were decoded with a single-byte charset ("NÃ©e le")
    read again as UTF-8 ("Née le"); map[i] is the offset in `text` of character i of the repaired text
    (one more entry for the end), or None when nothing was repaired; and the spans of the repaired
    lines in the repaired text. A line is repaired only when it
    holds non-ASCII characters and re-reads as strict UTF-8: text in its right charset does not."""
    if not text or text.isascii():
        return text, None, []
    lines = text.splitlines(keepends=True)
    fixed = []
    changed = False
    for line in lines:
        new = line
        if not line.isascii():
            for codec in _MOJIBAKE_CODECS:
                try:
                    cand = line.encode(codec).decode("utf-8")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    continue
                if cand != line:
                    new = cand
                    changed = True
                break
        fixed.append((line, new))
    if not changed:
        return text, None, []
    out: List[str] = []
    mp: List[int] = []
    spans: List[Tuple[int, int]] = []
    pos = 0
    for line, new in fixed:
        if new is line:
            mp.extend(range(pos, pos + len(line)))
        else:       # each byte was one character of the single-byte reading
            spans.append((len(mp), len(mp) + len(new)))
            b = pos
            for ch in new:
                mp.append(b)
                b += len(ch.encode("utf-8"))
        out.append(new)
        pos += len(line)
    mp.append(pos)
    return "".join(out), mp, spans


def analyse_text(where: str, text: str, pii: bool = True):
    """leaktriage.privacy's analyse_part on a text as the index or show holds it, charset slips repaired
    (utf8_repaired): findings and topic hits have offsets into `text` itself; a finding seen only through
    the repair says so in its rule ("+utf8-repaired")."""
    from dataclasses import replace
    from leaktriage.privacy.analysis import analyse_part
    fixed, mp, spans = utf8_repaired(text or "")
    p = analyse_part(where, fixed, pii=pii)
    if mp is None:
        return p
    orig = text

    def back(f, mark):
        s, e = mp[f.start], mp[f.end]
        kw = {"start": s, "end": e}
        if hasattr(f, "value"):
            kw["value"] = orig[s:e]
            if mark and any(a <= f.start < b or a < f.end <= b for a, b in spans):
                kw["rule"] = f.rule + "+utf8-repaired"
        return replace(f, **kw)

    p.findings = [back(f, True) for f in p.findings]
    p.emails = [back(f, False) for f in p.emails]
    p.topics = [back(h, False) for h in p.topics]
    p.text = orig
    return p


def _part(where: str, locator: str, sha256: Optional[str], text: str, pii: bool = True) -> Part:
    from leaktriage.privacy.analysis import content_signals
    p = analyse_text(where, text or "", pii=pii)
    tu = 0
    words = 0
    if p.text:
        cs = content_signals([p])
        tu, words = int(cs.tu), int(cs.words)
    return (where, locator, sha256,
            [(f.kind, f.start, f.end, f.value, f.normalized, bool(f.validated), f.rule) for f in p.findings],
            [(e.start, e.end, e.value, e.normalized) for e in p.emails],
            [(h.category, h.start, h.end, h.term, h.language, h.weight, p.text[h.start:h.end]) for h in p.topics],
            tu, words)


class PrivacyAnalysis:
    """Per message, in the index workers: personal data, topic hits and content signals."""

    name = "privacy"
    version = 1
    schema = SCHEMA

    def __init__(self):
        self._docs: Dict[str, List[Part]] = {}      # main process: sha256 -> parts of the first copy

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._docs = {}

    def analyse(self, msg) -> dict:
        """msg: a leaktriage.search.analysis.MessageText (not imported: analysis.py lists this module)."""
        rec = msg.record
        loc = msg.locator
        parts = [_part("subject", loc, None, rec.get("subject") or ""), _part("body", loc, None, msg.body or "")]
        reused = []
        for a in msg.attachments:
            where = "attachment:%s" % (a.filename or a.locator.rpartition("#")[2])
            if a.status == "reused":
                reused.append((where, a.locator, a.sha256))
            elif a.text:
                parts.append(_part(where, a.locator, a.sha256, a.text))
        names = rec.get("attachment_names") or [a.filename for a in msg.attachments if a.filename]
        names = " \n".join(dict.fromkeys(n for n in names if n))
        if names:
            parts.append(_part("attachment-names", loc, None, names, pii=False))
        return {"parts": parts, "reused": reused}

    def store(self, con: sqlite3.Connection, message_id: int, result: dict) -> None:
        parts: List[Part] = list(result["parts"])
        for p in parts:
            if p[2]:
                self._docs.setdefault(p[2], [p])
        for where, aloc, sha in result["reused"]:
            for p in self._docs.get(sha or "", ()):
                parts.append((where, aloc) + tuple(p[2:]))
        pii_rows, topic_rows, mention_rows = [], [], []
        for where, aloc, _sha, findings, emails, topics, _tu, _w in parts:
            for kind, s, e, value, norm, ok, rule in findings:
                pii_rows.append((message_id, kind, value, where, int(ok), rule, norm, aloc, s, e))
            for s, e, value, norm in emails:
                mention_rows.append((message_id, norm, norm.rpartition("@")[2].rstrip("."), where, aloc, s, e))
            if where == "attachment-names":
                continue
            for cat, s, e, term, lang, w, matched in topics:
                if cat in _sensitive():
                    topic_rows.append((message_id, cat, term, matched, where, w, lang, aloc, s, e))
        con.executemany('INSERT INTO pii (message_id, kind, value, part, validated, rule, normalized, locator, start, '
                        '"end") VALUES (?,?,?,?,?,?,?,?,?,?)', pii_rows)
        con.executemany('INSERT INTO email_mentions (message_id, address, domain, part, locator, start, "end") '
                        'VALUES (?,?,?,?,?,?,?)', mention_rows)
        con.executemany('INSERT INTO topics (message_id, category, term, matched, part, weight, language, locator, '
                        'start, "end") VALUES (?,?,?,?,?,?,?,?,?,?)', topic_rows)
        con.execute("INSERT OR REPLACE INTO privacy (message_id, content) VALUES (?, ?)",
                    (message_id, json.dumps(content_of(parts), sort_keys=True, ensure_ascii=False)))


def _sensitive() -> Tuple[str, ...]:
    from leaktriage.privacy import TOPIC_CATEGORIES
    return tuple(TOPIC_CATEGORIES)


def content_of(parts: Sequence[Part]) -> dict:
    """What the sphere model reads of a message's text (leaktriage.privacy.analysis.content_signals, from
    the compact parts): topic scores per category, register evidence, tu forms, words, private papers."""
    from leaktriage.privacy.analysis import PRIVATE_PII
    from leaktriage.privacy.topics import CUES, SENSITIVE, TopicHit, topic_scores
    hits = [TopicHit(*t[:6]) for p in parts for t in p[5]]
    sc = topic_scores(hits)
    ev: Dict[str, List[str]] = {}
    for cat in tuple(CUES) + tuple(SENSITIVE):
        terms = sorted({h.term for h in hits if h.category == cat})
        if terms:
            ev[cat] = terms
    kinds = sorted({f[0] for p in parts if p[0] != "attachment-names" for f in p[3] if f[0] in PRIVATE_PII})
    if kinds:
        ev["private_pii"] = kinds
    return {"scores": sc, "evidence": ev, "tu": sum(p[6] for p in parts), "words": sum(p[7] for p in parts),
            "private_pii": kinds}


def signals(content: Optional[dict]):
    """A leaktriage.privacy MessageAnalysis holding only the content signals (what classify reads)."""
    from leaktriage.privacy import ContentSignals, MessageAnalysis
    from leaktriage.privacy.topics import SENSITIVE
    c = content or {}
    sc = c.get("scores") or {}
    cs = ContentSignals(private=sc.get("private", 0), sensitive=sum(sc.get(k, 0) for k in SENSITIVE),
                        work=sc.get("work", 0), tu=c.get("tu", 0), private_pii=len(c.get("private_pii") or ()),
                        words=c.get("words", 0), evidence=dict(c.get("evidence") or {}))
    return MessageAnalysis([], cs)


class SpherePass:
    """After every message is in: learn the dump's sphere model, classify every message, decide which
    e-mail addresses in the text are personal, and each message's sensitive categories."""

    name = "sphere"
    version = 1
    schema = SCHEMA

    def run(self, con: sqlite3.Connection) -> None:
        import hashlib
        from leaktriage.privacy import PII_KINDS, SphereModel, known_personal_domains
        from leaktriage.privacy.topics import SENSITIVE, THRESHOLD
        # the same messages as when it last ran (an update that changed nothing): nothing to redo
        h = hashlib.sha1()
        for mid, digest in con.execute("SELECT id, record_sha1 FROM messages ORDER BY id"):
            h.update(("%d:%s\n" % (mid, digest)).encode())
        fingerprint = h.hexdigest()
        row = con.execute("SELECT value FROM meta WHERE key = 'privacy_input'").fetchone()
        if row and row[0] == fingerprint and con.execute("SELECT 1 FROM privacy WHERE sphere IS NULL LIMIT 1").fetchone() \
                is None:
            return
        con.execute("INSERT INTO privacy (message_id) SELECT id FROM messages WHERE id NOT IN "
                    "(SELECT message_id FROM privacy)")
        addrs: Dict[int, Dict[str, list]] = {}
        for mid, role, name, address in con.execute("SELECT message_id, role, name, address FROM addresses "
                                                    "WHERE address IS NOT NULL ORDER BY message_id, role, position"):
            addrs.setdefault(mid, {}).setdefault(role, []).append({"name": name, "address": address})
        msgs = []
        for mid, cust, box, subject, names, content in con.execute(
                "SELECT m.id, m.custodian, m.mailbox, m.subject, m.attachment_names, p.content FROM messages m "
                "JOIN privacy p ON p.message_id = m.id ORDER BY m.id"):
            c = json.loads(content) if content else None
            d = dict(addrs.get(mid, {}), custodian=cust, mailbox=box, subject=subject,
                     attachment_names=(names or "").split("\n") if names else [])
            d["analysis"] = signals(c)
            msgs.append((mid, d, c))
        model = SphereModel.learn([d for _, d, _ in msgs])
        providers = set(model.personal_domains)
        known = known_personal_domains()
        # personal e-mail addresses in the text: those on a mail provider (shipped list or learned)
        con.execute("DELETE FROM pii WHERE kind = 'email'")
        rows = []
        for mid, address, dom, part, loc, s, e in con.execute(
                'SELECT message_id, address, domain, part, locator, start, "end" FROM email_mentions ORDER BY id'):
            if part == "attachment-names":
                continue
            if dom in known:
                rows.append((mid, "email", address, part, 1, "email:provider-list", address, loc, s, e))
            elif dom in providers:
                rows.append((mid, "email", address, part, 1, "email:learned-provider", address, loc, s, e))
        con.executemany('INSERT INTO pii (message_id, kind, value, part, validated, rule, normalized, locator, '
                        'start, "end") VALUES (?,?,?,?,?,?,?,?,?,?)', rows)
        kinds: Dict[int, set] = {}
        for mid, kind in con.execute("SELECT DISTINCT message_id, kind FROM pii"):
            kinds.setdefault(mid, set()).add(kind)
        updates = []
        for mid, d, c in msgs:
            sp = model.classify(d, d["analysis"])
            sc = (c or {}).get("scores") or {}
            cats = {k for k in SENSITIVE if sc.get(k, 0) >= THRESHOLD}
            ks = kinds.get(mid, set())
            if sp.label == "personal" and ks & {"iban", "card"}:
                cats.add("finances")      # a bank account or card number in private mail
            updates.append((sp.label, round(sp.confidence, 4), json.dumps([k for k in SENSITIVE if k in cats]),
                            json.dumps([k for k in PII_KINDS if k in ks]),
                            json.dumps([r.as_dict() for r in sp.reasons], ensure_ascii=False),
                            round(sp.p_personal, 4), mid))
        con.executemany("UPDATE privacy SET sphere = ?, confidence = ?, sensitive = ?, pii_kinds = ?, reasons = ?, "
                        "p_personal = ? WHERE message_id = ?", updates)
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('privacy_knowledge', ?)",
                    (json.dumps(model.knowledge(), sort_keys=True, ensure_ascii=False),))
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('privacy_input', ?)", (fingerprint,))


def knowledge(con: sqlite3.Connection) -> Optional[dict]:
    """What the sphere pass learned (meta privacy_knowledge), or None for an index without it."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'privacy_knowledge'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return json.loads(row[0]) if row and row[0] else None


def has_privacy(con: sqlite3.Connection) -> bool:
    try:
        con.execute("SELECT 1 FROM privacy LIMIT 0")
    except sqlite3.DatabaseError:
        return False
    return knowledge(con) is not None
