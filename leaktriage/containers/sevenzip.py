"""7z through py7zr: members are written into capped buffers that spill to unnamed temporary files,
decompressed in one pass over the archive by a thread and handed over one at a time (_Passes).
"""
from __future__ import annotations

import collections
import io
import mmap
import tempfile
from typing import Iterator, List, Optional, Tuple

from leaktriage.containers import streams
from leaktriage.containers.base import Child, Context, Problem, iso_datetime
from leaktriage.containers.streams import RATIO_FLOOR, Item, Names, declared_budget_problem


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
        temporary file (memory-mapped when done), never past the member's declared size. When
        py7zr closes it (the member is complete and its CRC checked), on_close gets the bytes."""

        def __init__(self, cap: int, stop=None, on_close=None):
            self.cap = cap
            self.buf = io.BytesIO()
            self.spill = None
            self.n = 0
            self.over = False
            self.stop = stop
            self.on_close = on_close

        def write(self, s):  # type: ignore[override]
            if self.stop is not None and self.stop.is_set():
                raise _Stopped()
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

        def close(self):  # type: ignore[override]
            if self.on_close is not None:
                done, self.on_close = self.on_close, None
                done(self.value())

        def value(self):
            if self.spill is None:
                v = self.buf.getvalue()
                self.buf = io.BytesIO()
                return v
            self.spill.flush()
            m = mmap.mmap(self.spill.fileno(), 0, access=mmap.ACCESS_READ) if self.n else b""
            self.spill.close()  # the map keeps the unnamed file's pages alive
            return m

    class _Factory(WriterFactory):
        def __init__(self, create):
            self._create = create

        def create(self, filename):  # type: ignore[override]
            return self._create(filename)

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
        else:
            todo.append((ch, info))
    keys = _product_keys(todo)
    want = {id(ch): key for (ch, _info), key in zip(todo, keys) if key is not None}
    for (ch, info), key in zip(todo, keys):
        if key is None:   # py7zr refuses to extract a name that leaves its folder ('../x', '/x')
            ch.problems.append(Problem("7z.member_unreadable", "member %r could not be decompressed: Bad7zFile: "
                                       "Specified path is bad: %s" % (ch.name, info.filename)))
    caps = {want[id(ch)]: (info.uncompressed or 0) for ch, info in todo if id(ch) in want}
    # py7zr selects targets by their names in the archive and names its products by the sanitised
    # output name: both are kept
    names_of = {want[id(ch)]: info.filename for ch, info in todo if id(ch) in want}
    passes = _Passes(open_archive, [want[id(ch)] for ch, _i in todo if id(ch) in want], caps, _Cap, _Factory,
                     names_of)
    del todo
    # members are taken off the list as they are handed on: once the pipeline is done with one,
    # nothing here keeps its bytes (they stayed referenced until the archive was done: peak
    # memory grew with the member count)
    queue = collections.deque(pending)
    del pending
    try:
        while queue:
            ch, info = queue.popleft()
            key = want.get(id(ch))
            if key is not None:
                # the budgets of the top-level file are checked when the member is due, after
                # what nested containers read meanwhile (the pipeline refreshes ctx)
                tp = declared_budget_problem(ctx, "7z", "member %r" % ch.name, info.uncompressed or 0)
                if tp is not None:
                    ch.problems.append(tp)
                    passes.skip(key)
                else:
                    status, value = passes.take(key)
                    if status == "ok":
                        ch.data = value
                        ctx.expanded_so_far += len(value)
                        ctx.inflated_so_far += len(value)
                    elif status == "missing":
                        ch.problems.append(Problem("7z.member_unreadable", "member %r was not produced by the decoder" % ch.name))
                    else:
                        code = "7z.unsupported" if "Unsupported" in str(value) else "7z.member_unreadable"
                        ch.problems.append(Problem(code, "member %r could not be decompressed: %s" % (ch.name, value)))
            yield ch
            del ch
    finally:
        passes.close()


def _product_keys(todo) -> List[Optional[str]]:
    """The name py7zr gives each member's product (WriterFactory.create), as its _extract computes
    it: duplicates get '_<n>', then the name is sanitised; None when py7zr refuses the name."""
    from py7zr.helpers import get_sanitized_output_path
    seen: dict = {}
    out: List[Optional[str]] = []
    for _ch, info in todo:
        name = info.filename
        if name in seen:
            outname = "%s_%d" % (name, seen[name])
            seen[name] += 1
        else:
            outname = name
            seen[name] = 0
        try:
            out.append(get_sanitized_output_path(outname, None).as_posix())
        except Exception:  # noqa: BLE001 - py7zr.exceptions.Bad7zFile
            out.append(None)
    return out


class _Stopped(Exception):
    """The reader no longer wants members: the extraction thread ends."""


class _Passes:
    """Members of a 7z archive, decompressed in one pass over the archive by py7zr in a thread and
    handed over one at a time, in the order py7zr produces them (a solid folder is decompressed
    once, not once per batch). At most one finished member waits in the hand-over queue while the
    next is written, so memory holds about three members, whatever their number.

    A member that fails ends py7zr's pass: it gets the error, and a new pass starts with the
    members not yet produced. After MAX_FAILED_PASSES passes in a row that produced nothing (a
    solid folder corrupt from some point on: every later member fails, and each pass decompresses
    the folder again up to there), the remaining members are not attempted."""

    MAX_FAILED_PASSES = 3

    def __init__(self, open_archive, keys: List[str], caps: dict, cap_class, factory_class,
                 names_of: Optional[dict] = None) -> None:
        self.open_archive = open_archive
        self.names_of = names_of or {}   # key -> the member's name in the archive (py7zr's targets)
        self.factory_class = factory_class
        self.left = list(keys)          # not yet produced nor given up, in archive order
        self.caps = caps
        self.cap_class = cap_class
        self.ready: dict = {}           # key -> (status, value), produced ahead of its turn
        self.thread = None
        self.q = None
        self.stop = None
        self.failed_in_a_row = 0
        self.skipped: set = set()

    def skip(self, key: str) -> None:
        """The reader will not take this member (a limit): a pass not yet started leaves it out."""
        self.skipped.add(key)
        if key in self.left:
            self.left.remove(key)
        self.ready.pop(key, None)

    def take(self, key: str):
        """('ok', bytes or memory map) | ('missing', None) | ('error', message) for a member."""
        while key not in self.ready:
            if self.thread is None:
                if key not in self.left:
                    return ("missing", None)
                if self.failed_in_a_row >= self.MAX_FAILED_PASSES:
                    return ("error", "not attempted: %d passes over the archive in a row failed before this member "
                                     "(the rest of the archive is unreadable)" % self.failed_in_a_row)
                self._start()
            kind, k, value = self.q.get()
            if kind == "ok":
                self.failed_in_a_row = 0
                if k in self.left:
                    self.left.remove(k)
                if k not in self.skipped:
                    self.ready[k] = ("ok", value)
            elif kind == "end":
                self._join()
                for k2 in self.left:      # the pass ended without producing these
                    self.ready[k2] = ("missing", None)
                self.left = []
            else:  # "error": k is the member being written when it failed (None: before any)
                self._join()
                self.failed_in_a_row += 1
                bad = k if k in self.left else (self.left[0] if self.left else None)
                if bad is not None:
                    self.left.remove(bad)
                    self.ready[bad] = ("error", value)
        return self.ready.pop(key)

    def _start(self) -> None:
        import queue
        import threading
        self.q = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        targets = sorted({self.names_of.get(k, k) for k in self.left if k not in self.skipped})
        self.thread = threading.Thread(target=self._run, args=(targets, self.q, self.stop),
                                       name="leaktriage-7z", daemon=True)
        self.thread.start()

    def _run(self, targets: List[str], q, stop) -> None:
        state = {"current": None}
        outer = self

        def put(item) -> None:
            import queue
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise _Stopped()

        def create(filename):
            if stop.is_set():
                raise _Stopped()
            state["current"] = filename
            return outer.cap_class(outer.caps.get(filename, 0), stop,
                                   lambda value, key=filename: put(("ok", key, value)))

        try:
            szf = self.open_archive()
            try:
                szf.extract(targets=targets, factory=self.factory_class(create))
            finally:
                szf.close()
            put(("end", None, None))
        except _Stopped:
            return
        except Exception as e:  # noqa: BLE001
            try:
                put(("error", state["current"], "%s: %s" % (type(e).__name__, e)))
            except _Stopped:
                return

    def _join(self) -> None:
        if self.thread is not None:
            self.thread.join()
        self.thread = None

    def close(self) -> None:
        """Stop a pass still running (the reader was closed early) and let its thread end."""
        if self.thread is not None:
            self.stop.set()
            while self.thread.is_alive():
                try:
                    self.q.get(timeout=0.05)
                except Exception:  # noqa: BLE001 - queue.Empty
                    pass
            self.thread = None
        self.ready.clear()
