"""The scan: the only module that knows the order walk -> sniff -> containers -> parse -> records.

Each top-level directory entry is one unit of work. A unit runs in a worker process and returns its
records already serialised, plus a Tally; the main process writes units in walk order, so the
manifest is byte-identical whatever the number of workers. Inside a unit, nested items (archive
members, attached messages, attachments that are containers) go through an explicit stack with a
depth limit, never through unbounded recursion.
"""
from __future__ import annotations

import dataclasses
import functools
import mmap
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from leaktriage.content import digests as digesting, pages, sniff
from leaktriage.model import locator as L, records
from leaktriage.mail import mbox, message
from leaktriage.containers import Context, Limits, Problem, reader
from leaktriage.model.problems import problem_record
from leaktriage.scanner.summary import Tally
from leaktriage.scanner.walk import Entry, lstat_in_dump, open_in_dump

IN_MEMORY_MAX = 64 << 20  # files larger than this are memory-mapped, not read into memory
# A unit's serialised records are held in memory up to this many characters, then appended to a
# temporary file that the main process copies into the manifest: an mbox of a million small
# messages does not hold its whole share of the manifest in RAM
SPILL_BYTES = 16 << 20
SPILL_PREFIX = "leaktriage-unit-"


@dataclass(frozen=True)
class Options:
    algorithms: Tuple[str, ...] = ("sha256",)
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    keystore: Optional[str] = None   # DKIM key store path (issue: authenticity)
    dns: bool = False
    item_timeout: float = 300.0      # seconds one message may take (0: no limit); see time_budget()
    # where a unit's manifest lines go once they pass SPILL_BYTES (None: the system's temporary
    # directory); never part of the manifest
    spill_dir: Optional[str] = None
    # an mbox larger than this is cut into ranges of about split_range_bytes at its messages'
    # boundaries, each range a task of its own (0: never); the manifest is the same either way
    split_bytes: int = 64 << 20
    split_range_bytes: int = 16 << 20
    # the engine that runs the tasks (scanner.schedule.Executor; None: leaktriage.pool with
    # `workers` processes); not sent to the workers, not part of the manifest
    executor: Any = field(default=None, compare=False, repr=False)
    # a Dask scheduler address (tcp://HOST:8786) or local:N (a LocalCluster of N workers on this
    # machine); None: this machine's processes (see leaktriage.cluster)
    cluster: Optional[str] = None

    def manifest_options(self) -> dict:
        """The options that change the manifest's content (recorded in the summary)."""
        lim = self.limits
        return {"digests": list(self.algorithms),
                "limits": {"max_depth": lim.max_depth, "max_member_size": lim.max_member_size,
                           "max_total_expanded": lim.max_total_expanded, "max_ratio": lim.max_ratio},
                "dkim_keys": bool(self.keystore), "dns": self.dns, "item_timeout": self.item_timeout,
                **({"dkim_keys_sha256": load_keystore(self.keystore).digest} if self.keystore else {})}


class TimeBudgetExceeded(Exception):
    pass


class time_budget:
    """Interrupt the enclosed work after `seconds` (0 or less: no limit), so that one pathological
    message cannot stall the scan. In a process's main thread (leaktriage's own workers) with
    SIGALRM; in another thread (a Dask worker runs its tasks in a thread pool) the process's
    watchdog thread raises the exception in that thread instead. Either way the exception comes at
    the next Python instruction, not inside a call into C."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False
        self.token = None

    # the C-level functions: signal.signal() wraps handlers in enums, and its failed enum lookup
    # of a Python handler costs an exception per call (about 1% of a scan, once per message)
    def __enter__(self):
        import _signal
        import threading
        if self.seconds and self.seconds > 0:
            if threading.current_thread() is threading.main_thread():
                self.old = _signal.signal(_signal.SIGALRM, _fire)
                _signal.setitimer(_signal.ITIMER_REAL, self.seconds)
                self.armed = True
            else:
                # disarmed on the watchdog it was armed on, whatever _watchdog() says later
                self.watchdog = _watchdog()
                self.token = self.watchdog.arm(self.seconds)
        return self

    def __exit__(self, *exc):
        if self.armed:
            import _signal
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            _signal.signal(_signal.SIGALRM, self.old)
        elif self.token is not None:
            self.watchdog.disarm(self.token)
        return False


def _fire(signum, frame):
    raise TimeBudgetExceeded()


class _Watchdog:
    """One daemon thread per process that raises TimeBudgetExceeded in a thread whose budget ran
    out (PyThreadState_SetAsyncExc). disarm(), under the same lock, withdraws an exception sent but
    not raised yet, so none escapes the time_budget block. The lock is a plain C lock: an
    exception raised asynchronously inside threading.Condition's Python code could leave it held."""

    POLL = 0.25   # seconds between looks at the deadlines when none is nearer

    def __init__(self):
        import _thread
        import threading
        self.lock = _thread.allocate_lock()
        self.armed: dict = {}      # token -> [deadline, thread id, fired]
        self.next = 0
        self.thread = threading.Thread(target=self._run, name="leaktriage-time-budget", daemon=True)
        self.thread.start()

    def arm(self, seconds: float) -> int:
        import threading
        with self.lock:
            self.next += 1
            self.armed[self.next] = [time.monotonic() + seconds, threading.get_ident(), False]
            return self.next

    def disarm(self, token: int) -> None:
        with self.lock:
            entry = self.armed.pop(token, None)
            if entry is not None and entry[2]:
                _async_raise(entry[1], None)      # clears an exception not raised yet

    def _run(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                for e in self.armed.values():
                    if not e[2] and e[0] <= now:
                        e[2] = True
                        _async_raise(e[1], TimeBudgetExceeded)
                waiting = [e[0] for e in self.armed.values() if not e[2]]
            time.sleep(min([self.POLL] + [max(0.001, d - now) for d in waiting]))


def _async_raise(thread_id: int, exc) -> None:
    import ctypes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc is not None else None)


_WATCHDOG: list = []
_WATCHDOG_LOCK = threading.Lock()


def _new_watchdog_lock() -> None:
    global _WATCHDOG_LOCK
    _WATCHDOG_LOCK = threading.Lock()      # a child forked while another thread held it


os.register_at_fork(after_in_child=_new_watchdog_lock)


def _watchdog() -> _Watchdog:
    """This process's watchdog (a forked process does not inherit the parent's thread: it gets its own).

    Made under a lock: Dask runs tasks in several threads of a worker, which arm their first
    budgets at once, and each could make a watchdog of its own; a budget armed on one and
    disarmed on another fired later at a thread that had left its block (or at a new thread that
    reused its id, which died before it started)."""
    got = _WATCHDOG[0] if _WATCHDOG else None
    if got is not None and got[0] == os.getpid():
        return got[1]
    with _WATCHDOG_LOCK:
        if not _WATCHDOG or _WATCHDOG[0][0] != os.getpid():
            _WATCHDOG[:] = [(os.getpid(), _Watchdog())]
        return _WATCHDOG[0][1]


_KEYSTORES: dict = {}


def load_keystore(path: Optional[str]):
    """The DKIM key store at `path` (loaded once per process), or None."""
    if not path:
        return None
    if path not in _KEYSTORES:
        from leaktriage.auth.keystore import KeyStore
        _KEYSTORES[path] = KeyStore.load(path)
    return _KEYSTORES[path]


@dataclass
class WorkItem:
    locator: str
    data: Optional[bytes]
    depth: int
    parent: Optional[str]
    name: str
    custodian: Optional[str]
    mailbox: Optional[str]
    kind: Optional[str] = None           # forced kind (message for reconstructed/attached messages)
    source: str = "file"
    file_record: bool = True             # emit a `file` record (not for MIME parts)
    meta: dict = field(default_factory=dict)
    message_extra: Optional[dict] = None
    loc_base: Optional[str] = None
    root_path: str = "1"
    digests: Optional[dict] = None
    maildir: Optional[dict] = None


@dataclass
class UnitResult:
    data: bytes      # the unit's manifest lines, UTF-8, each ending in a line feed: one object to
    count: int       # pass between processes and write, not one string per record
    tally: Optional[Tally]   # None when a later unit's tally already includes this one's
    size: int
    spill: Optional[str] = None   # a temporary file holding the lines before `data`; the reader
                                  # copies it into the manifest and deletes it
    entry: Optional[Entry] = None  # the top-level entry these lines belong to (set by run_units)
    last: bool = True             # the entry's last piece (a split mbox comes in several)
    cpu: float = 0.0              # CPU seconds the task took in its worker (on the batch's last result)
    split: Optional["SplitPlan"] = None    # an mbox to cut into ranges: `head` is written first,
    head: Optional["UnitResult"] = None    # then the ranges, then this result (the file's tail)
    stamp: Optional[list] = None  # the file's [size, mtime_ns, ctime_ns, inode] for --resume (api.file_stamp)
    expanded: int = 0             # container bytes this range expanded (max_total_expanded)
    limit_hit: bool = False       # a *.total_exceeded problem came up in this range


@dataclass
class SplitPlan:
    """A top-level mbox cut into ranges of whole messages (made by the unit that read the file,
    sniffed it, hashed it and split it on its From lines)."""
    locator: str
    depth: int
    custodian: Optional[str]
    variant: str
    size: int
    mtime_ns: int
    expanded_start: int
    ranges: List[List[mbox.Entry]]


@dataclass
class MboxRange:
    """One range of a split mbox: its messages, and the expansion budget used before it."""
    plan: SplitPlan
    index: int
    entries: List[mbox.Entry]
    expanded_start: int

    @property
    def nbytes(self) -> int:
        return self.entries[-1].end - self.entries[0].marker_offset if self.entries else 0


@dataclass
class Task:
    """What a worker is sent: top-level entries to scan in order, or one range of a split mbox."""
    root: str
    opts: Options
    entries: Tuple[Entry, ...]
    split_ok: bool = False              # a single big entry that may be cut into ranges
    range: Optional[MboxRange] = None


def _display(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def custodian_of(rel: bytes) -> Optional[str]:
    parts = rel.split(b"/")
    if len(parts) > 1:
        return _display(parts[0])
    return None


def entry_custodian(entry: Entry) -> Optional[str]:
    """The custodian of a dump entry: the one the walk decided for the whole dump (a dump root that
    is itself a Maildir: the root's name), else the first folder of its path."""
    if entry.custodian is not None:
        return _display(entry.custodian)
    return custodian_of(entry.rel)


class Unit:
    """Processes one top-level entry and everything inside it."""

    def __init__(self, root: str, opts: Options, split_ok: bool = False):
        self.root = root
        self.opts = opts
        self.split_ok = split_ok        # a top-level mbox may come back as a SplitPlan
        self.entry: Optional[Entry] = None
        self.plan: Optional[SplitPlan] = None
        self.head: Optional[UnitResult] = None
        self.out: List[dict] = []       # records not yet serialised (still open to changes)
        self.lines: List[str] = []      # serialised records, in order
        self.line_chars = 0
        self.spill = None               # (path, fd) once the lines have outgrown SPILL_BYTES
        self.spill_failed = False
        self.spilled = 0                # lines written to the spill file
        self.tally = Tally()
        self.expanded = 0  # bytes expanded from containers so far in this top-level file
        self._authenticate = None  # leaktriage.auth.analyse.authenticate_record with this scan's key store

    def flush(self) -> None:
        """Serialise the pending records: memory then holds compact lines, not dicts, so it does
        not grow much with the number of messages in one big mbox."""
        for rec in self.out:
            self.tally.add(rec)
            line = records.dumps(rec)
            self.lines.append(line)
            self.line_chars += len(line)
        self.out.clear()
        if self.line_chars >= SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        """Append the pending lines to this unit's spill file (made on first use). If that fails
        (disk full, no temporary directory), the file is cut back to its last whole batch and the
        lines stay in memory from then on: nothing is lost."""
        if not self.lines or self.spill_failed:
            return
        pos = 0
        try:
            if self.spill is None:
                import tempfile
                self.spill = tempfile.mkstemp(prefix=SPILL_PREFIX, suffix=".jsonl", dir=self.opts.spill_dir)[::-1]
            fd = self.spill[1]
            pos = os.lseek(fd, 0, os.SEEK_CUR)
            with memoryview(("\n".join(self.lines) + "\n").encode("utf-8")) as view:
                while view:
                    view = view[os.write(fd, view):]
        except OSError:
            self.spill_failed = True
            if self.spill is not None:
                try:
                    os.ftruncate(self.spill[1], pos)
                    os.lseek(self.spill[1], pos, os.SEEK_SET)
                except OSError:
                    pass
            return
        self.spilled += len(self.lines)
        self.lines.clear()
        self.line_chars = 0

    def _auth(self):
        if self._authenticate is None:
            from leaktriage.auth.analyse import authenticate_record
            self._authenticate = functools.partial(authenticate_record, keystore=load_keystore(self.opts.keystore),
                                                   dns=self.opts.dns)
        return self._authenticate

    # -- records ----------------------------------------------------------------------------
    def emit(self, rec: dict) -> None:
        self.out.append(rec)

    def problem(self, loc: str, code: str, offset=None, length=None, detail=None, message=None) -> None:
        self.out.append(problem_record(loc, code, message=message, offset=offset, length=length, detail=detail))

    # -- entry point ------------------------------------------------------------------------
    def died(self, entry: Entry) -> UnitResult:
        """The result of a unit whose process died while reading it (twice): a failed file record
        and its problem, so the file is still accounted for."""
        loc = L.escape(entry.rel)
        self.emit(records.record("file", loc, entry="file", path=_display(entry.rel), custodian=entry_custodian(entry),
                                 size=entry.size, status="failed"))
        self.problem(loc, "internal.worker_died")
        return self._result(entry)

    def run(self, entry: Entry) -> UnitResult:
        self.entry = entry
        loc = L.escape(entry.rel)
        path = _display(entry.rel)
        cust = entry_custodian(entry)
        base = dict(path=path, custodian=cust)
        try:
            entry.rel.decode("utf-8")
        except UnicodeDecodeError:
            import base64
            base["name_raw_b64"] = base64.b64encode(entry.rel).decode("ascii")
            self.problem(loc, "walk.name_not_utf8")
        if entry.entry == "unreadable-dir":
            self.emit(records.record("file", loc, entry="other", status="failed", **base))
            self.problem(loc, "walk.unreadable", detail={"errno": entry.errno} if entry.errno is not None else None,
                         message="Directory could not be listed: %s; what it holds is not in the manifest." % entry.error)
        elif entry.error is not None:
            # the walk could not stat it (a file in a folder that is readable but not searchable): its
            # kind is what the directory listing said, nothing else is known
            self.emit(records.record("file", loc, entry=entry.entry, status="failed", **base))
            self.problem(loc, "walk.unreadable", detail={"errno": entry.errno},
                         message="Could not stat this %s: %s; it was not read."
                         % ("file" if entry.entry == "file" else "entry (%s)" % entry.entry, entry.error))
        elif entry.entry == "symlink":
            self.emit(records.record("file", loc, entry="symlink", size=entry.size,
                                     symlink_target=_display(entry.symlink_target or b""), status="ok", **base))
            self.problem(loc, "walk.symlink")
        elif entry.entry != "file":
            self.emit(records.record("file", loc, entry=entry.entry, status="ok", **base))
            self.problem(loc, "walk.special_file", detail={"entry": entry.entry})
        else:
            self._disk_file(entry, loc, base)
        return self._result(entry)

    def _result(self, entry: Entry) -> UnitResult:
        self.flush()
        res = self._take(entry.size)
        if self.plan is not None:
            res.split, res.head = self.plan, self.head
        return res

    def _take(self, size: int) -> UnitResult:
        """The lines and tally so far as a result; the unit starts afresh."""
        data = ("\n".join(self.lines) + "\n").encode("utf-8") if self.lines else b""
        if self.spill is not None:
            path, fd = self.spill
            os.close(fd)
            res = UnitResult(data, self.spilled + len(self.lines), self.tally, size, spill=path)
        else:
            res = UnitResult(data, len(self.lines), self.tally, size)
        self.lines, self.line_chars, self.spill, self.spilled, self.tally = [], 0, None, 0, Tally()
        return res

    def _disk_file(self, entry: Entry, loc: str, base: dict) -> None:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        noatime = getattr(os, "O_NOATIME", 0)
        fd = None
        try:
            # by its path, or through directory fds past PATH_MAX; a one-file dump is the root itself
            try:
                fd = open_in_dump(self.root, entry.rel, flags | noatime)
            except PermissionError:
                fd = open_in_dump(self.root, entry.rel, flags)
            st1 = os.fstat(fd)
            size = st1.st_size
            self.top_size, self.inflated, self.members = size, 0, 0
            if size > IN_MEMORY_MAX:
                data = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
            else:
                # what fstat said, no more: a file that grows meanwhile (a live mbox or spool) was
                # read one byte per call past its size, ~40 bytes of RAM per byte, until
                # MemoryError; its growth is recorded below (walk.changed), not followed
                chunks = []
                got = 0
                while got < size:
                    b = os.read(fd, min(1 << 24, size - got))
                    if not b:
                        break
                    chunks.append(b)
                    got += len(b)
                data = b"".join(chunks)
            st2 = os.fstat(fd)
        except FileNotFoundError:
            self.emit(records.record("file", loc, entry="file", size=entry.size, status="failed", **base))
            self.problem(loc, "walk.vanished")
            return
        except OSError as exc:
            self.emit(records.record("file", loc, entry="file", size=entry.size, status="failed", **base))
            self.problem(loc, "walk.unreadable", message="Could not read the file: %s" % (exc.strerror or exc),
                         detail={"errno": exc.errno})
            return
        finally:
            if fd is not None:
                os.close(fd)
        # changed while read, or since the walk listed it (a file truncated after the listing is read
        # as it is now: a worker that died of SIGBUS on it was retried on the shorter file)
        changed = (st1.st_size != st2.st_size or st1.st_mtime_ns != st2.st_mtime_ns or len(data) != st1.st_size
                   or st1.st_size != entry.size)
        maildir = None
        if entry.maildir_folder is not None:
            name = entry.rel.rpartition(b"/")[2].decode("utf-8", "replace")
            info = flags_s = None
            for sep in (":2,", "!2,", ";2,"):
                if sep in name:
                    info = name.split(sep, 1)[1]
                    flags_s = "".join(sorted(c for c in info if c.isupper()))
                    info = sep[1:] + info
                    break
            # a Maildir that is the dump root itself is the folder "." (the dump root's locator)
            maildir = {"folder": _display(entry.maildir_folder) or ".", "subdir": entry.maildir_subdir,
                       "flags": flags_s, "info": info}
            maildir = {k: v for k, v in maildir.items() if v is not None}
        if entry.maildir_folder is not None:
            mailbox = _display(entry.maildir_folder) or "."
        else:
            mailbox = _display(entry.rel.rpartition(b"/")[0]) or "."
        item = WorkItem(loc, data, 0, None, base["path"], base["custodian"], mailbox,
                    source="maildir" if maildir else "file", maildir=maildir)
        self.process(item, base_fields=base)
        if entry.maildir_subdir == "tmp":
            self.problem(loc, "maildir.tmp")
        if changed:
            grew = st2.st_size > st1.st_size
            detail = {"size_before": st1.st_size, "size_after": st2.st_size, "bytes_read": len(data)}
            if st1.st_size != entry.size:
                detail["size_listed"] = entry.size
            self.problem(loc, "walk.changed", detail=detail,
                         message="The file changed during the scan (size %d when listed, %d when opened, %d after reading, "
                                 "mtime %s): the first %d bytes were read%s." % (
                                     entry.size, st1.st_size, st2.st_size, "changed" if st1.st_mtime_ns != st2.st_mtime_ns
                                     else "unchanged", len(data),
                                     ", the %d bytes it grew by were not" % (st2.st_size - st1.st_size) if grew else ""))
        if isinstance(data, mmap.mmap):
            data.close()

    # -- any item (disk file, member, attached message, blob) ------------------------------------
    def process(self, first: WorkItem, base_fields: Optional[dict] = None) -> None:
        self._walk_items(iter([first]), first, base_fields)

    def _walk_items(self, items, first=None, base_fields=None) -> None:
        """Depth-first, in order, with a stack of iterators: a container's members are read one at a
        time (a reader is a generator), so memory holds one member per level, not a whole archive."""
        stack = [items]
        while stack:
            try:
                item = next(stack[-1])
            except StopIteration:
                stack.pop()
                continue
            except Exception as exc:  # a container reader failing between two members
                owner = getattr(stack[-1], "locator", None) or "."
                self.problem(owner, "internal.error",
                             message="Internal error while reading a container (%s: %s); members read so far "
                                     "are recorded." % (type(exc).__name__, str(exc)[:200]),
                             detail={"where": _where(exc)})
                stack.pop()
                continue
            try:
                children = self._item(item, base_fields if item is first else None)
            except Exception as exc:  # never let one item stop the scan
                self.problem(item.locator, "internal.error",
                             message="Internal error (%s: %s); the item's bytes are recorded, its content is not."
                             % (type(exc).__name__, str(exc)[:200]),
                             detail={"where": _where(exc)})
                children = []
            if children:
                stack.append(iter(children))
            self.flush()

    def _item(self, item: WorkItem, base_fields: Optional[dict]) -> List[WorkItem]:
        data = item.data
        algos = self.opts.algorithms
        if item.depth > self.opts.limits.max_depth and not item.file_record:
            self.problem(item.locator, "limit.depth", detail={"depth": item.depth,
                                                               "max_depth": self.opts.limits.max_depth})
            return []
        if item.kind == "message" and not item.file_record:
            # an attached message (message/rfc822 part or attached .eml): the part record has its digests
            return self._message(item, data)
        size = len(data) if data is not None else 0
        if data is None:
            kind, by, magic = "other", None, None
        else:
            kind, by, magic = sniff.sniff(data, size)
        if item.kind == "blob":
            pass  # an attachment: its part record already has the digests; sniffed kind decides
        elif item.kind == "item":
            kind, by = "item", "container"  # a non-mail Outlook item (contact, appointment, note)
        elif item.kind:
            kind, by = item.kind, "container"
        digests = digesting.digests(data, algos) if data is not None else {}
        if item.file_record:
            fields = dict(base_fields or {})
            if not base_fields:
                fields["path"] = item.name
                fields["custodian"] = item.custodian
            rec = records.record("file", item.locator, parent=item.parent, entry="file", size=size,
                                 magic=magic, kind=kind, sniffed_by=by, maildir=item.maildir,
                                 status="ok" if data is not None else "failed", **digests, **fields)
            for k, v in item.meta.items():
                if k in records.FIELDS["file"] and k not in rec and k != "container_meta":
                    rec[k] = v
                elif rec.get(k) != v:
                    # container facts that are not file fields, or that differ from what was read
                    # (a declared size, say) are kept as the container stated them
                    rec.setdefault("container_meta", {})[k] = v
            self.emit(rec)
            if size == 0 and data is not None:
                self.problem(item.locator, "walk.empty_file")
        if data is None:
            return []
        if item.depth > self.opts.limits.max_depth:
            self.problem(item.locator, "limit.depth", detail={"depth": item.depth,
                                                               "max_depth": self.opts.limits.max_depth})
            return []
        if kind == "message":
            if item.file_record:
                rec["messages"] = 1
            return self._message(item, data, digests)
        if kind == "mbox":
            return self._mbox(item, data, rec if item.file_record else None)
        if kind == "item":
            return []
        if kind in ("other", "empty", "ole", "document"):
            if item.source == "maildir":
                self.problem(item.locator, "sniff.not_mail")
            elif item.file_record and kind != "empty" and \
                    item.name.lower().rsplit(".", 1)[-1] in ("eml", "mbox", "emlx", "msg", "mbx"):
                self.problem(item.locator, "sniff.extension_mismatch",
                             detail={"name": item.name.rsplit("/", 1)[-1], "kind": kind, "magic": magic})
            return []
        return self._container(item, data, kind)

    def _message(self, item: WorkItem, data: bytes, digests: Optional[dict] = None, extra: Optional[dict] = None) -> List[WorkItem]:
        ex = {"custodian": item.custodian, "mailbox": item.mailbox, "maildir": item.maildir}
        if item.message_extra:
            me = dict(item.message_extra)
            if "reconstructed" in me:
                ex["reconstructed"] = bool(me.pop("reconstructed"))
            src = me.pop("source", None)
            if me:
                ex["container_meta"] = me
            source = src or item.source
        else:
            source = item.source
        if extra:
            ex.update(extra)
        try:
            with time_budget(self.opts.item_timeout):
                recs, found, _facts = message.analyse(
                    data, item.locator, source=source,
                    parent=item.parent or item.locator, loc_base=item.loc_base, root_path=item.root_path,
                    algorithms=self.opts.algorithms, known_digests=digests, extra=ex,
                    container_kind=sniff.container_kind, auth=self._auth())
        except TimeBudgetExceeded:
            # the message's bytes stay accounted for by this record (offset/length in its parent)
            self.problem(item.locator, "limit.time", offset=(extra or {}).get("offset"), length=len(data),
                         detail={"seconds": self.opts.item_timeout})
            return []
        self.out.extend(recs)
        return [self._found(item, f) for f in found]

    def _found(self, item: WorkItem, f) -> WorkItem:
        if f.kind == "message":
            return WorkItem(f.locator, f.data, item.depth + 1, f.locator, f.name or "", item.custodian, item.mailbox,
                        kind="message", source=f.source, file_record=False, loc_base=f.loc_base,
                        root_path=f.root_path)
        return WorkItem(f.locator, f.data, item.depth + 1, f.locator, f.name or "", item.custodian, item.mailbox,
                    kind="blob", file_record=False)

    def _mbox(self, item: WorkItem, data, file_rec: Optional[dict]) -> List[WorkItem]:
        sp = mbox.split(data, 0, len(data))
        for code, off, length, detail in sp.problems:
            self.problem(item.locator, code, offset=off, length=length, detail=detail or None)
        if file_rec is not None:
            file_rec["messages"] = len(sp.entries)
        if (self.split_ok and file_rec is not None and item.depth == 0 and self.entry is not None
                and 0 < self.opts.split_bytes < len(data) and len(sp.entries) > 1):
            self._plan(item, data, sp)
            return []
        self._mbox_messages(item.locator, item.depth, item.custodian, data, sp.entries, sp.variant)
        return []

    def _plan(self, item: WorkItem, data, sp) -> None:
        """Cut the mbox into ranges of whole messages; the records so far (the file record, the
        split's problems) become the head, whatever the unit emits after the mbox its tail."""
        ranges: List[List[mbox.Entry]] = [[]]
        start = sp.entries[0].marker_offset
        step = max(1, self.opts.split_range_bytes)
        for e in sp.entries:
            if ranges[-1] and e.end - start > step:
                ranges.append([])
                start = e.marker_offset
            ranges[-1].append(e)
        st = lstat_in_dump(self.root, self.entry.rel)
        self.plan = SplitPlan(item.locator, item.depth, item.custodian, sp.variant, st.st_size, st.st_mtime_ns,
                              self.expanded, ranges)
        self.flush()
        self.head = self._take(0)

    def run_range(self, entry: Entry, rng: MboxRange) -> UnitResult:
        """The messages of one range of a split mbox, as the whole-file scan would give them."""
        self.entry = entry
        self.expanded = rng.expanded_start
        plan = rng.plan
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        data = None
        try:
            # as the unit that split it opened it: by its path, past PATH_MAX, or a one-file dump
            try:
                fd = open_in_dump(self.root, entry.rel, flags | getattr(os, "O_NOATIME", 0))
            except PermissionError:
                fd = open_in_dump(self.root, entry.rel, flags)
            try:
                st = os.fstat(fd)
                if st.st_size == plan.size and st.st_mtime_ns == plan.mtime_ns:
                    data = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
            finally:
                os.close(fd)
        except OSError as exc:
            st = None
            self.problem(plan.locator, "walk.unreadable", offset=rng.entries[0].marker_offset, length=rng.nbytes,
                         message="Could not read the file again for messages %d-%d: %s"
                         % (rng.entries[0].marker_offset, rng.entries[-1].end, exc.strerror or exc),
                         detail={"errno": exc.errno})
        if data is None and st is not None:
            self.problem(plan.locator, "walk.changed", offset=rng.entries[0].marker_offset, length=rng.nbytes,
                         detail={"size_before": plan.size, "size_after": st.st_size, "bytes_read": 0})
        if data is not None:
            try:
                self._mbox_messages(plan.locator, plan.depth, plan.custodian, data, rng.entries, plan.variant)
            finally:
                data.close()
        self.flush()
        res = self._take(rng.nbytes)
        res.expanded = self.expanded - rng.expanded_start
        res.limit_hit = any(code.endswith(".total_exceeded") for code in res.tally.problems)
        return res

    def _mbox_messages(self, locator: str, depth: int, custodian: Optional[str], data, entries, variant: str) -> None:
        mailbox = locator
        released = entries[0].marker_offset if entries else 0
        for e in entries:
            stored = bytes(data[e.offset:e.end])
            loc = L.child(locator, L.segment("mbox", e.marker_offset))
            digests = digesting.digests(stored, self.opts.algorithms)
            unq, nlines = mbox.unquote(stored, variant)
            mb = {"marker_offset": e.marker_offset, "marker": e.marker.decode("utf-8", "replace"),
                  "variant": variant, "unquoted_lines": nlines}
            if e.content_length is not None:
                mb["content_length"] = e.content_length
                mb["content_length_used"] = e.content_length_used
            extra = {"offset": e.offset, "mbox": mb}
            if nlines:
                import hashlib
                extra["unquoted_sha256"] = hashlib.sha256(unq).hexdigest()
            sub = WorkItem(loc, unq, depth + 1, locator, "", custodian, mailbox, source="mbox",
                       file_record=False)
            # the message record's digests are of the stored bytes; parsing works on the un-quoted ones
            recs_before = len(self.out)
            children = self._message(sub, unq, digests, extra)
            msg = self.out[recs_before]
            msg["length"] = len(stored)
            self._flush_nested(children)
            self.flush()
            # a memory-mapped mbox does not stay resident: release from a little before where the
            # last release ended (the kernel maps up to 64 KiB around each page fault, also behind
            # it), not from 0 (which walks ever more page tables, quadratic in the file size)
            pages.release(data, max(0, released - 65536), e.end)
            released = e.end

    def _flush_nested(self, children: List[WorkItem]) -> None:
        self._walk_items(iter(children))

    def _container(self, item: WorkItem, data, kind: str):
        rd = reader(kind)
        if rd is None:
            self.problem(item.locator, "container.unsupported", detail={"kind": kind})
            return []
        return _Members(item.locator, self._members(item, data, kind, rd))

    # what one top-level file has cost so far, all nesting levels together (set by _disk_file)
    top_size = 0        # its size: the budgets of base.Limits (max_total_ratio, nested members) scale with it
    inflated = 0        # bytes produced by decompression (the ratio budget)
    members = 0         # container members listed (the nested-members budget)

    def _members(self, item: WorkItem, data, kind: str, rd):
        """The container's members as Items, one at a time (the reader is a generator)."""
        # the expansion budget is per top-level file: it is carried through every nested container
        ctx = Context(locator=item.locator, depth=item.depth, limits=self.opts.limits,
                      expanded_so_far=self.expanded, top_size=self.top_size, inflated_so_far=self.inflated)
        cap = self.opts.limits.nested_members(self.top_size) if self.top_size else None
        listed = 0
        is_archive = kind in ("zip", "tar", "gzip", "bzip2", "xz", "7z", "rar")
        objs = rd(data, ctx)  # a memory map is passed as is: readers slice it, they do not copy it
        while True:
            # members read meanwhile by nested containers count against this file's budgets too
            ctx.expanded_so_far, ctx.inflated_so_far = self.expanded, self.inflated
            try:
                obj = next(objs)
            except StopIteration:
                break
            finally:
                self.expanded, self.inflated = ctx.expanded_so_far, ctx.inflated_so_far
            if isinstance(obj, Problem):
                loc = L.child(item.locator, obj.segment) if obj.segment else item.locator
                self.problem(loc, obj.code, message=obj.message, offset=obj.offset, length=obj.length,
                             detail=obj.detail)
                continue
            loc = L.child(item.locator, obj.segment)
            if cap is not None and self.members >= cap:
                # a nested-archive bomb: tens of thousands of tiny members cost time, not bytes
                self.problem(item.locator, "limit.members",
                             message="This top-level file has already had %d container members listed (all nesting "
                                     "levels together: at least %d, or one per %d bytes of its %d bytes); %s and "
                                     "every member after it in this container were not listed or opened."
                                     % (cap, self.opts.limits.nested_members_floor,
                                        self.opts.limits.nested_member_bytes, self.top_size, loc),
                             detail={"limit": cap, "top_level_size": self.top_size, "listed_here": listed,
                                     "first_not_listed": loc})
                objs.close()
                break
            self.members += 1
            listed += 1
            cust = item.custodian
            if cust is None and item.depth == 0 and is_archive:
                stem = item.name.rsplit("/", 1)[-1]
                for suf in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar", ".7z", ".rar", ".gz"):
                    if stem.lower().endswith(suf):
                        stem = stem[: -len(suf)]
                        break
                cust = stem
            mailbox = item.mailbox
            if is_archive:
                d = obj.name.rpartition("/")[0]
                mailbox = item.locator + ("!" + obj.segment.split(":", 1)[0] + ":" + L.escape(d) if d else "")
            ch = WorkItem(loc, obj.data, item.depth + 1, item.locator, obj.name, cust, mailbox,
                      kind=obj.kind if obj.kind in ("message", "item") else None,
                      source="archive" if is_archive else kind, meta=dict(obj.meta),
                      message_extra=obj.message)
            if obj.kind and obj.kind not in ("message",):
                ch.meta.setdefault("item_kind", obj.kind)
            for p in obj.problems:
                self.problem(loc, p.code, message=p.message, offset=p.offset, length=p.length, detail=p.detail)
            yield ch


class _Members:
    """An iterator over a container's members that knows the container's locator (for errors)."""

    def __init__(self, locator: str, it):
        self.locator = locator
        self._it = it

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return type(exc).__name__
    f = tb[-1]
    return "%s:%d %s" % (os.path.basename(f.filename), f.lineno, f.name)


# -- running units, in one process or many ------------------------------------------------------

def work(task: Task) -> List[UnitResult]:
    """A task, in a worker: its units in order, or one range of a split mbox. The tallies of a
    batch are merged here, in order, and travel once, with the batch's last result (merging is
    associative, so the totals are the same): the main process unpickles and merges one tally per
    batch, not one per file. The last result also carries the task's CPU seconds."""
    cpu0 = time.thread_time()
    if task.range is not None:
        out = [Unit(task.root, task.opts).run_range(task.entries[0], task.range)]
    else:
        out = [Unit(task.root, task.opts, split_ok=task.split_ok).run(e) for e in task.entries]
        for e, r in zip(task.entries, out):
            r.stamp = entry_stamp(task.root, e.rel)
        if len(out) > 1:
            total = Tally()
            for r in out:
                total.merge(r.tally)
                r.tally = None
            out[-1].tally = total
    out[-1].cpu = time.thread_time() - cpu0
    return out


def entry_stamp(root: str, rel: bytes) -> Optional[list]:
    """What --resume compares for a finished file (the same as leaktriage.api.file_stamp), taken
    by the worker after reading it, so that the main process does not stat every file itself."""
    try:
        st = lstat_in_dump(root, rel)       # past PATH_MAX too; a one-file dump is the root itself
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def died(task: Task, isolated=None) -> List[UnitResult]:
    """A task whose worker died twice: each unit alone in a process of its own (`isolated`, the
    engine's); the unit that kills it once more is recorded as failed (internal.worker_died), the
    others as usual. A range of a split mbox that does so is a problem record at its offset."""
    from leaktriage.pool import WorkerDied, run_in_child
    isolated = isolated or functools.partial(run_in_child, work)
    if task.range is not None:
        u = Unit(task.root, task.opts)
        r = task.range
        u.problem(r.plan.locator, "internal.worker_died", offset=r.entries[0].marker_offset, length=r.nbytes)
        res = u._take(r.nbytes)
        return [res]
    out: List[UnitResult] = []
    for e in task.entries:
        try:
            out.extend(isolated(dataclasses.replace(task, entries=(e,), split_ok=False)))
        except WorkerDied:
            out.append(Unit(task.root, task.opts).died(e))
    total = Tally()
    for r in out:
        if r.tally is not None:
            total.merge(r.tally)
        r.tally = None
    out[-1].tally = total
    return out


def _mapped(batch: Sequence[Entry]) -> bool:
    """Batches holding a file that will be memory-mapped: a file truncated while mapped kills the
    process that reads it (SIGBUS), so with one worker these still run in a child process."""
    return any(e.entry == "file" and e.size > IN_MEMORY_MAX for e in batch)


def tasks_of(root: str, entries: Sequence[Entry], opts: Options) -> Iterator[Task]:
    """The entries as tasks, in order: batches of small files (fewer round trips between
    processes: 1.6x -> 1.9x with 2 workers on 6,000 small files; small dumps keep batches of one
    for balance), and a task of its own for each file big enough to be split."""
    workers = max(1, opts.workers)
    chunk = 1 if workers <= 1 else max(1, min(32, len(entries) // (workers * 16)))
    batch: List[Entry] = []
    for e in entries:
        if opts.split_bytes and e.entry == "file" and e.size > opts.split_bytes:
            if batch:
                yield Task(root, opts, tuple(batch))
                batch = []
            yield Task(root, opts, (e,), split_ok=True)
            continue
        batch.append(e)
        if len(batch) >= chunk:
            yield Task(root, opts, tuple(batch))
            batch = []
    if batch:
        yield Task(root, opts, tuple(batch))


def executor_for(opts: Options):
    """The engine: opts.executor when given (a Dask cluster), else this machine's processes."""
    from leaktriage.scanner.schedule import InlineExecutor, LocalExecutor
    if opts.executor is not None:
        return opts.executor
    if opts.workers <= 1:
        return InlineExecutor(isolate=lambda task: _mapped(task.entries))
    return LocalExecutor(opts.workers)


class RunStats:
    """What the scan's engine did, for the run record."""

    def __init__(self):
        self.tasks = 0
        self.task_cpu = 0.0
        self.splits = 0
        self.ranges = 0
        self.ranges_redone = 0
        self.resubmitted = 0
        self.isolated = 0
        self.longest_task_cpu = 0.0


def run_units(root: str, entries: Sequence[Entry], opts: Options) -> Iterator[UnitResult]:
    """Results in the order of `entries`, each with .entry and .last (a split mbox gives several
    results: its head, its ranges, its tail, the last one with last=True). Computed by the engine
    of executor_for(opts), which runs its `task_fn` (default `work`) for each task; what it did is
    left in the engine's `stats` (a RunStats)."""
    from leaktriage.scanner.schedule import Ordered
    ex = executor_for(opts)
    stats = ex.stats = RunStats()
    wopts = dataclasses.replace(opts, executor=None)
    fn = ex.task_fn or work
    driver = Ordered(ex, fn, on_died=lambda task: died(task, lambda t: ex.isolated(fn, t)))

    def follow(task: Task, results: List[UnitResult]):
        res = results[-1]
        if res.split is None:
            return None
        plan = res.split
        return [Task(task.root, task.opts, task.entries, range=MboxRange(plan, i, r, plan.expanded_start))
                for i, r in enumerate(plan.ranges)]

    tail: Optional[UnitResult] = None      # the tail of the split mbox whose ranges are coming
    expanded = 0                           # its expansion budget used so far, in file order
    left = 0                               # its ranges still to come
    limit = opts.limits.max_total_expanded
    for task, results in driver.run(tasks_of(root, entries, wopts), follow):
        stats.tasks += 1
        stats.task_cpu += results[-1].cpu
        stats.longest_task_cpu = max(stats.longest_task_cpu, results[-1].cpu)
        if task.range is not None:
            res = results[0]
            rng = task.range
            if rng.expanded_start != expanded and (res.limit_hit or expanded + res.expanded > limit):
                # run with the budget the earlier ranges left: the range meets a limit it would not
                # have met (or not there) in a whole-file scan
                stats.ranges_redone += 1
                if res.spill:
                    os.unlink(res.spill)
                res = driver.call(dataclasses.replace(task, range=dataclasses.replace(rng, expanded_start=expanded)))[0]
            expanded += res.expanded
            res.entry, res.last = task.entries[0], False
            yield res
            left -= 1
            if left == 0:
                tail.entry, tail.last = task.entries[0], True
                yield tail
                tail = None
            continue
        for e, res in zip(task.entries, results):
            res.entry = e
            if res.split is not None:
                plan, head = res.split, res.head
                stats.splits += 1
                stats.ranges += len(plan.ranges)
                head.entry, head.last = e, False
                yield head
                res.split = res.head = None
                tail, expanded, left = res, plan.expanded_start, len(plan.ranges)
                # the progress bar: the ranges count their bytes, the tail the rest
                tail.size = max(0, e.size - sum(r[-1].end - r[0].marker_offset for r in plan.ranges))
                continue
            yield res
    stats.resubmitted = driver.resubmitted
    stats.isolated = driver.isolated
