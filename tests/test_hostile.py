"""Hostile inputs: each one gives a clear problem record, never a crash, a hang or lost bytes."""
import hashlib
import os
import stat

import pytest

from conftest import by_kind, scan_records
from corpus_util import accounting_errors
from leaktriage.scanner import pipeline


def codes(recs):
    return sorted({r["code"] for r in by_kind(recs, "problem")})


def no_internal_errors(recs):
    assert not [r for r in by_kind(recs, "problem") if r["code"] == "internal.error"]


def hdr(extra=b""):
    return b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hostile\r\nDate: Wed, 1 Mar 2017 10:00:00 +0000\r\n" + extra


def test_ten_thousand_nested_multiparts(tmp_path):
    n = 10000
    body = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(n))
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b%d--\r\n" % (n, n)
    body += b"".join(b"--b%d--\r\n" % i for i in range(n - 1, -1, -1))
    msg = hdr(b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n") + body
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "deep.eml").write_bytes(msg)
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    no_internal_errors(recs)
    assert "mime.depth_limit" in codes(recs)
    parts = by_kind(recs, "part")
    assert max(p["depth"] for p in parts) == 64
    assert not accounting_errors(msg, parts)


def test_hundred_megabyte_header_line(tmp_path):
    (tmp_path / "d").mkdir()
    msg = b"From: a@example.org\r\nSubject: " + b"x" * (100 * 1024 * 1024) + b"\r\nDate: Wed, 1 Mar 2017 10:00:00 +0000\r\n\r\nbody\r\n"
    (tmp_path / "d" / "long.eml").write_bytes(msg)
    recs, out, _ = scan_records(tmp_path / "d", tmp_path)
    no_internal_errors(recs)
    assert "header.too_long" in codes(recs)
    m = by_kind(recs, "message")[0]
    assert m["sha256"] == hashlib.sha256(msg).hexdigest()
    assert 64 * 1024 - 1 <= len(m["subject"]) <= 64 * 1024  # cut, less the space after the colon
    assert out.stat().st_size < 1024 * 1024  # the manifest does not carry the 100 MB


def test_boundary_prefix_of_another(tmp_path):
    (tmp_path / "d").mkdir()
    msg = hdr(b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
              b"--abc\r\nContent-Type: multipart/alternative; boundary=abcdef\r\n\r\n"
              b"--abcdef\r\nContent-Type: text/plain\r\n\r\none\r\n"
              b"--abcdef\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n"
              b"--abcdef--\r\n"
              b"--abc\r\nContent-Type: text/plain\r\n\r\nthree\r\n--abc--\r\n")
    (tmp_path / "d" / "p.eml").write_bytes(msg)
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    parts = {p["path"]: p for p in by_kind(recs, "part")}
    assert [parts[k]["content_type"] for k in sorted(parts)] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/plain"]
    assert parts["1.1.1"]["sha256"] == hashlib.sha256(b"one").hexdigest()
    assert parts["1.2"]["sha256"] == hashlib.sha256(b"three").hexdigest()
    assert codes(recs) == []
    assert not accounting_errors(msg, list(parts.values()))


def test_huge_content_length(tmp_path):
    (tmp_path / "d").mkdir()
    part = hdr(b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 99999999999\r\n\r\nsmall\r\n--q--\r\n")
    (tmp_path / "d" / "cl.eml").write_bytes(part)
    mb = (b"From a@example.org Wed Mar  1 10:00:00 2017\nContent-Length: 99999999999\n" + hdr().replace(b"\r\n", b"\n")
          + b"\nfirst\n\nFrom b@example.org Wed Mar  1 11:00:00 2017\n" + hdr().replace(b"\r\n", b"\n") + b"\nsecond\n")
    (tmp_path / "d" / "cl.mbox").write_bytes(mb)
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    no_internal_errors(recs)
    p = [x for x in by_kind(recs, "part") if x["path"] == "1.1"][0]
    assert p["sha256"] == hashlib.sha256(b"small").hexdigest()
    assert len([m for m in by_kind(recs, "message") if m["source"] == "mbox"]) == 2
    assert "mbox.content_length_mismatch" in codes(recs)


def test_deeply_nested_rfc822(tmp_path):
    (tmp_path / "d").mkdir()
    msg = hdr(b"\r\ncore\r\n")
    for _ in range(60):
        msg = hdr(b"Content-Type: message/rfc822\r\n\r\n") + msg
    (tmp_path / "d" / "nest.eml").write_bytes(msg)
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    no_internal_errors(recs)
    assert "limit.depth" in codes(recs)
    assert len(by_kind(recs, "message")) == 25  # depth 0..24


def test_names_nul_bytes_links_fifos_devices_empty_and_junk(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    bad = os.path.join(os.fsencode(d), b"caf\xe9-\xff.eml")
    with open(bad, "wb") as f:
        f.write(hdr(b"\r\nwith a NUL \x00 byte in the body\r\n"))
    os.symlink("loop", d / "loop")              # a symlink to itself
    os.symlink(".", d / "dirloop")              # a symlink loop through a directory
    os.mkfifo(d / "fifo")                       # opening it would hang the scan
    (d / "empty.eml").write_bytes(b"")
    (d / "junk.eml").write_bytes(os.urandom(4096))
    try:
        os.mknod(d / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        dev = True
    except (PermissionError, OSError):
        dev = False
    recs, _, _ = scan_records(d, tmp_path)
    no_internal_errors(recs)
    files = {f["locator"]: f for f in by_kind(recs, "file")}
    assert files["caf%E9-%FF.eml"]["kind"] == "message" and files["caf%E9-%FF.eml"]["path"] == "caf\ufffd-\ufffd.eml"
    assert files["loop"]["entry"] == "symlink" and files["dirloop"]["entry"] == "symlink"
    assert files["fifo"]["entry"] == "fifo" and "sha256" not in files["fifo"]
    if dev:
        assert files["null"]["entry"] == "char-device" and "sha256" not in files["null"]
    assert files["empty.eml"]["kind"] == "empty"
    assert files["junk.eml"]["kind"] == "other"
    c = codes(recs)
    for code in ("walk.name_not_utf8", "walk.symlink", "walk.special_file", "walk.empty_file", "sniff.extension_mismatch"):
        assert code in c
    m = by_kind(recs, "message")[0]
    assert m["locator"] == "caf%E9-%FF.eml"


def test_unreadable_and_vanishing_files(tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(hdr(b"\r\nfine\r\n"))
    (d / "locked.eml").write_bytes(hdr(b"\r\nlocked\r\n"))
    (d / "gone.eml").write_bytes(hdr(b"\r\ngone\r\n"))
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        p = os.fsencode(path)
        if p.endswith(b"locked.eml"):
            raise PermissionError(13, "Permission denied")
        if p.endswith(b"gone.eml"):
            raise FileNotFoundError(2, "No such file or directory")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(pipeline.os, "open", fake_open)
    recs, _, _ = scan_records(d, tmp_path)
    probs = {(p["locator"], p["code"]) for p in by_kind(recs, "problem")}
    assert ("locked.eml", "walk.unreadable") in probs
    assert ("gone.eml", "walk.vanished") in probs
    files = {f["locator"]: f for f in by_kind(recs, "file")}
    assert files["locked.eml"]["status"] == "failed" and files["a.eml"]["status"] == "ok"


def test_file_changing_during_read(tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(hdr(b"\r\nbefore\r\n"))
    real_fstat = os.fstat
    calls = {"n": 0}

    def fake_fstat(fd):
        st = real_fstat(fd)
        calls["n"] += 1
        if calls["n"] == 2:  # the second look, after reading: the file grew
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                                   st.st_size + 10, st.st_atime, st.st_mtime, st.st_ctime))
        return st

    monkeypatch.setattr(pipeline.os, "fstat", fake_fstat)
    recs, _, _ = scan_records(d, tmp_path)
    assert "walk.changed" in codes(recs)


def test_time_budget_skips_a_slow_message(tmp_path, monkeypatch):
    import time as _time
    from leaktriage.mail import message
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.eml").write_bytes(hdr(b"\r\nfine\r\n"))
    (d / "slow.eml").write_bytes(hdr(b"\r\npathological\r\n"))
    real = message.analyse

    def slow(data, locator, **kw):
        if locator == "slow.eml":
            _time.sleep(5)
        return real(data, locator, **kw)

    monkeypatch.setattr(message, "analyse", slow)
    t0 = _time.monotonic()
    recs, _, _ = scan_records(d, tmp_path, item_timeout=0.5)
    assert _time.monotonic() - t0 < 4
    probs = [p for p in by_kind(recs, "problem") if p["code"] == "limit.time"]
    assert [p["locator"] for p in probs] == ["slow.eml"] and probs[0]["length"] == (d / "slow.eml").stat().st_size
    assert [m["locator"] for m in by_kind(recs, "message")] == ["a.eml"]
    assert {f["locator"] for f in by_kind(recs, "file")} == {"a.eml", "slow.eml"}
