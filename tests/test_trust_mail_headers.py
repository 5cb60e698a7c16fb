"""Issue #14 (trust), mail side, item 2: one junk line in a header block does not lose the fields
below it (Date, To, Cc were lost and the message reported as having no Date); a body that starts
without a blank line still ends the header block.

Each test scans or parses a small hand-written message; the first four fail on the code before
the fix, the parametrized body test guards the other side of the rule."""
from __future__ import annotations

import pytest

from conftest import by_kind
from leaktriage.mail import headers, message
from support.trust_mail import BASIC, codes_at, msg, scan_one

JUNK = "Message tronqué lors de l'archivage".encode("latin-1")


def test_junk_line_before_date_keeps_the_headers_after_it(tmp_path):
    data = msg(BASIC[0], b"Subject: quarterly figures", JUNK, BASIC[3], BASIC[1],
               b"Cc: Carol <carol@example.org>", BASIC[4])
    recs = scan_one(tmp_path, "1.eml", data)
    m = by_kind(recs, "message")[0]
    assert m["date"] == "2017-03-01T10:00:00Z"
    assert [a["address"] for a in m["to"]] == ["bob@example.org"]
    assert [a["address"] for a in m["cc"]] == ["carol@example.org"]
    assert m["message_id"] == "<1@example.org>"
    assert m["header_length"] == data.index(b"\r\n\r\n") + 4
    junk = [r for r in by_kind(recs, "problem") if r["code"] == "header.invalid_line"]
    assert [(j["locator"], j["offset"], j["length"], j["detail"]["line"]) for j in junk] == [
        ("1.eml", data.index(JUNK), len(JUNK), "Message tronqué lors de l'archivage")]
    assert "header.date_missing" not in m["problem_codes"]
    assert "header.no_separator" not in m["problem_codes"]
    assert by_kind(recs, "part")[0]["body_offset"] == data.index(b"body")


def test_continuation_that_lost_its_indent(tmp_path):
    """The generator's other damage: a folded To whose continuation lost its white space."""
    data = msg(BASIC[0], b"To: Bob <bob@example.org>,", b"Dan <dan@example.org>", BASIC[2], BASIC[3],
               b"Content-Type: multipart/mixed; boundary=zz", body=b"--zz\r\nContent-Type: text/plain\r\n\r\n"
               b"hi\r\n--zz--\r\n")
    recs = scan_one(tmp_path, "2.eml", data)
    m = by_kind(recs, "message")[0]
    assert m["date"] == "2017-03-01T10:00:00Z"
    assert [p["content_type"] for p in by_kind(recs, "part")] == ["multipart/mixed", "text/plain"]
    assert "header.invalid_line" in m["problem_codes"]


def test_junk_lines_in_a_mime_part_header(tmp_path):
    data = msg(*BASIC, b"Content-Type: multipart/mixed; boundary=zz",
               body=b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\nnot a field\r\n"
                    b"Content-Disposition: attachment; filename=a.txt\r\n\r\nhi\r\n--zz--\r\n")
    recs = scan_one(tmp_path, "3.eml", data)
    p = [p for p in by_kind(recs, "part") if p["path"] == "1.1"][0]
    assert p["filename"] == "a.txt" and p["attachment"]
    assert codes_at(recs, "3.eml#1.1") == ["header.invalid_line"]


@pytest.mark.parametrize("body", [
    # a body that starts without a blank line still ends the header block
    b"Hello Bob,\r\nthe figures are attached.\r\n\r\nAlice\r\n",
    # ... even when one of its first lines looks like a field
    b"Hello Bob,\r\nNote: the figures are late.\r\nsee you\r\n\r\nAlice\r\n",
    # ... or when all the lines after it do, but none with a mail header name
    b"Hello Bob,\r\nName: Alice\r\nPhone: 555 0100\r\n\r\nAlice\r\n",
    # ... or when no blank line follows at all
    b"Hello Bob,\r\nNote: late\r\n",
])
def test_a_body_without_blank_line_still_ends_the_header_block(body):
    data = b"".join(l + b"\r\n" for l in BASIC) + body
    recs, _found, _facts = message.analyse(data, "x.eml", source="file", parent=None)
    m = recs[0]
    assert m["header_length"] == data.index(b"Hello")
    assert "header.no_separator" in m["problem_codes"]
    assert "header.invalid_line" not in m["problem_codes"]


def test_parse_fields_reads_past_a_junk_line_only_when_fields_follow():
    block = b"From: a@b\r\njunk\r\nTo: c@d\r\nmore junk\r\nDate: x\r\n\r\nbody"
    hdr_end, body = headers.find_header_end(block, 0, len(block))
    fields, stop, probs, _ = headers.parse_fields(block, 0, hdr_end, closed=body > hdr_end)
    assert [f.name for f in fields] == ["From", "To", "Date"] and stop == hdr_end
    assert probs == [("header.invalid_line", block.index(b"junk"), 4, {"line": "junk"}),
                     ("header.invalid_line", block.index(b"more junk"), 9, {"line": "more junk"})]
    # without the blank line the junk line starts the body, as in Python's email package
    fields, stop, probs, _ = headers.parse_fields(block, 0, hdr_end, closed=False)
    assert [f.name for f in fields] == ["From"] and stop == block.index(b"junk")
    assert [p[0] for p in probs] == ["header.no_separator"]


def test_a_byte_order_mark_before_the_first_field(tmp_path):
    """A message saved by an editor with a UTF-8 byte-order mark (MimeKit's feedback-report.txt):
    its first field, From, was lost with the mark's line."""
    data = b"\xef\xbb\xbf" + msg(*BASIC)
    recs = scan_one(tmp_path, "bom.eml", data)
    m = by_kind(recs, "message")[0]
    assert m["from"] == [{"name": "Alice", "address": "alice@example.org"}]
    assert codes_at(recs, "bom.eml") == ["header.bom"]
