"""Walking the dump: every entry, sorted by the raw bytes of its name, symlinks never followed.

Yields Entry objects in a deterministic order (depth-first, siblings sorted by raw name bytes).
Directories are not entries themselves; unreadable directories are (with an error).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Iterator, Optional

MAILDIR_SUBDIRS = (b"cur", b"new", b"tmp")


@dataclass(frozen=True)
class Entry:
    rel: bytes                      # path relative to the root, b"/"-separated
    entry: str                      # file, symlink, fifo, socket, block-device, char-device, other, unreadable-dir
    size: int = 0
    maildir_folder: Optional[bytes] = None  # the Maildir folder (relative path) when in cur/new/tmp
    maildir_subdir: Optional[str] = None
    error: Optional[str] = None
    symlink_target: Optional[bytes] = None


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode):
        return "block-device"
    if stat.S_ISCHR(mode):
        return "char-device"
    return "other"


def walk(root: str) -> Iterator[Entry]:
    """Entries in path order: siblings sorted by raw name bytes, a directory's content right where
    the directory sorts."""
    broot = os.fsencode(root)
    # stack items: ("dir", rel, maildir folder or None) or ("entry", Entry)
    stack: list = [("dir", b"", None)]
    while stack:
        item = stack.pop()
        if item[0] == "entry":
            yield item[1]
            continue
        _, rel, in_maildir = item
        full = os.path.join(broot, rel) if rel else broot
        try:
            with os.scandir(full) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if rel:
                yield Entry(rel, "unreadable-dir", error="%s: %s" % (type(exc).__name__, exc.strerror or exc))
            continue
        names = {e.name for e in entries}
        # cur plus new or tmp (or Maildir++'s maildirfolder): empty new/tmp folders are often lost
        # when a dump is copied through git or an archive, so one of them is enough
        is_maildir = b"cur" in names and (b"new" in names or b"tmp" in names or b"maildirfolder" in names)
        pending = []
        for e in entries:
            erel = rel + b"/" + e.name if rel else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                pending.append(("entry", Entry(erel, "other", error="%s: %s" % (type(exc).__name__, exc.strerror or exc))))
                continue
            if stat.S_ISDIR(st.st_mode):
                pending.append(("dir", erel, rel if (is_maildir and e.name in MAILDIR_SUBDIRS) else None))
                continue
            k = _kind(st.st_mode)
            if k == "symlink":
                try:
                    target = os.readlink(os.path.join(broot, erel))
                except OSError:
                    target = None
                pending.append(("entry", Entry(erel, "symlink", st.st_size, symlink_target=target)))
            elif in_maildir is not None:
                pending.append(("entry", Entry(erel, k, st.st_size, maildir_folder=in_maildir,
                                               maildir_subdir=rel.rpartition(b"/")[2].decode("ascii"))))
            else:
                pending.append(("entry", Entry(erel, k, st.st_size)))
        stack.extend(reversed(pending))
