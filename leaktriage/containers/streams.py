"""What the archive and compressed-stream readers share: bounded expansion of a member (the limits
of base.Limits checked after every step, spilling to an unnamed temporary file past SPILL bytes),
raw deflate / bz2 / lzma decompression in bounded steps, read-only streams over memory maps,
unique and flagged member names.

Every reader (zip.py, tar.py, compressed.py, sevenzip.py, rar.py) follows containers/base.py:
``reader(data, ctx) -> Iterator[Child | Problem]``, never raises on hostile input, and expands members
in bounded chunks so that a decompression bomb stops at the first limit it crosses (max_member_size,
max_total_expanded, max_ratio; see base.Limits) without allocating more than about one limit's
worth of memory. Locator segments are documented in docs/containers.md.
"""
from __future__ import annotations

import base64
import io
import lzma
import mmap
import re
import tarfile
import tempfile
import zlib
from typing import Callable, Iterable, Iterator, List, Optional, Union

from leaktriage.content.pages import ReleaseBehind
from leaktriage.model.locator import segment as _segment, unescape as _unescape
from leaktriage.containers.base import Child, Context, Problem

Item = Union[Child, Problem]

OUT_CHUNK = 1 << 20          # decompressed bytes produced per step
IN_CHUNK = 1 << 16           # compressed bytes fed per step
RATIO_FLOOR = 1 << 20        # the ratio limit applies once a member has expanded past 1 MiB
TOTAL_RATIO_FLOOR = 64 << 20  # a top-level file may always decompress this much (max_total_ratio)
SPILL = 64 << 20             # a member larger than this is held in an unnamed temporary file, not in RAM


class Truncated(Exception):
    """The compressed data ended (or became corrupt) before the end of the stream."""


_DRIVE = re.compile(r"^[A-Za-z]:")


def name_flags(name: str) -> List[str]:
    """Flags for a suspicious member name (recorded, never used as a path)."""
    flags: List[str] = []
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        flags.append("traversal")
    if name.startswith("/") or name.startswith("\\"):
        flags.append("absolute")
    if _DRIVE.match(name):
        flags.append("drive_letter")
    if "\x00" in name:
        flags.append("nul")
    if any((ord(c) < 0x20 and c != "\x00") or ord(c) == 0x7F for c in name):
        flags.append("control_chars")
    return flags


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class Names:
    """Builds unique locator segment values for the members of one archive."""

    def __init__(self, kind: str, prefix: str):
        self.kind = kind
        self.prefix = prefix
        self.seen: dict = {}
        self.used: set = set()

    def segment(self, name: str, meta: dict, problems: list) -> str:
        value = name
        n = self.seen.get(name, 0) + 1
        self.seen[name] = n
        if n > 1 or value in self.used:
            k = max(n, 2)
            while True:
                value = "%s\x00%d" % (name, k)
                if value not in self.used:
                    break
                k += 1
            meta["duplicate"] = k
            problems.append(Problem(self.prefix + ".duplicate_name",
                                    "member name %r occurs more than once; this is occurrence %d" % (name, k),
                                    detail={"name": name, "occurrence": k}))
        self.used.add(value)
        return _segment(self.kind, value)

    def flag(self, name: str, meta: dict, problems: list) -> None:
        flags = name_flags(name)
        if flags:
            meta["name_flags"] = flags
            problems.append(Problem(self.prefix + ".suspicious_name",
                                    "suspicious member name %r (%s); recorded verbatim, never used as a path"
                                    % (name, ", ".join(flags)), detail={"name_flags": flags}))


class Expansion:
    """Result of a bounded expansion."""

    __slots__ = ("data", "problem", "truncated", "expanded", "error")

    def __init__(self) -> None:
        self.data: Optional[bytes] = None
        self.problem: Optional[Problem] = None   # a limit problem (data is then None)
        self.truncated = False                   # the source ended early (data is the prefix)
        self.expanded = 0
        self.error: Optional[str] = None


def fileobj(data):
    """A file object over a container's bytes: the memory map itself when it is one (no copy),
    else an in-memory stream."""
    if isinstance(data, mmap.mmap):
        data.seek(0)
        return data
    return io.BytesIO(data)


class MapRaw(io.RawIOBase):
    """A read-only raw stream over a memory map, for libraries that want a real io object (py7zr
    refuses an mmap): reads copy only what is asked for, never the whole map, and the pages a
    forward read has left behind are handed back to the kernel (ReleaseBehind), so a big archive
    read once does not stay resident."""

    def __init__(self, m) -> None:
        super().__init__()
        self._m = m
        self._pos = 0
        self._behind = ReleaseBehind(m)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._m))[whence]
        self._pos = max(0, base + offset)
        self._behind.rewind(self._pos)
        return self._pos

    def readinto(self, b) -> int:
        chunk = self._m[self._pos:self._pos + len(b)]
        n = len(chunk)
        b[:n] = chunk
        self._pos += n
        self._behind.reached(self._pos)
        return n


def io_stream(data, buffer: int = 1 << 16):
    """An io stream over a container's bytes without copying them: a memory map goes through
    MapRaw (buffered unless buffer is 0: a reader that jumps around, like libpff, would copy a
    whole buffer per small read), bytes through BytesIO (which shares the bytes until written to)."""
    if isinstance(data, mmap.mmap):
        return io.BufferedReader(MapRaw(data), buffer) if buffer else MapRaw(data)
    return io.BytesIO(data)


def expand(chunks: Iterable[bytes], compressed_size: Optional[int], ctx: Context, prefix: str,
            label: str, ratio: bool = True) -> Expansion:
    """Collect decompressed chunks while enforcing the limits; never more than one chunk beyond."""
    lim = ctx.limits
    res = Expansion()
    out = io.BytesIO()
    spill = None  # members past SPILL bytes go to an unnamed temporary file, then are memory-mapped
    total = 0
    budget = inflate_budget(ctx) if ratio else None
    try:
        for chunk in chunks:
            total += len(chunk)
            if budget is not None and ctx.inflated_so_far + total > budget:
                res.problem = _ratio_budget_problem(ctx, prefix, "expanding " + label, budget, total)
                break
            if total > lim.max_member_size:
                res.problem = Problem(prefix + ".member_too_large",
                                      "%s expands beyond max_member_size (%d bytes); stopped" % (label, lim.max_member_size),
                                      detail={"limit": lim.max_member_size, "expanded_before_stop": total})
                break
            if ctx.expanded_so_far + total > lim.max_total_expanded:
                res.problem = Problem(prefix + ".total_exceeded",
                                      "expanding %s would exceed max_total_expanded (%d bytes); stopped" % (label, lim.max_total_expanded),
                                      detail={"limit": lim.max_total_expanded, "expanded_before_stop": total})
                break
            if (ratio and compressed_size is not None and total > RATIO_FLOOR
                    and total > lim.max_ratio * max(compressed_size, 1)):
                res.problem = Problem(prefix + ".ratio_exceeded",
                                      "%s expands more than %g times its compressed size (%d bytes); stopped at %d bytes"
                                      % (label, lim.max_ratio, compressed_size, total),
                                      detail={"limit": lim.max_ratio, "compressed_size": compressed_size,
                                              "expanded_before_stop": total})
                break
            if spill is None and total > SPILL:
                spill = tempfile.TemporaryFile(prefix="leaktriage-member-")
                spill.write(out.getbuffer())
                out = spill
            out.write(chunk)
    except Truncated as e:
        res.truncated = True
        res.error = str(e) or "unexpected end of data"
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, tarfile.TarError) as e:
        res.truncated = True
        res.error = "%s: %s" % (type(e).__name__, e)
    ctx.expanded_so_far += total
    if ratio:
        ctx.inflated_so_far += total
    res.expanded = total
    if res.problem is None:
        if spill is not None:
            spill.flush()
            res.data = mmap.mmap(spill.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            res.data = out.getvalue()
    if spill is not None:
        spill.close()  # the memory map (if any) keeps the unnamed file's pages alive
    return res


def inflate_raw(buf: memoryview, start: int, end: int, state: Optional[dict] = None) -> Iterator[bytes]:
    """Raw deflate from buf[start:end] in bounded chunks. state['end'] = offset after the stream."""
    d = zlib.decompressobj(-15)
    pos = start
    behind = ReleaseBehind(buf, start)
    while True:
        if d.unconsumed_tail:
            inp = d.unconsumed_tail
        elif pos < end:
            inp = bytes(buf[pos:min(end, pos + IN_CHUNK)])
            pos += len(inp)
            behind.reached(pos)
        else:
            inp = b""
        out = d.decompress(inp, OUT_CHUNK)
        if out:
            yield out
        if d.eof:
            if state is not None:
                # unused_data holds every input byte after the end marker; when the last call's
                # input was the previous unconsumed_tail, zlib leaves those same bytes in
                # unconsumed_tail as well: counting both put the end (and a gzip trailer, a zip
                # member's end) too early (#14 item 5)
                state["end"] = pos - len(d.unused_data)
            return
        if not inp and not out:
            raise Truncated("deflate stream ends before its end marker")


def decompress_obj(make: Callable, buf: memoryview, start: int, end: int,
                    state: Optional[dict] = None) -> Iterator[bytes]:
    """bz2/lzma decompressor objects, bounded output per step."""
    d = make()
    pos = start
    behind = ReleaseBehind(buf, start)
    while not d.eof:
        if d.needs_input:
            if pos >= end:
                raise Truncated("compressed stream ends before its end marker")
            inp = bytes(buf[pos:min(end, pos + IN_CHUNK)])
            pos += len(inp)
            behind.reached(pos)
        else:
            inp = b""
        out = d.decompress(inp, OUT_CHUNK)
        if out:
            yield out
    if state is not None:
        state["end"] = pos - len(d.unused_data)


def stored_chunks(buf: memoryview, start: int, end: int) -> Iterator[bytes]:
    pos = start
    behind = ReleaseBehind(buf, start)
    while pos < end:
        n = min(end, pos + OUT_CHUNK)
        yield bytes(buf[pos:n])
        pos = n
        behind.reached(pos)


def limit_problem_for_total(ctx: Context, prefix: str, label: str, inflating: bool = False) -> Optional[Problem]:
    """The total_exceeded problem when the top-level file's budget is spent before `label` is
    expanded: max_total_expanded, and for a member to decompress (inflating) its ratio budget."""
    if ctx.expanded_so_far >= ctx.limits.max_total_expanded:
        return Problem(prefix + ".total_exceeded",
                       "max_total_expanded (%d bytes) reached before %s" % (ctx.limits.max_total_expanded, label),
                       detail={"limit": ctx.limits.max_total_expanded})
    budget = inflate_budget(ctx) if inflating else None
    if budget is not None and ctx.inflated_so_far >= budget:
        return _ratio_budget_problem(ctx, prefix, "before " + label, budget, None)
    return None


def declared_budget_problem(ctx: Context, prefix: str, label: str, size: int) -> Optional[Problem]:
    """The total_exceeded problem when decompressing `size` more bytes (a declared size: 7z) would
    pass the top-level file's budgets, else None."""
    lim = ctx.limits
    if ctx.expanded_so_far + size > lim.max_total_expanded:
        return Problem(prefix + ".total_exceeded", "expanding %s would exceed max_total_expanded (%d); not expanded"
                       % (label, lim.max_total_expanded), detail={"limit": lim.max_total_expanded})
    budget = inflate_budget(ctx)
    if budget is not None and ctx.inflated_so_far + size > budget:
        return _ratio_budget_problem(ctx, prefix, "before " + label, budget, None)
    return None


def inflate_budget(ctx: Context) -> Optional[int]:
    """Bytes decompression may produce for the whole top-level file, all nesting levels together:
    max_total_ratio times its size, at least TOTAL_RATIO_FLOOR (None when its size is unknown).
    Slices of stored data (tar members, stored zip members) do not count: they add no bytes."""
    if not ctx.top_size:
        return None
    return max(TOTAL_RATIO_FLOOR, int(ctx.limits.max_total_ratio * ctx.top_size))


def _ratio_budget_problem(ctx: Context, prefix: str, what: str, budget: int, total: Optional[int]) -> Problem:
    detail = {"limit": budget, "max_total_ratio": ctx.limits.max_total_ratio, "top_level_size": ctx.top_size,
              "decompressed_before": ctx.inflated_so_far}
    if total is not None:
        detail["expanded_before_stop"] = total
    return Problem(prefix + ".total_exceeded",
                   "decompression budget of the top-level file spent (%d bytes: max_total_ratio %g x its %d bytes, "
                   "at least %d) %s; stopped, not expanded" % (budget, ctx.limits.max_total_ratio, ctx.top_size,
                                                                 TOTAL_RATIO_FLOOR, what),
                   detail=detail)


def parent_name(ctx: Context) -> Optional[bytes]:
    """The raw name of the container being opened, from its locator (None for a MIME part)."""
    loc = ctx.locator or ""
    last = loc.rsplit("!", 1)[-1]
    if "#" in last:
        return None
    if "!" in loc:
        _, _, value = last.partition(":")
    else:
        value = last
    value = value.rstrip("/").rsplit("/", 1)[-1]
    if not value or value == ".":
        return None
    raw = _unescape(value)
    return raw.rsplit(b"\\", 1)[-1] or None




def display(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
