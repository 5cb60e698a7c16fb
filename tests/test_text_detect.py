"""Format detection: the bytes decide first, then libmagic, the content type, the extension."""
import pytest

from leaktriage.text import FORMATS, READERS, detect_format, extract_text
from leaktriage.text.detect import BY_NAME
from test_text_common import build_pdf, docx, odf, para, zip_bytes

DOCX_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_format_table_is_consistent():
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names))
    for f in FORMATS:
        assert f.reader is None or f.reader in READERS, f.name
    # every reader is reachable from the table
    assert set(READERS) == {f.reader for f in FORMATS if f.reader}


@pytest.mark.parametrize("data,expected,by", [
    (build_pdf([("text", ["x"])]), "pdf", "signature"),
    (b"junk before the header\n" + build_pdf([("text", ["x"])]), "pdf", "signature"),
    (docx(para("x")), "docx", "zip-members"),
    (zip_bytes({"xl/workbook.xml": "<workbook/>"}), "xlsx", "zip-members"),
    (zip_bytes({"ppt/presentation.xml": "<p/>"}), "pptx", "zip-members"),
    (odf("odt", "<office:text/>"), "odt", "zip-members"),
    (odf("ods", "<office:spreadsheet/>"), "ods", "zip-members"),
    (odf("odp", "<office:presentation/>"), "odp", "zip-members"),
    (zip_bytes({"notes.txt": "hello"}), "zip", "zip-members"),
    (b"{\\rtf1\\ansi hello}", "rtf", "signature"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg", "signature"),
    (b"\x89PNG\r\n\x1a\n....", "png", "signature"),
    (b"<!DOCTYPE html><html><body>x</body></html>", "html", "text-sniff"),
    (b"<?xml version='1.0'?><root>x</root>", "xml", "text-sniff"),
    (b"plain words\n", "txt", "text-sniff"),
    (b"\x00\x01\x02\x03binary", "unknown", "none"),
])
def test_bytes_decide(data, expected, by):
    d = detect_format(data)
    assert (d.format.name, d.detected_by) == (expected, by)


def test_content_beats_name_and_type_and_says_so():
    pdf = build_pdf([("text", ["hello world"])])
    r = extract_text(pdf, content_type="image/jpeg", filename="photo_0042.jpg")   # make_dump's pdf_as_jpg
    assert (r.format, r.status, r.text) == ("pdf", "ok", "hello world")
    assert r.codes == ("text.type_mismatch",)
    assert "jpeg" in r.problems[0].message


def test_hints_pick_plain_text_flavours():
    assert detect_format(b"a;b;c\n1;2;3\n", filename="donateurs.csv").format.name == "csv"
    assert detect_format(b"BEGIN:VCALENDAR\r\n", content_type="text/calendar").format.name == "ics"
    assert detect_format(b"a;b\n", content_type="text/plain; charset=utf-8").format.name == "txt"
    # a text hint never turns markup into plain text, nor the reverse
    assert detect_format(b"<html><body><p>x</p></body></html>", filename="x.txt").format.name == "html"


def test_binary_without_signature_keeps_its_declared_format():
    # a PDF whose header was lost is still a PDF for the reader, which then says it is damaged
    d = detect_format(b"\x93\x00garbage\x00\x01", content_type="application/pdf")
    assert (d.format.name, d.detected_by) == ("pdf", "content-type")
    r = extract_text(b"\x93\x00garbage\x00\x01", content_type="application/pdf")
    assert (r.status, r.codes) == ("failed", ("text.input_truncated", "text.damaged"))


def test_truncated_zip_is_told_apart_by_its_local_headers():
    data = docx(para("first words") + para("x" * 5000))
    cut = data[:len(data) - 200]           # central directory gone
    d = detect_format(cut)
    assert d.format.name == "docx" and d.note == "zip-unreadable"


def test_ole2_encrypted_office_package():
    # a password-protected .docx/.xlsx is an OLE2 file holding an "EncryptedPackage" stream
    ole = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 50
           + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 300)
    r = extract_text(ole, filename="budget.xlsx")
    assert (r.format, r.status, r.codes, r.text) == ("xlsx", "failed", ("text.encrypted",), None)
    r = extract_text(ole)
    assert (r.format, r.status, r.codes) == ("docx", "failed", ("text.encrypted",))


def test_legacy_office_and_images_are_unsupported_with_a_reason():
    doc = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "WordDocument".encode("utf-16-le") + b"\x00" * 100
    r = extract_text(doc, filename="old.doc")
    assert (r.format, r.status, r.codes, r.text) == ("doc", "unsupported", ("text.unsupported",), None)
    r = extract_text(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", filename="scan.jpg")
    assert (r.format, r.status, r.codes) == ("jpeg", "unsupported", ("text.needs_ocr",))
    assert BY_NAME["jpeg"].family == "image"
