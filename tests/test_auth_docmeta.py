"""Attachment metadata readers (real Word/PDF files from the corpora, generated OOXML/PDF) and
document indicators."""
import io
import re
import os
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leaktriage.auth import document_indicators, script_of  # noqa: E402
from leaktriage.content.docmeta import docmeta  # noqa: E402

CORPORA = Path(os.environ.get("LEAKTRIAGE_CORPORA") or REPO.parent / "shared" / "corpora")
TNEF = "jstedfast-mimekit/UnitTests/TestData/tnef"


def need_corpus(sub):
    p = CORPORA / sub
    if not p.exists():
        msg = "corpus path %s is missing (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def docx(creator="Jean Dupont", modified="2017-05-03T09:12:00Z", created="2016-01-10T08:00:00Z",
         last="Marie &amp; Co"):
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<dc:creator>%s</dc:creator><cp:lastModifiedBy>%s</cp:lastModifiedBy><cp:revision>3</cp:revision>'
            '<dcterms:created xsi:type="dcterms:W3CDTF">%s</dcterms:created>'
            '<dcterms:modified xsi:type="dcterms:W3CDTF">%s</dcterms:modified></cp:coreProperties>'
            % (creator, last, created, modified))
    app = ('<?xml version="1.0"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
           '<Application>Microsoft Office Word</Application><AppVersion>16.0000</AppVersion>'
           '<Company>En Marche</Company><TotalTime>12</TotalTime></Properties>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("docProps/core.xml", core)
        z.writestr("docProps/app.xml", app)
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def test_ooxml():
    m = docmeta(docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert m == {"format": "ooxml", "creator": "Jean Dupont", "author": "Jean Dupont", "last_modified_by": "Marie & Co",
                 "created": "2016-01-10T08:00:00Z", "modified": "2017-05-03T09:12:00Z", "revision": "3",
                 "application": "Microsoft Office Word", "app_version": "16.0000", "company": "En Marche",
                 "total_time_minutes": "12"}


def test_pdf_info_and_xmp():
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Title (Budget \\(draft\\)) /Author <FEFF0418043204300301043D> /Producer (LibreOffice 5.2)"
           b" /CreationDate (D:20170101120000+01'00') /ModDate (D:20170502100000Z) >>\nendobj\n"
           b"2 0 obj\n<< /Type /Metadata /Subtype /XML >>\nstream\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF>"
           b"<rdf:Description xmp:CreateDate=\"x\"><xmp:CreateDate>2017-01-01T12:00:00+01:00</xmp:CreateDate>"
           b"<xmp:ModifyDate>2017-05-02T10:00:00Z</xmp:ModifyDate><xmp:CreatorTool>Writer</xmp:CreatorTool>"
           b"<dc:creator><rdf:Seq><rdf:li>Ivan</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>\n"
           b"endstream\nendobj\ntrailer << /Info 1 0 R >>\n%%EOF\n"
           b"1 0 obj\n<< /Author (Someone Else) /ModDate (D:20170503080000Z) >>\nendobj\n%%EOF\n")
    m = docmeta(pdf, "application/pdf")
    assert m["format"] == "pdf" and m["revisions"] == 2
    assert m["author"] == "Someone Else"             # the incremental update wins
    assert m["title"] == "Budget (draft)" and m["producer"] == "LibreOffice 5.2"
    assert m["created"] == "2017-01-01T11:00:00Z" and m["modified"] == "2017-05-03T08:00:00Z"
    assert m["xmp_author"] == "Ivan" and m["xmp_create_date"] == "2017-01-01T11:00:00Z"
    assert m["xmp_creator_tool"] == "Writer"
    first = pdf.split(b"%%EOF")[0]
    assert docmeta(first, "application/pdf")["author"] == "\u0418\u0432\u0430\u0301\u043d"


def test_real_word_and_pdf_files():
    doc = need_corpus(TNEF + "/MAPI_ATTACH_DATA_OBJ/VIA_Nytt_1402.doc").read_bytes()
    m = docmeta(doc, "application/msword")
    pytest.importorskip("olefile")
    assert (m["format"], m["author"], m["last_modified_by"], m["company"], m["application"], m["code_page"]) == \
        ("ole", "Siri Dale", "Nina Aanensen", "VIA Gruppen AS", "Microsoft Word 9.0", 1252)
    assert (m["created"], m["modified"]) == ("2002-08-20T07:57:00Z", "2002-08-20T08:00:00Z")
    pdf = need_corpus(TNEF + "/MAPI_ATTACH_DATA_OBJ/VIA_Nytt_1402.pdf").read_bytes()
    m = docmeta(pdf, "application/pdf")
    assert (m["author"], m["producer"], m["created"]) == ("Siri Dale", "Acrobat Distiller 5.0 (Windows)", "2002-08-20T08:08:29Z")


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04garbage", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
                                  b"%PDF-1.7 /Author (unterminated", b"plain text"])
def test_hostile_documents_never_raise(data):
    m = docmeta(data, "application/octet-stream")
    assert m is None or isinstance(m, dict)


def test_document_indicators():
    sent = datetime(2017, 5, 3, 9, 0, tzinfo=timezone.utc)
    after = docmeta(docx(modified="2017-05-04T09:00:00Z"), "")
    before = docmeta(docx(modified="2017-05-03T08:00:00Z"), "")
    ind = document_indicators(sent, [dict(after, locator="a.eml#1.2"), before])
    assert [i["code"] for i in ind] == ["auth.doc_modified_after_sent"]
    assert ind[0]["evidence"]["doc"] == "a.eml#1.2" and ind[0]["evidence"]["delta_seconds"] == 86400
    batch = [docmeta(docx(created="201%d-01-01T00:00:00Z" % k, modified="2017-04-30T22:0%d:00Z" % k), "") for k in range(4)]
    ind = document_indicators(sent, batch)
    assert [i["code"] for i in ind] == ["auth.doc_batch_modified"] and len(ind[0]["evidence"]["docs"]) == 4
    spread = [docmeta(docx(created="2012-01-01T00:00:00Z", modified="2017-04-%02dT10:00:00Z" % (k + 1)), "") for k in range(4)]
    assert document_indicators(sent, spread) == []
    cyr = docmeta(docx(creator="\u0418\u0432\u0430\u043d \u041f\u0435\u0442\u0440\u043e\u0432", last="Jean", modified="2017-05-02T09:00:00Z"), "")
    assert document_indicators(sent, [cyr]) == []   # a script is foreign only to a whole mailbox
    from collections import Counter
    from leaktriage.auth.mailbox import foreign_script
    doc = ("a.eml", "a.eml#1.2", "ab" * 32, "note.docx", "ooxml", cyr["author"], cyr.get("last_modified_by"),
           cyr.get("created"), cyr.get("modified"), "2017-05-03T09:00:00Z")
    ind = foreign_script([doc], Counter({"LATIN": 120}))
    assert [i["code"] for i in ind] == ["auth.doc_author_foreign_script"] and ind[0]["evidence"]["script"] == "CYRILLIC"
    assert ind[0]["evidence"]["docs"] == ["a.eml#1.2"] and ind[0]["evidence"]["field"] == "author"
    assert foreign_script([doc], Counter({"LATIN": 120, "CYRILLIC": 1})) == []
    assert foreign_script([doc], Counter()) == []
    assert script_of("Jean-Luc") == "LATIN" and script_of("12 34") is None


def test_pdf_xmp_attribute_form():
    pdf = (b"%PDF-1.6\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF><rdf:Description rdf:about=\"\" "
           b"xmp:CreateDate=\"2017-01-01T12:00:00+01:00\" xmp:ModifyDate=\"2017-01-02T12:00:00Z\" "
           b"pdf:Producer=\"Microsoft Word\"/></rdf:RDF></x:xmpmeta>\n%%EOF\n")
    m = docmeta(pdf, "application/pdf")
    assert (m["created"], m["modified"], m["xmp_producer"]) == ("2017-01-01T11:00:00Z", "2017-01-02T12:00:00Z", "Microsoft Word")


def test_script_of_shortcuts_agree_with_unicode_names():
    """script_of skips the Unicode name lookup for ASCII and Latin-range text; on every character
    up to U+024F, alone and beside others, it must answer what the names say."""
    import importlib
    import random
    import unicodedata
    D = importlib.import_module("leaktriage.auth.documents")

    def by_names(text):
        counts = {}
        for ch in text:
            if ch.isalpha():
                word = unicodedata.name(ch, "? ?").split()[0]
                word = "JAPANESE" if word in ("HIRAGANA", "KATAKANA") else word
                counts[word] = counts.get(word, 0) + 1
        return max(counts.items(), key=lambda kv: kv[1])[0] if counts else None

    for c in range(0x250):
        for text in (chr(c), "Zoé " + chr(c), chr(c) * 3):
            assert D.script_of(text) == by_names(text), hex(c)
    rng = random.Random(2017)
    pool = [chr(c) for c in range(0x20, 0x250)] + list("Рошка Георгий Γεια 日本")
    for _ in range(5000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        assert D.script_of(text) == by_names(text), text
    assert D.script_of("Hélène Lefèvre") == "LATIN" and D.script_of("Рошка Георгий Петрович") == "CYRILLIC"


PDF_TOKENS = st.sampled_from([b"/Author", b"/Author ", b"/Title", b"/CreationDate", b"/Creator", b"/ModDate", b"(", b")", b"\\", b"\\(", b"x", b" ",
                              b"<", b">", b"FE", b"\n", b"(a(b)c)", b"<x:xmpmeta", b"</x:xmpmeta>", b"%%EOF",
                              b"%%EOF%%EOF", b"%", b"%%EO", b"<x:xmp"])


@settings(max_examples=400, deadline=None)
@example(b"/Author(/Author(x))")      # a key inside an earlier match's string is not a match
@given(st.lists(PDF_TOKENS, max_size=30).map(b"".join))
def test_pdf_scans_match_the_regex_definitions(buf):
    """The one-pass landmark scan of the PDF reader gives what the plain regular expressions give:
    the last finditer match per key, the %%EOF count, the first XMP packet."""
    import importlib
    dm = importlib.import_module("leaktriage.content.docmeta")
    x = re.search(rb"<x:xmpmeta.*?</x:xmpmeta>", buf, re.S)
    for limit in (dm._PDF_MAX_CANDIDATES, 2):      # the landmark path and the hostile-input path
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dm, "_PDF_MAX_CANDIDATES", limit)
            last, eofs, xmp = dm._pdf_scan(buf)
        for pk, pattern in dm._PDF_KEY_RE.items():
            ms = list(re.finditer(pattern, buf))
            assert (last[pk].span() if last[pk] else None) == (ms[-1].span() if ms else None)
        assert eofs == len(re.findall(rb"%%EOF", buf))
        assert xmp == (x.group(0) if x else None)
