"""A small dump made for the reading tests (show --text, search, serve): every case the issue names.

reading_dump(root) writes it and returns {name: locator}:
- "cp1252": a windows-1252 quoted-printable body, with a PDF holding a codeword, an executable named
  Facture_6561.pdf, a macro-enabled .docm, a scanned PDF (image only), an encrypted PDF and a zip with
  a DOCX inside (its own codeword);
- "html": an HTML-only message (no text/plain part) naming Mme N'Diaye, stored twice: in Zoé Martin's
  INBOX and, with other transport headers, in Paul Roux's (the same email, two copies);
- "forward": a forward of a forward whose innermost message has three attachments.
"""
from __future__ import annotations

import base64
import io
import quopri
import zipfile

PE = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 400
PDF_MINIMAL = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")
CODEWORD_PDF = "kestrel-4821"
CODEWORD_DOCX = "osprey-1937"
BODY_CP1252 = "Bonjour Hélène,\n\nLa réunion à l'Élysée coûte 1 200 € – voir la facture ci-jointe.\n\nŒuvre commune, Loïc\n"


def docm_with_macros() -> bytes:
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
                                         '2006/main"><w:body><w:p><w:r><w:t>budget</w:t></w:r></w:p></w:body></w:document>')
        zf.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\x00" * 60)
    return z.getvalue()


def _att(boundary: bytes, name: bytes, ctype: bytes, data: bytes) -> bytes:
    return (b"--" + boundary + b"\r\nContent-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n\r\n" +
            base64.encodebytes(data).replace(b"\n", b"\r\n"))


def _head(frm: bytes, to: bytes, subject: bytes, date: bytes, extra: bytes = b"") -> bytes:
    return (extra + b"From: " + frm + b"\r\nTo: " + to + b"\r\nSubject: " + subject + b"\r\nDate: " + date +
            b"\r\nMessage-ID: <" + subject.replace(b" ", b".")[:40] + b"@example.org>\r\nMIME-Version: 1.0\r\n")


def cp1252_message() -> bytes:
    from test_text_common import build_pdf, docx, make_dump_module, para, zip_bytes
    jpeg = make_dump_module().make_scan_jpeg(["ORDONNANCE", "Dr Martin"])
    w, h = _jpeg_size(jpeg)
    invoice = build_pdf([("text", ["FACTURE 2017-031", "Total : 10 116,00 EUR", "Code " + CODEWORD_PDF])], flate=True)
    scan = build_pdf([("image", jpeg, w, h)])
    secret = build_pdf([("text", ["confidentiel"])], encrypt=("user-pw", "owner-pw"))
    archive = zip_bytes({"rapport.docx": docx(para("Rapport annuel " + CODEWORD_DOCX))})
    body = quopri.encodestring(BODY_CP1252.replace("\n", "\r\n").encode("cp1252"))
    return (_head("Loïc Durand <l.durand@example.org>".encode("utf-8"), b"=?utf-8?q?H=C3=A9l=C3=A8ne?= <h@example.org>",
                  b"=?windows-1252?q?R=E9union_=E0_l'=C9lys=E9e?=", b"Wed, 1 Mar 2017 09:00:00 +0100") +
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
            b"--B\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + body + b"\r\n" +
            _att(b"B", b"facture.pdf", b"application/pdf", invoice) +
            _att(b"B", b"Facture_6561.pdf", b"application/pdf", PE) +
            _att(b"B", b"budget.docm", b"application/vnd.ms-word.document.macroEnabled.12", docm_with_macros()) +
            _att(b"B", b"scan.pdf", b"application/pdf", scan) +
            _att(b"B", b"secret.pdf", b"application/pdf", secret) +
            _att(b"B", b"rapports.zip", b"application/zip", archive) + b"--B--\r\n")


def html_message(transport: bytes = b"") -> bytes:
    html = ("<html><head><style>p{color:red}</style></head><body><p>Rendez-vous avec Mme N\u2019Diaye "
            "jeudi.</p><p>Ordre du jour&nbsp;: budget</p></body></html>").encode("utf-8")
    return (_head(b"Paul Roux <p.roux@example.org>", b"h@example.org", b"Rendez-vous", b"Thu, 2 Mar 2017 10:00:00 +0100",
                  transport) +
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(html).replace(b"\n", b"\r\n"))


def forward_of_forward() -> bytes:
    inner = (_head(b"a@example.org", b"b@example.org", b"factures", b"Wed, 1 Mar 2017 09:00:00 +0100") +
             b"Content-Type: multipart/mixed; boundary=I\r\n\r\n--I\r\nContent-Type: text/plain\r\n\r\nci-joint\r\n" +
             _att(b"I", b"notes.txt", b"text/plain", b"first attachment\n") +
             _att(b"I", b"Facture_6562.pdf", b"application/pdf", PE + b"2") +
             _att(b"I", b"vide.pdf", b"application/pdf", PDF_MINIMAL) + b"--I--\r\n")
    middle = (_head(b"b@example.org", b"c@example.org", b"Tr: factures", b"Wed, 1 Mar 2017 10:00:00 +0100") +
              b"Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\nvoir ci-dessous\r\n"
              b"--M\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--M--\r\n")
    return (_head(b"c@example.org", b"d@example.org", b"Tr: Tr: factures", b"Wed, 1 Mar 2017 11:00:00 +0100") +
            b"Content-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\nContent-Type: text/plain\r\n\r\npour info\r\n"
            b"--O\r\nContent-Type: message/rfc822\r\n\r\n" + middle + b"\r\n--O--\r\n")


def _jpeg_size(j: bytes):
    i = 2
    while i < len(j):
        if j[i] != 0xFF:
            i += 1
            continue
        marker = j[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(j[i + 7:i + 9], "big"), int.from_bytes(j[i + 5:i + 7], "big")
        i += 2 + int.from_bytes(j[i + 2:i + 4], "big")
    raise ValueError("no SOF")


def reading_dump(root) -> dict:
    from pathlib import Path
    root = Path(root)
    files = {
        "cp1252": ("Zoé Martin/INBOX/1.eml", cp1252_message()),
        "html": ("Zoé Martin/INBOX/2.eml", html_message()),
        "html_copy": ("Paul Roux/Sent/7.eml", html_message(b"Received: from mx.example.org by mail.example.org; "
                                                          b"Thu, 2 Mar 2017 10:00:05 +0100\r\n")),
        "forward": ("Zoé Martin/INBOX/3.eml", forward_of_forward()),
    }
    out = {}
    for name, (rel, data) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[name] = rel
    return out


def build_reading(tmp, index: bool = True):
    """The reading dump scanned (and indexed): (dump, manifest, db or None, {name: locator})."""
    from pathlib import Path
    from leaktriage import Options, scan
    tmp = Path(tmp)
    dump = tmp / "dump"
    locs = reading_dump(dump)
    manifest = tmp / "m.jsonl"
    scan(str(dump), str(manifest), Options(workers=1))
    db = None
    if index:
        from leaktriage.search.build import build_index
        db = tmp / "triage.db"
        build_index(str(manifest), str(dump), str(db), workers=1)
    return dump, manifest, db, locs
