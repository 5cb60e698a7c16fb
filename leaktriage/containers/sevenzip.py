"""7z through py7zr: members are written into capped buffers that spill to unnamed temporary files,
extracted in batches of at most SEVENZ_BATCH declared bytes.
"""
from __future__ import annotations

import io
import mmap
import tempfile
from typing import Iterator, List, Optional, Tuple

from leaktriage.containers import streams
from leaktriage.containers.base import Child, Context, Problem, iso_datetime
from leaktriage.containers.streams import RATIO_FLOOR, Item, Names

SEVENZ_BATCH = 64 << 20      # declared bytes extracted per py7zr call


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
            if self.spill is None and self.n + len(s) > streams.SPILL:
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
        return py7zr.SevenZipFile(streams.io_stream(data), mode="r")

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
    names = Names("7z", "7z")
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
