"""`leaktriage extract`: copy attachments (and messages) out of the dump into a content-addressed folder.

Layout of OUT:
    OUT/sha256/ab/abcdef...      one file per distinct content, named by its SHA-256 (read-only)
    OUT/index.jsonl              one line per digest: {"sha256", "path", "size", "items": [...]}
                                 each item: locator, kind (attachment|message), filename (as in the
                                 manifest, never used as a path), message, custodian, content_type, magic

Safety: the only path components ever written are "sha256", two hex digits and 64 hex digits, all
computed here from the bytes; files are created with O_EXCL|O_NOFOLLOW under a temporary name,
read back and hashed, then renamed; the folders on the way must be real folders inside OUT (not
symbolic links). Bytes are checked against the manifest's digest before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List

from leaktriage.errors import LeaktriageError
from leaktriage.manifest.export import Filters, groups
from leaktriage.manifest.reader import Manifest
from leaktriage.manifest.resolver import ItemChanged, ResolveError, Resolver

_HEX = re.compile(r"^[0-9a-f]{64}$")
INDEX = "index.jsonl"


class ExtractError(LeaktriageError):
    """OUT cannot be written as it should (not a folder, a planted link, a damaged index)."""


@dataclass
class Result:
    selected: int = 0
    written: int = 0
    present: int = 0
    deduplicated: int = 0
    mismatched: int = 0
    unreadable: int = 0
    errors: List[str] = field(default_factory=list)


def _safe_dir(out: str, *parts: str) -> str:
    """Create OUT/parts... as real folders (never following a symbolic link) and return the path."""
    cur = out
    for p in parts:
        cur = os.path.join(cur, p)
        try:
            os.mkdir(cur, 0o755)
        except FileExistsError:
            pass
        st = os.lstat(cur)
        import stat
        if not stat.S_ISDIR(st.st_mode):
            raise ExtractError("%s is not a real folder (a link or a file): refusing to write through it" % cur)
    return cur


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)
    return h.hexdigest()


def store(out: str, data: bytes, digest: str) -> str:
    """Write data to OUT/sha256/ab/<digest> once. Returns 'written' or 'present'. Raises on failure."""
    if not _HEX.match(digest):
        raise ExtractError("bad digest %r" % digest)
    d = _safe_dir(out, "sha256", digest[:2])
    target = os.path.join(d, digest)
    if os.path.lexists(target):
        if os.path.islink(target) or not os.path.isfile(target):
            raise ExtractError("%s exists and is not a regular file" % target)
        if _hash_file(target) == digest:
            return "present"
        os.chmod(target, 0o644)  # damaged earlier copy: replaced below
    tmp = os.path.join(d, ".tmp-%s-%d" % (digest[:16], os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    got = _hash_file(tmp)
    if got != digest:
        os.unlink(tmp)
        raise ExtractError("the copy of %s reads back as %s (disk or memory error); not kept" % (digest, got))
    os.chmod(tmp, 0o444)
    os.replace(tmp, target)
    return "written"


def _load_index(path: str) -> Dict[str, dict]:
    idx: Dict[str, dict] = {}
    if not os.path.exists(path):
        return idx
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise ExtractError("%s:%d is not valid JSON; move the index away or use another --to" % (path, n))
            if isinstance(rec, dict) and _HEX.match(str(rec.get("sha256", ""))):
                idx[rec["sha256"]] = rec
    return idx


def extract(m: Manifest, root: str, out: str, flt: Filters, attachments: bool = True, messages: bool = False,
            console=None) -> Result:
    res = Result()
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    index_path = os.path.join(out, INDEX)
    index = _load_index(index_path)
    seen_items = {(d, it["locator"]) for d, rec in index.items() for it in rec.get("items", ())}
    stored_now: set = set()
    resolver = Resolver(root)
    progress = None
    if console is not None and console.is_terminal:
        from rich.progress import Progress
        progress = Progress(console=console, transient=True)
        progress.start()
        task = progress.add_task("extracting", total=None)
    try:
        for g in groups(m.records()):
            if not g.is_message or not flt.message_ok(g):
                continue
            msg = g.head
            todo = []
            if messages:
                atts_all = [p for p in g.parts if p.get("attachment") and p.get("message") == msg["locator"]]
                ok = (not flt.types or any(flt.attachment_ok(p) for p in atts_all)) and \
                    flt.findings_ok(flt.message_findings(g))
                if ok:
                    todo.append(("message", msg))
            if attachments:
                for p in g.parts:
                    if not p.get("attachment") or p.get("message") != msg["locator"] or not flt.attachment_ok(p):
                        continue
                    if flt.findings:
                        codes = [q["code"] for q in g.problems if q["locator"] == p["locator"]]
                        codes += ["type.mismatch_declared" if x == "declared-type" else "type.mismatch_extension"
                                  for x in p.get("mismatch") or ()]
                        if not flt.findings_ok(codes + flt.message_findings(g)):
                            continue
                    todo.append(("attachment", p))
            for kind, rec in todo:
                want = rec.get("sha256")
                if not want:
                    continue
                res.selected += 1
                if progress is not None:
                    progress.update(task, advance=1, description="extracting %d" % res.selected)
                if want in stored_now:
                    res.deduplicated += 1
                else:
                    try:
                        data = resolver.checked(rec)
                    except ItemChanged as exc:
                        res.mismatched += 1
                        res.errors.append("NOT written: %s" % exc)
                        continue
                    except ResolveError as exc:
                        res.unreadable += 1
                        res.errors.append("cannot read %s: %s" % (rec["locator"], exc))
                        continue
                    got = want
                    st = store(out, data, got)
                    stored_now.add(got)
                    if st == "written":
                        res.written += 1
                    else:
                        res.present += 1
                    entry = index.setdefault(got, {"sha256": got, "path": "sha256/%s/%s" % (got[:2], got),
                                                   "size": len(data), "items": []})
                    entry["size"] = len(data)
                if (want, rec["locator"]) in seen_items:
                    continue
                seen_items.add((want, rec["locator"]))
                item = {"locator": rec["locator"], "kind": kind,
                        "filename": rec.get("filename") if kind == "attachment" else None,
                        "message": rec.get("message") if kind == "attachment" else None,
                        "custodian": g.custodian, "content_type": rec.get("content_type"),
                        "magic": rec.get("magic"), "subject": msg.get("subject"), "date": msg.get("date")}
                index[want]["items"].append({k: v for k, v in item.items() if v is not None})
    finally:
        if progress is not None:
            progress.stop()
        _write_index(index_path, index)
    return res


def _write_index(path: str, index: Dict[str, dict]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for d in sorted(index):
            rec = index[d]
            rec["items"] = sorted(rec.get("items", ()), key=lambda it: it.get("locator", ""))
            f.write(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
