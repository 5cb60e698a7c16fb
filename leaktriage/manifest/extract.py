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
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from leaktriage.model import locator as L
from leaktriage.manifest.export import Filters, groups
from leaktriage.manifest.reader import Manifest

_HEX = re.compile(r"^[0-9a-f]{64}$")
INDEX = "index.jsonl"


class ExtractError(Exception):
    pass


@dataclass
class Result:
    selected: int = 0
    written: int = 0
    present: int = 0
    deduplicated: int = 0
    mismatched: int = 0
    unreadable: int = 0
    errors: List[str] = field(default_factory=list)


class _Reader:
    """Bytes of items for extract, in manifest order, without quadratic re-reading.

    resolve.resolve() re-opens an item from scratch each time: right for one item, quadratic for all
    the messages of a large zip or mbox. This reader keeps the current on-disk file in memory, keeps
    each open container's member iterator where it stopped (the manifest lists members in the order
    the reader yields them), and slices mbox messages with the offset/length the manifest records.
    Every result is checked against the manifest digest by the caller, and any miss falls back to
    resolve.resolve(), so the cache can only make things faster, never different."""

    MAX_BUFFERED = 512 << 20

    def __init__(self, root: str):
        self.root = root
        self.file_key: Optional[str] = None
        self.file_data: Optional[bytes] = None
        self.containers: "OrderedDict[str, list]" = OrderedDict()  # locator -> [iterator, {segment: data}]
        self.messages: "OrderedDict[str, bytes]" = OrderedDict()   # message locator -> bytes (un-quoted)
        self.buffered = 0
        self.inner: "OrderedDict[str, bytes]" = OrderedDict()      # nested container locator -> bytes
        self.stored: "OrderedDict[str, bytes]" = OrderedDict()     # message locator -> stored bytes

    # -- files and container members ----------------------------------------------------------
    def _file(self, path_loc: str) -> bytes:
        from leaktriage.manifest.resolver import read_path
        if self.file_key != path_loc:
            self.file_data = None
            self.containers.clear()
            self.inner.clear()
            self.buffered = 0
            self.messages.clear()
            self.file_data = read_path(self.root, L.unescape(path_loc))
            self.file_key = path_loc
        return self.file_data  # type: ignore[return-value]

    def _member(self, parent_loc: str, parent: bytes, seg: str) -> Optional[bytes]:
        from leaktriage.content import sniff
        from leaktriage.containers import Child, Context, Limits, reader
        ent = self.containers.get(parent_loc)
        if ent is None:
            kind = sniff.container_kind(parent[:65536])
            rd = reader(kind) if kind else None
            if rd is None:
                return None
            ent = [iter(rd(parent, Context(locator=parent_loc, depth=0, limits=Limits()))), OrderedDict()]
            self.containers[parent_loc] = ent
            while len(self.containers) > 8:
                _, (_, old) = self.containers.popitem(last=False)
                self.buffered -= sum(len(v) for v in old.values())
        it, buf = ent
        if seg in buf:
            data = buf.pop(seg)
            self.buffered -= len(data)
            return data
        for obj in it:
            if not isinstance(obj, Child):
                continue
            if obj.segment == seg:
                return obj.data
            if obj.data is not None:
                # members passed over are kept (up to MAX_BUFFERED bytes, oldest dropped first)
                buf[obj.segment] = obj.data
                self.buffered += len(obj.data)
                while self.buffered > self.MAX_BUFFERED and buf:
                    _, old = buf.popitem(last=False)
                    self.buffered -= len(old)
        return None

    def bytes_of(self, loc: str) -> Optional[bytes]:
        """Bytes of a file-like locator (a path, then zip/tar/gz/... segments); None if not cached-able."""
        steps = L.parse(loc)
        if any(st.kind in ("part", "mbox", "uu") for st in steps[1:]):
            return None
        data = self._file(steps[0].value)
        where = steps[0].value
        last = len(steps) - 1
        for i, st in enumerate(steps[1:], 1):
            seg = "%s:%s" % (st.kind, st.value)
            nxt = where + "!" + seg
            if nxt in self.inner:
                data = self.inner[nxt]
                self.inner.move_to_end(nxt)
            else:
                data = self._member(where, data, seg)
                if data is None:
                    return None
                if i < last:  # a container inside a container: kept while its members are read
                    self.inner[nxt] = data
                    while len(self.inner) > 4:
                        self.inner.popitem(last=False)
            where = nxt
        return data

    # -- messages and parts -------------------------------------------------------------------
    def message(self, rec: dict) -> Optional[bytes]:
        """The stored bytes of a message record (what its sha256 covers), kept for its parts."""
        loc = rec["locator"]
        if loc in self.stored:
            return self.stored[loc]
        data = self._message(rec)
        if data is not None:
            self.stored[loc] = data
            while len(self.stored) > 4:
                self.stored.popitem(last=False)
        return data

    def _message(self, rec: dict) -> Optional[bytes]:
        from leaktriage.manifest.resolver import entity_bytes
        loc = rec["locator"]
        base, pp = L.split_part(loc)
        if pp is not None:
            # an attached message (message/rfc822 entity): decoded from its parent message, if at hand
            return entity_bytes(self.messages[base], pp) if base in self.messages else None
        parent = rec.get("parent")
        if parent == loc or parent is None or "offset" not in rec:
            return self.bytes_of(loc)   # a message file or an archive member: its whole content
        if "#" in parent:
            return None
        pdata = self.bytes_of(parent)
        if pdata is None:
            return None
        off = rec["offset"]
        return pdata[off:off + rec.get("length", 0)]

    def unquoted(self, rec: dict) -> Optional[bytes]:
        from leaktriage.mail import mbox
        loc = rec["locator"]
        if loc in self.messages:
            return self.messages[loc]
        data = self.message(rec)
        if data is not None and rec.get("unquoted_sha256"):
            data = mbox.unquote(data, (rec.get("mbox") or {}).get("variant") or "mboxrd")[0]
        if data is not None:
            self.messages[loc] = data
            while len(self.messages) > 4:
                self.messages.popitem(last=False)
        return data

    def _part(self, loc: str, msg: Optional[dict]) -> Optional[bytes]:
        from leaktriage.manifest.resolver import entity_bytes
        from leaktriage.mail.transfer import find_uuencoded
        head, sep, tail = loc.rpartition("!uu:")
        if sep and tail.isdigit() and "!" not in tail:
            text = self._part(head, msg)
            if text is None:
                return None
            for i, found in enumerate(find_uuencoded(text), 1):
                if i == int(tail):
                    return found[4]
            return None
        base, pp = L.split_part(loc)
        if pp is None:
            return None
        if msg is not None and base == msg["locator"] and "#" not in base:
            mdata = self.unquoted(msg)
        else:
            mdata = self.messages.get(base)  # inside an attached message: the top message is at hand
        return entity_bytes(mdata, pp) if mdata is not None else None

    def read(self, rec: dict, want: str, msg: Optional[dict] = None) -> bytes:
        from leaktriage.manifest.resolver import resolve
        try:
            data = self.message(rec) if rec["record"] == "message" else self._part(rec["locator"], msg)
            if data is not None and hashlib.sha256(data).hexdigest() == want:
                return bytes(data)
        except Exception:  # noqa: BLE001 - the plain path below decides
            pass
        return resolve(self.root, rec["locator"])


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
    reader = _Reader(root)
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
                        data = reader.read(rec, want, msg)
                    except Exception as exc:  # noqa: BLE001 - ResolveError and I/O errors, reported per item
                        res.unreadable += 1
                        res.errors.append("cannot read %s: %s" % (rec["locator"], exc))
                        continue
                    got = hashlib.sha256(data).hexdigest()
                    if got != want:
                        res.mismatched += 1
                        res.errors.append("NOT written: %s has SHA-256 %s in the dump, the manifest says %s"
                                          % (rec["locator"], got, want))
                        continue
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
