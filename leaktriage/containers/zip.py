"""zip: our own parser (not zipfile). It needs the raw name bytes, the central directory *and* the
local headers (damaged archives, members hidden from the central directory), and bounded streaming
decompression (streams.expand). Locator segments are documented in docs/containers.md.
"""
from __future__ import annotations

import bisect
import bz2
import datetime as _dt
import lzma
import struct
import unicodedata
import zlib
from typing import Iterable, Iterator, List, Optional, Tuple

from leaktriage.content import pages
from leaktriage.containers.base import Child, Context, Problem, iso_timestamp
from leaktriage.containers.streams import (IN_CHUNK, OUT_CHUNK, Item, Names, Truncated, b64, decompress_obj,
                                           display, expand, inflate_raw, limit_problem_for_total,
                                           stored_chunks)

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
                 "descriptor", "scanned", "overlaps")

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
        self.overlaps: Optional[Tuple[int, str, int]] = None   # (index, name, offset) of a member read before


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


class _Extents:
    """The byte ranges (local header to end of data) of the members read so far: disjoint, sorted
    by start, each with the member that owns it."""

    def __init__(self) -> None:
        self.starts: List[int] = []
        self.ends: List[int] = []
        self.owners: List[Tuple[int, str, int]] = []

    def overlapping(self, start: int, end: int) -> Optional[Tuple[int, str, int]]:
        """The owner of a range that [start, end) overlaps, or None."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and self.ends[i] > start:
            return self.owners[i]
        if i + 1 < len(self.starts) and self.starts[i + 1] < end:
            return self.owners[i + 1]
        return None

    def add(self, start: int, end: int, owner: Tuple[int, str, int]) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, max(end, start + 1))
        self.owners.insert(i, owner)


def _scan_locals(data: bytes, covered: List[Tuple[int, int]], known: set,
                 max_scan: int = 1 << 30) -> Iterator[_ZipEntry]:
    """Find local headers that no known member covers (damaged zip, or members hidden from the CD).

    max_scan bounds the bytes inflated, all headers together, to find the ends of members that
    have a data descriptor (per header, a file of quoted local headers cost that many times over).
    """
    budget = max_scan
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
                        try:
                            for out in inflate_raw(mv, e.data_start, len(data), st):
                                budget -= len(out)
                                if budget < 0:
                                    break
                            end = st.get("end")
                        except (Truncated, zlib.error):
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
    names = Names("zip", "zip")
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
    # members never share bytes: central-directory entries pointing at one local header (or at
    # overlapping ranges) would expand the same bytes again for every entry (a 2.5 KB zip of 5
    # entries cost 35 s and 236 MB of manifest, 65,535 entries about 127 hours): the first is read,
    # the others are listed with zip.overlapping_member and not expanded
    extents = _Extents()
    for e in list(entries) + hidden:
        count += 1
        if count > lim.max_members:
            yield Problem("zip.too_many_members", "more than max_members (%d) members; the rest were not listed"
                          % lim.max_members, detail={"limit": lim.max_members})
            return
        span = None
        if e.data_start is not None:
            head = e.lho + (0 if e.scanned else delta)
            span = (head, max(e.data_start, min(len(data), e.data_start + e.csize)))
            e.overlaps = extents.overlapping(*span)
        st: dict = {}
        child = _zip_member(data, mv, e, delta, ctx, names, st)
        if span is not None and e.overlaps is None:
            extents.add(span[0], st.get("end", span[1]), (e.index, child.name if child else "", span[0]))
        if child is not None:
            yield child
        if e.data_start is not None:
            pages.release(data, e.lho + (0 if e.scanned else delta), e.data_start + e.csize)


def _zip_member(data: bytes, mv: memoryview, e: _ZipEntry, delta: int, ctx: Context,
                names: Names, st: Optional[dict] = None) -> Optional[Child]:
    """The member's Child (None for a directory entry); st['end'] is set to the end of its
    compressed data when decompression found it."""
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
        meta["name_raw_b64"] = b64(e.name_raw)
        if enc != "cp437":
            problems.append(Problem("zip.name_codepage", "member name without the UTF-8 flag decoded as %s" % enc,
                                    detail={"name_encoding": enc}))
    if not e.listed:
        meta["unlisted"] = True
    if e.comment:
        meta["comment"] = display(e.comment)
    if is_dir:
        meta["directory_entry_with_data"] = True
    names.flag(name, meta, problems)
    seg = names.segment(name, meta, problems)
    ch = Child(segment=seg, name=name, data=None, meta=meta, problems=problems)
    if e.data_start is None:
        problems.append(Problem("zip.member_unreadable", "local file header of %r not found at offset %d"
                                % (name, e.lho + delta), detail={"offset": e.lho + delta}))
        return ch
    if e.overlaps is not None:
        o_index, o_name, o_offset = e.overlaps
        meta["overlaps"] = o_index
        problems.append(Problem("zip.overlapping_member",
                                "member %r (local header at %d) shares bytes with member %r (index %d, local header at %d), "
                                "read before it; not expanded" % (name, e.lho + (0 if e.scanned else delta), o_name,
                                                                  o_index, o_offset),
                                detail={"overlaps_index": o_index, "overlaps_offset": o_offset}))
        return ch
    if e.flags & 1 or e.method == 99:
        problems.append(Problem("zip.encrypted", "member %r is encrypted (%s); content not decrypted"
                                % (name, "AES" if e.method == 99 else ("strong encryption" if e.flags & 0x40 else "ZipCrypto"))))
        return ch
    tp = limit_problem_for_total(ctx, "zip", repr(name), inflating=e.method != 0)
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
        chunks: Iterable[bytes] = stored_chunks(mv, start, end)
    elif e.method == 8:
        chunks = inflate_raw(mv, start, end, st)
    elif e.method == 12:
        chunks = decompress_obj(bz2.BZ2Decompressor, mv, start, end, st)
    elif e.method == 14:
        chunks = _lzma_zip(mv, start, end)
    elif e.method == 95:
        chunks = decompress_obj(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), mv, start, end, st)
    else:
        problems.append(Problem("zip.unsupported_method", "member %r uses compression method %s"
                                % (name, meta["method"]), detail={"method": e.method}))
        return ch
    res = expand(chunks, e.csize, ctx, "zip", label, ratio=e.method != 0)
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
        raise Truncated("lzma header missing")
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
