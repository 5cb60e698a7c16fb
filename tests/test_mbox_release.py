"""A memory-mapped mbox does not stay resident: the splitter and the scan loop hand the pages behind
them back to the kernel as they go, in ranges that move forward (never from the start of the file
again, which would make every release walk the page tables of everything before it)."""
import mmap

from conftest import by_kind, scan_records
from leaktriage.content import pages
from leaktriage.mail import mbox
from leaktriage.scanner import pipeline


def small_messages_mbox(n: int) -> bytes:
    out = []
    for i in range(n):
        out.append(b"From a@b.example Mon Mar  6 10:00:00 2017\nFrom: a@b.example\nSubject: m%d\n"
                   b"Message-ID: <m%d@b.example>\n\nshort body %d\n\n" % (i, i, i))
    return b"".join(out)


def recording(monkeypatch):
    calls = []
    real = pages.release

    def spy(data, start, end):
        if isinstance(data, mmap.mmap):
            calls.append((start, end))
        return real(data, start, end)
    monkeypatch.setattr(pages, "release", spy)
    return calls


def test_split_releases_behind_a_walk_over_small_messages(tmp_path, monkeypatch):
    data = small_messages_mbox(40000)             # ~4.6 MB of messages far smaller than a page run
    p = tmp_path / "small.mbox"
    p.write_bytes(data)
    calls = recording(monkeypatch)
    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        sp = mbox.split(mm, 0, len(mm))
    assert len(sp.entries) == 40000
    covered_to = max(end for start, end in calls)
    assert covered_to >= len(data) - (pages.ReleaseBehind.STEP + 2 * 65536)
    assert all(b >= a for a, b in calls)


def test_scan_loop_releases_forward_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "IN_MEMORY_MAX", 1 << 16)   # map the file, as for a big mbox
    monkeypatch.setattr(pipeline, "_mapped", lambda batch: False)   # in this process, where calls are recorded
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "inbox.mbox").write_bytes(small_messages_mbox(3000))
    calls = recording(monkeypatch)
    recs, _, _ = scan_records(dump, tmp_path)
    assert len(by_kind(recs, "message")) == 3000
    size = (dump / "inbox.mbox").stat().st_size
    # every byte is released, and the ranges add up to a few times the file, not to 3,000 times
    # half of it (releasing from the start of the file after each message)
    assert max(b for a, b in calls) >= size - 200
    assert sum(b - a for a, b in calls) < 4 * size + 3000 * 65536
