"""Helpers of the issue #14 tests (trust, mail side): small hand-written messages, scanned."""
from __future__ import annotations

from conftest import by_kind, scan_records

BASIC = (b"From: Alice <alice@example.org>", b"To: Bob <bob@example.org>",
         b"Subject: quarterly figures", b"Date: Wed, 1 Mar 2017 10:00:00 +0000",
         b"Message-ID: <1@example.org>")


def msg(*lines: bytes, body: bytes = b"body\r\n") -> bytes:
    """A message: header lines (CRLF), a blank line, the body."""
    return b"".join(l + b"\r\n" for l in lines) + b"\r\n" + body


def codes_at(recs, loc):
    """The problem codes recorded at exactly `loc`, sorted."""
    return sorted(r["code"] for r in by_kind(recs, "problem") if r["locator"] == loc)


def scan_one(tmp_path, name, data, **kw):
    """Records of a scan of a dump holding one file `name`; an internal error fails the test."""
    d = tmp_path / "d"
    d.mkdir()
    (d / name).write_bytes(data)
    recs, _, _ = scan_records(d, tmp_path, **kw)
    assert not [r for r in by_kind(recs, "problem") if r["code"] == "internal.error"], recs
    return recs
