"""Walking the dump: every entry, sorted by the raw bytes of its name, symlinks never followed.

Yields Entry objects in a deterministic order (depth-first, siblings sorted by raw name bytes).
Directories are not entries themselves; directories that cannot be listed are (with the error).

Directories are opened one at a time and listed through their file descriptor (os.scandir on a
directory fd, entries stat'ed relative to it), so a path longer than PATH_MAX is walked like any
other; a directory is opened by its path, or, when that path is too long, component by component
from the root (O_NOFOLLOW at every step). open_in_dump() opens a file of the dump the same way, for
the scan, the resolver and verify.

The dump is a folder, or a single regular file (`leaktriage scan Inbox.mbox`): then the walk yields
one entry whose path (and locator) is the file's name, and open_in_dump(root, name) opens the root
itself. The dump root is what the user named: a symbolic link given as the root is followed; links
inside the dump never are.
"""
from __future__ import annotations

import errno as _errno
import os
import stat
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

MAILDIR_SUBDIRS = (b"cur", b"new", b"tmp")

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Entry:
    rel: bytes                      # path relative to the root, b"/"-separated
    entry: str                      # file, symlink, fifo, socket, block-device, char-device, other, unreadable-dir
    size: int = 0
    maildir_folder: Optional[bytes] = None  # the Maildir folder (relative path) when in cur/new/tmp
    maildir_subdir: Optional[str] = None
    error: Optional[str] = None     # the entry could not be stat'ed (or, for unreadable-dir, listed)
    symlink_target: Optional[bytes] = None
    errno: Optional[int] = None     # the errno of `error`
    custodian: Optional[bytes] = None  # set when the layout decides it for the whole dump (a root Maildir)


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


def _error(exc: OSError) -> str:
    return "%s: %s" % (type(exc).__name__, exc.strerror or exc)


def is_file_dump(root) -> bool:
    """The dump is one file (anything but a directory that exists: the API refuses what is not a
    regular file)."""
    try:
        return not stat.S_ISDIR(os.stat(root).st_mode)
    except OSError:
        return False


def _descend(broot: bytes, parts: List[bytes]) -> int:
    """A directory fd for broot/parts..., opened component by component (no path length limit)."""
    fd = os.open(broot, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))   # the root may be a link: it is followed
    try:
        for part in parts:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir(broot: bytes, rel: bytes) -> int:
    if not rel:
        return os.open(broot, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
    try:
        return os.open(os.path.join(broot, rel), _DIR_FLAGS)
    except OSError as exc:
        if exc.errno != _errno.ENAMETOOLONG:
            raise
    return _descend(broot, rel.split(b"/"))


def open_in_dump(root, rel: bytes, flags: int) -> int:
    """A file descriptor for the entry `rel` of the dump at `root` (a folder, or a one-file dump whose
    only entry is its name), opened with `flags`: by its path, or through directory fds when the
    path is longer than PATH_MAX."""
    broot = os.fsencode(root)
    if is_file_dump(broot):
        if rel != os.path.basename(broot.rstrip(b"/")):
            raise FileNotFoundError(_errno.ENOENT, "not in this one-file dump", os.fsdecode(rel))
        return os.open(broot, flags & ~getattr(os, "O_NOFOLLOW", 0))
    try:
        return os.open(os.path.join(broot, rel), flags)
    except OSError as exc:
        if exc.errno != _errno.ENAMETOOLONG:
            raise
    head, _, name = rel.rpartition(b"/")
    dfd = _descend(broot, head.split(b"/") if head else [])
    try:
        return os.open(name, flags, dir_fd=dfd)
    finally:
        os.close(dfd)


def lstat_in_dump(root, rel: bytes) -> os.stat_result:
    """os.lstat of the entry `rel` of the dump (past PATH_MAX too); for a one-file dump, os.stat of
    the root (the root is what the user named: a link given as the root is followed)."""
    broot = os.fsencode(root)
    if is_file_dump(broot):
        if rel != os.path.basename(broot.rstrip(b"/")):
            raise FileNotFoundError(_errno.ENOENT, "not in this one-file dump", os.fsdecode(rel))
        return os.stat(broot)
    try:
        return os.lstat(os.path.join(broot, rel))
    except OSError as exc:
        if exc.errno != _errno.ENAMETOOLONG:
            raise
    head, _, name = rel.rpartition(b"/")
    dfd = _descend(broot, head.split(b"/") if head else [])
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def root_name(root) -> Optional[bytes]:
    """The dump root's own name (the last component of its absolute path), or None for '/'."""
    name = os.path.basename(os.path.abspath(os.fsencode(root)).rstrip(b"/"))
    return name or None


def _one_file(broot: bytes) -> Entry:
    rel = os.path.basename(broot.rstrip(b"/")) or broot
    try:
        st = os.stat(broot)          # the root is what the user named: a link given as the root is followed
    except OSError as exc:
        return Entry(rel, "other", error=_error(exc), errno=exc.errno)
    return Entry(rel, _kind(st.st_mode), st.st_size)


def _listing(fd: int) -> List[Tuple[bytes, str, int, Optional[str], Optional[int], Optional[bytes]]]:
    """(name, kind, size, error, errno, symlink target) for every entry of the directory open as fd,
    sorted by raw name bytes. An entry that cannot be stat'ed keeps the kind its directory entry
    gives (d_type: 'dir', file, symlink...; 'other' when unknown) and the error."""
    out = []
    with os.scandir(fd) as it:
        for e in it:
            name = os.fsencode(e.name)
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                kind = "other"
                try:
                    if e.is_symlink():
                        kind = "symlink"
                    elif e.is_dir(follow_symlinks=False):
                        kind = "dir"
                    elif e.is_file(follow_symlinks=False):
                        kind = "file"
                except OSError:
                    pass
                out.append((name, kind, 0, _error(exc), exc.errno, None))
                continue
            if stat.S_ISDIR(st.st_mode):
                out.append((name, "dir", 0, None, None, None))
                continue
            kind = _kind(st.st_mode)
            target = None
            if kind == "symlink":
                try:
                    target = os.readlink(name, dir_fd=fd)
                except OSError:
                    target = None
            out.append((name, kind, st.st_size, None, None, target))
    out.sort(key=lambda t: t[0])
    return out


def walk(root: str) -> Iterator[Entry]:
    """Entries in path order: siblings sorted by raw name bytes, a directory's content right where
    the directory sorts. A one-file dump yields its one entry."""
    broot = os.fsencode(root)
    if is_file_dump(broot):
        yield _one_file(broot)
        return
    custodian = None
    # stack items: ("dir", rel, maildir folder or None) or ("entry", Entry)
    stack: list = [("dir", b"", None)]
    while stack:
        item = stack.pop()
        if item[0] == "entry":
            yield item[1]
            continue
        _, rel, in_maildir = item
        try:
            fd = _open_dir(broot, rel)
            try:
                listing = _listing(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if rel:
                yield Entry(rel, "unreadable-dir", error=_error(exc), errno=exc.errno, custodian=custodian)
            continue
        names = {t[0] for t in listing}
        # cur plus new or tmp (or Maildir++'s maildirfolder): empty new/tmp folders are often lost
        # when a dump is copied through git or an archive, so one of them is enough
        is_maildir = b"cur" in names and (b"new" in names or b"tmp" in names or b"maildirfolder" in names)
        if not rel and is_maildir:
            # the dump root is itself a mailbox: everything in it belongs to one person, named by the
            # root folder (the first folder of a path is cur, new, tmp or a Maildir++ .Folder)
            custodian = root_name(broot)
        pending = []
        for name, kind, size, err, eno, target in listing:
            erel = rel + b"/" + name if rel else name
            if kind == "dir" and err is None:
                pending.append(("dir", erel, rel if (is_maildir and name in MAILDIR_SUBDIRS) else None))
            elif kind == "dir":
                # not stat'ed (a folder that is readable but not searchable): try to list it anyway;
                # if that fails too, it is recorded as a folder that could not be listed
                pending.append(("dir", erel, None))
            elif err is not None:
                pending.append(("entry", Entry(erel, kind, error=err, errno=eno, custodian=custodian)))
            elif kind == "symlink":
                pending.append(("entry", Entry(erel, "symlink", size, symlink_target=target, custodian=custodian)))
            elif in_maildir is not None:
                pending.append(("entry", Entry(erel, kind, size, maildir_folder=in_maildir,
                                               maildir_subdir=rel.rpartition(b"/")[2].decode("ascii"),
                                               custodian=custodian)))
            else:
                pending.append(("entry", Entry(erel, kind, size, custodian=custodian)))
        stack.extend(reversed(pending))
