"""Outlook .msg, PST and TNEF readers against ../shared/corpora (never copied into the repo).

The corpora folder comes from $LEAKTRIAGE_CORPORA (default <repo>/../shared/corpora). When it is
missing these tests FAIL if $CI is set and are skipped otherwise.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from leaktriage.model import locator  # noqa: E402
from leaktriage.containers import outlook, tnef  # noqa: E402
from leaktriage.model import container_codes as codes  # noqa: E402
from leaktriage.content import sniff  # noqa: E402
from leaktriage.containers.base import Child, Context, Problem  # noqa: E402

CORPORA = os.environ.get("LEAKTRIAGE_CORPORA") or os.path.join(ROOT, "..", "shared", "corpora")


def corpus(*parts):
    if not os.path.isdir(CORPORA):
        if os.environ.get("CI"):
            pytest.fail("corpora folder %s is missing (set LEAKTRIAGE_CORPORA)" % CORPORA)
        pytest.skip("corpora folder %s is missing" % CORPORA)
    return os.path.join(CORPORA, *parts)


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def run(reader, data, loc):
    items = list(reader(data, Context(locator=loc, depth=0)))
    for it in items:
        assert isinstance(it, (Child, Problem))
        for p in ([it] if isinstance(it, Problem) else it.problems):
            assert p.code in codes.CODES, p.code
        if isinstance(it, Child):
            steps = locator.parse(locator.child(loc, it.segment))
            assert locator.segment(steps[-1].kind, steps[-1].raw()) == it.segment
    return items


def one_message(path):
    items = run(outlook.read_msg, read(path), os.path.basename(path))
    ch = [i for i in items if isinstance(i, Child)]
    assert len(ch) == 1, items
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    return ch[0], m


PEER_SKEW = __import__("datetime").timedelta(hours=8)


def named_attachments(m):
    return [a.get_filename() for a in m.iter_attachments() if a.get_filename()]


def leaves(m):
    return [p for p in m.walk() if not p.is_multipart()]


# ----------------------------------------------------------------------------------------- .msg

def test_msg_unicode_tif_attachments():
    base = corpus("teammsgextractor-msg-extractor")
    exp = json.load(open(os.path.join(base, "expected.json")))["files"]["example-msg-files/unicode.msg"]
    for rel in ("example-msg-files/unicode.msg", "example-msg-files/export-results/unicode.msg"):
        ch, m = one_message(os.path.join(base, rel))
        assert ch.kind == "message" and ch.segment == "msg:message"
        assert ch.message["source"] == "msg" and ch.message["reconstructed"] is True
        assert ch.message["item_class"] == "IPM.Note"
        assert m["subject"] == exp["subject"]
        assert "brianzhou@me.com" in str(m["to"]) and "Brian Zhou" in str(m["cc"]) and "Brian Zhou" in str(m["from"])
        # the peer renders dates in US Pacific time but labels them GMT: 8 hours behind UTC (documented)
        assert email.utils.parsedate_to_datetime(m["date"]) - email.utils.parsedate_to_datetime(exp["date"]) == PEER_SKEW
        atts = {a.get_filename(): a.get_content() for a in m.iter_attachments() if a.get_filename()}
        for want in exp["attachments"]:
            assert hashlib.sha256(atts[want["filename"]]).hexdigest() == want["sha256"]
        body = [p for p in leaves(m) if p.get_content_type() == "text/plain"][0].get_content()
        assert body.startswith(exp["body_starts_with"])


def test_msg_strange_date():
    base = corpus("teammsgextractor-msg-extractor")
    exp = json.load(open(os.path.join(base, "expected.json")))["files"]["example-msg-files/strangeDate.msg"]
    ch, m = one_message(os.path.join(base, "example-msg-files/strangeDate.msg"))
    assert m["subject"] == exp["subject"] and exp["to"] in str(m["to"])
    assert email.utils.parsedate_to_datetime(m["date"]) - email.utils.parsedate_to_datetime(exp["date"]) == PEER_SKEW
    assert not named_attachments(m)
    assert "msg.no_transport_headers" in [p.code for p in ch.problems]
    times = [ch.message[k] for k in ("client_submit_time", "delivery_time", "creation_time") if ch.message[k]]
    assert times and times[0].startswith("2016-02-23")


def test_msg_aquasync_mail_and_non_mail():
    base = corpus("aquasync-ruby-msg", "test")
    ch, m = one_message(os.path.join(base, "test_Blammo.msg"))
    assert m["subject"] == "BlammoBlammo" and "TripleNickel@mapi32.net" in str(m["from"])
    assert m["to"] is None and not named_attachments(m)
    for name in ("qwerty_1-orig.msg", "qwerty_2-with_custom_properties.msg", "qwerty_3.msg"):
        ch, m = one_message(os.path.join(base, name))
        assert ch.kind == "message" and m["subject"] == "qwerty"
        assert m["message-id"] == "<CEB3518C2FA4D743BF752C106451B19E14944E@sydexmail1.freehills.com.au>"
        assert "asdf" in str(m["to"])
        types = [p.get_content_type() for p in leaves(m)]
        assert types[:3] == ["text/plain", "text/html", "application/rtf"]
    for name, cls in (("Swetlana Novikova.msg", "IPM.Contact"), ("contact-plain.msg", "IPM.Contact"),
                      ("contact-unicode.msg", "IPM.Contact"), ("note.msg", "IPM.StickyNote")):
        ch, m = one_message(os.path.join(base, name))
        assert ch.kind == "item" and ch.message["item_class"] == cls
        nm = [p for p in ch.problems if p.code == "msg.not_mail"]
        assert nm and nm[0].detail["item_class"] == cls


def test_msg_spamscope_outlook():
    path = corpus("spamscope-mail-parser", "tests", "mails", "mail_outlook_1")
    ch, m = one_message(path)
    assert ch.message["transport_headers"] is True and ch.message["header_source"] == "transport headers"
    assert m["subject"] == "Newsletter Prüfung Personalwesen / Prüfung Eröffnungsbilanz"
    assert "gaiser-schoenenborn@kreis-tuebingen.de" in str(m["to"]).lower()
    assert named_attachments(m) == ["newsletter.png", "spacer.gif", "image004.jpg",
                                                               "image006.jpg", "image008.jpg"]
    png = [a for a in m.iter_attachments() if a.get_filename() == "newsletter.png"][0].get_content()
    assert png.startswith(b"\x89PNG")


def test_msg_reconstruction_stable():
    path = corpus("spamscope-mail-parser", "tests", "mails", "mail_outlook_1")
    a = [i for i in run(outlook.read_msg, read(path), "x") if isinstance(i, Child)][0].data
    b = [i for i in run(outlook.read_msg, read(path), "x") if isinstance(i, Child)][0].data
    assert a == b


# ----------------------------------------------------------------------------------------- PST

def pst_items(path):
    items = run(outlook.read_pst, read(path), os.path.basename(path))
    return [i for i in items if isinstance(i, Child)], [i for i in items if isinstance(i, Problem)]


def test_pst_aquasync():
    base = corpus("aquasync-ruby-msg", "test", "pst")
    ch, _ = pst_items(os.path.join(base, "200 recipients.pst"))
    assert len(ch) == 1 and ch[0].kind == "message"
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    assert m["subject"] == "200 recipients"
    assert len(m["to"].addresses) == 200
    assert ch[0].segment.startswith("pst:") and ch[0].segment.endswith("/2097188")
    assert ch[0].message["source"] == "pst" and ch[0].message["pst_nid"] == 2097188
    ch, _ = pst_items(os.path.join(base, "attachAndInline.pst"))
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    assert m["subject"] == "Attach and inline"
    atts = {a.get_filename(): a.get_content() for a in m.iter_attachments() if a.get_filename()}
    assert set(atts) == {"attach.png", "image001.png"}
    assert all(v.startswith(b"\x89PNG") for v in atts.values())
    assert (len(atts["attach.png"]), len(atts["image001.png"])) == (1558, 809)
    ch, _ = pst_items(os.path.join(base, "msgInMsg.pst"))
    m = email.message_from_bytes(ch[0].data, policy=email.policy.default)
    assert m["subject"] == "I have attachments!"
    assert "green.png" in named_attachments(m)
    # the embedded message is read completely (pstndb): its transport headers (kept in a sub-node)
    # give the header block, its recipient table its one recipient; it has no attachment
    codes_seen = [p.code for p in ch[0].problems]
    assert not [c for c in codes_seen if c.startswith("pst.embedded_message")], codes_seen
    inner = [p for p in m.walk() if p.get_content_type() == "message/rfc822"][0].get_content()
    assert inner["subject"] == "Microsoft Outlook テスト メッセージ"
    assert "xmailuser@xmailserver.test" in str(inner["from"])
    assert [(a.display_name, a.addr_spec) for a in inner["to"].addresses] == [("xmailuser", "xmailuser@xmailserver.test")]
    assert inner["received"] and "XMail 1.27 ESMTP Server" in inner["received"]
    assert [p.get_content_type() for p in leaves(inner)] == ["text/plain", "application/rtf"]


def test_pst_read_from_a_memory_map_equals_bytes():
    import mmap
    path = os.path.join(corpus("aquasync-ruby-msg", "test", "pst"), "msgInMsg.pst")
    want = [(c.segment, c.data) for c in pst_items(path)[0]]
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        items = run(outlook.read_pst, m, os.path.basename(path))
        got = [(c.segment, bytes(c.data)) for c in items if isinstance(c, Child)]
    assert got == want and len(want) == 1


def test_pst_libpst_dist_list_and_password():
    base = corpus("rjohnsondev-java-libpst", "src", "test", "resources")
    ch, probs = pst_items(os.path.join(base, "dist-list.pst"))
    by_nid = {c.message["pst_nid"]: c for c in ch}
    assert by_nid[2097188].message["item_class"] == "IPM.DistList" and by_nid[2097188].kind == "item"
    assert by_nid[2097188].message["folder"] == "Top of Personal Folders/Contacts"
    assert by_nid[2097348].message["item_class"] == "IPM.Appointment"
    # the two recurrence exceptions are embedded items: their descriptions come through
    appt = email.message_from_bytes(by_nid[2097348].data, policy=email.policy.default)
    texts = [p.get_content() for p in appt.walk() if p.get_content_type() == "text/plain"]
    for want in ("This is the appointment at 9", "This is the one at 10"):
        assert any(want in t for t in texts), texts
    assert "pst.password_protected" not in [p.code for p in probs]
    ch, probs = pst_items(os.path.join(base, "passworded.pst"))
    assert "pst.password_protected" in [p.code for p in probs]
    assert ch and all(c.message.get("pst_password_protected") for c in ch)


# ----------------------------------------------------------------------------------------- TNEF

TEXTLIKE = (".htm", ".html", ".txt", ".rtf", ".ini", ".cfg", ".dat", ".src", "README", "AUTHORS")


def _tnef_cases():
    path = os.path.join(CORPORA, "jstedfast-mimekit", "expected.json")
    if not os.path.exists(path):
        return ["missing"]
    return sorted(k for k in json.load(open(path))["tnef"] if k.endswith(".tnef"))


@pytest.mark.parametrize("rel", _tnef_cases())
def test_tnef_mimekit(rel):
    base = corpus("jstedfast-mimekit")
    exp = json.load(open(os.path.join(base, "expected.json")))["tnef"][rel]
    items = run(tnef.read_tnef, read(os.path.join(base, rel)), os.path.basename(rel))
    ch = [i for i in items if isinstance(i, Child)]
    names = [c.name for c in ch]
    for want in exp["expected_attachment_filenames"]:
        assert want in names, (want, names)
    hashes = set()
    for c in ch:
        d = c.data or b""
        hashes.add(hashlib.sha256(d).hexdigest())
        hashes.add(hashlib.sha256(d.replace(b"\r\n", b"\n")).hexdigest())
        if "object_iid" in c.meta:
            # MimeKit keeps the 16-byte interface id in front of an OLE object; we strip it (documented)
            hashes.add(hashlib.sha256(bytes.fromhex(c.meta["object_iid"]) + d).hexdigest())
    for fname, want in exp["expected_extracted_files"].items():
        assert want["sha256"] in hashes, fname


def test_msg_embedded_message_becomes_rfc822():
    """An attached .msg (extract-msg gives a MSGFile as attachment data) -> message/rfc822 part."""
    base = corpus("aquasync-ruby-msg", "test")
    outer = outlook._open_msg(read(os.path.join(base, "test_Blammo.msg")))
    inner = outlook._open_msg(read(os.path.join(base, "qwerty_3.msg")))

    class Att:
        longFilename = "forwarded qwerty.msg"
        shortFilename = None
        displayName = None
        contentId = None
        hidden = False
        mimetype = None
        data = inner

    class Outer:
        def __getattr__(self, k):
            return getattr(outer, k)

        attachments = [Att()]

    f = outlook.msg_facts(Outer())
    raw, _ = outlook.build_mime(f)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    part = [p for p in m.walk() if p.get_content_type() == "message/rfc822"][0]
    assert part.get_filename() == "forwarded qwerty.msg"
    sub = part.get_content()
    assert sub["subject"] == "qwerty" and "asdf" in str(sub["to"])


def test_sniff_corpus_files():
    for rel, kind in (("teammsgextractor-msg-extractor/example-msg-files/export-results/unicode.msg", "msg"),
                      ("aquasync-ruby-msg/test/note.msg", "msg"),
                      ("spamscope-mail-parser/tests/mails/mail_outlook_1", "msg"),
                      ("aquasync-ruby-msg/test/pst/msgInMsg.pst", "pst"),
                      ("rjohnsondev-java-libpst/src/test/resources/passworded.pst", "pst"),
                      ("jstedfast-mimekit/UnitTests/TestData/tnef/winmail.tnef", "tnef"),
                      ("apache-james-mime4j/core/src/test/resources/testmsgs/simple-attachment.msg", "message")):
        path = corpus(*rel.split("/"))
        if not os.path.exists(path):
            continue
        data = read(path)
        assert sniff.sniff(data, len(data))[0] == kind, rel
