"""The one way leaktriage runs work in several processes (scan, verify, index, report).

    with WorkerPool(workers, initializer, initargs) as pool:
        for result in pool.imap(fn, items):      # results in the order of items
            ...

- default_workers(): the CPUs this process may use (the same default for every command);
- results come back in order, with a bounded number of tasks in flight (memory stays bounded);
- workers ignore SIGINT: Ctrl-C reaches the main process only, which stops the workers at once
  and lets KeyboardInterrupt through (the command then exits 130);
- a worker that dies (a signal such as SIGBUS on a file truncated while mapped, the OOM killer)
  is detected: the pool is restarted and each item that was in flight is retried alone; an item
  that kills its worker again is handed to `on_died(item)`, whose return value stands in for its
  result (the scanner turns it into a problem record). Nothing hangs and nothing is lost.
- a worker that dies while it sends a result, which the executor cannot notice, is found by
  watching the workers while waiting (WorkerPool.result, WorkerPool.wait);
- workers die with the process that started them (Linux): a scan killed by `kill`, SIGTERM or
  the OOM killer leaves no worker behind;
- with workers <= 1 everything runs in this process (no pickling), except that `isolate(item)`
  may ask for a child process for items that could crash it (the scanner's memory-mapped files).

The scanner does not use imap: its driver (leaktriage.scanner.schedule) needs tasks added while it
runs (a big mbox split into ranges), so it uses the pool's futures directly: `submit(fn, item)`,
`kill()`, `run_in_child(...)`. The other commands use imap/ordered.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections import deque
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, TimeoutError as FuturesTimeout, wait as cf_wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as mp_wait
from typing import Any, Callable, Deque, Iterable, Iterator, Optional, Sequence, Tuple


def default_workers(limit: Optional[int] = None) -> int:
    """Number of CPUs this process may run on (its affinity), at least 1, at most `limit`."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    n = max(1, n)
    return min(n, limit) if limit else n


WATCH_EVERY = 1.0    # seconds between looks at the workers while waiting for a result
DEAD_GRACE = 5.0     # seconds a worker may lie dead before the pool is declared broken (the executor
                     # itself notices a death within milliseconds, unless it is stuck: see watch)


class WorkerDied(Exception):
    """A worker process died while running an item (twice: once among others, once alone)."""

    def __init__(self, item: Any, exitcode: Optional[int] = None):
        super().__init__("a worker process died while working on %r" % (item,))
        self.item = item
        self.exitcode = exitcode


def _die_with(parent: int) -> None:
    """Linux: have this worker killed when the process that started it dies (kill, SIGTERM, the OOM
    killer, a scheduler's time limit): left behind, a worker waited for work forever with the
    memory it held. The pool is used from the thread that made it (the signal follows the thread
    that forked the worker), as every command does."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:                      # it died before prctl
        os._exit(1)


def _init_worker(initializer: Optional[Callable], initargs: Tuple, parent: Optional[int] = None) -> None:
    if parent is not None:
        _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the main process's to handle
    import faulthandler
    faulthandler.disable()    # a worker killed by a signal is the pool's to report, not a stack dump
    if initializer is not None:
        initializer(*initargs)


def _context():
    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


class WorkerPool:
    """Ordered parallel map over processes, robust to Ctrl-C and to workers that die."""

    def __init__(self, workers: int, initializer: Optional[Callable] = None, initargs: Tuple = (),
                 window: Optional[int] = None):
        self.workers = max(1, workers)
        self.initializer = initializer
        self.initargs = initargs
        self.window = window or (2 * self.workers + 2)
        self._ex: Optional[ProcessPoolExecutor] = None
        self.restarts = 0
        self._dead_seen: Optional[Tuple[Any, float]] = None   # (executor, when a dead worker was first seen)

    # -- lifecycle ---------------------------------------------------------------------------------
    def _executor(self) -> ProcessPoolExecutor:
        if self._ex is None:
            self._ex = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_init_worker,
                                           initargs=(self.initializer, self.initargs, os.getpid()))
        return self._ex

    def kill(self) -> None:
        """Stop every worker now (Ctrl-C, an error): in-flight work is dropped."""
        self._kill()

    def _kill(self) -> None:
        ex, self._ex = self._ex, None
        if ex is None:
            return
        procs = list(getattr(ex, "_processes", {}).values())   # no public way to stop workers at once
        writer = getattr(getattr(ex, "_result_queue", None), "_writer", None)    # (shutdown forgets it)
        for p in procs:
            try:
                p.terminate()
            except (OSError, AttributeError):
                pass
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                p.join(5)
            except (OSError, AttributeError, AssertionError):
                pass
        # a worker killed while it sent a result left part of a message in the result pipe, and the
        # executor's manager thread waits for the rest; Python joins that thread at exit, so Ctrl-C
        # never ended (seen under load). The workers' ends of the pipe died with them: closing this
        # process's own gives the thread an end of file, and it stops (there is no public way).
        if writer is not None and not any(p.is_alive() for p in procs):
            try:
                writer.close()
            except OSError:
                pass

    def close(self) -> None:
        ex, self._ex = self._ex, None
        if ex is not None:
            ex.shutdown(wait=True)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, et, ev, tb) -> None:
        if et is None:
            self.close()
        else:
            self._kill()

    # -- work ----------------------------------------------------------------------------------------
    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any],
             on_died: Optional[Callable[[Any, Optional[int]], Any]] = None) -> Iterator[Any]:
        """fn(item) for every item, in order. A worker that dies makes its items run again alone;
        an item that kills a worker twice gives on_died(item, None) (or raises WorkerDied)."""
        pending: Deque[Tuple[Any, Any]] = deque()
        it = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    try:
                        item = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append((item, self._submit(fn, item)))
                if not pending:
                    return
                item, fut = pending[0]
                try:
                    res = self.result(fut)
                except BrokenProcessPool:
                    # a worker died: every unfinished item is retried, the head one alone first
                    self.restarts += 1
                    items_left = [i for i, _ in pending]
                    self._kill()
                    pending.clear()
                    yield self._alone(fn, items_left[0], on_died)
                    for i in items_left[1:]:
                        pending.append((i, self._submit(fn, i)))
                    continue
                pending.popleft()
                yield res
        except BaseException:
            self._kill()
            raise

    def result(self, fut):
        """fut.result(), watching the workers meanwhile (see watch)."""
        while True:
            try:
                return fut.result(timeout=WATCH_EVERY)
            except FuturesTimeout:
                self.watch()

    def wait(self, futs) -> None:
        """Until one of futs is done (concurrent.futures.wait, FIRST_COMPLETED), watching the workers."""
        while not cf_wait(futs, timeout=WATCH_EVERY, return_when=FIRST_COMPLETED).done:
            self.watch()

    def watch(self) -> None:
        """A worker that died halfway through sending a result (the OOM killer at that moment) left
        the executor's manager thread waiting for the rest of the message, kept possible by the
        other workers' ends of the pipe: the executor never saw the death, and the run hung. When a
        worker has been dead for DEAD_GRACE seconds and the pool is not broken yet, the pool is
        stopped (every end of the pipe closes, the thread reads an end of file): its futures raise
        BrokenProcessPool and their items are retried, as for any worker that dies."""
        ex = self._ex
        if ex is None:
            return
        try:
            procs = list((getattr(ex, "_processes", None) or {}).values())   # one C call: the manager thread changes it
            dead = bool(mp_wait([p.sentinel for p in procs], 0))
        except (ValueError, OSError):
            dead = False                  # a process object already closed: the executor has seen it
        if not dead:
            self._dead_seen = None
            return
        if self._dead_seen is None or self._dead_seen[0] is not ex:
            self._dead_seen = (ex, time.monotonic())
        elif time.monotonic() - self._dead_seen[1] >= DEAD_GRACE:
            self._dead_seen = None
            self._kill()

    def submit(self, fn: Callable[[Any], Any], item: Any):
        """A concurrent.futures.Future of fn(item). A pool broken by a worker that died is
        restarted first; the futures of the broken pool raise BrokenProcessPool."""
        return self._submit(fn, item)

    def _submit(self, fn, item):
        try:
            return self._executor().submit(fn, item)
        except BrokenProcessPool:
            self._kill()
            return self._executor().submit(fn, item)

    def _alone(self, fn, item, on_died):
        """Run one item in a fresh one-worker pool: its result, or on_died when it kills it again."""
        return run_in_child(fn, item, self.initializer, self.initargs, on_died)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        return self.imap(fn, items)


def run_in_child(fn: Callable[[Any], Any], item: Any, initializer: Optional[Callable] = None,
                 initargs: Tuple = (), on_died: Optional[Callable[[Any, Optional[int]], Any]] = None) -> Any:
    """fn(item) in a child process of its own (for work that could crash this process)."""
    single = WorkerPool(1, initializer, initargs)
    try:
        return single.result(single._executor().submit(fn, item))
    except BrokenProcessPool:
        if on_died is None:
            raise WorkerDied(item)
        return on_died(item, None)
    except BaseException:
        single._kill()
        raise
    finally:
        single.close() if single._ex is not None else None


def ordered(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, initializer: Optional[Callable] = None,
            initargs: Tuple = (), on_died: Optional[Callable[[Any, Optional[int]], Any]] = None,
            isolate: Optional[Callable[[Any], bool]] = None) -> Iterator[Any]:
    """fn over items in order: in this process when workers <= 1 (items for which isolate(item)
    is true then run in a child process), else in a WorkerPool."""
    if workers <= 1 or len(items) < 2:
        initialised = False
        for item in items:
            if isolate is not None and isolate(item):
                yield run_in_child(fn, item, initializer, initargs, on_died)
                continue
            if not initialised and initializer is not None:
                initializer(*initargs)
            initialised = True
            yield fn(item)
        return
    with WorkerPool(workers, initializer, initargs) as pool:
        yield from pool.imap(fn, items, on_died=on_died)
