"""A document whose author is written in a script no name of the mailbox uses (the MacronLeaks
documents carried Cyrillic author names in French campaign mail) is flagged in the message record."""
import io
import json
import zipfile

from conftest import by_kind, scan_records


def docx(creator):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("docProps/core.xml",
                   '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
                   'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
                   "<dc:creator>%s</dc:creator><cp:lastModifiedBy>%s</cp:lastModifiedBy>"
                   "<dcterms:created>2017-02-01T10:00:00Z</dcterms:created>"
                   "<dcterms:modified>2017-02-02T10:00:00Z</dcterms:modified></cp:coreProperties>" % (creator, creator))
    return buf.getvalue()


def message(creator):
    import base64
    b64 = base64.encodebytes(docx(creator)).replace(b"\n", b"\r\n")
    return (b"From: =?utf-8?q?Ren=C3=A9_Dupr=C3=A9?= <rene.dupre@campagne.example>\r\n"
            b"To: Claire Martin <claire.martin@campagne.example>\r\nSubject: Note sur le budget\r\n"
            b"Date: Mon, 3 Apr 2017 10:00:00 +0200\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nCi-joint.\r\n"
            b"--B\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=note.docx\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--B--\r\n")


def test_foreign_script_author_is_flagged(tmp_path):
    d = tmp_path / "d" / "Claire Martin"
    d.mkdir(parents=True)
    (d / "1.eml").write_bytes(message("Рошка Георгий Петрович"))
    (d / "2.eml").write_bytes(message("René Dupré"))
    recs, _, _ = scan_records(tmp_path / "d", tmp_path)
    msgs = {m["locator"]: m for m in by_kind(recs, "message")}
    codes1 = [i["code"] for i in msgs["Claire Martin/1.eml"].get("indicators", [])]
    codes2 = [i["code"] for i in msgs["Claire Martin/2.eml"].get("indicators", [])]
    assert "auth.doc_author_foreign_script" in codes1
    assert "auth.doc_author_foreign_script" not in codes2
    ind = [i for i in msgs["Claire Martin/1.eml"]["indicators"] if i["code"] == "auth.doc_author_foreign_script"][0]
    assert ind["evidence"]["script"] == "CYRILLIC" and ind["evidence"]["mailbox_scripts"] == ["LATIN"]
    part = [p for p in by_kind(recs, "part") if p["locator"] == "Claire Martin/1.eml#1.2"][0]
    assert part["docmeta"]["creator"] == "Рошка Георгий Петрович"
