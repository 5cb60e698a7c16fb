"""Archive and compressed-stream readers: zip, tar, gzip, bzip2, xz, 7z, rar.

Every reader follows containers/base.py: ``reader(data, ctx) -> Iterator[Child | Problem]``, never
raises on hostile input, and expands members in bounded chunks so that a decompression bomb stops
at the first limit it crosses (max_member_size, max_total_expanded, max_ratio; see base.Limits)
without allocating more than about one limit's worth of memory.

The zip reader is our own parser (not zipfile): it needs the raw name bytes, the central
directory *and* the local headers (damaged archives, members hidden from the central directory),
and bounded streaming decompression. Locator segments are documented in docs/containers.md.
"""
from __future__ import annotations

import base64
import bisect
import bz2
import datetime as _dt
import io
import mmap
import tempfile
import lzma
import re
import struct
import tarfile
import unicodedata
import zlib
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, Union

from leaktriage.content import pages
from leaktriage.content.pages import ReleaseBehind
from leaktriage.model.locator import segment as _segment, unescape as _unescape
from leaktriage.containers.base import Child, Context, Problem, iso_datetime, iso_timestamp

Item = Union[Child, Problem]

OUT_CHUNK = 1 << 20          # decompressed bytes produced per step
IN_CHUNK = 1 << 16           # compressed bytes fed per step
RATIO_FLOOR = 1 << 20        # the ratio limit applies once a member has expanded past 1 MiB
SPILL = 64 << 20             # a member larger than this is held in an unnamed temporary file, not in RAM
SEVENZ_BATCH = 64 << 20      # declared bytes extracted per py7zr call


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------

class _Truncated(Exception):
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


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class _Names:
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


class _Expansion:
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


class _MapRaw(io.RawIOBase):
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
    _MapRaw (buffered unless buffer is 0: a reader that jumps around, like libpff, would copy a
    whole buffer per small read), bytes through BytesIO (which shares the bytes until written to)."""
    if isinstance(data, mmap.mmap):
        return io.BufferedReader(_MapRaw(data), buffer) if buffer else _MapRaw(data)
    return io.BytesIO(data)


def _expand(chunks: Iterable[bytes], compressed_size: Optional[int], ctx: Context, prefix: str,
            label: str, ratio: bool = True) -> _Expansion:
    """Collect decompressed chunks while enforcing the limits; never more than one chunk beyond."""
    lim = ctx.limits
    res = _Expansion()
    out = io.BytesIO()
    spill = None  # members past SPILL bytes go to an unnamed temporary file, then are memory-mapped
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
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
    except _Truncated as e:
        res.truncated = True
        res.error = str(e) or "unexpected end of data"
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, tarfile.TarError) as e:
        res.truncated = True
        res.error = "%s: %s" % (type(e).__name__, e)
    ctx.expanded_so_far += total
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


def _inflate_raw(buf: memoryview, start: int, end: int, state: Optional[dict] = None) -> Iterator[bytes]:
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
                state["end"] = pos - len(d.unused_data) - len(d.unconsumed_tail)
            return
        if not inp and not out:
            raise _Truncated("deflate stream ends before its end marker")


def _decompress_obj(make: Callable, buf: memoryview, start: int, end: int,
                    state: Optional[dict] = None) -> Iterator[bytes]:
    """bz2/lzma decompressor objects, bounded output per step."""
    d = make()
    pos = start
    behind = ReleaseBehind(buf, start)
    while not d.eof:
        if d.needs_input:
            if pos >= end:
                raise _Truncated("compressed stream ends before its end marker")
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


def _stored(buf: memoryview, start: int, end: int) -> Iterator[bytes]:
    pos = start
    behind = ReleaseBehind(buf, start)
    while pos < end:
        n = min(end, pos + OUT_CHUNK)
        yield bytes(buf[pos:n])
        pos = n
        behind.reached(pos)


def _limit_problem_for_total(ctx: Context, prefix: str, label: str) -> Optional[Problem]:
    if ctx.expanded_so_far >= ctx.limits.max_total_expanded:
        return Problem(prefix + ".total_exceeded",
                       "max_total_expanded (%d bytes) reached before %s" % (ctx.limits.max_total_expanded, label),
                       detail={"limit": ctx.limits.max_total_expanded})
    return None


def _parent_name(ctx: Context) -> Optional[bytes]:
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


_SUFFIXES = {
    "gzip": ((b".tgz", b".tar"), (b".taz", b".tar"), (b".gz", b""), (b".gzip", b""), (b".z", b""), (b"-gz", b""), (b"_gz", b"")),
    "bzip2": ((b".tbz2", b".tar"), (b".tbz", b".tar"), (b".bz2", b""), (b".bz", b"")),
    "xz": ((b".txz", b".tar"), (b".xz", b""), (b".lzma", b""), (b".tlz", b".tar")),
}


def _stream_child_name(ctx: Context, fmt: str) -> bytes:
    name = _parent_name(ctx)
    if not name:
        return b"data"
    low = name.lower()
    for suf, rep in _SUFFIXES[fmt]:
        if low.endswith(suf) and len(name) > len(suf):
            return name[: len(name) - len(suf)] + rep
    return name


def _display(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ---------------------------------------------------------------------------------------------
# zip
# ---------------------------------------------------------------------------------------------

_ZIP_METHODS = {0: "stored", 1: "shrunk", 6: "imploded", 8: "deflate", 9: "deflate64", 12: "bzip2",
                14: "lzma", 93: "zstd", 95: "xz", 96: "jpeg", 97: "wavpack", 98: "ppmd", 99: "aes"}

_CP437_PLAUSIBLE = set("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜáíóúñÑ¿¡ßµ£¥")


def _non_ascii(s: str) -> List[str]:
    return [c for c in s if ord(c) > 0x7F]


def _score_name(s: str) -> int:
    """Higher is more plausible for a decoded file name."""
    score = 0
    prev = ""
    for c in s:
        o = ord(c)
        if o > 0x7F:
            cat = unicodedata.category(c)
            if not cat.startswith("L"):
                score -= 3
            else:
                script = unicodedata.name(c, "").split(" ")[0]
                if prev and prev.isascii() and prev.isalpha():
                    score -= 1      # a non-ASCII letter glued to an ASCII letter of another script
                if script not in ("LATIN", "CYRILLIC", "GREEK"):
                    score -= 1
        if prev and prev.isalpha() and c.isalpha() and prev.islower() and c.isupper():
            score -= 1              # case flips inside a word: mojibake
        prev = c
    return score


def decode_zip_name(raw: bytes, utf8_flag: bool, unicode_extra: Optional[str] = None) -> Tuple[str, str]:
    """Decode a zip member name. Returns (name, encoding label).

    Flag 0x800 set: UTF-8 (invalid bytes kept as surrogate escapes -> %XX in locators).
    Flag unset: an Info-ZIP Unicode Path extra field wins; pure ASCII is ASCII; otherwise cp437
    per the specification, unless cp437 yields implausible characters (box drawing, maths), in
    which case valid UTF-8 (common from macOS/Linux tools that do not set the flag), then the
    best-scoring of cp850, cp866, cp1252 is used.
    """
    if utf8_flag:
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return raw.decode("utf-8", "surrogateescape"), "utf-8 (invalid bytes kept)"
    if unicode_extra is not None:
        return unicode_extra, "utf-8 (unicode path extra field)"
    try:
        return raw.decode("ascii"), "ascii"
    except UnicodeDecodeError:
        pass
    cp437 = raw.decode("cp437")
    if all(c in _CP437_PLAUSIBLE for c in _non_ascii(cp437)):
        return cp437, "cp437"
    try:
        return raw.decode("utf-8"), "utf-8 (flag unset)"
    except UnicodeDecodeError:
        pass
    best = None
    for enc in ("cp850", "cp866", "cp1252"):
        try:
            cand = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        sc = _score_name(cand)
        if best is None or sc > best[0]:
            best = (sc, cand, enc)
    if best is None or best[0] < _score_name(cp437):
        return cp437, "cp437"
    return best[1], best[2]


class _ZipEntry:
    __slots__ = ("index", "name_raw", "flags", "method", "dostime", "dosdate", "crc", "csize", "usize",
                 "lho", "extra", "eattr", "vermade", "comment", "listed", "data_start", "data_end",
                 "descriptor", "scanned")

    def __init__(self) -> None:
        self.index = 0
        self.name_raw = b""
        self.flags = 0
        self.method = 0
        self.dostime = 0
        self.dosdate = 0
        self.crc = 0
        self.csize = 0
        self.usize = 0
        self.lho = 0
        self.extra = b""
        self.eattr = 0
        self.vermade = 0
        self.comment = b""
        self.listed = True
        self.data_start: Optional[int] = None
        self.data_end: Optional[int] = None
        self.descriptor = False
        self.scanned = False


def _extra_fields(extra: bytes) -> dict:
    out = {}
    pos = 0
    while pos + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, pos)
        out.setdefault(hid, extra[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def _apply_zip64(e: _ZipEntry, extras: dict, has_lho: bool = True) -> None:
    z = extras.get(0x0001)
    if not z:
        return
    pos = 0
    try:
        if e.usize == 0xFFFFFFFF and pos + 8 <= len(z):
            e.usize = struct.unpack_from("<Q", z, pos)[0]
            pos += 8
        if e.csize == 0xFFFFFFFF and pos + 8 <= len(z):
            e.csize = struct.unpack_from("<Q", z, pos)[0]
            pos += 8
        if has_lho and e.lho == 0xFFFFFFFF and pos + 8 <= len(z):
            e.lho = struct.unpack_from("<Q", z, pos)[0]
    except struct.error:
        pass


def _zip_mtime(e: _ZipEntry, extras: dict) -> dict:
    ut = extras.get(0x5455)
    if ut and len(ut) >= 5 and ut[0] & 1:
        iso = iso_timestamp(struct.unpack_from("<i", ut, 1)[0])
        if iso:
            return {"mtime": iso, "mtime_source": "extended timestamp (UTC)"}
    nt = extras.get(0x000A)
    if nt and len(nt) >= 32:
        tag, size = struct.unpack_from("<HH", nt, 4)
        if tag == 1 and size >= 24:
            ft = struct.unpack_from("<Q", nt, 8)[0]
            iso = iso_timestamp(ft / 1e7 - 11644473600) if ft else None
            if iso:
                return {"mtime": iso, "mtime_source": "NTFS extra field (UTC)"}
    d, t = e.dosdate, e.dostime
    try:
        local = _dt.datetime((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F,
                             min((t & 0x1F) * 2, 59))
    except ValueError:
        return {}
    return {"mtime": local.strftime("%Y-%m-%dT%H:%M:%S"), "mtime_source": "MS-DOS (local time of the zipping machine, zone unknown)"}


def _find_eocd(data: bytes) -> Optional[int]:
    n = len(data)
    lo = max(0, n - 22 - 0xFFFF)
    pos = data.rfind(b"PK\x05\x06", lo)
    while pos >= lo and pos != -1:
        if pos + 22 <= n:
            clen = struct.unpack_from("<H", data, pos + 20)[0]
            if pos + 22 + clen <= n:
                return pos
        pos = data.rfind(b"PK\x05\x06", lo, pos)
    return None


def _parse_central(data: bytes) -> Tuple[Optional[List[_ZipEntry]], int, List[Problem], Optional[int]]:
    """Returns (entries or None if no central directory, delta, problems, expected count)."""
    problems: List[Problem] = []
    eocd = _find_eocd(data)
    if eocd is None:
        return None, 0, problems, None
    (_sig, _disk, _cddisk, _ndisk, ntotal, cdsize, cdoff, _clen) = struct.unpack_from("<IHHHHIIH", data, eocd)
    cd_end = eocd
    loc = eocd - 20
    if loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":
        z64off = struct.unpack_from("<Q", data, loc + 8)[0]
        cands = [z64off]
        # with prefix data the recorded offset is shifted: the record sits right before the locator
        rec = data.rfind(b"PK\x06\x06", 0, loc)
        if rec != -1:
            cands.append(rec)
        for off in cands:
            if 0 <= off and off + 56 <= len(data) and data[off:off + 4] == b"PK\x06\x06":
                ntotal = struct.unpack_from("<Q", data, off + 32)[0]
                cdsize = struct.unpack_from("<Q", data, off + 40)[0]
                cdoff = struct.unpack_from("<Q", data, off + 48)[0]
                cd_end = off
                break
    actual = cd_end - cdsize
    delta = 0
    if 0 <= cdoff < len(data) and data[cdoff:cdoff + 4] == b"PK\x01\x02":
        start = cdoff
    elif actual >= 0 and data[actual:actual + 4] == b"PK\x01\x02":
        start = actual
        delta = actual - cdoff
    elif ntotal == 0:
        return [], 0, problems, 0
    else:
        return None, 0, problems, ntotal
    entries: List[_ZipEntry] = []
    pos = start
    idx = 0
    while pos + 46 <= len(data) and data[pos:pos + 4] == b"PK\x01\x02":
        f = struct.unpack_from("<IHHHHHHIIIHHHHHII", data, pos)
        e = _ZipEntry()
        e.index = idx
        e.vermade, e.flags, e.method, e.dostime, e.dosdate = f[1], f[3], f[4], f[5], f[6]
        e.crc, e.csize, e.usize = f[7], f[8], f[9]
        nlen, xlen, clen = f[10], f[11], f[12]
        e.eattr, e.lho = f[15], f[16]
        e.name_raw = data[pos + 46:pos + 46 + nlen]
        e.extra = data[pos + 46 + nlen:pos + 46 + nlen + xlen]
        e.comment = data[pos + 46 + nlen + xlen:pos + 46 + nlen + xlen + clen]
        _apply_zip64(e, _extra_fields(e.extra))
        entries.append(e)
        pos += 46 + nlen + xlen + clen
        idx += 1
        if ntotal != 0xFFFF and idx >= ntotal and ntotal < 0xFFFF:
            break
    if ntotal not in (0xFFFF, 0xFFFFFFFF) and len(entries) < ntotal:
        problems.append(Problem("zip.damaged", "central directory lists %d members but only %d entries could be parsed"
                                % (ntotal, len(entries)), offset=pos, detail={"expected": ntotal, "parsed": len(entries)}))
    if delta > 0:
        problems.append(Problem("zip.prefix_data", "%d bytes before the first zip record (self-extractor stub or hidden data)"
                                % delta, offset=0, length=delta))
    return entries, delta, problems, ntotal


def _parse_local(data: bytes, pos: int) -> Optional[_ZipEntry]:
    if pos + 30 > len(data) or data[pos:pos + 4] != b"PK\x03\x04":
        return None
    f = struct.unpack_from("<IHHHHHIIIHH", data, pos)
    e = _ZipEntry()
    e.flags, e.method, e.dostime, e.dosdate, e.crc, e.csize, e.usize = f[2], f[3], f[4], f[5], f[6], f[7], f[8]
    nlen, xlen = f[9], f[10]
    if pos + 30 + nlen + xlen > len(data):
        return None
    e.name_raw = data[pos + 30:pos + 30 + nlen]
    e.extra = data[pos + 30 + nlen:pos + 30 + nlen + xlen]
    e.lho = pos
    e.data_start = pos + 30 + nlen + xlen
    _apply_zip64(e, _extra_fields(e.extra), has_lho=False)
    e.descriptor = bool(e.flags & 0x8)
    return e


class _Intervals:
    """Sorted, non-overlapping-ish [start, end) ranges with a fast membership test."""

    def __init__(self, ranges: Iterable[Tuple[int, int]]):
        self.ranges = sorted(r for r in ranges if r[1] > r[0])
        self.starts = [r[0] for r in self.ranges]
        self.max_end: List[int] = []
        m = -1
        for r in self.ranges:
            m = max(m, r[1])
            self.max_end.append(m)

    def contains(self, pos: int) -> bool:
        i = bisect.bisect_right(self.starts, pos) - 1
        return i >= 0 and self.max_end[i] > pos

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        if not self.starts or start >= self.starts[-1]:
            self.ranges.append((start, end))
            self.starts.append(start)
            self.max_end.append(max(end, self.max_end[-1] if self.max_end else -1))
        else:
            self.__init__(self.ranges + [(start, end)])  # type: ignore[misc]


def _scan_locals(data: bytes, covered: List[Tuple[int, int]], known: set,
                 max_scan: int = 1 << 30) -> Iterator[_ZipEntry]:
    """Find local headers that no known member covers (damaged zip, or members hidden from the CD).

    max_scan bounds the bytes inflated to find the end of a member that has a data descriptor.
    """
    mv = memoryview(data)
    iv = _Intervals(covered)
    pos = data.find(b"PK\x03\x04")
    while pos != -1:
        if pos not in known and not iv.contains(pos):
            e = _parse_local(data, pos)
            if e is not None and e.method in _ZIP_METHODS and len(e.name_raw) > 0:
                end = None
                if e.descriptor and e.csize == 0 and not (e.flags & 1):
                    if e.method == 8:
                        st: dict = {}
                        produced = 0
                        try:
                            for out in _inflate_raw(mv, e.data_start, len(data), st):
                                produced += len(out)
                                if produced > max_scan:
                                    break
                            end = st.get("end")
                        except (_Truncated, zlib.error):
                            end = None
                        if end is not None:
                            e.csize = end - e.data_start
                    else:
                        dd = data.find(b"PK\x07\x08", e.data_start)
                        if dd != -1:
                            end = dd
                            e.csize = dd - e.data_start
                    if end is not None and data[end:end + 4] == b"PK\x07\x08" and end + 16 <= len(data):
                        e.crc, _cs, e.usize = struct.unpack_from("<III", data, end + 4)
                    elif end is not None and end + 12 <= len(data):
                        e.crc, _cs, e.usize = struct.unpack_from("<III", data, end)
                e.listed = False
                e.scanned = True
                yield e
                iv.add(e.data_start, e.data_start + e.csize)
        pos = data.find(b"PK\x03\x04", pos + 4)


def read_zip(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_zip(data, ctx)
    except Exception as e:  # noqa: BLE001 - a reader never raises on hostile input
        yield Problem("zip.damaged", "unexpected error while reading the zip: %s: %s" % (type(e).__name__, e))


def _read_zip(data: bytes, ctx: Context) -> Iterator[Item]:
    mv = memoryview(data)
    entries, delta, problems, _expected = _parse_central(data)
    yield from problems
    names = _Names("zip", "zip")
    lim = ctx.limits
    count = 0
    covered: List[Tuple[int, int]] = []
    known: set = set()
    if entries is None:
        yield Problem("zip.no_central_directory",
                      "no usable central directory (truncated or damaged zip); members recovered from local headers")
        entries = []
    # resolve local headers of listed members
    for e in entries:
        local = _parse_local(data, e.lho + delta)
        if local is not None:
            e.data_start = local.data_start
            known.add(e.lho + delta)
            covered.append((e.data_start, e.data_start + e.csize))
    listed_total = len(entries)
    hidden = list(_scan_locals(data, list(covered), known,
                               min(lim.max_member_size, int(lim.max_ratio * max(1, len(data))))))
    # those passes touched every local header (and the kernel mapped 64 KiB around each): a
    # memory-mapped zip gives its pages back now, and each member's after it has been read
    pages.release(data, 0, len(data))
    if not listed_total:
        for h in hidden:
            h.listed = True
    if hidden and listed_total:
        yield Problem("zip.unlisted_local_header",
                      "%d local file header(s) not listed in the central directory" % len(hidden),
                      detail={"offsets": [h.lho for h in hidden][:100]})
    for i, h in enumerate(hidden):
        h.index = listed_total + i
    for e in list(entries) + hidden:
        count += 1
        if count > lim.max_members:
            yield Problem("zip.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            return
        child = _zip_member(data, mv, e, delta, ctx, names)
        if child is not None:
            yield child
        if e.data_start is not None:
            pages.release(data, e.lho + (0 if e.scanned else delta), e.data_start + e.csize)


def _zip_member(data: bytes, mv: memoryview, e: _ZipEntry, delta: int, ctx: Context,
                names: _Names) -> Optional[Child]:
    extras = _extra_fields(e.extra)
    uextra = None
    up = extras.get(0x7075)
    if up and len(up) > 5 and up[0] == 1 and struct.unpack_from("<I", up, 1)[0] == (zlib.crc32(e.name_raw) & 0xFFFFFFFF):
        try:
            uextra = up[5:].decode("utf-8")
        except UnicodeDecodeError:
            uextra = None
    name, enc = decode_zip_name(e.name_raw, bool(e.flags & 0x800), uextra)
    is_dir = name.endswith("/") or name.endswith("\\") or bool(e.eattr & 0x10)
    if is_dir and e.csize == 0 and e.usize == 0:
        return None
    meta: dict = {"index": e.index, "offset": e.lho + (0 if e.scanned else delta),
                  "compressed_size": e.csize, "size": e.usize, "crc32": "%08x" % e.crc,
                  "method": _ZIP_METHODS.get(e.method, "unknown(%d)" % e.method),
                  "encrypted": bool(e.flags & 1)}
    meta.update(_zip_mtime(e, extras))
    problems: list = []
    if enc not in ("ascii", "utf-8"):
        meta["name_encoding"] = enc
        meta["name_raw_b64"] = _b64(e.name_raw)
        if enc != "cp437":
            problems.append(Problem("zip.name_codepage", "member name without the UTF-8 flag decoded as %s" % enc,
                                    detail={"name_encoding": enc}))
    if not e.listed:
        meta["unlisted"] = True
    if e.comment:
        meta["comment"] = _display(e.comment)
    if is_dir:
        meta["directory_entry_with_data"] = True
    names.flag(name, meta, problems)
    seg = names.segment(name, meta, problems)
    ch = Child(segment=seg, name=name, data=None, meta=meta, problems=problems)
    if e.data_start is None:
        problems.append(Problem("zip.member_unreadable", "local file header of %r not found at offset %d"
                                % (name, e.lho + delta), detail={"offset": e.lho + delta}))
        return ch
    if e.flags & 1 or e.method == 99:
        problems.append(Problem("zip.encrypted", "member %r is encrypted (%s); content not decrypted"
                                % (name, "AES" if e.method == 99 else ("strong encryption" if e.flags & 0x40 else "ZipCrypto"))))
        return ch
    tp = _limit_problem_for_total(ctx, "zip", repr(name))
    if tp:
        problems.append(tp)
        return ch
    start = e.data_start
    end = start + e.csize
    truncated_input = end > len(data)
    if truncated_input:
        end = len(data)
    label = "member %r" % name
    if e.method == 0:
        chunks: Iterable[bytes] = _stored(mv, start, end)
    elif e.method == 8:
        chunks = _inflate_raw(mv, start, end)
    elif e.method == 12:
        chunks = _decompress_obj(bz2.BZ2Decompressor, mv, start, end)
    elif e.method == 14:
        chunks = _lzma_zip(mv, start, end)
    elif e.method == 95:
        chunks = _decompress_obj(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), mv, start, end)
    else:
        problems.append(Problem("zip.unsupported_method", "member %r uses compression method %s"
                                % (name, meta["method"]), detail={"method": e.method}))
        return ch
    res = _expand(chunks, e.csize, ctx, "zip", label, ratio=e.method != 0)
    if res.problem is not None:
        problems.append(res.problem)
        return ch
    ch.data = res.data
    if res.truncated or truncated_input:
        meta["truncated"] = True
        problems.append(Problem("zip.member_truncated", "member %r ends early (%s); %d bytes kept"
                                % (name, res.error or "archive truncated", len(res.data or b"")),
                                detail={"declared_size": e.usize, "kept": len(res.data or b"")}))
    elif (zlib.crc32(res.data) & 0xFFFFFFFF) != e.crc:
        problems.append(Problem("zip.crc_mismatch", "CRC-32 of member %r is %08x, header says %08x"
                                % (name, zlib.crc32(res.data) & 0xFFFFFFFF, e.crc)))
    return ch


def _lzma_zip(mv: memoryview, start: int, end: int) -> Iterator[bytes]:
    hdr = bytes(mv[start:start + 4])
    if len(hdr) < 4:
        raise _Truncated("lzma header missing")
    psize = struct.unpack_from("<H", hdr, 2)[0]
    props = bytes(mv[start + 4:start + 4 + psize])
    filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    make = lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])  # noqa: E731
    # raw LZMA1 in zip may have no end marker: end of input is the end of the member
    d = make()
    pos = start + 4 + psize
    while not d.eof:
        if d.needs_input:
            if pos >= end:
                return
            inp = bytes(mv[pos:min(end, pos + IN_CHUNK)])
            pos += len(inp)
        else:
            inp = b""
        out = d.decompress(inp, OUT_CHUNK)
        if out:
            yield out


# ---------------------------------------------------------------------------------------------
# single-stream compressors: gzip, bzip2, xz
# ---------------------------------------------------------------------------------------------

def _gzip_header(data: bytes, pos: int) -> Tuple[int, dict]:
    """Parse a gzip member header at pos; returns (offset of the deflate data, facts)."""
    if data[pos:pos + 3] != b"\x1f\x8b\x08" or pos + 10 > len(data):
        raise _Truncated("not a gzip header")
    flg = data[pos + 3]
    mtime = struct.unpack_from("<I", data, pos + 4)[0]
    facts: dict = {"mtime": mtime, "os": data[pos + 9]}
    p = pos + 10
    if flg & 4:
        if p + 2 > len(data):
            raise _Truncated("gzip extra field truncated")
        xlen = struct.unpack_from("<H", data, p)[0]
        p += 2 + xlen
    if flg & 8:
        z = data.find(b"\x00", p)
        if z == -1:
            raise _Truncated("gzip file name not terminated")
        facts["fname"] = data[p:z]
        p = z + 1
    if flg & 16:
        z = data.find(b"\x00", p)
        if z == -1:
            raise _Truncated("gzip comment not terminated")
        facts["comment"] = data[p:z]
        p = z + 1
    if flg & 2:
        p += 2
    if p > len(data):
        raise _Truncated("gzip header truncated")
    return p, facts


def read_gzip(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_gzip(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("gzip.damaged", "unexpected error while reading the gzip stream: %s: %s" % (type(e).__name__, e))


def _read_gzip(data: bytes, ctx: Context) -> Iterator[Item]:
    mv = memoryview(data)
    try:
        start, facts = _gzip_header(data, 0)
    except _Truncated as e:
        yield Problem("gzip.damaged", "bad gzip header: %s" % e, offset=0)
        return
    problems: list = []
    state = {"members": 0, "trailer_problems": [], "trailing": None}

    def chunks() -> Iterator[bytes]:
        pos = start
        while True:
            st: dict = {}
            crc = 0
            size = 0
            for out in _inflate_raw(mv, pos, len(data), st):
                crc = zlib.crc32(out, crc)
                size += len(out)
                yield out
            state["members"] += 1
            end = st["end"]
            if end + 8 > len(data):
                raise _Truncated("gzip trailer missing")
            tcrc, tsize = struct.unpack_from("<II", data, end)
            if tcrc != (crc & 0xFFFFFFFF) or tsize != (size & 0xFFFFFFFF):
                state["trailer_problems"].append(end)
            pos = end + 8
            if pos >= len(data):
                return
            if data[pos:pos + 3] == b"\x1f\x8b\x08":
                try:
                    pos, _f = _gzip_header(data, pos)
                except _Truncated:
                    state["trailing"] = end + 8
                    return
                continue
            state["trailing"] = pos
            return

    name_raw = facts.get("fname") or _stream_child_name(ctx, "gzip")
    label = "gzip stream"
    tp = _limit_problem_for_total(ctx, "gzip", label)
    meta: dict = {"compressed_size": len(data)}
    if facts.get("mtime"):
        meta["mtime"] = iso_timestamp(facts["mtime"])
    meta["name_source"] = "gzip header (FNAME)" if facts.get("fname") else "container name without suffix"
    if facts.get("fname"):
        try:
            facts["fname"].decode("utf-8")
        except UnicodeDecodeError:
            meta["name_raw_b64"] = _b64(facts["fname"])
    if facts.get("comment"):
        meta["comment"] = _display(facts["comment"])
    name = _display(name_raw)
    flags = name_flags(name)
    if flags:
        meta["name_flags"] = flags
    ch = Child(segment=_segment("gz", name_raw), name=name, data=None, meta=meta, problems=problems)
    if tp:
        problems.append(tp)
        yield ch
        return
    res = _expand(chunks(), len(data), ctx, "gzip", label)
    if res.problem:
        problems.append(res.problem)
        yield ch
        return
    ch.data = res.data
    meta["size"] = len(res.data or b"")
    if state["members"] > 1:
        meta["gzip_members"] = state["members"]
        problems.append(Problem("gzip.multistream", "%d concatenated gzip members" % state["members"]))
    if res.truncated:
        meta["truncated"] = True
        problems.append(Problem("gzip.truncated", "gzip stream ends early (%s); %d bytes kept" % (res.error, len(res.data or b""))))
    for off in state["trailer_problems"]:
        problems.append(Problem("gzip.crc_mismatch", "CRC-32/length in the gzip trailer do not match the data", offset=off))
    yield ch
    if state["trailing"] is not None and any(data[state["trailing"]:]):
        t = state["trailing"]
        yield Problem("gzip.trailing_data", "%d bytes after the end of the gzip stream" % (len(data) - t),
                      offset=t, length=len(data) - t)


def _read_multi(data: bytes, ctx: Context, fmt: str, seg_kind: str, make: Callable,
                magic: bytes) -> Iterator[Item]:
    mv = memoryview(data)
    state: dict = {"streams": 0, "trailing": None}

    def chunks() -> Iterator[bytes]:
        pos = 0
        while True:
            st: dict = {}
            yield from _decompress_obj(make, mv, pos, len(data), st)
            state["streams"] += 1
            pos = st["end"]
            # xz allows stream padding (NUL bytes in multiples of 4)
            while fmt == "xz" and data[pos:pos + 4] == b"\x00\x00\x00\x00":
                pos += 4
            if pos >= len(data):
                return
            if data[pos:pos + len(magic)] != magic:
                state["trailing"] = pos
                return

    name_raw = _stream_child_name(ctx, fmt)
    name = _display(name_raw)
    meta: dict = {"compressed_size": len(data), "name_source": "container name without suffix"}
    problems: list = []
    ch = Child(segment=_segment(seg_kind, name_raw), name=name, data=None, meta=meta, problems=problems)
    tp = _limit_problem_for_total(ctx, fmt, fmt + " stream")
    if tp:
        problems.append(tp)
        yield ch
        return
    res = _expand(chunks(), len(data), ctx, fmt, fmt + " stream")
    if res.problem:
        problems.append(res.problem)
        yield ch
        return
    if res.truncated and not res.data and state["streams"] == 0:
        yield Problem(fmt + ".damaged", "%s stream could not be decompressed: %s" % (fmt, res.error), offset=0)
        return
    ch.data = res.data
    meta["size"] = len(res.data or b"")
    if state["streams"] > 1:
        meta["streams"] = state["streams"]
    if res.truncated:
        meta["truncated"] = True
        problems.append(Problem(fmt + ".truncated", "%s stream ends early or is corrupt (%s); %d bytes kept"
                                % (fmt, res.error, len(res.data or b""))))
    yield ch
    if state["trailing"] is not None:
        t = state["trailing"]
        yield Problem(fmt + ".trailing_data", "%d bytes after the end of the %s stream" % (len(data) - t, fmt),
                      offset=t, length=len(data) - t)


def read_bzip2(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_multi(data, ctx, "bzip2", "bz2", bz2.BZ2Decompressor, b"BZh")
    except Exception as e:  # noqa: BLE001
        yield Problem("bzip2.damaged", "unexpected error while reading the bzip2 stream: %s: %s" % (type(e).__name__, e))


def read_xz(data: bytes, ctx: Context) -> Iterator[Item]:
    if data[:6] == b"\xfd7zXZ\x00":
        make, magic = (lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)), b"\xfd7zXZ\x00"
    else:  # legacy .lzma (LZMA-alone)
        make, magic = (lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)), b"\x5d\x00\x00"
    try:
        yield from _read_multi(data, ctx, "xz", "xz", make, magic)
    except Exception as e:  # noqa: BLE001
        yield Problem("xz.damaged", "unexpected error while reading the xz stream: %s: %s" % (type(e).__name__, e))


# ---------------------------------------------------------------------------------------------
# tar
# ---------------------------------------------------------------------------------------------

def read_tar(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_tar(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("tar.damaged", "unexpected error while reading the tar: %s: %s" % (type(e).__name__, e))


def _tar_chunks(f) -> Iterator[bytes]:
    while True:
        b = f.read(OUT_CHUNK)
        if not b:
            return
        yield b


def _read_tar(data: bytes, ctx: Context) -> Iterator[Item]:
    bio = fileobj(data)
    mv = memoryview(data)
    try:
        tf = tarfile.open(fileobj=bio, mode="r:", errorlevel=1)
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        yield Problem("tar.damaged", "not a readable tar archive: %s" % e, offset=0)
        return
    names = _Names("tar", "tar")
    lim = ctx.limits
    count = 0
    index = 0
    while True:
        try:
            ti = tf.next()
        except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as e:
            yield Problem("tar.damaged", "tar archive unreadable after %d members: %s" % (index, e),
                          offset=getattr(tf, "offset", None))
            return
        if ti is None:
            break
        tf.members = []          # tarfile keeps every TarInfo: drop them, memory stays bounded
        index += 1
        if ti.isdir():
            continue
        count += 1
        if count > lim.max_members:
            yield Problem("tar.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            return
        name = ti.name
        raw = name.encode("utf-8", "surrogateescape")
        meta: dict = {"index": index - 1, "offset": ti.offset, "size": ti.size, "mode": "%04o" % (ti.mode & 0o7777),
                      "mtime": iso_timestamp(ti.mtime)}
        if ti.uname:
            meta["uname"] = ti.uname
        if ti.gname:
            meta["gname"] = ti.gname
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            meta["name_raw_b64"] = _b64(raw)
        problems: list = []
        names.flag(name, meta, problems)
        seg = names.segment(name, meta, problems)
        ch = Child(segment=seg, name=name, data=None, meta=meta, problems=problems)
        if ti.issym() or ti.islnk():
            meta["type"] = "symlink" if ti.issym() else "hardlink"
            meta["link_target"] = ti.linkname
            problems.append(Problem("tar.link_member", "%s %r -> %r" % (meta["type"], name, ti.linkname)))
            yield ch
            continue
        if not ti.isreg():
            meta["type"] = {tarfile.CHRTYPE: "char_device", tarfile.BLKTYPE: "block_device",
                            tarfile.FIFOTYPE: "fifo"}.get(ti.type, "other(%r)" % ti.type)
            problems.append(Problem("tar.special_member", "special member %r (%s)" % (name, meta["type"])))
            yield ch
            continue
        tp = _limit_problem_for_total(ctx, "tar", repr(name))
        if tp:
            problems.append(tp)
            yield ch
            continue
        if ti.issparse():
            try:
                f = tf.extractfile(ti)
            except (tarfile.TarError, OSError, ValueError) as e:
                problems.append(Problem("tar.member_unreadable", "member %r: %s" % (name, e)))
                yield ch
                continue
            chunks: Iterable[bytes] = _tar_chunks(f) if f is not None else iter(())
            sparse_stored = sum(n for _o, n in (ti.sparse or []))
            res = _expand(chunks, sparse_stored, ctx, "tar", "member %r" % name, ratio=True)
        else:
            # a regular member is stored as is: slice it (keeps the bytes of a truncated member)
            start = ti.offset_data
            end = min(len(data), start + ti.size)
            res = _expand(_stored(mv, start, end), None, ctx, "tar", "member %r" % name, ratio=False)
        if res.problem:
            problems.append(res.problem)
        else:
            ch.data = res.data
            if res.truncated or len(res.data or b"") < ti.size:
                meta["truncated"] = True
                problems.append(Problem("tar.member_truncated", "member %r ends early (%s); %d of %d bytes kept"
                                        % (name, res.error or "archive truncated", len(res.data or b""), ti.size)))
        yield ch


# ---------------------------------------------------------------------------------------------
# 7z (py7zr)
# ---------------------------------------------------------------------------------------------

def read_7z(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_7z(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("7z.damaged", "unexpected error while reading the 7z archive: %s: %s" % (type(e).__name__, e))


def _read_7z(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        import py7zr
        from py7zr.io import Py7zIO, WriterFactory
    except ImportError as e:  # pragma: no cover
        yield Problem("7z.unsupported", "py7zr is not installed: %s" % e)
        return

    class _Cap(Py7zIO):
        """Where py7zr writes one member: in memory up to SPILL bytes, then in an unnamed
        temporary file (memory-mapped when done), never past the member's declared size."""

        def __init__(self, cap: int):
            self.cap = cap
            self.buf = io.BytesIO()
            self.spill = None
            self.n = 0
            self.over = False

        def write(self, s):  # type: ignore[override]
            if self.n + len(s) > self.cap:
                self.over = True
                return len(s)
            if self.spill is None and self.n + len(s) > SPILL:
                self.spill = tempfile.TemporaryFile(prefix="leaktriage-member-")
                self.spill.write(self.buf.getbuffer())
                self.buf = self.spill
            self.n += len(s)
            return self.buf.write(s)

        def read(self, size=None):  # type: ignore[override]
            return self.buf.read(size)

        def seek(self, offset, whence=0):  # type: ignore[override]
            return self.buf.seek(offset, whence)

        def flush(self):  # type: ignore[override]
            return None

        def size(self):  # type: ignore[override]
            return self.n

        def value(self):
            if self.spill is None:
                return self.buf.getvalue()
            self.spill.flush()
            m = mmap.mmap(self.spill.fileno(), 0, access=mmap.ACCESS_READ) if self.n else b""
            self.spill.close()  # the map keeps the unnamed file's pages alive
            return m

    class _Factory(WriterFactory):
        def __init__(self, caps: dict):
            self.caps = caps
            self.products: dict = {}

        def create(self, filename):  # type: ignore[override]
            p = _Cap(self.caps.get(filename, 0))
            self.products[filename] = p
            return p

    def open_archive():
        return py7zr.SevenZipFile(io_stream(data), mode="r")

    try:
        szf = open_archive()
    except py7zr.exceptions.PasswordRequired as e:
        yield Problem("7z.encrypted", "the 7z header is encrypted (member names hidden); not decrypted: %s" % e)
        return
    except Exception as e:  # noqa: BLE001
        yield Problem("7z.damaged", "not a readable 7z archive: %s: %s" % (type(e).__name__, e), offset=0)
        return
    try:
        infos = szf.list()
        encrypted = szf.needs_password()
    except Exception as e:  # noqa: BLE001
        yield Problem("7z.damaged", "7z member list unreadable: %s: %s" % (type(e).__name__, e))
        return
    finally:
        try:
            szf.close()
        except Exception:  # noqa: BLE001
            pass
    lim = ctx.limits
    names = _Names("7z", "7z")
    files = [i for i in infos if not i.is_directory]
    total_declared = sum(i.uncompressed or 0 for i in files) or 1
    pending: List[Tuple[Child, object]] = []
    for idx, info in enumerate(infos):
        if info.is_directory:
            continue
        if len(pending) >= lim.max_members:
            yield Problem("7z.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            break
        name = info.filename
        meta: dict = {"index": idx, "size": info.uncompressed, "encrypted": bool(encrypted)}
        if info.compressed is not None:
            meta["compressed_size"] = info.compressed
        if info.crc32 is not None:
            meta["crc32"] = "%08x" % info.crc32
        if info.creationtime is not None:
            meta["mtime"] = iso_datetime(info.creationtime)
        if info.is_symlink:
            meta["type"] = "symlink"
        problems: list = []
        names.flag(name, meta, problems)
        seg = names.segment(name, meta, problems)
        pending.append((Child(segment=seg, name=name, data=None, meta=meta, problems=problems), info))
    if encrypted:
        yield Problem("7z.encrypted", "the 7z archive's content is encrypted; members listed without content")
        for ch, _i in pending:
            ch.problems.append(Problem("7z.encrypted", "member %r is encrypted; content not decrypted" % ch.name))
            yield ch
        return
    # decide which members may be expanded, from the declared sizes (py7zr never writes more than those)
    todo: List[Tuple[Child, object]] = []
    planned = ctx.expanded_so_far
    for ch, info in pending:
        size = info.uncompressed or 0
        comp = info.compressed if info.compressed else max(1, int(size * len(data) / total_declared))
        if size > lim.max_member_size:
            ch.problems.append(Problem("7z.member_too_large", "member %r declares %d bytes > max_member_size (%d); not expanded"
                                       % (ch.name, size, lim.max_member_size), detail={"limit": lim.max_member_size}))
        elif size > RATIO_FLOOR and size > lim.max_ratio * comp:
            ch.problems.append(Problem("7z.ratio_exceeded", "member %r expands %d -> %d bytes (> %g times); not expanded"
                                       % (ch.name, comp, size, lim.max_ratio),
                                       detail={"limit": lim.max_ratio, "compressed_size": comp}))
        elif planned + size > lim.max_total_expanded:
            ch.problems.append(Problem("7z.total_exceeded", "expanding member %r would exceed max_total_expanded (%d); not expanded"
                                       % (ch.name, lim.max_total_expanded), detail={"limit": lim.max_total_expanded}))
        else:
            planned += size
            todo.append((ch, info))
    want = {id(ch) for ch, _ in todo}
    # extract in batches, yielding in archive order
    batches: List[List[Tuple[Child, object]]] = []
    cur: List[Tuple[Child, object]] = []
    cur_size = 0
    for ch, info in todo:
        if cur and cur_size + (info.uncompressed or 0) > SEVENZ_BATCH:
            batches.append(cur)
            cur, cur_size = [], 0
        cur.append((ch, info))
        cur_size += info.uncompressed or 0
    if cur:
        batches.append(cur)
    done: dict = {}

    def extract(batch) -> Optional[str]:
        caps = {info.filename: (info.uncompressed or 0) for _c, info in batch}
        fac = _Factory(caps)
        try:
            szf2 = open_archive()
            try:
                szf2.extract(targets=[info.filename for _c, info in batch], factory=fac)
            finally:
                szf2.close()
        except Exception as e:  # noqa: BLE001
            return "%s: %s" % (type(e).__name__, e)
        for ch, info in batch:
            p = fac.products.get(info.filename)
            if p is None:
                done[id(ch)] = ("missing", None)
            else:
                done[id(ch)] = ("ok", p.value())
        return None

    bi = 0
    for ch, info in pending:
        if id(ch) in want and id(ch) not in done:
            while bi < len(batches):
                batch = batches[bi]
                bi += 1
                err = extract(batch)
                if err is not None:
                    if len(batch) > 1:
                        for one in batch:
                            e1 = extract([one])
                            if e1 is not None:
                                done[id(one[0])] = ("error", e1)
                    else:
                        done[id(batch[0][0])] = ("error", err)
                if id(ch) in done:
                    break
        if id(ch) in done:
            status, value = done.pop(id(ch))
            if status == "ok":
                ch.data = value
                ctx.expanded_so_far += len(value)
            elif status == "missing":
                ch.problems.append(Problem("7z.member_unreadable", "member %r was not produced by the decoder" % ch.name))
            else:
                code = "7z.unsupported" if "Unsupported" in str(value) else "7z.member_unreadable"
                ch.problems.append(Problem(code, "member %r could not be decompressed: %s" % (ch.name, value)))
        yield ch


# ---------------------------------------------------------------------------------------------
# rar (rarfile)
# ---------------------------------------------------------------------------------------------

def read_rar(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        yield from _read_rar(data, ctx)
    except Exception as e:  # noqa: BLE001
        yield Problem("rar.damaged", "unexpected error while reading the rar archive: %s: %s" % (type(e).__name__, e))


def rar_tool_available() -> bool:
    try:
        import rarfile
        rarfile.tool_setup()
        return True
    except Exception:  # noqa: BLE001
        return False


def _read_rar(data: bytes, ctx: Context) -> Iterator[Item]:
    try:
        import rarfile
    except ImportError:  # pragma: no cover
        yield Problem("rar.unsupported", "rarfile is not installed; the rar archive was not read")
        return
    have_tool = rar_tool_available()
    try:
        rf = rarfile.RarFile(io_stream(data), errors="strict")
    except rarfile.NeedFirstVolume as e:
        yield Problem("rar.unsupported", "a later volume of a multi-volume rar: %s" % e)
        return
    except rarfile.PasswordRequired as e:
        yield Problem("rar.encrypted", "the rar headers are encrypted (member names hidden): %s" % e)
        return
    except Exception as e:  # noqa: BLE001
        # a damaged archive: retry leniently to list what can be listed
        try:
            rf = rarfile.RarFile(io_stream(data), errors="ignore")
            yield Problem("rar.damaged", "rar archive damaged: %s: %s; the readable members were listed" % (type(e).__name__, e))
        except Exception as e2:  # noqa: BLE001
            yield Problem("rar.damaged", "not a readable rar archive: %s: %s" % (type(e2).__name__, e2), offset=0)
            return
    lim = ctx.limits
    names = _Names("rar", "rar")
    unsupported = 0
    children: List[Child] = []
    count = 0
    for idx, info in enumerate(rf.infolist()):
        if info.is_dir():
            continue
        count += 1
        if count > lim.max_members:
            yield Problem("rar.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            break
        name = info.filename
        meta: dict = {"index": idx, "size": info.file_size, "compressed_size": info.compress_size,
                      "encrypted": bool(info.needs_password()), "method": info.compress_type}
        if info.CRC is not None:
            meta["crc32"] = "%08x" % (info.CRC & 0xFFFFFFFF)
        mt = getattr(info, "mtime", None)
        if isinstance(mt, _dt.datetime):
            meta["mtime"] = iso_datetime(mt)
        elif info.date_time:
            try:
                meta["mtime"] = _dt.datetime(*info.date_time).strftime("%Y-%m-%dT%H:%M:%S")
                meta["mtime_source"] = "MS-DOS (local time, zone unknown)"
            except (TypeError, ValueError):
                pass
        problems: list = []
        names.flag(name, meta, problems)
        seg = names.segment(name, meta, problems)
        ch = Child(segment=seg, name=name, data=None, meta=meta, problems=problems)
        children.append(ch)
        if info.needs_password():
            problems.append(Problem("rar.encrypted", "member %r is encrypted; content not decrypted" % name))
            continue
        stored = info.compress_type == rarfile.RAR_M0
        if not stored and not have_tool:
            unsupported += 1
            problems.append(Problem("rar.unsupported", "member %r is compressed (method %d); no unrar/unar/bsdtar binary to decompress it"
                                    % (name, info.compress_type)))
            continue
        if info.file_size > lim.max_member_size:
            problems.append(Problem("rar.member_too_large", "member %r declares %d bytes > max_member_size (%d); not expanded"
                                    % (name, info.file_size, lim.max_member_size), detail={"limit": lim.max_member_size}))
            continue
        tp = _limit_problem_for_total(ctx, "rar", repr(name))
        if tp:
            problems.append(tp)
            continue
        try:
            f = rf.open(info)
        except Exception as e:  # noqa: BLE001
            code = "rar.unsupported" if isinstance(e, rarfile.RarCannotExec) else "rar.member_unreadable"
            problems.append(Problem(code, "member %r: %s: %s" % (name, type(e).__name__, e)))
            continue
        res = _expand(_rar_chunks(f), info.compress_size, ctx, "rar", "member %r" % name, ratio=not stored)
        if res.problem:
            problems.append(res.problem)
        else:
            ch.data = res.data
            if res.truncated:
                meta["truncated"] = True
                problems.append(Problem("rar.member_truncated", "member %r ends early (%s); %d bytes kept"
                                        % (name, res.error, len(res.data or b""))))
    if unsupported:
        yield Problem("rar.unsupported", "%d compressed rar member(s) need an unrar/unar/bsdtar binary, none is installed; "
                      "they are listed without content" % unsupported, detail={"members": unsupported})
    yield from children


def _rar_chunks(f) -> Iterator[bytes]:
    try:
        import rarfile
        errs: tuple = (rarfile.Error,)
    except ImportError:  # pragma: no cover
        errs = ()
    while True:
        try:
            b = f.read(OUT_CHUNK)
        except errs as e:  # type: ignore[misc]
            raise _Truncated("%s: %s" % (type(e).__name__, e))
        if not b:
            return
        yield b


# ---------------------------------------------------------------------------------------------
# sniffing
# ---------------------------------------------------------------------------------------------
