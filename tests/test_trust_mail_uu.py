"""Issue #14 (trust), mail side, item 12: a body repeating 'begin 644 a.txt' lines cost time
quadratic in their number (200,000 lines, 3.4 MB, hit the per-item time limit and the message
record was dropped). The search is linear, and the number of uuencoded files decoded from one
part is bounded (uu.too_many).

The first three tests fail on the code before the fix (limit.time, no cap, a block dropped)."""
from __future__ import annotations

import binascii

import pytest

from conftest import by_kind
from leaktriage.mail import transfer
from support.trust_mail import BASIC, codes_at, msg, scan_one


def _uu_block(name: bytes, payload: bytes, end=True) -> bytes:
    lines = b"".join(binascii.b2a_uu(payload[i:i + 45]) for i in range(0, len(payload), 45))
    return b"begin 644 " + name + b"\n" + lines + b"`\n" + (b"end\n" if end else b"")


@pytest.mark.parametrize("body", [
    b"begin 644 a.txt\n" * 200000,                                  # the 3.4 MB reproduction
    _uu_block(b"a.txt", b"x" * 90, end=False) * 40000,              # valid blocks, none ends
])
def test_many_begin_lines_cost_linear_time(tmp_path, body):
    data = msg(*BASIC, body=body)
    recs = scan_one(tmp_path, "uu.eml", data, item_timeout=20)
    assert len(by_kind(recs, "message")) == 1
    assert "limit.time" not in codes_at(recs, "uu.eml")


def test_uuencoded_files_per_part_are_capped(tmp_path):
    n = transfer.MAX_UU_FILES + 5
    body = b"".join(_uu_block(b"f%d.txt" % i, b"file %d\n" % i) for i in range(n))
    data = msg(*BASIC, body=body)
    recs = scan_one(tmp_path, "many.eml", data)
    uu = [p for p in by_kind(recs, "part") if p["locator"].startswith("many.eml#1!uu:")]
    assert len(uu) == transfer.MAX_UU_FILES
    assert uu[-1]["filename"] == "f%d.txt" % (transfer.MAX_UU_FILES - 1)
    lim = [r for r in by_kind(recs, "problem") if r["code"] == "uu.too_many"]
    assert [(r["locator"], r["detail"]["max"], r["offset"]) for r in lim] == [
        ("many.eml#1", transfer.MAX_UU_FILES, body.index(b"begin 644 f%d.txt" % transfer.MAX_UU_FILES))]


def test_uuencoded_block_that_lost_its_end_line():
    """A block with its 'end' line decodes as before; a block without one, followed by text, is
    decoded up to its last data line (the search it replaces ran such a block to the end of the
    text, judged the text line as data and dropped the whole block)."""
    text = (b"Hello\n\n" + _uu_block(b"one.bin", bytes(range(200))) + b"text between\n" +
            _uu_block(b"two.txt", b"second file\n", end=False) + b"\nbye\n")
    found = list(transfer.find_uuencoded(text))
    assert [(f[3], f[4]) for f in found] == [(b"one.bin", bytes(range(200))), (b"two.txt", b"second file\n")]
    assert found[0][0] == text.index(b"begin 644 one.bin")
    assert [c for c, _ in found[1][5]] == ["uu.no_end"]
    two = text.index(b"begin 644 two.txt")
    assert found[1][:2] == (two, text.index(b"\nbye") + 1 - two)
