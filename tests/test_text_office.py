"""DOCX, XLSX, PPTX, ODT, ODS, ODP: make_dump's documents and documents built here with zipfile."""
import random

from leaktriage.text import extract_text
from test_text_common import W, docx, make_dump_module, odf, para, rels, zip_bytes


def _meta(**kw):
    m = dict(title="Budget (été) 2017", author="a", last_modified_by="b", created_w3c="2017-01-02T10:00:00Z",
             modified_w3c="2017-01-02T11:00:00Z", created_pdf="D:2017", modified_pdf="D:2017", lang="fr")
    m.update(kw)
    return m


def test_make_dump_docx():
    md = make_dump_module()
    data = md.make_docx(random.Random(5), 30000, _meta(marker="heron-1234", paras=["Premier paragraphe.", "Second."]))
    r = extract_text(data, filename="lettre.docx")
    assert (r.format, r.method, r.status, r.codes) == ("docx", "ooxml-expat", "ok", ())
    assert r.text.split("\n")[:4] == ["Budget (été) 2017", "Premier paragraphe.", "Second.", "Réf. : heron-1234"]


def test_make_dump_xlsx_rows_cells_and_numbers():
    md = make_dump_module()
    data = md.make_xlsx(random.Random(5), 3000, _meta(marker="heron-1234"))
    r = extract_text(data)
    assert (r.format, r.status, r.pages, r.codes) == ("xlsx", "ok", 1, ())
    lines = r.text.rstrip("\n").split("\n")
    assert lines[0] == "Budget"                       # the sheet's name
    assert lines[-1] == "Réf. : heron-1234"
    for row in lines[1:-1]:                            # word, integer, decimal: one row per line
        word, integer, decimal = row.split("\t")
        assert word and integer.isdigit() and float(decimal) >= 0


XL = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def test_xlsx_shared_inline_bool_formula_results_in_workbook_order():
    wb = ('<workbook %s xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
          '<sheet name="Second" sheetId="2" r:id="rId2"/><sheet name="First" sheetId="1" r:id="rId1"/></sheets></workbook>'
          % XL)
    sst = ('<sst %s><si><t>shared é</t></si><si><r><t>rich </t></r><r><t>text</t></r><rPh><t>PHONETIC</t></rPh></si>'
           '</sst>' % XL)
    sheet1 = ('<worksheet %s><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>42.5</v></c>'
              '<c r="C1" t="b"><v>1</v></c><c r="D1" t="str"><f>CONCAT("a","b")</f><v>ab</v></c></row>'
              '<row r="2"><c r="A2" t="inlineStr"><is><t>inline &amp; more</t></is></c><c r="B2" t="s"><v>1</v></c>'
              '<c r="C2" t="s"><v>99</v></c></row></sheetData></worksheet>' % XL)
    sheet2 = '<worksheet %s><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>other sheet</t></is></c></row>' \
             '</sheetData></worksheet>' % XL
    data = zip_bytes({
        "_rels/.rels": rels(("rId1", "officeDocument", "xl/workbook.xml")),
        "xl/workbook.xml": wb,
        "xl/_rels/workbook.xml.rels": rels(("rId1", "worksheet", "worksheets/sheet1.xml"),
                                           ("rId2", "worksheet", "worksheets/sheet2.xml"),
                                           ("rId3", "sharedStrings", "sharedStrings.xml")),
        "xl/sharedStrings.xml": sst, "xl/worksheets/sheet1.xml": sheet1, "xl/worksheets/sheet2.xml": sheet2,
    })
    r = extract_text(data)
    assert r.status == "ok" and r.pages == 2
    assert r.text == "Second\nother sheet\n\fFirst\nshared é\t42.5\tTRUE\tab\ninline & more\trich text\n"


def test_docx_notes_comments_deletions_tabs_and_no_fallback_duplicates():
    body = ('<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="2880"/><w:tab w:val="right" w:pos="9000"/></w:tabs>'
            '</w:pPr><w:r><w:t>Main text é</w:t></w:r></w:p>'
            + '<w:p><w:r><w:delText>removed words</w:delText></w:r><w:r><w:t xml:space="preserve"> kept</w:t>'
              '<w:tab/><w:t>after tab</w:t><w:br/><w:t>next line</w:t></w:r></w:p>'
            + '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
              '<mc:Choice>' + para("text box") + '</mc:Choice><mc:Fallback>' + para("text box") + '</mc:Fallback>'
              '</mc:AlternateContent>'
            + '<w:p><w:r><w:instrText>HYPERLINK "http://x"</w:instrText></w:r><w:r><w:t>link</w:t></w:r></w:p>')
    data = docx(body, extra={
        "word/footnotes.xml": "<w:footnotes %s>%s</w:footnotes>" % (W, para("a footnote")),
        "word/comments.xml": "<w:comments %s>%s</w:comments>" % (W, para("a comment")),
        "word/header1.xml": "<w:hdr %s>%s</w:hdr>" % (W, para("CONFIDENTIEL")),
    }, doc_rels=[("rId7", "header", "header1.xml"), ("rId5", "footnotes", "footnotes.xml"),
                 ("rId6", "comments", "comments.xml")])
    r = extract_text(data)
    assert (r.status, r.codes) == ("ok", ("text.tracked_changes",))
    assert [ln for ln in r.text.split("\n") if ln] == [
        "Main text é", "removed words kept\tafter tab", "next line", "text box", "link",
        "a footnote", "a comment", "CONFIDENTIEL"]


def test_pptx_slides_in_presentation_order_with_notes():
    A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" ' \
        'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" ' \
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'

    def slide(*paras):
        return '<p:sld %s><p:cSld><p:spTree><p:sp><p:txBody>%s</p:txBody></p:sp></p:spTree></p:cSld></p:sld>' % (
            A, "".join("<a:p><a:r><a:t>%s</a:t></a:r></a:p>" % t for t in paras))
    pres = ('<p:presentation %s><p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/>'
            '</p:sldIdLst></p:presentation>' % A)
    data = zip_bytes({
        "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
        "ppt/presentation.xml": pres,
        "ppt/_rels/presentation.xml.rels": rels(("rId2", "slide", "slides/slide1.xml"),
                                                ("rId3", "slide", "slides/slide2.xml")),
        "ppt/slides/slide1.xml": slide("Shown second"),
        "ppt/slides/slide2.xml": slide("Shown first", "bullet two"),
        "ppt/slides/_rels/slide2.xml.rels": rels(("rId1", "notesSlide", "../notesSlides/notesSlide1.xml")),
        "ppt/notesSlides/notesSlide1.xml": slide("speaker note: do not say this"),
    })
    r = extract_text(data, filename="deck.pptx")
    assert (r.format, r.status, r.pages, r.codes) == ("pptx", "ok", 2, ("text.tracked_changes",))
    assert r.text == "Shown first\nbullet two\nspeaker note: do not say this\n\fShown second\n"


def test_odt_ods_odp():
    r = extract_text(odf("odt", '<office:text><text:h>Titre</text:h><text:p>Bonjour<text:s text:c="3"/>monde'
                                '<text:tab/>x<text:line-break/>suite</text:p></office:text>'))
    assert (r.format, r.method, r.status, r.text) == ("odt", "odf-expat", "ok", "Titre\nBonjour   monde\tx\nsuite\n")
    r = extract_text(odf("ods", '<office:spreadsheet><table:table table:name="Dons"><table:table-row>'
                                '<table:table-cell><text:p>nom</text:p></table:table-cell>'
                                '<table:table-cell table:number-columns-repeated="16000"/>'
                                '<table:table-cell><text:p>1 500</text:p></table:table-cell></table:table-row>'
                                '<table:table-row table:number-rows-repeated="1048000"><table:table-cell/>'
                                '</table:table-row></table:table><table:table table:name="B"><table:table-row>'
                                '<table:table-cell><text:p>deux</text:p><text:p>lignes</text:p></table:table-cell>'
                                '</table:table-row></table:table></office:spreadsheet>'))
    assert (r.format, r.status, r.pages, r.text) == ("ods", "ok", 2, "Dons\nnom\t1 500\n\fB\ndeux lignes\n")
    r = extract_text(odf("odp", '<office:presentation><draw:page><draw:frame><draw:text-box><text:p>slide one'
                                '</text:p></draw:text-box></draw:frame><presentation:notes><text:p>note</text:p>'
                                '</presentation:notes></draw:page><draw:page><text:p>slide two</text:p></draw:page>'
                                '</office:presentation>'))
    assert (r.format, r.status, r.pages, r.text, r.codes) == ("odp", "ok", 2, "slide one\nnote\n\fslide two\n",
                                                              ("text.tracked_changes",))


def test_encrypted_odf_and_zip_member():
    r = extract_text(odf("odt", "<office:text><text:p>x</text:p></office:text>",
                         '<manifest:encryption-data manifest:checksum="x"/>'))
    assert (r.status, r.text, r.codes) == ("failed", None, ("text.encrypted",))
    data = bytearray(docx(para("secret")))
    # set the "encrypted" flag of every member (local headers and central directory)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        while i >= 0:
            data[i + off] |= 1
            i = data.find(sig, i + 4)
    r = extract_text(bytes(data))
    assert r.status == "failed" and "text.encrypted" in r.codes and r.text is None


def test_truncated_docx_is_salvaged_from_local_headers():
    data = docx(para("words that survive the cut") + para("more words"))
    cut = data[:data.find(b"PK\x01\x02")]              # everything up to the central directory
    r = extract_text(cut, filename="lettre.docx")
    assert (r.format, r.status) == ("docx", "partial")
    assert r.text.split("\n")[:2] == ["words that survive the cut", "more words"]
    assert r.codes[0] == "text.input_truncated"


def test_docx_main_part_fallback_and_malformed_main_part():
    data = zip_bytes({"word/document.xml": "<w:document %s><w:body>%s</w:body></w:document>" % (W, para("x")),
                      "_rels/.rels": rels(("rId1", "officeDocument", "word/missing.xml"))})
    r = extract_text(data)
    assert (r.format, r.status, r.codes) == ("docx", "ok", ())     # rels point nowhere: word/document.xml is used
    r = extract_text(zip_bytes({"word/document.xml": "<w:document %s><w:body>" % W}))
    assert (r.status, r.text, r.codes) == ("failed", None, ("text.xml_malformed",))
