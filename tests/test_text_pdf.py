"""PDF text (pypdfium2): real generated PDFs, compressed streams, ToUnicode, encryption, damage, scans, limits."""
import random
import struct

import pytest

from leaktriage.text import TextLimits, extract_text
from test_text_common import assemble_pdf, build_pdf, make_dump_module, stream


def _jpeg_size(j):
    i = 2
    while i < len(j):
        marker, length = j[i + 1], struct.unpack(">H", j[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", j[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise ValueError("no SOF")


def _meta(**kw):
    m = dict(title="Compte rendu (été) 2017", author="Hélène", created_pdf="D:20170301", modified_pdf="D:20170301",
             last_modified_by="x", created_w3c="2017-03-01T10:00:00Z", modified_w3c="2017-03-01T10:00:00Z", lang="fr")
    m.update(kw)
    return m


@pytest.mark.parametrize("flate", [False, True])
def test_make_dump_pdf_marker_title_and_body(flate):
    md = make_dump_module()
    data = md.make_pdf(random.Random(3), 6000, _meta(marker="kestrel-4821", flate=flate,
                                                     body=["Total : 12 500 EUR", "Réf. (x) \\ é"]))
    r = extract_text(data, content_type="application/pdf", filename="cr.pdf")
    assert (r.format, r.method, r.status, r.pages, r.codes) == ("pdf", "pypdfium2", "ok", 1, ())
    lines = r.text.split("\n")
    assert lines[0] == "Compte rendu (été) 2017"
    assert "Total : 12 500 EUR" in lines and "Réf. (x) \\ é" in lines
    assert lines[-1] == "Réf. : kestrel-4821"
    assert r.chars == len(r.text)


def test_pages_in_order_separated_by_form_feeds():
    data = build_pdf([("text", ["page one", "still one"]), ("text", ["page two"]), ("text", ["page three"])],
                     flate=True)
    r = extract_text(data)
    assert r.text.split("\f") == ["page one\nstill one", "page two", "page three"]
    assert r.pages == 3 and r.status == "ok"


def test_tounicode_map_decides_the_characters():
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def\n"
            b"1 begincodespacerange <00> <FF> endcodespacerange\n"
            b"3 beginbfchar <01> <0048> <02> <00E9> <03> <0101> endbfchar\n"
            b"1 beginbfrange <10> <12> <03B1> endbfrange\nendcmap CMapName currentdict /CMap defineresource pop end end")
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
            4: stream(b"BT /F1 12 Tf 72 700 Td <010203101112> Tj ET"),
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
            6: stream(cmap)}
    r = extract_text(assemble_pdf(objs))
    assert (r.status, r.text) == ("ok", "H\u00e9\u0101\u03b1\u03b2\u03b3")


def test_lines_stay_whole_in_content_stream_order():
    # PDFium gives text in content-stream order (what the authoring program wrote, which is the reading
    # order of nearly every generated PDF); it does not re-sort lines by position: docs/text.md measures it
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
            4: stream(b"BT /F1 12 Tf 72 600 Td (last line) Tj ET BT /F1 12 Tf 72 700 Td (first line) Tj ET "
                      b"BT /F1 12 Tf 72 650 Td (middle line) Tj ET"),
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    assert extract_text(assemble_pdf(objs)).text == "last line\nfirst line\nmiddle line"


def test_user_password_is_encrypted_failure():
    data = build_pdf([("text", ["the secret plan"])], encrypt=("s3cret", "owner"))
    r = extract_text(data)
    assert (r.format, r.status, r.text, r.codes) == ("pdf", "failed", None, ("text.encrypted",))
    assert "password" in r.problems[0].message


def test_empty_user_password_is_read_and_reported():
    data = build_pdf([("text", ["permissions only"])], encrypt=("", "owner"))
    assert b"permissions only" not in data          # the stream really is encrypted
    r = extract_text(data)
    assert (r.status, r.text, r.codes) == ("ok", "permissions only", ("text.encrypted_readable",))
    assert r.problems[0].severity == "info"


def test_scanned_pdf_has_no_text_layer():
    md = make_dump_module()
    jpeg = md.make_scan_jpeg(["ORDONNANCE", "Dr Martin - Paracetamol 1 g"])   # make_dump's scanned prescription
    w, h = _jpeg_size(jpeg)
    r = extract_text(build_pdf([("image", jpeg, w, h), ("image", jpeg, w, h)]))
    assert (r.status, r.text, r.pages, r.codes) == ("empty", "", 2, ("text.no_text_layer",))
    assert r.problems[0].severity == "warning"
    # the JPEG itself: an image, needs OCR
    assert extract_text(jpeg, filename="ordonnance.jpg").codes == ("text.needs_ocr",)


def test_scanned_pages_among_text_pages():
    md = make_dump_module()
    jpeg = md.make_scan_jpeg(["PAGE 2"])
    w, h = _jpeg_size(jpeg)
    r = extract_text(build_pdf([("text", ["cover letter"]), ("image", jpeg, w, h), ("text", ["annex"])]))
    assert (r.status, r.codes) == ("partial", ("text.partial_text_layer",))
    assert r.text.split("\f") == ["cover letter", "", "annex"]
    assert "pages 2" in r.problems[0].message


def test_blank_pdf_is_empty_not_scanned():
    r = extract_text(build_pdf([("blank",)]))
    assert (r.status, r.text, r.codes) == ("empty", "", ("text.empty",))


def test_damaged_pdf_is_a_typed_failure():
    r = extract_text(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    assert (r.format, r.status, r.text, r.codes) == ("pdf", "failed", None, ("text.damaged",))


def test_pdf_without_eof_marker_is_read_and_flagged():
    r = extract_text(build_pdf([("text", ["words before the cut"])], eof=False))
    assert (r.status, r.text, r.codes) == ("partial", "words before the cut", ("text.input_truncated",))


def test_truncated_pdf_at_every_cut_never_raises():
    data = build_pdf([("text", ["alpha %d" % i]) for i in range(6)], flate=True)
    seen = set()
    for cut in range(0, len(data), 37):
        r = extract_text(data[:cut], content_type="application/pdf")
        seen.add(r.status)
        assert r.status in ("failed", "partial", "empty", "ok")
        if r.status == "failed":
            assert r.text is None and any(p.severity == "error" for p in r.problems)
        if cut and b"%%EOF" not in data[:cut][-1024:]:
            assert "text.input_truncated" in r.codes
    assert "failed" in seen


def test_page_limit_and_char_limit():
    data = build_pdf([("text", ["page %d" % i]) for i in range(1, 8)])
    r = extract_text(data, limits=TextLimits(max_pages=3))
    assert (r.status, r.pages, r.text, r.codes) == ("partial", 7, "page 1\fpage 2\fpage 3", ("text.pages_limit",))
    r = extract_text(data, limits=TextLimits(max_chars=10))
    assert (r.status, r.text, r.chars, r.codes) == ("partial", "page 1\fpag", 10, ("text.truncated",))


def test_time_budget_keeps_what_was_read():
    data = build_pdf([("text", ["page %d" % i]) for i in range(1, 4)])
    r = extract_text(data, limits=TextLimits(time_budget=0.0))
    assert r.status in ("empty", "failed", "partial") and "text.timeout" in r.codes
    assert r.problems[-1].severity == "error"
