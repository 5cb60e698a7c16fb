"""`leaktriage extract`: copy attachments (and messages) out of the dump into a content-addressed folder.

Layout of OUT:
    OUT/sha256/ab/abcdef....pdf  one file per distinct content, named by its SHA-256 and the extension of
                                 its detected type (read-only); executables, scripts and macro documents
                                 get a trailing '_' (abcdef....exe_) so that a double-click does not run them
    OUT/index.jsonl              one line per digest: {"sha256", "path", "size", "items": [...]}
                                 each item: locator, kind (attachment|message), filename (as in the
                                 manifest, never used as a path), message, custodian, mailbox, content_type,
                                 magic, subject, date
    OUT/by-mailbox/...           a view to browse: one folder per mailbox (its path, names made safe), in
                                 it a symbolic link per item named after its original file name (made safe;
                                 a message: "DATE SUBJECT.eml"), pointing into OUT/sha256/. Rebuilt from
                                 index.jsonl on every run.

Safety: the store's path components are "sha256", two hex digits and the digest with an extension from
a fixed table, all computed here from the bytes and the detected type; files are created with
O_EXCL|O_NOFOLLOW under a temporary name, read back and hashed, then renamed; the folders on the way
must be real folders inside OUT (not symbolic links), and so must index.jsonl. Names in by-mailbox/ are
made safe (no separators, no control characters, no '.' or '..', no Windows device names, bounded
length); that view is built in a fresh folder and swapped in. Bytes are checked against the manifest's
digest before anything is written.

Accounting (issue #14, item 6): every attachment the manifest lists is extracted, left out by a
filter, or reported with the reason it was not (no bytes recorded, not readable, changed).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from leaktriage.content.digests import sha256_of_fd
from leaktriage.errors import LeaktriageError
from leaktriage.manifest import danger
from leaktriage.manifest.export import Filters, groups
from leaktriage.manifest.reader import Manifest
from leaktriage.manifest.resolver import ItemChanged, ResolveError, Resolver

_HEX = re.compile(r"^[0-9a-f]{64}$")
_STORE_NAME = re.compile(r"^([0-9a-f]{64})(\.[a-z0-9]{1,8}_?)?$")
INDEX = "index.jsonl"
VIEW = "by-mailbox"


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
    attachments: int = 0          # attachment records in the manifest
    filtered: int = 0             # attachments left out by the filters
    not_extracted: List[str] = field(default_factory=list)   # "locator: reason" for every other one left out
    linked: int = 0               # links in OUT/by-mailbox
    errors: List[str] = field(default_factory=list)


# -- names ----------------------------------------------------------------------------------------

def _extensions() -> Dict[str, str]:
    """Detected MIME type -> extension: the first extension of each format of leaktriage.text."""
    from leaktriage.text import FORMATS
    out = {}
    for f in FORMATS:
        if f.extensions and f.name != "unknown":
            for t in f.mime_types:
                out.setdefault(t, f.extensions[0])
    out.update({"text/plain": "txt", "message/rfc822": "eml", "application/vnd.ms-tnef": "dat",
                "application/x-msi": "msi", "application/x-executable": "elf", "application/x-sharedlib": "so",
                "application/x-mach-binary": "macho", "text/x-shellscript": "sh", "application/javascript": "js",
                "application/json": "json", "image/svg+xml": "svg", "audio/mpeg": "mp3", "video/mp4": "mp4",
                "application/pgp-signature": "asc", "application/pkcs7-signature": "p7s"})
    return out


EXTENSIONS = _extensions()


def store_name(digest: str, magic: Optional[str], kind: str = "attachment", filename: Optional[str] = None,
               data: Optional[bytes] = None) -> str:
    """abcdef...pdf: the digest and the extension of the detected type (a message: .eml); executables,
    scripts and macro documents end with '_' so that opening them is a deliberate act."""
    ext = "eml" if kind == "message" else EXTENSIONS.get((magic or "").lower())
    risky = kind != "message" and danger.classify(magic, filename, data) is not None
    if risky and not ext:
        ext = danger.extension(filename) if re.fullmatch(r"[a-z0-9]{1,8}", danger.extension(filename)) else "bin"
    if not ext:
        return digest
    return "%s.%s%s" % (digest, ext, "_" if risky else "")


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {"con", "prn", "aux", "nul"} | {"com%d" % i for i in range(1, 10)} | {"lpt%d" % i for i in range(1, 10)}
MAX_NAME = 150   # bytes of UTF-8 per path component


def safe_component(name: Optional[str], fallback: str = "_") -> str:
    """One path component any file system accepts and no path trick can come out of: separators,
    control characters and <>:"|?* become '_', no leading dot or dash, no trailing dot or space, no
    Windows device name, at most MAX_NAME bytes (the extension kept)."""
    s = unicodedata.normalize("NFC", name or "")
    s = _UNSAFE.sub("_", s).strip().strip(".").strip()
    s = s.lstrip("-")
    if not s:
        s = fallback
    if s.split(".")[0].lower() in _RESERVED:
        s = "_" + s
    if len(s.encode("utf-8")) > MAX_NAME:
        stem, dot, ext = s.rpartition(".")
        ext = dot + ext if dot and 0 < len(ext) <= 10 else ""
        stem = s[: len(s) - len(ext)] if ext else s
        while len((stem + ext).encode("utf-8")) > MAX_NAME:
            stem = stem[:-1]
        s = stem.rstrip(". ") + ext
    return s


def mailbox_components(mailbox: str) -> List[str]:
    """A mailbox (a locator prefix such as 'Loïc.zip!zip:Loïc/Archives') as safe folder names."""
    out = []
    for seg in re.split(r"[/!]", mailbox or ""):
        if ":" in seg and seg.split(":", 1)[0] in ("zip", "tar", "7z", "rar", "gz", "bz2", "xz", "pst", "mbox"):
            seg = seg.split(":", 1)[1]
        seg = seg.strip()
        if seg:
            out.append(safe_component(_unescape(seg)))
    return out or ["_"]


def _unescape(s: str) -> str:
    """Locator escapes (%XX) back to characters where they are UTF-8 (the rest stays as written)."""
    if "%" not in s:
        return s
    try:
        from urllib.parse import unquote_to_bytes
        return unquote_to_bytes(s).decode("utf-8")
    except UnicodeDecodeError:
        return s


# -- the store ------------------------------------------------------------------------------------

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
        if not stat.S_ISDIR(st.st_mode):
            raise ExtractError("%s is not a real folder (a link or a file): refusing to write through it" % cur)
    return cur


def _hash_file(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        return sha256_of_fd(fd)
    finally:
        os.close(fd)


def store(out: str, data: bytes, digest: str, name: Optional[str] = None) -> str:
    """Write data to OUT/sha256/ab/<name> (default: the digest) once. Returns 'written' or 'present'.
    A copy stored by an earlier run under another name of the same digest (without extension) is
    checked and renamed. Raises on failure."""
    name = name or digest
    m = _STORE_NAME.match(name)
    if not _HEX.match(digest) or not m or m.group(1) != digest:
        raise ExtractError("bad digest or store name %r" % name)
    d = _safe_dir(out, "sha256", digest[:2])
    target = os.path.join(d, name)
    old = os.path.join(d, digest)
    if name != digest and not os.path.lexists(target) and os.path.lexists(old) and not os.path.islink(old) \
            and os.path.isfile(old) and _hash_file(old) == digest:
        os.replace(old, target)          # stored by an earlier leaktriage without its extension
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
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return idx
    except OSError:
        raise ExtractError("%s is not a regular file (a link?): refusing to read or replace it" % path)
    with os.fdopen(fd, encoding="utf-8") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ExtractError("%s is not a regular file: refusing to read or replace it" % path)
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


# -- extract ----------------------------------------------------------------------------------------

def extract(m: Manifest, root: str, out: str, flt: Filters, attachments: bool = True, messages: bool = False,
            console=None, view: bool = True) -> Result:
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
            if attachments:
                res.attachments += sum(1 for p in g.parts if p.get("attachment"))
                if not g.is_message and g.head.get("record") == "part" and g.head.get("attachment"):
                    res.attachments += 1
                    res.not_extracted.append("%s: its part record is not next to its message in the manifest"
                                             % g.head["locator"])
            if not g.is_message:
                continue
            msg = g.head
            msg_ok = flt.message_ok(g)
            todo = []
            if messages and msg_ok:
                atts_all = [p for p in g.parts if p.get("attachment")]
                ok = (not flt.types or any(flt.attachment_ok(p) for p in atts_all)) and \
                    flt.findings_ok(flt.message_findings(g))
                if ok:
                    todo.append(("message", msg))
            if attachments:
                for p in g.parts:
                    if not p.get("attachment"):
                        continue
                    if not msg_ok or not flt.attachment_ok(p):
                        res.filtered += 1
                        continue
                    if flt.findings:
                        codes = [q["code"] for q in g.problems if q["locator"] == p["locator"]]
                        codes += ["type.mismatch_declared" if x == "declared-type" else "type.mismatch_extension"
                                  for x in p.get("mismatch") or ()]
                        if not flt.findings_ok(codes + flt.message_findings(g)):
                            res.filtered += 1
                            continue
                    todo.append(("attachment", p))
            for kind, rec in todo:
                want = rec.get("sha256")
                if not want:
                    if kind == "attachment":
                        res.not_extracted.append("%s: the scan recorded no bytes for it (see its problems)"
                                                 % rec["locator"])
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
                    name = store_name(want, rec.get("magic"), kind, rec.get("filename"), data)
                    st = store(out, data, want, name)
                    stored_now.add(want)
                    if st == "written":
                        res.written += 1
                    else:
                        res.present += 1
                    entry = index.setdefault(want, {"sha256": want, "size": len(data), "items": []})
                    entry["path"] = "sha256/%s/%s" % (want[:2], name)
                    entry["size"] = len(data)
                if (want, rec["locator"]) in seen_items:
                    continue
                seen_items.add((want, rec["locator"]))
                item = {"locator": rec["locator"], "kind": kind,
                        "filename": rec.get("filename") if kind == "attachment" else None,
                        "message": rec.get("message") if kind == "attachment" else None,
                        "custodian": g.custodian, "mailbox": msg.get("mailbox"),
                        "content_type": rec.get("content_type"),
                        "magic": rec.get("magic"), "subject": msg.get("subject"), "date": msg.get("date")}
                index[want]["items"].append({k: v for k, v in item.items() if v is not None})
    finally:
        if progress is not None:
            progress.stop()
        _write_index(out, index_path, index)
    if view:
        res.linked = build_view(out, index)
    return res


def _write_index(out: str, path: str, index: Dict[str, dict]) -> None:
    """index.jsonl, replaced atomically through a temporary file created here (O_EXCL: a file or link
    planted in OUT is never written through)."""
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise ExtractError("%s is not a regular file (a link?): refusing to replace it" % path)
    fd, tmp = tempfile.mkstemp(prefix=".index.jsonl.", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for d in sorted(index):
                rec = index[d]
                rec["items"] = sorted(rec.get("items", ()), key=lambda it: it.get("locator", ""))
                f.write(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def view_entries(index: Dict[str, dict]) -> List[tuple]:
    """(folder components, file name, store path) for every item of the index, names made safe and
    made unique within their folder (' (2)', ' (3)' ... in locator order): deterministic."""
    wanted = []
    for d, rec in index.items():
        path = rec.get("path") or "sha256/%s/%s" % (d[:2], d)
        for it in rec.get("items", ()):
            box = it.get("mailbox") or it.get("custodian") or "(no mailbox)"
            if it.get("kind") == "message":
                base = "%s %s" % ((it.get("date") or "undated")[:10], it.get("subject") or "(no subject)")
                base = safe_component(base[:100]) + ".eml"
            else:
                stored = path.rpartition("/")[2][64:]                  # ".pdf", or ".exe_" when defused
                ext = stored.rstrip("_")
                base = safe_component(it.get("filename"), fallback="attachment-" + d[:12] + ext)
                if stored.endswith("_") and not base.lower().endswith(stored.lower()):
                    # an executable, script or macro document: the link a person double-clicks must not
                    # keep the innocent name it came with (Facture.pdf -> Facture.pdf.exe_), as serve does
                    base += stored
            wanted.append((mailbox_components(box), base, path, it.get("locator", "")))
    wanted.sort(key=lambda w: (w[0], w[1], w[3]))
    used: Dict[tuple, set] = {}
    out = []
    for folder, base, path, _loc in wanted:
        names = used.setdefault(tuple(folder), set())
        name, n = base, 1
        while name.lower() in names:
            n += 1
            stem, dot, ext = base.rpartition(".")
            name = "%s (%d).%s" % (stem, n, ext) if dot and stem else "%s (%d)" % (base, n)
        names.add(name.lower())
        out.append((folder, name, path))
    return out


def build_view(out: str, index: Dict[str, dict]) -> int:
    """OUT/by-mailbox: relative symbolic links into the store, built aside and swapped in."""
    tmp = tempfile.mkdtemp(prefix=".by-mailbox.", dir=out)
    n = 0
    try:
        for folder, name, path in view_entries(index):
            d = _safe_dir(tmp, *folder)
            rel = os.path.relpath(os.path.join(out, path), d)
            os.symlink(rel, os.path.join(d, name))
            n += 1
        final = os.path.join(out, VIEW)
        if os.path.lexists(final):
            if not stat.S_ISDIR(os.lstat(final).st_mode):
                raise ExtractError("%s is not a real folder (a link or a file): refusing to replace it" % final)
            trash = tempfile.mkdtemp(prefix=".old-by-mailbox.", dir=out)
            os.replace(final, os.path.join(trash, VIEW))
            os.replace(tmp, final)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, final)
    except BaseException:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp)
        raise
    return n
