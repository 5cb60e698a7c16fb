"""tar (ustar, GNU, pax and pre-POSIX v7) through tarfile; regular members are sliced from the
archive's bytes (a memory map is not copied), sparse ones expanded in bounded steps.
"""
from __future__ import annotations

import tarfile
from typing import Iterable, Iterator

from leaktriage.containers.base import Child, Context, Problem, iso_timestamp
from leaktriage.containers.streams import (OUT_CHUNK, Item, Names, b64, expand, fileobj, limit_problem_for_total,
                                           stored_chunks)

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
    names = Names("tar", "tar")
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
            meta["name_raw_b64"] = b64(raw)
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
        tp = limit_problem_for_total(ctx, "tar", repr(name))
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
            res = expand(chunks, sparse_stored, ctx, "tar", "member %r" % name, ratio=True)
        else:
            # a regular member is stored as is: slice it (keeps the bytes of a truncated member)
            start = ti.offset_data
            end = min(len(data), start + ti.size)
            res = expand(stored_chunks(mv, start, end), None, ctx, "tar", "member %r" % name, ratio=False)
        if res.problem:
            problems.append(res.problem)
        else:
            ch.data = res.data
            if res.truncated or len(res.data or b"") < ti.size:
                meta["truncated"] = True
                problems.append(Problem("tar.member_truncated", "member %r ends early (%s); %d of %d bytes kept"
                                        % (name, res.error or "archive truncated", len(res.data or b""), ti.size)))
        yield ch
