"""Scaling without changing the manifest (issue #18).

- a big mbox is cut into ranges of whole messages, each range a task: the manifest is
  byte-identical to the whole-file scan, with one worker or two, for any range size, also when the
  expansion budget (max_total_expanded) runs out in the middle of the file;
- the driver (scanner/schedule.py) gives results in task order whatever finishes first, runs the
  tasks a result adds right after it, and survives a worker that dies;
- the run record says how the scan ran and how the CPU seconds were shared between the main
  process and the workers.
"""
from __future__ import annotations

import io
import json
import os
import random
import signal
import time
import zipfile
from email.message import EmailMessage

import pytest

from conftest import SAMPLES
from leaktriage import api
from leaktriage.containers import Limits
from leaktriage.scanner import pipeline
from leaktriage.scanner.pipeline import Options
from leaktriage.scanner.schedule import InlineExecutor, LocalExecutor, Ordered


def _message(i: int, rng: random.Random) -> bytes:
    m = EmailMessage()
    m["From"] = "Person %d <p%d@example.org>" % (i % 7, i % 7)
    m["To"] = "team@example.org"
    m["Subject"] = "report %d" % i
    m["Date"] = "Mon, 6 Mar 2017 10:%02d:%02d +0100" % (i // 60 % 60, i % 60)
    m["Message-ID"] = "<m%d@example.org>" % i
    body = "Hello,\n\nFrom the figures of week %d we see\nthat it moves.\n" % i
    m.set_content(body)
    m.add_attachment(rng.randbytes(3000 + (i * 37) % 2000), maintype="application", subtype="octet-stream",
                     filename="data-%d.bin" % i)
    if i % 9 == 0:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("notes-%d.txt" % i, ("line %d of the notes\n" % i) * 1500)
        m.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename="notes-%d.zip" % i)
    return bytes(m).replace(b"\r\n", b"\n")


def big_mbox(n: int = 700) -> bytes:
    """A few MB: >From quoting, a Content-Length message (that does not land on a separator),
    zip attachments (container expansion), the sample dump's own mbox in the middle."""
    rng = random.Random(18)
    out = []
    for i in range(n):
        msg = _message(i, rng).replace(b"\nFrom the figures", b"\n>From the figures")
        if i == 5:
            msg = msg.replace(b"Subject: report 5\n", b"Subject: report 5\nContent-Length: 999999\n")
        out.append(b"From p%d@example.org Mon Mar  6 10:00:%02d 2017\n" % (i % 7, i % 60) + msg + b"\n")
        if i == n // 2:
            out.append((SAMPLES / "Sarah Watson" / "Inbox.mbox").read_bytes().rstrip(b"\n") + b"\n\n")
    return b"".join(out)


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("scale") / "dump"
    (d / "Alice").mkdir(parents=True)
    (d / "Alice" / "archive.mbox").write_bytes(big_mbox())
    (d / "Alice" / "small.mbox").write_bytes(big_mbox(20))
    (d / "Bob").mkdir()
    for i in range(5):
        (d / "Bob" / ("%d.eml" % i)).write_bytes(_message(1000 + i, random.Random(i)))
    return d


def _scan(dump, out, **kw):
    res = api.scan(str(dump), str(out), Options(**kw))
    return out.read_bytes(), res


@pytest.fixture(scope="module")
def whole(dump, tmp_path_factory):
    """The reference: nothing split, one worker."""
    out = tmp_path_factory.mktemp("whole") / "m.jsonl"
    data, res = _scan(dump, out, workers=1, split_bytes=0)
    assert res.run["tasks"]["split_files"] == 0
    return data


def test_the_mbox_is_big_enough_to_matter(dump):
    assert (dump / "Alice" / "archive.mbox").stat().st_size > 3_000_000


@pytest.mark.parametrize("workers,split,step", [(1, 1 << 20, 256 << 10), (2, 1 << 20, 256 << 10),
                                                (2, 500_000, 40_000), (2, 1 << 20, 10 << 20)])
def test_a_split_mbox_gives_the_same_manifest(dump, whole, tmp_path, workers, split, step):
    data, res = _scan(dump, tmp_path / "m.jsonl", workers=workers, split_bytes=split, split_range_bytes=step)
    t = res.run["tasks"]
    assert t["split_files"] == 1                           # the big mbox, not the small one
    size = (dump / "Alice" / "archive.mbox").stat().st_size
    assert t["ranges"] == (1 if step > size else pytest.approx(size / step, rel=0.35))
    assert data == whole
    recs = [json.loads(line) for line in data.splitlines()]
    assert sum(1 for r in recs if r["record"] == "message" and r["locator"].startswith("Alice/archive.mbox!")) > 700


def test_ranges_carry_the_expansion_budget(dump, tmp_path):
    """max_total_expanded runs out in the middle of the big mbox: the ranges after that point were
    computed with a budget that was not theirs and are redone; the manifest is the whole-file one."""
    lim = Limits(max_total_expanded=1_500_000)
    ref, _ = _scan(dump, tmp_path / "ref.jsonl", workers=1, split_bytes=0, limits=lim)
    hits = [r for r in map(json.loads, ref.splitlines()) if r["record"] == "problem" and "total_exceeded" in r["code"]]
    assert hits and all(h["locator"].startswith("Alice/archive.mbox!") for h in hits)
    for workers in (1, 2):
        data, res = _scan(dump, tmp_path / ("m%d.jsonl" % workers), workers=workers, split_bytes=1 << 20,
                          split_range_bytes=200_000, limits=lim)
        assert res.run["tasks"]["ranges_redone"] > 0
        assert data == ref


def test_a_range_of_a_file_that_changed_is_a_problem_not_other_records(dump, tmp_path, monkeypatch):
    """The file is read again for each range: if it is not the file that was split (size or
    mtime), the range says so (walk.changed at its offset) instead of reading other bytes."""
    real = pipeline.Unit.run_range

    def touched(self, entry, rng):
        if rng.index == 2:
            rng = pipeline.dataclasses.replace(rng, plan=pipeline.dataclasses.replace(rng.plan, mtime_ns=1))
        return real(self, entry, rng)

    monkeypatch.setattr(pipeline.Unit, "run_range", touched)
    data, res = _scan(dump, tmp_path / "m.jsonl", workers=1, split_bytes=1 << 20, split_range_bytes=300_000)
    recs = [json.loads(line) for line in data.splitlines()]
    changed = [r for r in recs if r["record"] == "problem" and r["code"] == "walk.changed"]
    assert len(changed) == 1 and changed[0]["locator"] == "Alice/archive.mbox" and changed[0]["offset"] > 0


def test_resume_after_an_interrupted_split_mbox(dump, whole, tmp_path, monkeypatch):
    """Ctrl-C in the middle of the ranges: the journal has no line for the mbox, so --resume
    scans it again from its start; the manifest is the uninterrupted one."""
    real = api.run_units
    seen = []

    def interrupted(root, entries, opts):
        for res in real(root, entries, opts):
            seen.append(res.last)
            if len(seen) > 4 and not res.last:
                raise KeyboardInterrupt
            yield res

    out = tmp_path / "m.jsonl"
    monkeypatch.setattr(api, "run_units", interrupted)
    res = api.scan(str(dump), str(out), Options(workers=2, split_bytes=1 << 20, split_range_bytes=300_000))
    assert res.interrupted
    monkeypatch.undo()
    api.scan(str(dump), str(out), Options(workers=2, split_bytes=1 << 20, split_range_bytes=300_000), resume=True)
    assert out.read_bytes() == whole


def test_run_record_says_how_the_scan_ran(tmp_path):
    for workers in (1, 2):
        out = tmp_path / ("m%d.jsonl" % workers)
        api.scan(str(SAMPLES), str(out), Options(workers=workers))
        run = json.loads((tmp_path / ("m%d.jsonl.run.json" % workers)).read_text())
        assert run["engine"] == {"engine": "local", "workers": workers}
        cpu = run["cpu_seconds"]
        assert cpu["workers"] > 0 and cpu["tasks"] > 0 and 0 < cpu["main"]
        assert cpu["main_share"] == pytest.approx(cpu["main"] / (cpu["main"] + cpu["workers"]), abs=1e-4)
        assert cpu["main_scan"] <= cpu["main"] and cpu["main_walk"] + cpu["main_loop"] <= cpu["main_scan"] + 0.01
        if workers == 2:
            # the pool's processes did the tasks: their rusage holds at least the tasks' own time
            assert cpu["workers"] >= cpu["tasks"] * 0.95
        assert run["tasks"]["count"] > 0 and run["tasks"]["split_files"] == 0
        manifest = out.read_text()
        assert "cpu_seconds" not in manifest and '"engine"' not in manifest


# -- the driver -------------------------------------------------------------------------------------

def _slow_square(x):
    time.sleep(random.Random(x).random() * 0.01)
    return x * x


def _die_on_13(x):
    if x == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def _follow_evens(task, result):
    """Even tasks below 100 add two followers (as a big mbox adds its ranges)."""
    if task < 100 and task % 2 == 0:
        return [1000 + task, 2000 + task]
    return None


def _expected(n):
    out = []
    for t in range(n):
        out.append(t)
        if t % 2 == 0:
            out += [1000 + t, 2000 + t]
    return out


@pytest.mark.parametrize("executor", [lambda: InlineExecutor(), lambda: LocalExecutor(3)])
def test_results_in_order_with_followers(executor):
    d = Ordered(executor(), _slow_square, on_died=lambda t: None)
    got = list(d.run(range(40), _follow_evens))
    assert [t for t, _ in got] == _expected(40)
    assert all(r == t * t for t, r in got)


def test_a_task_that_kills_its_worker_every_time_is_handed_to_on_died():
    d = Ordered(LocalExecutor(2), _die_on_13, on_died=lambda t: "died %d" % t)
    got = list(d.run(range(30)))
    assert [t for t, _ in got] == list(range(30))
    assert dict(got)[13] == "died 13" and all(r == t * t for t, r in got if t != 13)
    assert d.isolated >= 1


def test_buffered_results_are_bounded():
    """A slow first task does not let the finished ones behind it pile up without limit."""
    submitted = []

    class Counting(LocalExecutor):
        def submit(self, fn, task):
            submitted.append(task)
            return super().submit(fn, task)

    d = Ordered(Counting(2), _first_slow, on_died=lambda t: None, in_flight=4, buffered=10)
    it = d.run(range(100))
    t, _ = next(it)
    assert t == 0 and len(submitted) <= 10 + 4
    assert [t for t, _ in it] == list(range(1, 100))


def _first_slow(x):
    if x == 0:
        time.sleep(1.0)
    return x


# -- the time budget outside the main thread (a Dask worker runs tasks in a thread pool) ------------

def test_time_budget_stops_work_in_another_thread_and_nothing_escapes():
    import threading
    from leaktriage.scanner.pipeline import TimeBudgetExceeded, time_budget
    res = {}

    def work(name, seconds, spin):
        t = time.monotonic()
        try:
            with time_budget(seconds):
                while time.monotonic() - t < spin:
                    sum(range(1000))
            res[name] = "finished"
        except TimeBudgetExceeded:
            res[name] = time.monotonic() - t
        # an exception sent just as the block ended is withdrawn: none comes here
        for _ in range(20000):
            pass
        res.setdefault(name + "/after", "clean")

    threads = [threading.Thread(target=work, args=("slow", 0.3, 20)),
               threading.Thread(target=work, args=("fast", 5, 0.1))]
    threads += [threading.Thread(target=work, args=("edge%d" % i, 0.05, 0.05)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert isinstance(res["slow"], float) and 0.3 <= res["slow"] < 10
    assert res["fast"] == "finished"
    assert all(res[k + "/after"] == "clean" for k in ["slow", "fast"] + ["edge%d" % i for i in range(30)])


def test_one_watchdog_per_process_even_when_threads_first_ask_at_once(monkeypatch):
    """Dask runs tasks in several threads of a worker: the first time budgets of a process were
    armed by many threads at once, and each could create its own watchdog. A budget armed on one
    watchdog was then disarmed on another (by the token of another thread's budget): its exception
    was fired later at a thread that had left its block, or at a new thread that reused its id and
    died before it started (a test run hung in Thread.start, with five watchdogs in the process)."""
    import threading
    from leaktriage.scanner import pipeline
    monkeypatch.setattr(pipeline, "_WATCHDOG", [])
    before = {t.ident for t in threading.enumerate() if t.name == "leaktriage-time-budget"}
    barrier = threading.Barrier(24)
    got = []

    def first():
        barrier.wait()
        got.append(pipeline._watchdog())

    threads = [threading.Thread(target=first) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 24 and len({id(w) for w in got}) == 1
    made = {t.ident for t in threading.enumerate() if t.name == "leaktriage-time-budget"} - before
    assert made == {got[0].thread.ident}


def test_a_one_file_dump_that_is_a_big_mbox_is_split_too(dump, tmp_path):
    """`leaktriage scan Inbox.mbox`: the dump is the file itself; its ranges reopen it as the walk does."""
    box = dump / "Alice" / "archive.mbox"
    ref, _ = _scan(box, tmp_path / "whole.jsonl", workers=1, split_bytes=0)
    for workers in (1, 2):
        data, res = _scan(box, tmp_path / ("m%d.jsonl" % workers), workers=workers, split_bytes=1 << 20,
                          split_range_bytes=300_000)
        assert res.run["tasks"]["ranges"] > 3
        assert data == ref
    first = json.loads(ref.split(b"\n")[0])
    assert (first["record"], first["locator"], first["kind"], first["status"]) == ("file", "archive.mbox", "mbox", "ok")
