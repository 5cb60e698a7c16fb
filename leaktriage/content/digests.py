"""Digests of items: every requested algorithm in one pass over the bytes."""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Sequence

from leaktriage.content.pages import release

ALGORITHMS = ("sha256", "md5", "sha1")


CHUNK = 16 << 20


def digests(data, algorithms: Sequence[str] = ("sha256",)) -> Dict[str, str]:
    """All requested digests of `data` (bytes or a memory map). A memory map is hashed in chunks,
    each chunk fed to every digest and then released from memory (madvise), so hashing a 2 GB file
    does not make it resident."""
    if isinstance(data, (bytes, bytearray)) and len(data) <= CHUNK:
        return {a: hashlib.new(a, data).hexdigest() for a in algorithms}
    hs = [(a, hashlib.new(a)) for a in algorithms]
    view = memoryview(data)
    for off in range(0, len(data), CHUNK):
        piece = view[off:off + CHUNK]
        for _, h in hs:
            h.update(piece)
        release(data, off, off + len(piece))
    view.release()
    return {a: h.hexdigest() for a, h in hs}


def sha256_of_fd(fd: int, chunk: int = 1 << 20) -> str:
    """SHA-256 of what is left to read from an open file descriptor (read in 1 MiB pieces; the caller
    opens and closes it, and sees its OSError)."""
    h = hashlib.sha256()
    while True:
        b = os.read(fd, chunk)
        if not b:
            return h.hexdigest()
        h.update(b)


class MultiHash:
    """Feed chunks once, get every digest."""

    def __init__(self, algorithms: Sequence[str] = ("sha256",)):
        self._h = [(a, hashlib.new(a)) for a in algorithms]
        self.size = 0

    def update(self, chunk) -> None:
        self.size += len(chunk)
        for _, h in self._h:
            h.update(chunk)

    def result(self) -> Dict[str, str]:
        return {a: h.hexdigest() for a, h in self._h}
