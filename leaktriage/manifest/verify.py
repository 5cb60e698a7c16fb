"""`leaktriage verify`: audit a dump against its manifest (hashdeep-style), at four levels.

Levels: `file` (a file on disk), `member` (an archive member or decompressed stream, at any depth),
`message`, `attachment`. Statuses: matched, modified (same locator, other digest), missing, new,
moved (the same digest at another locator; `now` gives where).

How: every file on disk is hashed (in --workers processes) before the manifest is read. Then one
streaming pass over the manifest: an on-disk file whose digest matches is `matched`, and so is
everything inside it, by inheritance, without parsing it again. Only what is kept for later is what
changed: the items inside files that are missing or modified. Modified and new files are then parsed
again with the scanner (same options), and their items compared by locator and digest. Finally
missing and new items of the same level with the same digest are paired as `moved`.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, TextIO, Tuple

from leaktriage.content.digests import sha256_of_fd
from leaktriage.model import locator as L
from leaktriage.manifest.reader import Manifest, top_path
from leaktriage.scanner.walk import Entry, open_in_dump, walk

LEVELS = ("file", "member", "message", "attachment")
STATUSES = ("matched", "modified", "missing", "new", "moved")
BITS = {"modified": 1, "missing": 2, "new": 4, "moved": 8}


@dataclass
class AuditResult:
    counts: Dict[str, Counter] = field(default_factory=lambda: {lv: Counter() for lv in LEVELS})
    dump: str = ""
    manifest: str = ""
    reparsed: int = 0
    hashed_bytes: int = 0
    wrong_dump: Optional[str] = None

    def total(self, status: str) -> int:
        return sum(c[status] for c in self.counts.values())

    def exit_code(self) -> int:
        bits = sum(b for s, b in BITS.items() if self.total(s))
        return 16 + bits if bits else 0


def level_of(rec: dict) -> Optional[str]:
    kind = rec["record"]
    if kind == "file":
        return "member" if "parent" in rec else "file"
    if kind == "message":
        return "message"
    if kind == "part" and rec.get("attachment"):
        return "attachment"
    return None


def _digest(rec: dict) -> Optional[str]:
    if rec.get("sha256"):
        return rec["sha256"]
    if rec["record"] == "file" and rec.get("entry") == "symlink":
        return "symlink:" + (rec.get("symlink_target") or "")
    if rec["record"] == "file" and rec.get("entry") not in (None, "file"):
        return "entry:" + rec["entry"]
    return None


def _hash_entry(args: Tuple[str, Entry]) -> Tuple[bytes, Optional[str], Optional[str]]:
    root, e = args
    if e.entry == "symlink":
        return e.rel, "symlink:" + (e.symlink_target or b"").decode("utf-8", "replace"), None
    if e.entry != "file":
        return e.rel, "entry:" + ("other" if e.entry == "unreadable-dir" else e.entry), None
    try:
        fd = open_in_dump(root, e.rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return e.rel, None, exc.strerror or str(exc)
    try:
        return e.rel, sha256_of_fd(fd), None
    except OSError as exc:
        return e.rel, None, exc.strerror or str(exc)
    finally:
        os.close(fd)


def _hash_batch(batch: List[Tuple[str, Entry]]) -> List[Tuple[bytes, Optional[str], Optional[str]]]:
    return [_hash_entry(job) for job in batch]


def _hash_died(batch, _exitcode=None):
    return [(e.rel, None, "the process hashing this file died (truncated while read?)") for _root, e in batch]


def _hash_all(root: str, entries: List[Entry], workers: int) -> Iterator[Tuple[bytes, Optional[str], Optional[str]]]:
    from leaktriage.pool import ordered
    jobs = [(root, e) for e in entries]
    batches = [jobs[i:i + 16] for i in range(0, len(jobs), 16)]
    for res in ordered(_hash_batch, batches, workers, on_died=_hash_died):
        yield from res


def _options_from(summary: Optional[dict]):
    from leaktriage.containers import Limits
    from leaktriage.scanner.pipeline import Options
    opts = (summary or {}).get("options") or {}
    lim = opts.get("limits") or {}
    kw = {k: lim[k] for k in ("max_depth", "max_member_size", "max_total_expanded", "max_ratio") if k in lim}
    algos = tuple(a for a in opts.get("digests") or ("sha256",) if a in ("sha256", "md5", "sha1")) or ("sha256",)
    try:
        return Options(algorithms=algos, workers=1, limits=Limits(**kw))
    except TypeError:
        return Options(workers=1)


def _reparse(root: str, entry: Entry, opts) -> Iterator[dict]:
    from leaktriage.scanner.pipeline import Unit
    res = Unit(root, opts).run(entry)
    for line in res.data.split(b"\n")[:-1]:
        yield json.loads(line)


class _Out:
    def __init__(self, fh: TextIO, res: AuditResult, show_all: bool):
        self.fh = fh
        self.res = res
        self.show_all = show_all

    def emit(self, status: str, level: str, loc: str, **kw) -> None:
        self.res.counts[level][status] += 1
        if status == "matched" and not self.show_all:
            return
        rec = {"record": "audit", "status": status, "level": level, "locator": loc}
        rec.update({k: v for k, v in kw.items() if v is not None})
        self.fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")


def audit(m: Manifest, root: str, fh: TextIO, show_all: bool = False, workers: int = 1) -> AuditResult:
    res = AuditResult(dump=os.path.abspath(root), manifest=m.name)
    out = _Out(fh, res, show_all)

    # 1. the dump as it is now: every entry, hashed
    entries = list(walk(root))
    disk: Dict[str, Tuple[Entry, Optional[str], Optional[str]]] = {}
    by_rel = {e.rel: e for e in entries}
    for rel, digest, err in _hash_all(root, entries, workers):
        e = by_rel[rel]
        disk[L.escape(rel)] = (e, digest, err)
        if e.entry == "file":
            res.hashed_bytes += e.size

    # 2. one pass over the manifest
    top_status: Dict[str, str] = {}          # on-disk locator -> matched | modified | absent
    old_items: Dict[str, Dict[str, List[Tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    # ^ top locator -> level -> [(locator, digest)] for items inside files that did not match
    absent_files: Dict[str, str] = {}        # top locator -> digest (files not found at their path)
    for rec in m.records():
        lv = level_of(rec)
        if lv is None:
            continue
        loc = rec["locator"]
        dg = _digest(rec)
        if lv == "file":
            now = disk.get(loc)
            if now is None:
                top_status[loc] = "absent"
                if dg:
                    absent_files[loc] = dg
                else:
                    out.emit("missing", "file", loc)
            elif now[2] is not None:
                top_status[loc] = "modified"
                out.emit("modified", "file", loc, expected=dg, error="unreadable: %s" % now[2])
            elif dg is None or now[1] == dg:
                top_status[loc] = "matched"
                out.emit("matched", "file", loc, sha256=dg if dg and ":" not in dg else None)
            else:
                top_status[loc] = "modified"
                out.emit("modified", "file", loc, expected=dg, actual=now[1])
            continue
        top = top_path(loc)
        st = top_status.get(top)
        if st == "matched":
            out.emit("matched", lv, loc, inherited=True)
        elif dg:
            old_items[top][lv].append((loc, dg))

    # 3. files not found at their path: moved (same digest elsewhere, not in the manifest) or missing
    known = set(top_status)
    new_files = {loc: v for loc, v in disk.items() if loc not in known}
    new_by_digest: Dict[str, List[str]] = defaultdict(list)
    for loc in sorted(new_files):
        d = new_files[loc][1]
        if d:
            new_by_digest[d].append(loc)
    moved_to: Dict[str, str] = {}
    for loc in sorted(absent_files):
        cands = new_by_digest.get(absent_files[loc])
        if cands:
            moved_to[loc] = cands.pop(0)

    # sanity: nothing of the manifest is here -> probably the wrong folder (or the dump moved)
    manifest_files = len(top_status)
    present = sum(1 for s in top_status.values() if s != "absent") + len(moved_to)
    if manifest_files and present == 0 and new_files:
        run = m.run_record() or {}
        res.wrong_dump = ("none of the %d files of the manifest is in %s (it holds %d other files): is it the "
                          "right folder?%s" % (manifest_files, root, len(new_files),
                                               " The scan read %s." % run["dump_root"] if run.get("dump_root") else ""))
        return res

    missing: Dict[str, Dict[str, List[str]]] = {lv: defaultdict(list) for lv in LEVELS}
    fresh: Dict[str, Dict[str, List[str]]] = {lv: defaultdict(list) for lv in LEVELS}
    for loc in sorted(absent_files):
        items = old_items.pop(loc, {})
        if loc in moved_to:
            dest = moved_to[loc]
            out.emit("moved", "file", loc, now=dest, sha256=absent_files[loc])
            for lv in LEVELS:
                for iloc, dg in items.get(lv, ()):
                    out.emit("moved", lv, iloc, now=dest + iloc[len(loc):], sha256=dg, inherited=True)
        else:
            out.emit("missing", "file", loc, sha256=absent_files[loc])
            for lv in LEVELS:
                for iloc, dg in items.get(lv, ()):
                    missing[lv][dg].append(iloc)

    # 4. parse again what changed: modified files (compare inside) and new files (all new)
    opts = _options_from(m.summary)
    for loc in sorted(top_status):
        if top_status[loc] != "modified":
            continue
        entry = disk[loc][0]
        old = old_items.pop(loc, {})
        res.reparsed += 1
        now_items: Dict[str, Dict[str, str]] = {lv: {} for lv in LEVELS}
        if disk[loc][2] is None:
            for rec in _reparse(root, entry, opts):
                lv = level_of(rec)
                dg = _digest(rec) if lv else None
                if lv and lv != "file" and dg:
                    now_items[lv][rec["locator"]] = dg
        for lv in LEVELS:
            if lv == "file":
                continue
            before = dict(old.get(lv, ()))
            after = now_items[lv]
            for iloc, dg in before.items():
                if after.get(iloc) == dg:
                    out.emit("matched", lv, iloc)
                else:
                    missing[lv][dg].append(iloc)
            for iloc, dg in after.items():
                if before.get(iloc) != dg:
                    fresh[lv][dg].append(iloc)
    moved_new = set(moved_to.values())
    for loc in sorted(new_files):
        if loc in moved_new:
            continue
        e, dg, err = new_files[loc]
        fresh["file"][dg or ("unreadable:" + loc)].append(loc)
        if e.entry == "file" and err is None:
            res.reparsed += 1
            for rec in _reparse(root, e, opts):
                lv = level_of(rec)
                d2 = _digest(rec) if lv else None
                if lv and lv != "file" and d2:
                    fresh[lv][d2].append(rec["locator"])

    # 5. pair missing and new items of one level by digest (moved); what is left at one locator on
    #    both sides is modified; the rest is missing or new
    for lv in LEVELS:
        gone_left: Dict[str, str] = {}
        came_left: Dict[str, str] = {}
        for dg in sorted(set(missing[lv]) | set(fresh[lv])):
            gone = sorted(missing[lv].get(dg, ()))
            came = sorted(fresh[lv].get(dg, ()))
            while gone and came:
                out.emit("moved", lv, gone.pop(0), now=came.pop(0), sha256=dg)
            for iloc in gone:
                gone_left[iloc] = dg
            for iloc in came:
                came_left[iloc] = dg
        for iloc in sorted(gone_left):
            if iloc in came_left:
                out.emit("modified", lv, iloc, expected=gone_left[iloc], actual=came_left.pop(iloc))
            else:
                out.emit("missing", lv, iloc, sha256=gone_left[iloc])
        for iloc in sorted(came_left):
            dg = came_left[iloc]
            out.emit("new", lv, iloc, sha256=None if dg.startswith("unreadable:") else dg)
    fh.write(json.dumps({"record": "audit_summary", "dump": res.dump, "manifest": res.manifest,
                         "manifest_sha256": m.sha256, "exit_code": res.exit_code(),
                         "reparsed_files": res.reparsed,
                         "counts": {lv: {s: res.counts[lv][s] for s in STATUSES} for lv in LEVELS}},
                        sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
    return res


def render(res: AuditResult, console, manifest_status: str = "absent") -> None:
    from rich.table import Table
    from rich import box
    t = Table(title="leaktriage verify: %s against %s" % (res.manifest, res.dump), title_justify="left",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    t.add_column("Level")
    for s in STATUSES:
        t.add_column(s.capitalize(), justify="right")
    for lv in LEVELS:
        c = res.counts[lv]
        cells = []
        for s in STATUSES:
            v = c[s]
            style = "" if not v or s == "matched" else ("red" if s in ("modified", "missing") else "yellow")
            cells.append("[%s]%s[/]" % (style, "{:,}".format(v)) if style else "{:,}".format(v))
        t.add_row(lv + "s", *cells)
    console.print(t)
    side = {"ok": "the manifest matches its MANIFEST.sha256", "absent": "no MANIFEST.sha256 to check the manifest against",
            "malformed": "MANIFEST.sha256 is unreadable"}.get(manifest_status, manifest_status)
    code = res.exit_code()
    if code == 0:
        console.print("[green]All matched[/] (%s; %d files parsed again)." % (side, res.reparsed))
    else:
        what = [s for s in BITS if res.total(s)]
        console.print("[bold red]Differences[/]: %s (exit code %d; %s; %d files parsed again). Details on stdout "
                      "(JSON Lines)." % (", ".join(what), code, side, res.reparsed))
