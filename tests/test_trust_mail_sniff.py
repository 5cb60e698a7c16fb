"""Issue #14 (trust), mail side, item 1: NUL bytes and a damaged or headerless first message do not
hide mail from the sniffer or the mbox splitter.

Each test scans a small hand-written input that shows the defect (the first five fail on the code
before the fix; the last two guard against a sniffer made too loose by it)."""
from __future__ import annotations

import hashlib
import io
import tarfile

from conftest import by_kind
from leaktriage.content import sniff
from support.trust_mail import BASIC, codes_at, msg, scan_one


def test_nul_in_a_header_of_a_loose_message_without_extension(tmp_path):
    data = msg(BASIC[0], BASIC[1], b"Subject: quarterly\x00 figures", *BASIC[3:])
    recs = scan_one(tmp_path, "0001", data)
    f = by_kind(recs, "file")[0]
    assert (f["kind"], f.get("messages")) == ("message", 1)
    m = by_kind(recs, "message")[0]
    assert m["date"] == "2017-03-01T10:00:00Z" and m["to"][0]["address"] == "bob@example.org"
    nul = [r for r in by_kind(recs, "problem") if r["code"] == "header.nul_bytes"]
    assert [(p["locator"], p["offset"]) for p in nul] == [("0001", data.index(b"\x00"))]


def test_mbox_whose_first_message_has_a_nul_in_a_header(tmp_path):
    out = []
    for i in range(40):
        subject = b"Subject: number %d" % i if i else b"Subject: num\x00ber 0"
        out.append(b"From alice@example.org Wed Mar  1 10:00:00 2017\n" +
                   msg(BASIC[0], BASIC[1], subject, BASIC[3], b"Message-ID: <%d@example.org>" % i,
                       body=b"text %d\n" % i).replace(b"\r\n", b"\n"))
    data = b"\n".join(out)
    recs = scan_one(tmp_path, "Inbox", data)
    f = by_kind(recs, "file")[0]
    assert (f["kind"], f["messages"]) == ("mbox", 40)
    assert len(by_kind(recs, "message")) == 40
    assert "header.nul_bytes" in codes_at(recs, "Inbox!mbox:0")


def test_mbox_whose_first_message_has_no_headers(tmp_path):
    """An mbox like Apache Tika's simple.mbox (whose test expects 2 messages): envelope lines,
    each followed by a blank line and a body, no header field at all."""
    data = (b"From envelope-sender-mailbox-name Mon Jun 01 10:00:00 2009\n\nTest content 1\n\n"
            b"From envelope-sender-mailbox-name Mon Jun 01 11:00:00 2010\n\nTest content 2")
    assert sniff.sniff(data, len(data))[0] == "mbox"
    recs = scan_one(tmp_path, "simple.mbox", data)
    f = by_kind(recs, "file")[0]
    assert (f["kind"], f["messages"]) == ("mbox", 2)
    msgs = by_kind(recs, "message")
    assert [m["mbox"]["marker"][-4:] for m in msgs] == ["2009", "2010"]
    for m in msgs:
        assert "mime.empty_message" in m["problem_codes"]
    # the line break before a separator belongs to the separator
    assert [p["sha256"] for p in by_kind(recs, "part")] == [
        hashlib.sha256(b"Test content 1\n").hexdigest(), hashlib.sha256(b"Test content 2").hexdigest()]


def test_mbox_judged_beyond_a_damaged_first_message(tmp_path):
    """The first message is junk (no header line at all), the next ones are mail."""
    first = b"From alice@example.org Wed Mar  1 10:00:00 2017\n\x00\x01\x02garbage\x00 line\nmore\n"
    rest = b"".join(b"\nFrom alice@example.org Wed Mar  1 10:00:00 2017\n" +
                    msg(*BASIC, body=b"text\n").replace(b"\r\n", b"\n") for _ in range(3))
    data = first + rest
    recs = scan_one(tmp_path, "mbox", data)
    f = by_kind(recs, "file")[0]
    assert (f["kind"], f["messages"]) == ("mbox", 4)


def test_mbox_with_a_loose_first_envelope_line_and_damaged_first_message():
    """A 'From ' line that is not a strict envelope line, a damaged first message: a later
    separator followed by a message decides."""
    data = (b"From alice@example.org 2017-03-01 10:00\n\x00\x01garbage\n\n" +
            b"From bob@example.org Wed Mar  1 10:00:00 2017\n" + msg(*BASIC).replace(b"\r\n", b"\n"))
    assert sniff.sniff(data, len(data))[0] == "mbox"


def test_text_starting_with_from_is_not_an_mbox():
    """A letter whose first line starts with 'From ' stays text: no envelope date, no header."""
    for text in (b"From Paris 12 March, with love.\nDear Bob,\n\nhello\n",
                 b"From the desk of the director\n\nMemo\n"):
        assert sniff.sniff(text, len(text))[0] == "other"


def test_tar_named_like_a_header_stays_a_tar():
    """NUL bytes are tolerated in mail, not in a binary container whose first bytes read like a
    header line (a tar member named 'From: ...')."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        inner = msg(*BASIC)
        ti = tarfile.TarInfo("From: x\nSubject: y\nDate: z")
        ti.size = len(inner)
        tf.addfile(ti, io.BytesIO(inner))
    data = buf.getvalue()
    assert sniff.sniff(data, len(data))[0] == "tar"
    assert sniff.container_kind(data) == "tar"
