"""Memory pages of a memory-mapped input: given back to the kernel behind a forward walk, so that
reading a big file once does not leave it resident. Only residency changes, never bytes."""
from __future__ import annotations

import mmap


def release(data, start: int, end: int) -> None:
    """Tell the kernel the pages of a memory map between start and end are no longer needed."""
    if isinstance(data, mmap.mmap) and hasattr(data, "madvise"):
        page = mmap.PAGESIZE
        a = (start // page) * page
        if end > a:
            try:
                data.madvise(mmap.MADV_DONTNEED, a, end - a)
            except (OSError, ValueError):
                pass


class ReleaseBehind:
    """Gives the pages of a memory-mapped buffer that a forward walk has left behind back to the
    kernel, every STEP bytes. The last KEEP bytes before the walk's position stay: the kernel maps
    up to 64 KiB around each page fault, also behind it. Without this, touching one line per small
    mbox message, or reading a big archive once, leaves the file resident. Anything but a memory
    map (or a memoryview of one) is left alone; a later read of a released page maps it again."""

    STEP = 1 << 20
    KEEP = 65536

    def __init__(self, buf, start: int = 0):
        self.buf = getattr(buf, "obj", buf)   # a memoryview of a map: the map
        self.done = start

    def reached(self, pos: int) -> None:
        if pos - self.done > self.STEP + self.KEEP:
            release(self.buf, self.done, pos - self.KEEP)
            self.done = pos - self.KEEP

    def rewind(self, pos: int) -> None:
        """The walk went back to pos: release again from there."""
        self.done = min(self.done, pos)
