"""TNEF, .emlx and Outlook reconstruction on fixtures (no corpus needed)."""
from __future__ import annotations

import email
import email.policy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from leaktriage.containers import emlx, outlook, tnef  # noqa: E402
from leaktriage.model import container_codes as codes  # noqa: E402
from leaktriage.content import sniff  # noqa: E402
from leaktriage.containers.base import Child, Context, Limits, Problem  # noqa: E402

FIX = os.path.join(ROOT, "tests", "fixtures", "containers")


def fx(name):
    with open(os.path.join(FIX, name), "rb") as fh:
        return fh.read()


def run(reader, data, loc="x", limits=None):
    ctx = Context(locator=loc, depth=0, limits=limits or Limits())
    items = list(reader(data, ctx))
    for it in items:
        for p in ([it] if isinstance(it, Problem) else it.problems):
            assert p.code in codes.CODES, p.code
    return items, ctx


def test_tnef_long_name_and_body():
    items, _ = run(tnef.read_tnef, fx("long-name.tnef"))
    ch = [i for i in items if isinstance(i, Child)]
    assert ch[0].segment == "tnef:0" and ch[0].name == "Quarterly report 2017.pdf"
    assert ch[0].meta["short_name"] == "REPORT~1.PDF" and ch[0].data == b"%PDF-1.4 fake pdf\n"
    assert ch[1].segment == "tnef:body.txt" and ch[1].data == b"Body text\r\n"


def test_tnef_nested():
    items, _ = run(tnef.read_tnef, fx("nested.tnef"))
    ch = [i for i in items if isinstance(i, Child)]
    assert ch[0].name == "WINMAIL.DAT" and sniff.container_kind(ch[0].data) == "tnef"
    inner, _ = run(tnef.read_tnef, ch[0].data)
    assert [c.name for c in inner if isinstance(c, Child)][0] == "Quarterly report 2017.pdf"


def test_tnef_limits_and_garbage():
    items, _ = run(tnef.read_tnef, fx("long-name.tnef"), limits=Limits(max_member_size=5))
    assert "tnef.member_too_large" in [p.code for c in items if isinstance(c, Child) for p in c.problems]
    items, _ = run(tnef.read_tnef, b"\x78\x9f\x3e\x22\x00\x00\x01\xff\xff\xff\xff")
    assert [i.code for i in items if isinstance(i, Problem)]


def test_emlx():
    items, _ = run(emlx.read_emlx, fx("message.emlx"))
    (ch,) = items
    assert ch.segment == "emlx:message" and ch.kind == "message"
    assert ch.data.startswith(b"From: Alice") and ch.data.endswith(b"fixture message.\r\n")
    pl = ch.message["plist"]
    assert pl["date-received"] == "2017-03-01T10:30:00Z" and pl["remote-id"] == "4242"
    assert pl["flags_decoded"]["read"] is True


def test_emlx_truncated():
    data = fx("message.emlx")
    items, _ = run(emlx.read_emlx, data[:100])
    ch = [i for i in items if isinstance(i, Child)][0]
    assert "emlx.truncated" in [p.code for p in ch.problems]


def test_msg_reconstruction_is_deterministic_and_encoded():
    f = outlook.Facts()
    f.item_class = "IPM.Note"
    f.subject = "Grüße aus Köln"
    f.sender = ("Jörg Müller", "joerg@example.de")
    f.to = [("Anna", "anna@example.org"), ("No Address", "")]
    f.body_text = "Hallo\r\nWelt"
    f.body_html = b"<html><body>Hallo</body></html>"
    f.attachments = [{"name": "Bericht März.pdf", "data": b"%PDF-1.4", "mime": "application/pdf"}]
    a, info = outlook.build_mime(f)
    b, _ = outlook.build_mime(f)
    assert a == b and info["header_source"] == "synthesised from properties"
    m = email.message_from_bytes(a, policy=email.policy.default)
    assert m["subject"] == "Grüße aus Köln"
    assert "joerg@example.de" in m["from"]
    assert [p.get_content_type() for p in m.walk()] == ["multipart/mixed", "multipart/alternative", "text/plain",
                                                         "text/html", "application/pdf"]
    att = list(m.iter_attachments())[0]
    assert att.get_filename() == "Bericht März.pdf" and att.get_content() == b"%PDF-1.4"


def test_msg_transport_headers_keep_but_drop_mime_fields():
    f = outlook.Facts()
    f.transport_headers = ("Received: from x by y; Mon, 1 Jan 2018 00:00:00 +0000\r\nSubject: hi\r\n"
                           "Content-Type: multipart/alternative;\r\n boundary=\"abc\"\r\nMIME-Version: 1.0\r\n\r\n")
    f.body_text = "x"
    raw, info = outlook.build_mime(f)
    assert raw.startswith(b"Received: from x by y")
    assert b"abc" not in raw and info["dropped_original_headers"] == ["Content-Type", "MIME-Version"]


def test_msg_garbage_never_raises():
    items, _ = run(outlook.read_msg, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    assert [i.code for i in items] == ["msg.unreadable"]
    items, _ = run(outlook.read_pst, b"!BDN" + b"\x00" * 600)
    assert [i.code for i in items] == ["pst.unreadable"]


def test_docs_list_every_code():
    with open(os.path.join(ROOT, "docs", "containers.md"), encoding="utf-8") as fh:
        doc = fh.read()
    missing = [c for c in codes.CODES if "`%s`" % c not in doc]
    assert not missing, missing


def test_msg_transport_headers_banner_and_blank_line():
    f = outlook.Facts()
    f.transport_headers = ("Microsoft Mail Internet Headers Version 2.0\r\nReceived: from a\r\nSubject: s\r\n\r\n"
                           "junk: after blank\r\n")
    raw, info = outlook.build_mime(f)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Received: from a\r\nSubject: s\r\nMIME-Version: 1.0")
    assert b"junk" not in raw and len(info["dropped_original_headers"]) == 2
