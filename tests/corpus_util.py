"""Shared helpers for corpus tests: scan a corpus once per session, index records, check byte accounting."""
import json
import re
from pathlib import Path

from conftest import REPO, corpus

_CACHE = {}


def scanned(name, tmp_path_factory):
    """Records of a scan of corpus `name` (cached for the session)."""
    if name not in _CACHE:
        from leaktriage import Options, scan
        root = corpus(name)
        out = tmp_path_factory.mktemp("corpus") / (name + ".jsonl")
        scan(str(root), str(out), Options(workers=2, algorithms=("sha256", "md5", "sha1")))
        recs = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines()]
        _CACHE[name] = (root, recs)
    return _CACHE[name]


def index(recs):
    files = {r["locator"]: r for r in recs if r["record"] == "file"}
    msgs = {r["locator"]: r for r in recs if r["record"] == "message"}
    parts = {}
    for r in recs:
        if r["record"] == "part":
            parts.setdefault(r["message"], []).append(r)
    probs = {}
    for r in recs:
        if r["record"] == "problem":
            probs.setdefault(r["locator"], []).append(r["code"])
    return files, msgs, parts, probs


def deviations(corpus_name):
    """Documented deliberate deviations: rows of the table in docs/corpus.md -> {file: reason}."""
    text = (REPO / "docs" / "corpus.md").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`?([\w.-]+)`?\s*\|\s*`([^`]+)`\s*\|(.*)\|(.*)\|\s*$", line)
        if m and m.group(1) == corpus_name:
            out[m.group(2)] = m.group(4).strip()
    return out


def accounting_errors(msg_bytes, parts, root_path="1"):
    """Every byte of a message belongs to a header block, a leaf body, a preamble/epilogue or a
    delimiter line. Returns a list of errors (empty when everything is accounted for)."""
    errs = []
    n = len(msg_bytes)
    by_path = {p["path"]: p for p in parts if "uu_offset" not in p}
    root = by_path.get(root_path)
    if root is None:
        return ["no root entity"]
    if root["offset"] != 0 or root["body_offset"] + root["body_length"] != n:
        errs.append("root entity does not cover the message")
    for path, p in by_path.items():
        if not p["content_type"].startswith("multipart/") or "children" not in p:
            continue
        start, end = p["body_offset"], p["body_offset"] + p["body_length"]
        spans = []
        for k in ("preamble", "epilogue"):
            if k in p:
                spans.append((p[k]["offset"], p[k]["offset"] + p[k]["length"]))
        for i in range(1, p["children"] + 1):
            c = by_path.get("%s.%d" % (path, i))
            if c is None:
                errs.append("%s: child %d missing" % (path, i))
                continue
            spans.append((c["offset"], c["body_offset"] + c["body_length"]))
        spans.sort()
        pos = start
        delim = b"--" + p["boundary"].encode("utf-8", "surrogateescape")
        for a, b in spans:
            if a < pos:
                errs.append("%s: overlap at %d" % (path, a))
            gap = msg_bytes[pos:a]
            if gap and delim not in gap:
                errs.append("%s: %d unaccounted bytes at %d" % (path, len(gap), pos))
            pos = max(pos, b)
        tail = msg_bytes[pos:end]
        if tail and delim not in tail:
            errs.append("%s: %d unaccounted bytes at the end" % (path, len(tail)))
    return errs
