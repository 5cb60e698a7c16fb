"""The acceptance checks of issue #15 on a make_dump dump, shared by tests/test_search_generated.py (a
small dump generated at test time) and benchmarks/search_bench.py --acceptance (the 2,000- and
10,000-message dumps):

- marker_recall: every document make_dump --doc-markers generated carries a codeword (truth
  attachment entries: "marker"); searching the index for it must find the message holding the
  document (matched by the truth's Message-ID of the stored message: the document may sit in a
  forwarded message, i.e. a nested row, or in an attached zip);
- show_text: `leaktriage show LOC -m MANIFEST --text --no-pager` prints the body of sampled
  messages: checked against an independent decoding of their text/plain part (Python's email
  package for the transfer encoding, the truth's true charset for the characters);
- one_hit_per_email: `search -f jsonl` gives one line per email, `--all-copies` one per stored copy.
"""
from __future__ import annotations

import collections
import email
import email.policy
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path


def kind_of(a: dict) -> str:
    if a["true_type"] == "pdf":
        if not (a.get("filename") or "").lower().endswith(".pdf"):
            return "pdf (named otherwise)"
        return "pdf FlateDecode" if a.get("pdf_flate") else "pdf plain"
    return a["true_type"]


def truth_entries(truth: Path):
    with open(truth, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def marker_recall(db: Path, truth: Path) -> dict:
    """{kind: [found, total]} plus "misses": [(kind, filename, marker, message_id, malformed)]."""
    from leaktriage.search.engine import open_db, search
    con = open_db(str(db))
    top_mid = {}

    def message_ids(hits):
        out = set()
        for h in hits:
            top = h.locator.split("#")[0]
            if top not in top_mid:
                row = con.execute("SELECT header_message_id FROM messages WHERE locator = ?", (top,)).fetchone()
                top_mid[top] = row[0] if row else None
            out.add(top_mid[top])
        return out

    res = collections.defaultdict(lambda: [0, 0])
    misses = []
    try:
        for t in truth_entries(truth):
            for a in t["attachments"]:
                if "marker" not in a:
                    continue
                k = kind_of(a)
                res[k][1] += 1
                got = message_ids(search(con, '"%s"' % a["marker"], snippets=False, all_copies=True))
                if t["message_id"] in got:
                    res[k][0] += 1
                else:
                    misses.append((k, a.get("filename"), a["marker"], t["message_id"], bool(t.get("malformed"))))
    finally:
        con.close()
    out = dict(res)
    out["misses"] = misses
    return out


def locator_of(location: dict):
    """The locator of a truth entry's stored message (file, zip member, mbox message), or None."""
    from leaktriage.model import locator as L
    c, path = location.get("container"), location.get("path")
    if c == "file":
        return L.escape(path)
    if c == "zip":
        loc = L.escape(path)
        for m in location.get("members") or ():
            loc = L.child(loc, L.segment("zip", m))
        return loc
    if c == "mbox":
        return L.child(L.escape(path), L.segment("mbox", location["offset"]))
    return None


def _independent_plain(raw: bytes, true_charset: str):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename() and \
                (part.get("Content-Disposition") or "").split(";")[0].strip().lower() != "attachment":
            data = part.get_payload(decode=True)
            return data.decode(true_charset).replace("\r\n", "\n").replace("\r", "\n")
    return None


def show_text(manifest: Path, dump: Path, truth: Path, db: Path, n: int = 30, seed: int = 15, cli=None) -> dict:
    """Run show --text on n sampled messages with a text/plain body; {"checked", "ok", "failures": [...]}."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from test_text_common import message_bytes
    con = sqlite3.connect(str(db))
    cands = []
    for t in truth_entries(truth):
        parts = t.get("text_parts") or []
        if t.get("malformed") or not parts or parts[0]["content_type"] != "text/plain" or t.get("duplicate_of") is not None:
            continue
        loc = locator_of(t["location"])
        if loc and con.execute("SELECT 1 FROM messages WHERE locator = ?", (loc,)).fetchone():
            cands.append((t, loc))     # this very copy: copies of one Message-ID may differ (--contradictions)
    random.Random(seed).shuffle(cands)
    out = {"checked": 0, "ok": 0, "failures": []}
    for t, loc in cands[:n]:
        want = _independent_plain(message_bytes(dump, t["location"]), t["text_parts"][0]["true_charset"])
        if want is None:
            continue
        argv = ["show", loc, "-m", str(manifest), "--dump", str(dump), "--text", "--no-pager"]
        if cli is not None:
            code, got = cli(argv)
        else:
            r = subprocess.run([sys.executable, "-m", "leaktriage"] + argv, capture_output=True)
            code, got = r.returncode, r.stdout.decode("utf-8")
        out["checked"] += 1
        if code == 0 and want.strip() in got:
            out["ok"] += 1
        else:
            out["failures"].append((loc, code))
    return out


def one_hit_per_email(db: Path, queries, cli=None) -> list:
    """(query, lines of -f jsonl, emails, lines with --all-copies, stored copies, every line has a locator)."""
    con = sqlite3.connect(str(db))
    from leaktriage.search.query import compile_query
    rows = []
    for q in queries:
        c = compile_query(q)
        con.create_function("fold", 1, lambda s: s)
        emails, copies = con.execute("SELECT count(DISTINCT email_id), count(*) FROM messages m WHERE %s" % c.where,
                                     c.params).fetchone()
        got = []
        for extra in ([], ["--all-copies"]):
            argv = ["search", str(db), "-f", "jsonl", "--no-snippets"] + extra + [q]
            if cli is not None:
                _, text = cli(argv)
            else:
                text = subprocess.run([sys.executable, "-m", "leaktriage"] + argv, capture_output=True).stdout.decode()
            got.append([json.loads(l) for l in text.splitlines()])
        rows.append((q, len(got[0]), emails, len(got[1]), copies,
                     all("locator" in h for h in got[0] + got[1]) and
                     len({h["locator"] for h in got[1]}) == len(got[1])))
    return rows
