"""Issue #14 (trust), mail side, item 21: dates as written and header values of bounded cost.

A Date with year 0001 was recorded as 2000-12-31 with no problem: the two-digit-year rule (Python's
email.utils applies it to any year below 100) must not apply to a year written with four digits,
and impossible dates are problems. A 200 MB header cost 823 MB of RAM and the values a message
record keeps must stay far below the manifest reader's MAX_LINE.

The tests fail on the code before the fix."""
from __future__ import annotations

import json

import pytest

from conftest import by_kind
from leaktriage.mail import headers
from support.trust_mail import BASIC, codes_at, msg, scan_one


@pytest.mark.parametrize("written,utc", [
    ("Mon, 1 Jan 0001 10:00:00 +0000", "0001-01-01T10:00:00Z"),       # four digits: as written
    ("Mon, 3 Jan 0099 10:00:00 +0000", "0099-01-03T10:00:00Z"),
    ("Tue, 1 Jan 01 10:00:00 +0000", "2001-01-01T10:00:00Z"),         # RFC 5322 4.3: 00-49 -> 20xx
    ("Sat, 1 Jan 55 10:00:00 +0000", "1955-01-01T10:00:00Z"),         # 50-99 -> 19xx (Python: 2055)
    ("Sat, 1 Jan 155 10:00:00 +0000", "2055-01-01T10:00:00Z"),        # three digits: + 1900
    ("Wed Mar  1 10:00:00 0017", "0017-03-01T10:00:00Z"),             # asctime order
    ("Fri, 31 Dec 1999 23:59:59 -0800", "2000-01-01T07:59:59Z"),
    ("Wed, 1 Mar 2017 10:00:00 +0100", "2017-03-01T09:00:00Z"),
    ("3 avr. 2017 10:00:00 +0200", "2017-04-03T08:00:00Z"),
])
def test_year_as_written(written, utc):
    assert headers.parse_date(written)[0] == utc


def test_year_0001_is_a_problem_not_2000(tmp_path):
    data = msg(BASIC[0], BASIC[1], BASIC[2], b"Date: Mon, 1 Jan 0001 00:00:00 +0100", BASIC[4])
    recs = scan_one(tmp_path, "y1.eml", data)
    m = by_kind(recs, "message")[0]
    # 0001-01-01 00:00 at +0100 is before year 1 in UTC: no ISO time can say it
    assert "date" not in m and m["date_raw"] == "Mon, 1 Jan 0001 00:00:00 +0100"
    assert codes_at(recs, "y1.eml") == ["header.date_invalid"]
    data = msg(BASIC[0], BASIC[1], BASIC[2], b"Date: Mon, 1 Jan 0001 10:00:00 +0000", BASIC[4])
    (tmp_path / "b").mkdir()
    recs = scan_one(tmp_path / "b", "y1.eml", data)
    m = by_kind(recs, "message")[0]
    assert m["date"] == "0001-01-01T10:00:00Z"
    assert codes_at(recs, "y1.eml") == ["header.date_implausible"]


# -- what one header block may cost --------------------------------------------------------------

_PEAK = """
import json, resource, sys
from leaktriage import Options, scan
scan(sys.argv[1], sys.argv[2], Options(workers=1))
self_peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps([self_peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))
"""


def _peak_rss_of_scan(tmp_path, name, data):
    """Peak resident memory (bytes) of a scan over a dump of one file, in a fresh process: its own
    VmHWM and that of the worker it starts (a memory-mapped file is read in a child process)."""
    import subprocess
    import sys
    d = tmp_path / "dump"
    d.mkdir()
    (d / name).write_bytes(data)
    out = subprocess.run([sys.executable, "-c", _PEAK, str(d), str(tmp_path / "m.jsonl")],
                         check=True, capture_output=True, text=True).stdout
    peak = max(json.loads(out.splitlines()[-1])) * 1024
    return peak, [json.loads(l) for l in (tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_huge_header_line_costs_little_memory(tmp_path):
    """An 80 MB Subject line (the file is memory-mapped): the scan's peak memory was 5.4 times the
    file (436 MB: copies of the block and of the value, and the unfolding for the canonical
    digest); now the file's own pages and little more (123 MB)."""
    size = 80 << 20
    data = msg(BASIC[0], BASIC[1], b"Subject: " + b"x" * size, BASIC[3])
    peak, recs = _peak_rss_of_scan(tmp_path, "long.eml", data)
    assert peak < size + (96 << 20), peak >> 20
    m = by_kind(recs, "message")[0]
    assert m["date"] == "2017-03-01T10:00:00Z" and len(m["subject"]) == headers.VALUE_CAP - 1
    too = [r for r in by_kind(recs, "problem") if r["code"] == "header.too_long"]
    assert [(t["offset"], t["detail"]["kept"], t["detail"]["not_kept"]) for t in too] == [
        (data.index(b"Subject"), headers.VALUE_CAP, size + 1 - headers.VALUE_CAP)]


def test_many_wide_fields_keep_the_record_small(tmp_path):
    """300 fields of 50 KB (15 MB): the message record carried all of them (a 200 MB header made a
    205 MB manifest line, beyond the reader's MAX_LINE: the manifest could not be read)."""
    from leaktriage.manifest.reader import MAX_LINE
    fields = [b"X-Junk-%d: " % i + b"y" * 50000 for i in range(300)]
    data = msg(BASIC[0], BASIC[1], *fields, BASIC[2], BASIC[3])
    recs = scan_one(tmp_path, "wide.eml", data)
    m = by_kind(recs, "message")[0]
    from leaktriage.model.records import dumps
    assert len(dumps(m).encode()) < 4 << 20 < MAX_LINE
    assert m["date"] == "2017-03-01T10:00:00Z" and m["subject"] == "quarterly figures"
    lim = [r for r in by_kind(recs, "problem") if r["code"] == "limit.header_block"][0]
    kept_whole = headers.BLOCK_KEEP // 50000 + 1
    assert lim["detail"]["values_cut"] == 300 - kept_whole
    # a value is what follows the colon: the space too
    assert lim["detail"]["bytes_not_kept"] == (300 - kept_whole) * (50001 - headers.SMALL_CAP)
    assert lim["offset"] == data.index(b"X-Junk-%d:" % kept_whole)


def test_a_block_of_millions_of_lines_is_not_read_past_max_fields(tmp_path):
    n = 300000
    data = msg(BASIC[0], BASIC[1], *([b"X-A: b"] * n), BASIC[3])
    recs = scan_one(tmp_path, "many.eml", data, item_timeout=30)
    m = by_kind(recs, "message")[0]
    assert len(m["headers"]) == headers.MAX_FIELDS
    lim = [r for r in by_kind(recs, "problem") if r["code"] == "limit.header_block"][0]
    first_unread = headers.MAX_FIELDS - 2                               # From and To, then X-A lines
    assert lim["detail"]["lines_not_read"] == n - first_unread + 1       # the X-A lines left and Date
    assert lim["offset"] == len(msg(BASIC[0], BASIC[1], *([b"X-A: b"] * first_unread), body=b"")) - 2
    # the Date is past the limit: not read, and not reported missing either
    assert "date" not in m and "header.date_missing" not in m["problem_codes"]


def test_long_envelope_and_mbox_from_lines_are_cut(tmp_path):
    # (a file whose first line is longer than the sniffer's 64 KiB prefix is not sniffed as mail:
    # such an envelope line reaches message analysis inside an attachment or an archive)
    from leaktriage.mail import message
    env = b"From " + b"e" * 100000
    data = env + b"\r\n" + msg(*BASIC)
    recs = message.analyse(data, "env.eml", source="attachment", parent=None)[0]
    m = recs[0]
    assert len(m["envelope"]) == headers.VALUE_CAP
    too = [r for r in by_kind(recs, "problem") if r["code"] == "header.too_long"]
    assert [(t["offset"], t["detail"]["header"], t["detail"]["not_kept"]) for t in too] == [
        (0, "From (envelope line)", len(env) - headers.VALUE_CAP)]
    from leaktriage.mail import mbox
    marker = b"From alice@example.org Wed Mar  1 10:00:00 2017 " + b"x" * 5000
    box = marker + b"\n" + msg(*BASIC).replace(b"\r\n", b"\n")
    (tmp_path / "b").mkdir()
    recs = scan_one(tmp_path / "b", "box", box)
    m = by_kind(recs, "message")[0]
    assert len(m["mbox"]["marker"]) == mbox.MARKER_CAP
    cut = [r for r in by_kind(recs, "problem") if r["code"] == "limit.value_cut"]
    assert [(c["locator"], c["detail"]["not_kept"]) for c in cut] == [("box", len(marker) + 1 - mbox.MARKER_CAP)]


def test_attachment_names_listed_in_the_message_record_are_bounded(tmp_path):
    from leaktriage.mail import message
    n = message.NAMES_MAX + 10
    body = b"".join(b"--zz\r\nContent-Type: application/octet-stream; name=\"f%d.bin\"\r\n\r\nx\r\n" % i
                    for i in range(n)) + b"--zz--\r\n"
    data = msg(*BASIC, b"Content-Type: multipart/mixed; boundary=zz", body=body)
    recs = scan_one(tmp_path, "att.eml", data)
    m = by_kind(recs, "message")[0]
    assert m["attachments"] == n and len(m["attachment_names"]) == message.NAMES_MAX
    cut = [r for r in by_kind(recs, "problem") if r["code"] == "limit.value_cut"]
    assert [(c["detail"]["field"], c["detail"]["not_listed"]) for c in cut] == [("attachment_names", 10)]


def test_canonical_digest_covers_a_cut_value_whole():
    """The canonical digest reads a value longer than VALUE_CAP from the message bytes, a chunk
    at a time: folding and runs of white space do not change it, a byte past the cut does."""
    from leaktriage.mail import message
    words = b" ".join(b"w%d" % i for i in range(60000))        # ~470 KB
    folded = words.replace(b" w5", b"\r\n\t  w5").replace(b" w7", b"   w7")

    def canon(value):
        data = msg(BASIC[0], BASIC[1], b"Subject: " + value, BASIC[3])
        return message.analyse(data, "x", source="file", parent=None)[0][0]["canonical_sha256"]
    assert canon(words) == canon(folded) == canon(b"  " + folded + b"  ")
    assert canon(words) != canon(words.replace(b"w59999", b"w59998"))


def test_collapse_in_chunks_equals_collapse_whole():
    import hashlib
    import random
    from leaktriage.mail import message
    rnd = random.Random(7)
    for _ in range(300):
        v = bytes(rnd.choice(b"ab \t\r\n\x0b\x0c") for _ in range(rnd.randrange(0, 60)))
        want = hashlib.sha256(message.collapse_white_space(headers.unfold(v))).hexdigest()
        for chunk in (1, 2, 3, 7, 64):
            h = hashlib.sha256()
            message._collapse_into(h, v, 0, len(v), chunk)
            assert h.hexdigest() == want, (v, chunk)
