"""Corroboration (leaktriage.conversations.copies) on messages scanned by leaktriage: copies that
agree across custodians, altered bodies and attachments, re-encoded copies that must not be flagged,
and what counts as an independent copy."""
import base64
import email
import email.policy
import json
import quopri

import pytest

from conftest import by_kind, scan_records
from leaktriage.conversations import (CODES, Copy, corroborate, differ, duplicate_candidates, mailbox_role,
                                      write_jsonl)

TEXT = "Bonjour Bob,\nLe budget prévu est de 1 500 euros pour la réunion à Lyon.\nMerci de confirmer avant vendredi.\nAlice"
HTML = ("<html><body><p>Bonjour Bob,<br>Le budget pr&eacute;vu est de 1&nbsp;500 euros pour la r&eacute;union "
        "&agrave; Lyon.</p><p>Merci de confirmer avant vendredi.<br>Alice</p></body></html>")
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n% memo budget 1500\n%%EOF\n"


def headers(mid, subject="Budget 2017", frm="Alice <alice@x.example>", to="Bob <bob@y.example>",
            date="Wed, 1 Mar 2017 10:00:00 +0100", extra=""):
    return ("From: %s\nTo: %s\nSubject: %s\nMessage-ID: %s\nDate: %s\nMIME-Version: 1.0\n%s"
            % (frm, to, subject, mid, date, extra)).encode()


def text_part(ctype, text, charset, cte, eol=b"\n", trailing=False):
    if trailing:
        text = "\n".join(line + " \t " for line in text.split("\n")) + "\n\n"
    raw = text.encode(charset)
    if cte == "base64":
        body = base64.encodebytes(raw)
    elif cte == "quoted-printable":
        body = quopri.encodestring(raw)
    else:
        body = raw + b"\n"
    h = b"Content-Type: %s; charset=%s\nContent-Transfer-Encoding: %s\n\n" % (ctype.encode(), charset.encode(), cte.encode())
    return (h + body).replace(b"\n", eol)


def attachment(name, data, ctype="application/pdf", width=76):
    b = base64.b64encode(data)
    lines = b"\n".join(b[i:i + width] for i in range(0, len(b), width))
    return (b"Content-Type: %s; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\n"
            b"Content-Transfer-Encoding: base64\n\n" % (ctype.encode(), name.encode(), name.encode())) + lines + b"\n"


def multipart(subtype, parts, boundary):
    out = b"Content-Type: multipart/%s; boundary=\"%s\"\n\n" % (subtype.encode(), boundary.encode())
    for p in parts:
        out += b"--" + boundary.encode() + b"\n" + p + b"\n"
    return out + b"--" + boundary.encode() + b"--\n"


def message(mid, body, eol=b"\n", **kw):
    return (headers(mid, **kw) + body).replace(b"\r\n", b"\n").replace(b"\n", eol)


def walk(part, path):
    yield path, part
    if part.get_content_maintype() == "message":
        return
    if part.is_multipart():
        for k, sub in enumerate(part.get_payload(), 1):
            yield from walk(sub, "%s.%d" % (path, k))


def texts_of(dump, msg, parts):
    """Decoded texts of a scanned message's parts, the way the index supplies them (decoded here
    with Python's email package): body text parts and text attachments."""
    root = email.message_from_bytes((dump / msg["locator"]).read_bytes(), policy=email.policy.compat32)
    want = {p["path"]: p for p in parts}
    out = {}
    for path, part in walk(root, "1"):
        p = want.get(path)
        if p is None or part.is_multipart() or not p["content_type"].startswith("text/"):
            continue
        out[p["locator"]] = part.get_payload(decode=True).decode(p.get("charset") or "utf-8", "replace")
    return out


def scan(tmp_path, files):
    dump = tmp_path / "dump"
    for rel, data in files.items():
        (dump / rel).parent.mkdir(parents=True, exist_ok=True)
        (dump / rel).write_bytes(data)
    recs, _, _ = scan_records(dump, tmp_path)
    msgs = by_kind(recs, "message")
    parts = {}
    for p in by_kind(recs, "part"):
        parts.setdefault(p["message"], []).append(p)
    texts = {}
    copies = []
    for m in msgs:
        t = texts_of(dump, m, parts.get(m["locator"], []))
        texts.update(t)
        copies.append(Copy.from_records(m, parts.get(m["locator"], []), t))
    return msgs, copies, texts


def mixed(mid, text=TEXT, html=HTML, pdf=PDF, plain_enc=("iso-8859-1", "quoted-printable"),
          html_enc=("utf-8", "quoted-printable"), width=76, trailing=False, **kw):
    alt = multipart("alternative", [text_part("text/plain", text, *plain_enc, trailing=trailing),
                                    text_part("text/html", html, *html_enc)], "alt-" + mid.strip("<>"))
    return message(mid, multipart("mixed", [alt, attachment("memo.pdf", pdf, width=width)], "mix-" + mid.strip("<>")), **kw)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("copies")
    altered_text = TEXT.replace("1 500", "2 500")
    altered_html = HTML.replace("1&nbsp;500", "2&nbsp;500")
    files = {
        # 1: the same email in Alice's Sent folder, Bob's Inbox (re-encoded: base64 UTF-8 text with
        #    trailing white space, CRLF, base64 lines of another width) and Bob's archive
        "alice/Sent/1.eml": mixed("<m1@x.example>"),
        "bob/Inbox/1.eml": mixed("<m1@x.example>", plain_enc=("utf-8", "base64"), html_enc=("windows-1252", "8bit"),
                                 width=64, trailing=True, eol=b"\r\n",
                                 extra="Received: from mx.y.example by y.example; Wed, 1 Mar 2017 10:00:02 +0100\n"),
        "bob/Archive/1.eml": mixed("<m1@x.example>", plain_enc=("utf-8", "base64"), html_enc=("windows-1252", "8bit"),
                                   width=64, trailing=True, eol=b"\r\n"),
        # 2: the body altered in Carol's copy (plain and HTML alike)
        "alice/Sent/2.eml": mixed("<m2@x.example>", to="Carol <carol@y.example>"),
        "carol/Inbox/2.eml": mixed("<m2@x.example>", text=altered_text, html=altered_html, to="Carol <carol@y.example>"),
        # 3: the attachment replaced in Carol's copy
        "alice/Sent/3.eml": mixed("<m3@x.example>", to="Carol <carol@y.example>"),
        "carol/Inbox/3.eml": mixed("<m3@x.example>", pdf=PDF.replace(b"1500", b"9500"), to="Carol <carol@y.example>"),
        # 4: a plain-text copy and an HTML-only copy of the same text
        "alice/Sent/4.eml": message("<m4@x.example>", text_part("text/plain", TEXT, "utf-8", "8bit")),
        "dave/Inbox/4.eml": message("<m4@x.example>", text_part("text/html", HTML, "utf-8", "quoted-printable")),
        # 5: mail Alice sent to herself: Sent and Inbox of one custodian
        "alice/Sent/5.eml": message("<m5@x.example>", text_part("text/plain", TEXT, "utf-8", "8bit"), to="alice@x.example"),
        "alice/Inbox/5.eml": message("<m5@x.example>", text_part("text/plain", TEXT, "utf-8", "8bit"), to="alice@x.example"),
        # 6: a text attachment re-encoded (Latin-1 vs UTF-8: other bytes, same text)
        "alice/Sent/6.eml": message("<m6@x.example>", multipart("mixed", [
            text_part("text/plain", "voir la note", "utf-8", "8bit"),
            attachment("note.txt", "Coût total: 1 500 €".encode("cp1252"), "text/plain; charset=windows-1252")], "b6")),
        "dave/Inbox/6.eml": message("<m6@x.example>", multipart("mixed", [
            text_part("text/plain", "voir la note", "utf-8", "8bit"),
            attachment("note.txt", "Coût total: 1 500 €".encode("utf-8"), "text/plain; charset=utf-8")], "b6")),
        # 7: two different emails sharing one Message-ID
        "alice/Sent/7.eml": message("<m7@x.example>", text_part("text/plain", "first", "utf-8", "8bit")),
        "dave/Inbox/7.eml": message("<m7@x.example>", text_part("text/plain", "win a prize", "utf-8", "8bit"),
                                    frm="Lottery <win@spam.example>", subject="You won",
                                    date="Mon, 1 Jan 2018 00:00:00 +0000"),
        # 8: the Subject changed in one copy (one identity field: still the same email, contradicted)
        "alice/Sent/8.eml": message("<m8@x.example>", text_part("text/plain", TEXT, "utf-8", "8bit")),
        "dave/Inbox/8.eml": message("<m8@x.example>", text_part("text/plain", TEXT, "utf-8", "8bit"),
                                    subject="Budget 2017 (annulé)"),
    }
    msgs, copies, texts = scan(tmp, files)
    res = corroborate(copies, text_of=texts.get)
    groups = {g.get("message_id"): g for g in res.groups}
    inds = {}
    for loc, ind in res.indicators:
        inds.setdefault(loc, []).append(ind)
    return msgs, copies, texts, res, groups, inds


def test_identical_copies_across_custodians_are_corroborated(scanned):
    _, _, _, res, groups, inds = scanned
    g = groups["<m1@x.example>"]
    assert g["verdict"] == "corroborated" and len(g["variants"]) == 1
    assert g["independent_custodians"] == 2 and g["variants"][0]["custodians"] == ["alice", "bob"]
    assert {c["locator"]: c["role"] for c in g["copies"]} == {
        "alice/Sent/1.eml": "sent", "bob/Inbox/1.eml": "received", "bob/Archive/1.eml": "received"}
    assert "count once" in g["counted"]
    ind = inds["bob/Archive/1.eml"]
    assert [i["code"] for i in ind] == ["copy.corroborated"] and ind[0]["severity"] == "info"
    assert ind[0]["evidence"]["independent_custodians"] == 2 and ind[0]["evidence"]["copies"] == 3


def test_altered_body_is_a_contradiction_naming_both_copies(scanned):
    _, _, _, res, groups, inds = scanned
    g = groups["<m2@x.example>"]
    assert g["verdict"] == "contradiction" and len(g["variants"]) == 2
    diffs = {d["part"]: d for d in g["differences"]}
    assert set(diffs) == {"body:text/plain", "body:text/html"}
    d = diffs["body:text/plain"]
    sides = {d["a"][0].split("#")[0], d["b"][0].split("#")[0]}
    assert sides == {"alice/Sent/2.eml", "carol/Inbox/2.eml"}
    assert d["change"] == "edited"
    (p,) = d["passages"]
    assert {p["a"].split("[")[1].split("]")[0], p["b"].split("[")[1].split("]")[0]} == {"1", "2"}
    assert "budget prévu est de" in p["a"]
    for loc, other in (("alice/Sent/2.eml", "carol/Inbox/2.eml"), ("carol/Inbox/2.eml", "alice/Sent/2.eml")):
        (ind,) = inds[loc]
        assert ind["code"] == "copy.contradiction" and ind["severity"] == CODES["copy.contradiction"][0] == "error"
        assert ind["evidence"]["other_copies"] == [other]
        assert ind["evidence"]["parts"] == ["body:text/html", "body:text/plain"]


def test_altered_attachment_names_the_attachment_and_both_locators(scanned):
    _, _, _, res, groups, inds = scanned
    g = groups["<m3@x.example>"]
    assert g["verdict"] == "contradiction"
    (d,) = g["differences"]
    assert d["part"] == "attachment:memo.pdf"
    assert {d["a"], d["b"]} == {"alice/Sent/3.eml#1.2", "carol/Inbox/3.eml#1.2"}
    assert d["a_sha256"] != d["b_sha256"]


def test_re_encoded_copies_and_plain_versus_html_are_not_flagged(scanned):
    msgs, copies, _, res, groups, inds = scanned
    by = {c.locator: c for c in copies}
    # other charsets, transfer encodings, line endings, trailing white space, base64 line width
    assert differ(by["alice/Sent/1.eml"], by["bob/Inbox/1.eml"]) == []
    assert by["alice/Sent/1.eml"].bodies[0].tokens_fp == by["bob/Inbox/1.eml"].bodies[0].tokens_fp
    texts = scanned[2]
    assert texts["alice/Sent/1.eml#1.1.1"] != texts["bob/Inbox/1.eml#1.1.1"]      # the decoded texts differ...
    assert texts["alice/Sent/1.eml#1.1.1"].split() == texts["bob/Inbox/1.eml#1.1.1"].split()   # ...in white space only
    g4 = groups["<m4@x.example>"]
    assert g4["verdict"] == "corroborated"
    g6 = groups["<m6@x.example>"]
    assert g6["verdict"] == "corroborated"
    sha = {c.locator: c.attachments[0].sha256 for c in copies if c.locator.endswith("6.eml")}
    assert len(set(sha.values())) == 2          # the bytes differ, the text does not
    assert res.stats["contradiction"] == 3      # m2, m3 and m8 only


def test_sent_copy_counts_as_independent_only_across_custodians(scanned):
    _, _, _, res, groups, inds = scanned
    g = groups["<m5@x.example>"]
    assert g["verdict"] == "single-custodian" and g["independent_custodians"] == 1
    assert sorted(c["role"] for c in g["copies"]) == ["received", "sent"]
    assert "alice/Sent/5.eml" not in inds
    assert groups["<m4@x.example>"]["independent_custodians"] == 2


def test_reused_message_id_is_not_a_contradiction(scanned):
    _, _, _, res, groups, inds = scanned
    assert "<m7@x.example>" not in groups
    (ind,) = inds["dave/Inbox/7.eml"]
    assert ind["code"] == "copy.message_id_reused" and ind["evidence"]["other_emails"] == ["alice/Sent/7.eml"]
    assert ind["evidence"]["differs"] == ["date", "from", "subject"]


def test_one_changed_header_is_a_contradiction(scanned):
    _, _, _, res, groups, inds = scanned
    g = groups["<m8@x.example>"]
    assert g["verdict"] == "contradiction"
    (d,) = g["differences"]
    assert d["part"] == "header:subject" and {d["a_value"], d["b_value"]} == {"Budget 2017", "Budget 2017 (annulé)"}


def test_candidates_and_deterministic_records(scanned):
    msgs, copies, texts, res, groups, inds = scanned
    cand = duplicate_candidates(msgs)
    assert cand == {m["locator"] for m in msgs}
    import io
    import random
    outs = []
    for seed in (1, 2):
        cs = list(copies)
        random.Random(seed).shuffle(cs)
        buf = io.StringIO()
        r = corroborate(cs, text_of=texts.get)
        write_jsonl(list(r.records()) + [dict(record="indicator", locator=l, **i) for l, i in r.indicators], buf)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    assert all(json.loads(l)["record"] in ("copy_group", "indicator") for l in outs[0].splitlines())


def test_without_texts_differences_are_still_named():
    m = {"locator": "a/Sent/1.eml", "message_id": "<x@y>", "custodian": "a", "mailbox": "a/Sent",
         "subject": "S", "from": [{"address": "a@x"}], "date": "2017-01-01T00:00:00Z"}
    pa = [{"message": "a/Sent/1.eml", "locator": "a/Sent/1.eml#1", "path": "1", "content_type": "text/plain"}]
    m2 = dict(m, locator="b/Inbox/1.eml", custodian="b", mailbox="b/Inbox")
    pb = [dict(pa[0], message="b/Inbox/1.eml", locator="b/Inbox/1.eml#1")]
    c1 = Copy.from_records(m, pa, {"a/Sent/1.eml#1": "one two three"})
    c2 = Copy.from_records(m2, pb, {"b/Inbox/1.eml#1": "one two four"})
    (g,) = corroborate([c1, c2]).groups
    (d,) = g["differences"]
    assert d["part"] == "body:text/plain" and "passages" not in d


@pytest.mark.parametrize("mailbox,source,role", [
    ("alice/Sent", "file", "sent"), ("alice/Sent Items", "file", "sent"), ("x/Éléments envoyés", "file", "sent"),
    ("x/Maildir/.Sent", "maildir", "sent"), ("x/mbox/Sent.mbox", "mbox", "sent"), ("x.zip!zip:x/Gesendet", "archive", "sent"),
    ("x/[Gmail]/Sent Mail", "file", "sent"), ("x/Inbox", "file", "received"), ("x/Boîte de réception", "file", "received"),
    ("x/Sent", "rfc822", "attached"), (None, "file", "received")])
def test_mailbox_roles(mailbox, source, role):
    assert mailbox_role(mailbox, source) == role


def test_bodies_without_text_are_not_compared_unless_the_bytes_agree():
    def rec(loc, cust):
        return ({"locator": loc, "message_id": "<t@y>", "custodian": cust, "mailbox": cust + "/Inbox", "subject": "S",
                 "from": [{"address": "a@x"}], "date": "2017-01-01T00:00:00Z"},
                [{"message": loc, "locator": loc + "#1", "path": "1", "content_type": "text/plain",
                  "sha256": ("%s" % cust) * 64}])
    (ma, pa), (mb, pb), (mc, pc) = rec("a/1", "a"), rec("b/1", "b"), rec("c/1", "a")
    with_text = Copy.from_records(ma, pa, {"a/1#1": "one two three"})
    no_text = Copy.from_records(mb, pb, {})
    no_text_same = Copy.from_records(mc, pc, {})                     # same bytes as a/1
    assert no_text.bodies[0].exact and not with_text.bodies[0].exact
    (g,) = corroborate([with_text, no_text]).groups
    assert g["verdict"] == "incomplete" and g["not_compared"] == [{"part": "body:text/plain", "a": "a/1", "b": "b/1"}]
    assert corroborate([with_text, no_text]).indicators == []
    (g,) = corroborate([no_text_same._replace(locator="c/2"), no_text_same]).groups
    assert "not_compared" not in g


def test_hostile_records_do_not_break_corroboration():
    junk = [{"locator": "j/1", "message_id": ["x"], "from": "me", "to": [None, 3], "subject": 5, "date": "soon"},
            {"locator": "j/2", "message_id": "<j@x>", "custodian": 7, "mailbox": None},
            {"locator": "j/3", "message_id": "<j@x>", "canonical_sha256": None}]
    parts = [[None, "x", {"message": "j/1", "path": "1", "content_type": None, "attachment": True, "filename": 3}],
             [{"message": "j/2", "locator": "j/2#1", "path": "1", "content_type": "text/html"}], []]
    copies = [Copy.from_records(m, p, {"j/2#1": "<p>unclosed <b>tag"}) for m, p in zip(junk, parts)]
    (g,) = corroborate(copies).groups
    assert g["verdict"] == "single-custodian" and [c["locator"] for c in g["copies"]] == ["j/2", "j/3"]
