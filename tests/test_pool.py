"""The one worker pool (leaktriage.pool): ordered results, and a worker that dies is detected,
its items retried, and the one that kills it again handed back instead of hanging the run."""
from __future__ import annotations

import json
import os
import signal

import pytest

from leaktriage.pool import WorkerPool, default_workers, ordered


def _square_or_die(x):
    if x == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def _flaky(path_and_x):
    """Dies the first time it sees x == 3 (a marker file remembers), succeeds the second time."""
    path, x = path_and_x
    if x == 3 and not os.path.exists(path):
        open(path, "w").close()
        os.kill(os.getpid(), signal.SIGBUS)
    return x


def test_default_workers():
    assert 1 <= default_workers() <= os.cpu_count()
    assert default_workers(limit=1) == 1


def test_results_in_order():
    with WorkerPool(2) as pool:
        assert list(pool.imap(lambda_free_double, range(50))) == [2 * i for i in range(50)]


def lambda_free_double(x):
    return 2 * x


def test_item_that_kills_its_worker_is_handed_back():
    died = []
    with WorkerPool(2) as pool:
        out = list(pool.imap(_square_or_die, range(12), on_died=lambda item, code: died.append(item) or -1))
    assert out == [i * i if i != 7 else -1 for i in range(12)]
    assert died == [7]
    assert pool.restarts >= 1


def test_a_worker_that_died_once_is_retried(tmp_path):
    marker = str(tmp_path / "died-once")
    with WorkerPool(2) as pool:
        out = list(pool.imap(_flaky, [(marker, i) for i in range(8)], on_died=lambda item, code: "lost"))
    assert out == list(range(8))     # nothing lost: the retry succeeded
    assert os.path.exists(marker)


def test_in_process_with_isolation():
    # one worker: work runs here, except what isolate() sends to a child (which may die)
    out = list(ordered(_square_or_die, [1, 7, 2], 1, isolate=lambda x: x == 7, on_died=lambda item, code: None))
    assert out == [1, None, 4]


def test_scan_survives_a_worker_killed_by_sigbus(tmp_path, monkeypatch):
    """A file truncated while memory-mapped kills the process reading it (SIGBUS). The scan
    finishes, the file is recorded as failed with internal.worker_died, the others are read."""
    from leaktriage import Options, scan
    from leaktriage.scanner import pipeline
    dump = tmp_path / "dump"
    (dump / "box").mkdir(parents=True)
    for i in range(6):
        (dump / "box" / ("%d.eml" % i)).write_bytes(b"From: a@example.org\r\nSubject: %d\r\n\r\nhi\r\n" % i)
    real = pipeline.Unit._disk_file

    def crash_on_3(self, entry, loc, base):
        if entry.rel.endswith(b"3.eml"):
            os.kill(os.getpid(), signal.SIGBUS)
        return real(self, entry, loc, base)

    monkeypatch.setattr(pipeline.Unit, "_disk_file", crash_on_3)
    for workers in (2, 1):
        if workers == 1:
            # with one worker only memory-mapped files run in a child process: make every file "mapped"
            monkeypatch.setattr(pipeline, "_mapped", lambda batch: True)
        out = tmp_path / ("m%d.jsonl" % workers)
        scan(str(dump), str(out), Options(workers=workers))
        recs = [json.loads(line) for line in out.read_text().splitlines()]
        files = {r["locator"]: r for r in recs if r["record"] == "file"}
        assert files["box/3.eml"]["status"] == "failed"
        assert any(r["record"] == "problem" and r["code"] == "internal.worker_died" and r["locator"] == "box/3.eml"
                   for r in recs)
        msgs = sorted(r["locator"] for r in recs if r["record"] == "message")
        assert msgs == ["box/%d.eml" % i for i in (0, 1, 2, 4, 5)]
        assert recs[-1]["record"] == "summary"


def _run_script(tmp_path, source, arg, timeout):
    """(exit code, stdout, stderr) of a Python script; an AssertionError if it has not ended in timeout s."""
    import subprocess
    import sys
    script = tmp_path / "script.py"
    script.write_text(source)
    p = subprocess.Popen([sys.executable, str(script), arg], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("still running after %d s (hung): %r %r" % (timeout, out, err[-2000:]))
    return p.returncode, out, err


_HALF_RESULT = r'''
import os, struct, sys, time
from leaktriage.pool import WorkerPool

def half_a_result(_):
    """What a worker killed while it sends a big result leaves in the pipe: a length, then less."""
    f = sys._getframe()
    while "result_queue" not in f.f_locals:       # concurrent.futures' _process_worker
        f = f.f_back
    os.write(f.f_locals["result_queue"]._writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
    time.sleep(600)

if __name__ == "__main__":
    pool = WorkerPool(1)
    pool.submit(half_a_result, 0)
    time.sleep(float(sys.argv[1]))
    pool.kill()
    print("killed", flush=True)
'''


def test_a_worker_killed_while_it_sends_its_result_does_not_hang_the_exit(tmp_path):
    """Ctrl-C on a scan under load never ended (seen in a stress run): the pool killed its workers,
    one of them in the middle of sending a result, and the executor's manager thread waited for the
    rest of that message forever; Python joins that thread at exit. The pool now closes its own
    end of the result pipe when it kills the workers, so the thread reads an end of file and stops."""
    code, out, err = _run_script(tmp_path, _HALF_RESULT, "2", timeout=60)
    assert code == 0 and out == "killed\n", err[-2000:]


_HALF_RESULT_THEN_DIE = r'''
import os, struct, sys
from leaktriage.pool import WorkerPool
from leaktriage.scanner.schedule import LocalExecutor, Ordered

def half_a_result_then_die(x):
    """A worker that dies (the OOM killer, SIGBUS) while it sends a big result."""
    if x == 1:
        f = sys._getframe()
        while "result_queue" not in f.f_locals:       # concurrent.futures' _process_worker
            f = f.f_back
        os.write(f.f_locals["result_queue"]._writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
        os._exit(1)
    return x

if sys.argv[1] == "imap":
    with WorkerPool(2) as pool:
        print(list(pool.imap(half_a_result_then_die, range(4), on_died=lambda item, code: "died %d" % item)))
else:       # the scan's driver
    d = Ordered(LocalExecutor(2), half_a_result_then_die, on_died=lambda t: "died %d" % t)
    print([r for _, r in d.run(range(4))])
'''


@pytest.mark.parametrize("how", ["imap", "scan driver"])
def test_a_worker_that_dies_while_it_sends_its_result_is_detected(tmp_path, how):
    """A worker dying halfway through sending a result left the executor's manager thread waiting
    for the rest of the message, which the other workers' ends of the pipe kept possible: the pool
    never learned that the worker had died, and the run hung. The pool now watches its workers
    while it waits: a worker dead for a few seconds in a pool not yet broken stops the pool, and
    its items are retried (the one that died again alone, then handed to on_died)."""
    code, out, err = _run_script(tmp_path, _HALF_RESULT_THEN_DIE, how.split()[0], timeout=120)
    assert code == 0 and out == "[0, 'died 1', 2, 3]\n", (out, err[-2000:])
