"""Mailbox-wide document indicators: an author written in a script no name of the custodian's mailbox
uses (the MacronLeaks documents carried Cyrillic author names in French campaign mail), and old
documents attached to different messages but modified within minutes of each other. Both are judged
over the whole mailbox and written in its `mailbox` record."""
import io
import json
import zipfile

from conftest import by_kind, scan_records


def docx(creator, created="2017-02-01T10:00:00Z", modified="2017-02-02T10:00:00Z"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("docProps/core.xml",
                   '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
                   'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
                   "<dc:creator>%s</dc:creator><cp:lastModifiedBy>%s</cp:lastModifiedBy>"
                   "<dcterms:created>%s</dcterms:created>"
                   "<dcterms:modified>%s</dcterms:modified></cp:coreProperties>" % (creator, creator, created, modified))
    return buf.getvalue()


def message(creator, sender="=?utf-8?q?Ren=C3=A9_Dupr=C3=A9?= <rene.dupre@campagne.example>",
            modified="2017-02-02T10:00:00Z", created="2017-02-01T10:00:00Z", date="Mon, 3 Apr 2017 10:00:00 +0200"):
    import base64
    b64 = base64.encodebytes(docx(creator, created, modified)).replace(b"\n", b"\r\n")
    return (b"From: " + sender.encode() + b"\r\n"
            b"To: Claire Martin <claire.martin@campagne.example>\r\nSubject: Note sur le budget\r\n"
            b"Date: " + date.encode() + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nCi-joint.\r\n"
            b"--B\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=note.docx\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--B--\r\n")


def mailboxes(recs):
    return {m.get("custodian"): m for m in by_kind(recs, "mailbox")}


def test_foreign_script_author_is_flagged_in_the_mailbox_record(tmp_path):
    d = tmp_path / "d" / "Claire Martin"
    d.mkdir(parents=True)
    (d / "1.eml").write_bytes(message("Рошка Георгий Петрович"))
    (d / "2.eml").write_bytes(message("René Dupré"))
    (tmp_path / "d" / "loose.eml").write_bytes(message("René Dupré"))
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    boxes = mailboxes(recs)
    assert set(boxes) == {"Claire Martin", None}
    box = boxes["Claire Martin"]
    assert box["locator"] == "Claire Martin" and box["messages"] == 2 and box["documents"] == 2
    assert box["scripts"] == {"LATIN": 2 * 6}  # custodian, subject, From and To names and local parts
    inds = box["indicators"]
    assert [i["code"] for i in inds] == ["auth.doc_author_foreign_script"] * 2
    by_field = {i["evidence"]["field"]: i for i in inds}
    ev = by_field["author"]["evidence"]
    assert ev["script"] == "CYRILLIC" and ev["mailbox_scripts"] == ["LATIN"]
    assert ev["docs"] == ["Claire Martin/1.eml#1.2"] and ev["messages"] == ["Claire Martin/1.eml"]
    assert ev["name"] == "Рошка Георгий Петрович"
    assert "indicators" not in boxes[None]
    # the summary counts them beside the message indicators
    summary = by_kind(recs, "summary")[0]
    assert summary["authenticity"]["indicators"]["auth.doc_author_foreign_script"] == 2
    # message records no longer judge it from the message alone
    for m in by_kind(recs, "message"):
        assert "auth.doc_author_foreign_script" not in [i["code"] for i in m.get("indicators", [])]
    part = [p for p in by_kind(recs, "part") if p["locator"] == "Claire Martin/1.eml#1.2"][0]
    assert part["docmeta"]["creator"] == "Рошка Георгий Петрович"


def test_script_used_elsewhere_in_the_mailbox_is_not_foreign(tmp_path):
    # the Cyrillic author is not flagged when another message of the same mailbox comes from a
    # Cyrillic-named correspondent, even though the message carrying the document has none
    d = tmp_path / "d" / "Claire Martin"
    d.mkdir(parents=True)
    (d / "1.eml").write_bytes(message("Рошка Георгий Петрович"))
    (d / "2.eml").write_bytes(message("René Dupré", sender="=?utf-8?b?%s?= <a.popov@exemple.ru>"
                                      % __import__("base64").b64encode("Алексей Попов".encode()).decode()))
    other = tmp_path / "d" / "Paul Roux"
    other.mkdir()
    (other / "1.eml").write_bytes(message("Рошка Георгий Петрович"))
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    boxes = mailboxes(recs)
    assert boxes["Claire Martin"]["scripts"]["CYRILLIC"] == 1
    assert "indicators" not in boxes["Claire Martin"]
    # another custodian's mailbox is judged on its own names
    assert [i["code"] for i in boxes["Paul Roux"]["indicators"]] == ["auth.doc_author_foreign_script"] * 2


def test_old_documents_modified_together_across_messages(tmp_path):
    d = tmp_path / "d" / "Claire Martin"
    d.mkdir(parents=True)
    # three documents created in 2016, each sent in its own message weeks apart, all last modified
    # within four minutes on the same day: only visible over the whole mailbox
    for k, (mod, date) in enumerate([("2017-04-20T09:00:00Z", "Fri, 21 Apr 2017 10:00:00 +0200"),
                                     ("2017-04-20T09:02:00Z", "Tue, 25 Apr 2017 10:00:00 +0200"),
                                     ("2017-04-20T09:04:00Z", "Wed, 3 May 2017 10:00:00 +0200")]):
        (d / ("%d.eml" % k)).write_bytes(message("René Dupré %d" % k, created="2016-0%d-01T10:00:00Z" % (k + 1),
                                                 modified=mod, date=date))
    # the same document sent twice counts once; a fresh document does not count
    (d / "3.eml").write_bytes(message("René Dupré 0", created="2016-01-01T10:00:00Z", modified="2017-04-20T09:00:00Z",
                                      date="Thu, 4 May 2017 10:00:00 +0200"))
    (d / "4.eml").write_bytes(message("Jean", created="2017-04-20T08:00:00Z", modified="2017-04-20T09:01:00Z",
                                      date="Thu, 20 Apr 2017 12:00:00 +0200"))
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    box = mailboxes(recs)["Claire Martin"]
    assert box["documents"] == 5 and box["distinct_documents"] == 4
    inds = [i for i in box["indicators"] if i["code"] == "auth.mailbox_docs_batch_modified"]
    assert len(inds) == 1
    ev = inds[0]["evidence"]
    assert ev["docs"] == ["Claire Martin/0.eml#1.2", "Claire Martin/1.eml#1.2", "Claire Martin/2.eml#1.2"]
    assert ev["messages"] == ["Claire Martin/0.eml", "Claire Martin/1.eml", "Claire Martin/2.eml"]
    assert ev["modified"] == ["2017-04-20T09:00:00Z", "2017-04-20T09:02:00Z", "2017-04-20T09:04:00Z"]
    assert inds[0]["severity"] == "warning"
    # no single message shows it
    for m in by_kind(recs, "message"):
        assert not [i for i in m.get("indicators", []) if "batch" in i["code"]]


def test_mailbox_indicators_are_searchable_per_message(tmp_path):
    import sqlite3
    from leaktriage.search.build import build_index
    from leaktriage.search.engine import count, open_db
    d = tmp_path / "d" / "Claire Martin"
    d.mkdir(parents=True)
    (d / "1.eml").write_bytes(message("Рошка Георгий Петрович"))
    (d / "2.eml").write_bytes(message("René Dupré"))
    recs, manifest, _ = scan_records(tmp_path / "d", tmp_path)
    db = str(tmp_path / "t.db")
    build_index(str(manifest), str(tmp_path / "d"), db, workers=1)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT m.locator, f.kind, f.code FROM findings f JOIN messages m ON m.id = f.message_id "
                       "WHERE f.kind = 'mailbox'").fetchall()
    assert rows == [("Claire Martin/1.eml", "mailbox", "auth.doc_author_foreign_script")] * 2
    sc = open_db(db)
    assert count(sc, "finding:auth.doc_author_foreign_script") == 1
    assert count(sc, "has:finding AND NOT finding:auth.doc_author_foreign_script") == 0
    # re-indexing the same manifest replaces them, it does not add copies
    build_index(str(manifest), str(tmp_path / "d"), db, workers=1)
    assert con.execute("SELECT count(*) FROM findings WHERE kind = 'mailbox'").fetchone()[0] == 2
