"""Hard limits that only a separate process can enforce: wall-clock time and memory.

PDFium (C) cannot be interrupted from Python and a hostile page can make it run for minutes or
allocate gigabytes; the in-process time budget (TextLimits.time_budget) is only checked between
pages and chunks. IsolatedExtractor runs extract_text in a child process (started with "spawn":
safe in a threaded parent) whose address space is capped at TextLimits.max_memory, waits at most
TextLimits.wall_timeout seconds per document, and kills and replaces the child when that passes
(text.timeout) or when it dies (text.crashed). One extractor handles one document at a time; a
parallel caller (the index with several workers) makes one per worker.

    with IsolatedExtractor(TextLimits(wall_timeout=60)) as ex:
        for data, ctype, name in attachments:
            result = ex.extract(data, content_type=ctype, filename=name)
"""
from __future__ import annotations

import multiprocessing
from typing import Optional

from .detect import detect_format
from .extract import DEFAULT_LIMITS, extract_text
from .model import TextLimits, TextResult, problem


def _worker(conn, limits: TextLimits, inherited=None) -> None:  # pragma: no cover - runs in the child process
    if inherited is not None:
        # forked: this process holds a copy of the parent's end of the pipe too; closed, so that the
        # parent's death reaches recv() as EOF (otherwise the child outlives it, waiting forever)
        inherited.close()
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory, limits.max_memory))
    except (ImportError, ValueError, OSError):
        pass
    conn.send("ready")       # started and imported: the wall-clock limit counts from here on
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:      # the document itself does not fit under max_memory
            conn.send("memory")
            return
        if msg is None:
            return
        data, hints = msg
        conn.send(extract_text(data, limits=limits, **hints))


STARTUP_TIMEOUT = 120.0   # seconds a new child may take to start (a loaded machine): not a document's time


class IsolatedExtractor:
    def __init__(self, limits: TextLimits = DEFAULT_LIMITS, *, start_method: str = "spawn"):
        self.limits = limits
        self._mp = multiprocessing.get_context(start_method)
        self._proc = None
        self._conn = None

    def __enter__(self) -> "IsolatedExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._mp.Pipe()
        forked = self._mp.get_start_method() == "fork"
        proc = self._mp.Process(target=_worker, args=(child, self.limits) + ((parent,) if forked else ()),
                                daemon=True, name="leaktriage-text")
        try:
            proc.start()
        finally:
            child.close()
        self._proc, self._conn = proc, parent
        # wait for the child to be ready, so that its start-up (an interpreter and pypdfium2, slow on a
        # busy machine) never counts against the first document's wall-clock limit
        if not (parent.poll(STARTUP_TIMEOUT) and parent.recv() == "ready"):
            raise OSError("the text extraction process did not start within %ss" % STARTUP_TIMEOUT)

    def _kill(self) -> Optional[int]:
        code = None
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
            code = self._proc.exitcode
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        return code

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(2)
            except (OSError, ValueError):
                pass
        self._kill()

    def extract(self, data: bytes, *, content_type: Optional[str] = None, magic: Optional[str] = None,
                filename: Optional[str] = None) -> TextResult:
        """Like extract_text, in the child process, within wall_timeout; never raises."""
        hints = {"content_type": content_type, "magic": magic, "filename": filename}
        try:
            if self._proc is None or not self._proc.is_alive():
                self._kill()
                self._start()
            try:
                self._conn.send((bytes(data), hints))
            except OSError:          # the child stopped reading: it may have said why before exiting
                if self._conn.poll(2) and self._conn.recv() == "memory":
                    self._kill()
                    return self._memory_failure(data, hints)
                raise
            if self._conn.poll(self.limits.wall_timeout):
                result = self._conn.recv()
                if isinstance(result, TextResult):
                    return result
                self._kill()
                return self._memory_failure(data, hints)
            self._kill()
            return self._failure(data, hints, "text.timeout", "no result after %ss: the extraction process was "
                                 "killed (nothing kept)" % self.limits.wall_timeout)
        except (EOFError, OSError, BrokenPipeError) as e:
            code = self._kill()
            how = "killed by signal %d" % -code if code is not None and code < 0 else "exit code %s" % code
            return self._failure(data, hints, "text.crashed", "the extraction process died (%s; %s)"
                                 % (how, type(e).__name__))

    def _memory_failure(self, data, hints) -> TextResult:
        return self._failure(data, hints, "text.memory_limit", "the document does not fit in the extraction "
                             "process's memory limit of %d bytes" % self.limits.max_memory)

    def _failure(self, data, hints, code: str, message: str) -> TextResult:
        try:
            det = detect_format(bytes(data[:1 << 20]), **hints)
            fmt, by = det.format.name, det.detected_by
        except Exception:  # pragma: no cover - detection never raises on bytes
            fmt, by = "unknown", None
        return TextResult(None, fmt, None, "failed", (problem(code, message),), detected_by=by)
