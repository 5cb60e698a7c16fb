"""Tasks in, results out in task order: the one driver that every engine feeds.

An engine (an Executor) runs tasks somewhere:

- `InlineExecutor`: in this process (one worker), a task that could crash the process (a
  memory-mapped file) in a child process of its own;
- `LocalExecutor`: in leaktriage.pool's worker processes on this machine;
- leaktriage.cluster's `DaskExecutor`: on a Dask distributed cluster.

`Ordered` is the driver. It keeps a bounded number of tasks in flight (enough to keep every
worker busy) and a bounded number of finished results waiting for their turn, and hands results
back strictly in task order, so the manifest is written in walk order whatever finishes first. A
result may add tasks right after its own (`follow`: a big mbox cut into ranges); they go to the
front of the queue, ahead of later files. A task whose worker died (the process was killed, or
SIGBUS on a file truncated while mapped) is submitted again; when it is the oldest task waiting,
it is run once more in isolation and, if it kills that worker too, `on_died(task)` stands in for
its result. Nothing is lost, nothing hangs, and the order never depends on timing.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Tuple

from leaktriage.pool import WorkerDied, WorkerPool, run_in_child


class Executor:
    """What the driver needs from an engine. `handle`s are the engine's futures."""

    workers: int = 1
    # True when the engine itself reruns the tasks of a worker that died and reports a task only
    # once it has killed several workers (Dask's allowed-failures): no isolated retry is then made
    retries_itself: bool = False
    task_fn: Optional[Callable[[Any], Any]] = None   # what runs a task there (None: the caller's default)
    stats: Any = None                                 # what the caller recorded of the run

    def submit(self, fn: Callable[[Any], Any], task: Any) -> Any:
        raise NotImplementedError

    def result(self, handle: Any) -> Any:
        raise NotImplementedError

    def done(self, handle: Any) -> bool:
        raise NotImplementedError

    def wait(self, handles: List[Any]) -> None:
        """Block until one of handles is done."""
        raise NotImplementedError

    def lost(self, exc: BaseException) -> bool:
        """Whether exc means the task's worker died (as opposed to the task failing)."""
        raise NotImplementedError

    def isolated(self, fn: Callable[[Any], Any], task: Any) -> Any:
        """fn(task) where it cannot take other work down with it; raises WorkerDied if its worker dies."""
        raise NotImplementedError

    def forget(self, handle: Any) -> None:
        """The result was taken: the engine may free it."""

    def close(self) -> None:
        pass

    def kill(self) -> None:
        self.close()

    def info(self) -> dict:
        """How the scan ran, for the run record (MANIFEST.run.json)."""
        return {"engine": "local", "workers": self.workers}

    def worker_cpu_seconds(self) -> Optional[float]:
        """CPU seconds the workers used, if the engine can tell (else the tasks' own figures are used)."""
        return None


class _Done:
    """A handle whose result is already known."""
    __slots__ = ("value", "error")

    def __init__(self, value=None, error=None):
        self.value = value
        self.error = error


class InlineExecutor(Executor):
    """Tasks run in this process as they are submitted; `isolate(task)` picks the tasks that run in
    a child process instead (a file truncated while memory-mapped kills the process reading it)."""

    def __init__(self, isolate: Optional[Callable[[Any], bool]] = None):
        self.workers = 1
        self.isolate = isolate

    def submit(self, fn, task):
        try:
            if self.isolate is not None and self.isolate(task):
                return _Done(value=self.isolated(fn, task))
            return _Done(value=fn(task))
        except WorkerDied as exc:
            return _Done(error=exc)

    def result(self, handle):
        if handle.error is not None:
            raise handle.error
        return handle.value

    def done(self, handle):
        return True

    def wait(self, handles):
        return None

    def lost(self, exc):
        return isinstance(exc, WorkerDied)

    def isolated(self, fn, task):
        return run_in_child(fn, task)     # raises WorkerDied when the child dies

    def info(self):
        return {"engine": "local", "workers": 1}


class LocalExecutor(Executor):
    """leaktriage.pool's worker processes on this machine (forked: they share the parent's modules)."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self.pool = WorkerPool(self.workers)

    def submit(self, fn, task):
        return self.pool.submit(fn, task)

    def result(self, handle):
        return self.pool.result(handle)

    def done(self, handle):
        return handle.done()

    def wait(self, handles):
        self.pool.wait(handles)       # watching for a worker that died unseen (WorkerPool.watch)

    def lost(self, exc):
        return isinstance(exc, BrokenProcessPool)

    def isolated(self, fn, task):
        return run_in_child(fn, task)

    def close(self):
        self.pool.close()

    def kill(self):
        self.pool.kill()

    def info(self):
        return {"engine": "local", "workers": self.workers}


class _Slot:
    __slots__ = ("task", "handle", "value", "ready")

    def __init__(self, task):
        self.task = task
        self.handle = None
        self.value = None
        self.ready = False


class Ordered:
    """fn(task) for every task on `executor`, results yielded as (task, result) in task order."""

    def __init__(self, executor: Executor, fn: Callable[[Any], Any],
                 on_died: Callable[[Any], Any], in_flight: Optional[int] = None, buffered: Optional[int] = None):
        self.ex = executor
        self.fn = fn
        self.on_died = on_died
        w = max(1, executor.workers)
        # enough in flight that a worker finishing a task finds the next one queued; results that
        # are done but wait behind a slow older task are bounded too (memory)
        self.in_flight = in_flight or (2 * w + 2)
        self.buffered = buffered or max(4 * self.in_flight, 64)
        self.resubmitted = 0
        self.isolated = 0

    def call(self, task: Any) -> Any:
        """One task now, waited for (a range to redo with the right starting state)."""
        h = self.ex.submit(self.fn, task)
        try:
            return self.ex.result(h)
        except BaseException as exc:   # noqa: B902 - a worker that died is not the task's error
            if not self.ex.lost(exc):
                raise
            return self._retry(task)
        finally:
            self.ex.forget(h)

    def _retry(self, task: Any) -> Any:
        self.isolated += 1
        if not self.ex.retries_itself:
            try:
                return self.ex.isolated(self.fn, task)
            except WorkerDied:
                pass
        return self.on_died(task)

    def run(self, tasks: Iterable[Any],
            follow: Optional[Callable[[Any, Any], Optional[List[Any]]]] = None) -> Iterator[Tuple[Any, Any]]:
        """(task, result) in the order of tasks; follow(task, result) may return tasks to run
        right after that one (their results come right after its own)."""
        slots: Deque[_Slot] = deque()
        it = iter(tasks)
        exhausted = False
        running = 0

        def settle(i: int, s: _Slot, value: Any) -> None:
            s.value, s.ready = value, True
            more = follow(s.task, value) if follow is not None else None
            for k, t in enumerate(more or ()):
                slots.insert(i + 1 + k, _Slot(t))

        try:
            while True:
                # submit: first the queued tasks (followers, resubmissions), in order, then new ones
                if running < self.in_flight:
                    for s in slots:
                        if running >= self.in_flight:
                            break
                        if s.handle is None and not s.ready:
                            s.handle = self.ex.submit(self.fn, s.task)
                            running += 1
                while not exhausted and running < self.in_flight and len(slots) < self.buffered:
                    try:
                        task = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    s = _Slot(task)
                    s.handle = self.ex.submit(self.fn, task)
                    running += 1
                    slots.append(s)
                if not slots:
                    break
                # harvest every finished task: a follower is queued as soon as the task that
                # makes it is done, not when that task's turn to be written comes
                i = 0
                while i < len(slots):
                    s = slots[i]
                    if s.handle is not None and self.ex.done(s.handle):
                        h, s.handle = s.handle, None
                        running -= 1
                        try:
                            value = self.ex.result(h)
                        except BaseException as exc:  # noqa: B902 - a worker that died is not the task's error
                            if not self.ex.lost(exc):
                                raise
                            self.resubmitted += 1
                            if i == 0 or self.ex.retries_itself:
                                # the oldest task (or one the engine already retried on other
                                # workers): once more on its own, then on_died
                                settle(i, s, self._retry(s.task))
                            # any other is submitted again with the next round (a broken local
                            # pool fails every task in flight, not only the one that killed it)
                        else:
                            settle(i, s, value)
                        finally:
                            self.ex.forget(h)
                    i += 1
                while slots and slots[0].ready:
                    s = slots.popleft()
                    yield s.task, s.value
                if slots and not slots[0].ready:
                    pending = [s.handle for s in slots if s.handle is not None]
                    if pending and (slots[0].handle is not None or running >= self.in_flight):
                        self.ex.wait(pending)
        except BaseException:
            self.ex.kill()
            raise
        self.ex.close()
