"""Issue #14 (Trust), the container side: each test scans a real input end to end and checks what
the manifest says about it. Every test here failed before its fix (see the commit that adds it)."""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from conftest import REPO, by_kind, scan_records

FIX = REPO / "tests" / "fixtures" / "containers"
sys.path.insert(0, str(REPO / "tools"))
import make_fixtures  # noqa: E402


def one_file_dump(tmp_path, name, data=None):
    d = tmp_path / "dump"
    d.mkdir()
    (d / name).write_bytes(data if data is not None else (FIX / name).read_bytes())
    return d


def problems(recs, code=None):
    return [r for r in by_kind(recs, "problem") if code is None or r["code"] == code]


# -- item 3: a pre-POSIX (v7) tar -----------------------------------------------------------------

def test_v7_tar_is_read_end_to_end(tmp_path):
    data = (FIX / "v7.tar").read_bytes()
    assert data[257:262] != b"ustar"                      # really a v7 header
    recs, _, _ = scan_records(one_file_dump(tmp_path, "v7.tar"), tmp_path)
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert files["v7.tar"]["kind"] == "tar" and files["v7.tar"]["status"] == "ok"
    member = files["v7.tar!tar:inbox/1.eml"]
    assert member["kind"] == "message" and member["sha256"] == hashlib.sha256(make_fixtures.MESSAGE).hexdigest()
    msgs = by_kind(recs, "message")
    assert [m["locator"] for m in msgs] == ["v7.tar!tar:inbox/1.eml"]
    assert msgs[0]["subject"] == "Fixture message"
    assert problems(recs) == []


# -- item 5: every gzip member ----------------------------------------------------------------------

def test_concatenated_gzip_every_member_read_and_checked(tmp_path):
    data = (FIX / "concat.mbox.gz").read_bytes()
    plain = make_fixtures.report_mbox(3600, 1) + make_fixtures.report_mbox(3, 3601)
    assert gzip.decompress(data[:-512]) == plain        # what gunzip gives
    recs, _, _ = scan_records(one_file_dump(tmp_path, "concat.mbox.gz"), tmp_path)
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    stream = files["concat.mbox.gz!gz:concat.mbox"]
    assert stream["sha256"] == hashlib.sha256(plain).hexdigest() and stream["size"] == len(plain)
    assert stream["messages"] == 3603 and stream["container_meta"]["gzip_members"] == 2
    assert len(by_kind(recs, "message")) == 3603
    codes = sorted((p["code"], p["locator"], p.get("offset"), p.get("length")) for p in problems(recs))
    pad = len(data) - 512
    assert codes == [("gzip.multistream", "concat.mbox.gz!gz:concat.mbox", None, None),
                     ("gzip.padding", "concat.mbox.gz", pad, 512)]


def _gzip_reader_items(data, loc="x.gz"):
    from leaktriage.containers import Child, Context, reader
    items = list(reader("gzip")(data, Context(locator=loc, depth=0)))
    return [i for i in items if isinstance(i, Child)], [i for i in items if not isinstance(i, Child)]


def test_single_member_compressible_gzip_has_no_false_crc_mismatch():
    plain = make_fixtures.report_mbox(3600, 1)
    kids, probs = _gzip_reader_items(gzip.compress(plain, mtime=0))
    assert len(kids) == 1 and bytes(kids[0].data) == plain
    assert [p.code for p in kids[0].problems] == [] and probs == []


def test_gzip_member_crc_checked_each_and_trailing_bytes_located():
    a, b = make_fixtures.report_mbox(3600, 1), b"second member\n"
    ga, gb = gzip.compress(a, mtime=0), gzip.compress(b, mtime=0)
    bad = bytearray(gb)
    bad[-8:-4] = b"\x00\x00\x00\x00"                       # member 2's CRC-32 wrong
    junk = b"not gzip at all"
    kids, probs = _gzip_reader_items(ga + bytes(bad) + junk)
    assert bytes(kids[0].data) == a + b
    crc = [p for p in kids[0].problems if p.code == "gzip.crc_mismatch"]
    assert len(crc) == 1 and crc[0].detail == {"member": 2, "member_offset": len(ga)}
    assert crc[0].offset == len(ga) + len(gb) - 8 and crc[0].length == 8
    assert [(p.code, p.offset, p.length) for p in probs] == [("gzip.trailing_data", len(ga) + len(gb), len(junk))]


def test_gzip_second_member_truncated_keeps_the_first(tmp_path):
    a = make_fixtures.report_mbox(50, 1)
    ga, gb = gzip.compress(a, mtime=0), gzip.compress(make_fixtures.report_mbox(50, 51), mtime=0)
    kids, probs = _gzip_reader_items(ga + gb[:len(gb) // 2])
    assert bytes(kids[0].data)[:len(a)] == a and kids[0].meta["truncated"]
    tr = [p for p in kids[0].problems if p.code == "gzip.truncated"]
    assert len(tr) == 1 and tr[0].detail == {"member": 2, "member_offset": len(ga)}
