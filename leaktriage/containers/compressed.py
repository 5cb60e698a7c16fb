"""Single-stream compressors: gzip, bzip2, xz (and legacy .lzma). The child is the decompressed
stream, named after the gzip header's FNAME or the container's name minus its suffix.
"""
from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from typing import Callable, Iterator, Tuple

from leaktriage.model.locator import segment as _segment
from leaktriage.containers.base import Child, Context, Problem, iso_timestamp
from leaktriage.containers.streams import (Item, Truncated, b64, decompress_obj, display, expand, inflate_raw,
                                           limit_problem_for_total, name_flags, parent_name)

_SUFFIXES = {
    "gzip": ((b".tgz", b".tar"), (b".taz", b".tar"), (b".gz", b""), (b".gzip", b""), (b".z", b""), (b"-gz", b""), (b"_gz", b"")),
    "bzip2": ((b".tbz2", b".tar"), (b".tbz", b".tar"), (b".bz2", b""), (b".bz", b"")),
    "xz": ((b".txz", b".tar"), (b".xz", b""), (b".lzma", b""), (b".tlz", b".tar")),
}


def _stream_child_name(ctx: Context, fmt: str) -> bytes:
    name = parent_name(ctx)
    if not name:
        return b"data"
    low = name.lower()
    for suf, rep in _SUFFIXES[fmt]:
        if low.endswith(suf) and len(name) > len(suf):
            return name[: len(name) - len(suf)] + rep
    return name



def _gzip_header(data: bytes, pos: int) -> Tuple[int, dict]:
    """Parse a gzip member header at pos; returns (offset of the deflate data, facts)."""
    if data[pos:pos + 3] != b"\x1f\x8b\x08" or pos + 10 > len(data):
        raise Truncated("not a gzip header")
    flg = data[pos + 3]
    mtime = struct.unpack_from("<I", data, pos + 4)[0]
    facts: dict = {"mtime": mtime, "os": data[pos + 9]}
    p = pos + 10
    if flg & 4:
        if p + 2 > len(data):
            raise Truncated("gzip extra field truncated")
        xlen = struct.unpack_from("<H", data, p)[0]
        p += 2 + xlen
    if flg & 8:
        z = data.find(b"\x00", p)
        if z == -1:
            raise Truncated("gzip file name not terminated")
        facts["fname"] = data[p:z]
        p = z + 1
    if flg & 16:
        z = data.find(b"\x00", p)
        if z == -1:
            raise Truncated("gzip comment not terminated")
        facts["comment"] = data[p:z]
        p = z + 1
    if flg & 2:
        p += 2
    if p > len(data):
        raise Truncated("gzip header truncated")
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
    except Truncated as e:
        yield Problem("gzip.damaged", "bad gzip header: %s" % e, offset=0)
        return
    problems: list = []
    # every member is decompressed in turn (RFC 1952: a gzip file is a series of members; the
    # data is their concatenation, as gunzip gives it) and its own trailer checked
    state: dict = {"members": 0, "member_start": 0, "trailer_problems": [], "trailing": None}

    def chunks() -> Iterator[bytes]:
        pos = start
        while True:
            st: dict = {}
            crc = 0
            size = 0
            for out in inflate_raw(mv, pos, len(data), st):
                crc = zlib.crc32(out, crc)
                size += len(out)
                yield out
            end = st["end"]
            if end + 8 > len(data):
                raise Truncated("the trailer of gzip member %d (at byte %d) is missing"
                                % (state["members"] + 1, state["member_start"]))
            state["members"] += 1
            tcrc, tsize = struct.unpack_from("<II", data, end)
            if tcrc != (crc & 0xFFFFFFFF) or tsize != (size & 0xFFFFFFFF):
                state["trailer_problems"].append((state["members"], state["member_start"], end, tcrc, tsize,
                                                  crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
            pos = end + 8
            if pos >= len(data):
                return
            if data[pos:pos + 3] == b"\x1f\x8b\x08":
                try:
                    nxt, _f = _gzip_header(data, pos)
                except Truncated:
                    state["trailing"] = pos
                    return
                state["member_start"] = pos
                pos = nxt
                continue
            state["trailing"] = pos
            return

    name_raw = facts.get("fname") or _stream_child_name(ctx, "gzip")
    label = "gzip stream"
    tp = limit_problem_for_total(ctx, "gzip", label, inflating=True)
    meta: dict = {"compressed_size": len(data)}
    if facts.get("mtime"):
        meta["mtime"] = iso_timestamp(facts["mtime"])
    meta["name_source"] = "gzip header (FNAME)" if facts.get("fname") else "container name without suffix"
    if facts.get("fname"):
        try:
            facts["fname"].decode("utf-8")
        except UnicodeDecodeError:
            meta["name_raw_b64"] = b64(facts["fname"])
    if facts.get("comment"):
        meta["comment"] = display(facts["comment"])
    name = display(name_raw)
    flags = name_flags(name)
    if flags:
        meta["name_flags"] = flags
    ch = Child(segment=_segment("gz", name_raw), name=name, data=None, meta=meta, problems=problems)
    if tp:
        problems.append(tp)
        yield ch
        return
    res = expand(chunks(), len(data), ctx, "gzip", label)
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
        problems.append(Problem("gzip.truncated", "gzip stream ends early (%s); %d bytes kept" % (res.error, len(res.data or b"")),
                                detail={"member": state["members"] + 1, "member_offset": state["member_start"]}))
    for member, m_off, t_off, tcrc, tsize, crc, size in state["trailer_problems"]:
        problems.append(Problem("gzip.crc_mismatch",
                                "the trailer of gzip member %d (at byte %d) says CRC-32 %08x and %d bytes (mod 2^32); "
                                "its data has CRC-32 %08x and %d bytes" % (member, m_off, tcrc, tsize, crc, size),
                                offset=t_off, length=8,
                                detail={"member": member, "member_offset": m_off}))
    yield ch
    t = state["trailing"]
    if t is not None:
        n = len(data) - t
        if all_zero(mv, t, len(data)):
            yield Problem("gzip.padding", "%d NUL bytes after the last gzip member (block padding)" % n,
                          offset=t, length=n)
        else:
            what = ("a gzip member header that cannot be read" if data[t:t + 3] == b"\x1f\x8b\x08"
                    else "not a gzip member")
            yield Problem("gzip.trailing_data", "%d bytes after the last gzip member (%s); not decompressed" % (n, what),
                          offset=t, length=n)


def all_zero(buf, start: int, end: int) -> bool:
    """buf[start:end] holds only NUL bytes (read in 1 MiB steps: a memory map is never copied whole)."""
    pos = start
    while pos < end:
        step = min(end, pos + (1 << 20))
        if bytes(buf[pos:step]).strip(b"\x00"):
            return False
        pos = step
    return True


def _read_multi(data: bytes, ctx: Context, fmt: str, seg_kind: str, make: Callable,
                magic: bytes) -> Iterator[Item]:
    mv = memoryview(data)
    state: dict = {"streams": 0, "trailing": None}

    def chunks() -> Iterator[bytes]:
        pos = 0
        while True:
            st: dict = {}
            yield from decompress_obj(make, mv, pos, len(data), st)
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
    name = display(name_raw)
    meta: dict = {"compressed_size": len(data), "name_source": "container name without suffix"}
    problems: list = []
    ch = Child(segment=_segment(seg_kind, name_raw), name=name, data=None, meta=meta, problems=problems)
    tp = limit_problem_for_total(ctx, fmt, fmt + " stream", inflating=True)
    if tp:
        problems.append(tp)
        yield ch
        return
    res = expand(chunks(), len(data), ctx, fmt, fmt + " stream")
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
