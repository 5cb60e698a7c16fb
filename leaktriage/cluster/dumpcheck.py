"""Is it the same dump? The digest of a walk, and the check a worker makes before its first task.

The walk (leaktriage.scanner.walk) lists every entry with its kind and size in a fixed order, so
the SHA-256 of that listing tells two views of a dump apart: a worker on another machine whose
mount is stale, points elsewhere, or misses a folder computes another digest and refuses to work,
instead of writing records of another dump into the manifest. Contents are not hashed here (that
would read the dump twice); a file changed in place with the same size is caught by the scan's
own checks (walk.changed, the ranges' size and mtime).
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Iterable, Optional, Tuple

from leaktriage.scanner.walk import Entry, walk


def walk_digest(entries: Iterable[Entry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        for part in (e.rel, e.entry.encode("ascii"), str(e.size).encode("ascii"), e.maildir_folder or b"",
                     (e.maildir_subdir or "").encode("ascii"), e.symlink_target or b""):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    return h.hexdigest()


def path_digest(path: Optional[str]) -> Optional[str]:
    """SHA-256 of a file, or of a folder's files (names and contents, sorted): the DKIM key store
    the workers must see as the client does."""
    if not path:
        return None
    h = hashlib.sha256()
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            if os.path.isfile(p):
                h.update(name.encode("utf-8", "surrogateescape") + b"\0")
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    else:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


_CHECKED: Dict[Tuple, Optional[str]] = {}


def check(root: str, digest: str, keystore: Optional[str] = None, keys_digest: Optional[str] = None) -> Optional[str]:
    """None when this process sees the dump at `root` (and the key store) as the client did, else
    why not. Made once per worker process (cached)."""
    key = (root, digest, keystore, keys_digest)
    if key not in _CHECKED:
        _CHECKED[key] = _check(root, digest, keystore, keys_digest)
    return _CHECKED[key]


def _check(root: str, digest: str, keystore: Optional[str], keys_digest: Optional[str]) -> Optional[str]:
    import socket
    host = socket.gethostname()
    if not os.path.exists(root):      # a folder, or a one-file dump
        return "worker on %s: the dump %s is not there (the workers must see it at the same path)" % (host, root)
    mine = walk_digest(walk(root))
    if mine != digest:
        return ("worker on %s sees another dump at %s (walk digest %s, the client's %s): a stale or "
                "different mount?" % (host, root, mine[:16], digest[:16]))
    if keystore:
        try:
            theirs = path_digest(keystore)
        except OSError as exc:
            return "worker on %s cannot read the DKIM key store %s: %s" % (host, keystore, exc.strerror or exc)
        if theirs != keys_digest:
            return "worker on %s sees another DKIM key store at %s" % (host, keystore)
    return None
