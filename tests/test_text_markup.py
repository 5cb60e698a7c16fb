"""RTF, HTML, XML, plain text and CSV."""
import time

import pytest

from leaktriage.text import TextLimits, extract_html, extract_text

RTF = (rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}{\f1\fcharset204 Times New Roman Cyr;}}"
       rb"{\colortbl;\red0\green0\blue0;}{\*\generator Msftedit 5.41;}{\info{\title Secret title}{\author Someone}}"
       rb"\pard Caf\'e9 cr\'e8me\par {\f1 \'cf\'f0\'e8\'e2\'e5\'f2}\par"
       rb"\uc1\u8364? euro\tab tabbed{\*\bkmkstart b1}{\*\bkmkend b1}\par"
       rb"{\pict\pngblip 89504e470d0a1a0a0000000d49484452}"
       rb"{\field{\*\fldinst HYPERLINK \"http://example.org\"}{\fldrslt link text}}\line"
       rb"\bin5 {}\\x after binary\par"
       rb"{\v hidden words}\~nbsp\-soft\_hyphen\emdash\par}")


def test_rtf_codepages_unicode_destinations_binary():
    r = extract_text(RTF, filename="note.rtf")
    assert (r.format, r.method, r.status, r.charset, r.codes) == ("rtf", "rtf-tokenizer", "ok", "cp1252", ())
    assert r.text == ("Café crème\nПривет\n€ euro\ttabbed\nlink text\n after binary\n"
                      "hidden words\u00a0nbspsoft\u2011hyphen\u2014\n")
    assert "Secret title" not in r.text and "Msftedit" not in r.text and "89504e" not in r.text


def test_rtf_double_byte_codepage_and_uc0_and_surrogates():
    r = extract_text(rb"{\rtf1\ansi\ansicpg932{\fonttbl{\f0\fcharset128 MS Mincho;}}\f0 \'93\'fa\'96\'7b\'8c\'ea\par}")
    assert (r.status, r.text) == ("ok", "日本語\n")
    r = extract_text(rb"{\rtf1\ansi\uc0\u26085\u26412 {\uc2\u8364 EU}x \u-10179\u-8704 !}")
    assert r.text == "日本€x \U0001F600!"     # D83D DE00: one surrogate pair, then the delimiting space


def test_rtf_ansicpg_without_font_table():
    r = extract_text(rb"{\rtf1\ansi\ansicpg1251 \'cc\'ee\'f1\'ea\'e2\'e0}")
    assert (r.text, r.charset) == ("Москва", "cp1251")


def test_rtf_truncated_and_too_deep():
    r = extract_text(rb"{\rtf1\ansi unterminated {\b bold")
    assert (r.status, r.text, r.codes) == ("partial", "unterminated bold", ("text.input_truncated",))
    r = extract_text(b"{\\rtf1 " + b"{" * 100000 + b"deep" + b"}" * 100000 + b" after}")
    assert (r.status, r.text, r.codes) == ("partial", " after", ("text.depth_limit",))


HTML = (b"<!DOCTYPE html><html><head><meta charset='windows-1252'><title>T</title><style>p{color:red}</style>"
        b"<script>var x = '<p>not text</p>';</script></head><body><p>Caf\xe9&nbsp;cr&egrave;me &#8364; &amp; "
        b"<b>gras</b></p><div>ligne 2</div><table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"
        b"<img src=x alt='logo du parti'><pre>  garde\n  les espaces</pre><p style='display:none'>cach\xe9</p>"
        b"<!-- comment --></body></html>")


def test_html_bytes_meta_charset_blocks_tables_entities():
    r = extract_text(HTML, content_type="text/html")
    assert (r.format, r.method, r.status, r.charset, r.codes) == ("html", "html-tokenizer", "ok", "cp1252", ())
    assert r.text == ("Café\u00a0crème € & gras\n\nligne 2\n\na\tb\nc\td\n\nlogo du parti\n\n  garde\n  les espaces"
                      "\n\ncaché")


def test_html_unclosed_head_does_not_swallow_the_body():
    r = extract_text(b"<html><head><title>unclosed<body><p>visible words</p>")
    assert (r.status, r.text) == ("ok", "visible words")


def test_html_lists_breaks_and_hostile_markup_stay_linear():
    assert extract_html("<ul><li>one</li><li>two</li></ul>after<br>x<br><br>y <br/> z").text == \
        "one\ntwo\n\nafter\nx\n\ny\nz"
    for hostile in ('<a "' * 100000, "<script \"" * 100000, "<!--" * 100000, "<head" * 100000, "<" * 500000,
                    '<img alt="' * 100000, "<div>" * 200000 + "word"):
        t = time.monotonic()
        r = extract_html(hostile)
        assert time.monotonic() - t < 60, hostile[:10]   # a hang guard (quadratic: hours), not a speed measure
        assert r.status in ("ok", "empty")


def test_extract_html_for_decoded_bodies():
    r = extract_html("<p>Bonjour <i>Hélène</i></p><p>Deuxième</p><script>x()</script>")
    assert (r.format, r.status, r.text, r.detected_by) == ("html", "ok", "Bonjour Hélène\n\nDeuxième", "caller")
    r = extract_html("<style>only style</style>")
    assert (r.status, r.text, r.codes) == ("empty", "", ("text.empty",))
    r = extract_html("<p>" + "mot " * 1000 + "</p>", limits=TextLimits(max_chars=20))
    assert (r.status, r.chars, r.codes) == ("partial", 20, ("text.truncated",))


def test_generic_xml_text_nodes():
    r = extract_text(b"<?xml version='1.0'?><rss><item><title>Un titre</title><desc>Du texte &amp; plus</desc>"
                     b"</item></rss>")
    assert (r.format, r.status, r.text) == ("xml", "ok", "Un titre\nDu texte & plus\n")


@pytest.mark.parametrize("data,hints,charset,codes", [
    ("Réf. : kestrel-4821\r\nligne deux\r\n".encode("utf-8"), {}, "utf-8", ()),
    ("déclaré\n".encode("iso-8859-15"), {"content_type": "text/plain; charset=ISO-8859-15"}, "iso8859-15", ()),
    ("\ufeffavec BOM\n".encode("utf-8"), {}, "utf-8", ()),
    ("utf-16 texte\n".encode("utf-16"), {}, "utf-16", ()),
])
def test_plain_text_charsets(data, hints, charset, codes):
    r = extract_text(data, **hints)
    assert (r.status, r.charset, r.codes) == ("ok", charset, codes)
    assert "\r" not in r.text and r.text.strip()


def test_plain_text_replaced_bytes_are_reported():
    r = extract_text(b"bonjour \x81\x8d\xff\xfe fin", content_type="text/plain; charset=utf-8")
    assert r.status in ("ok", "partial")
    # whatever the charset chosen, either nothing was replaced or the replacement is reported
    assert ("\ufffd" in r.text) == ("text.charset_replaced" in r.codes)


def test_undeclared_8bit_text_says_its_charset_was_guessed_and_how_sure():
    # the scan's rule (leaktriage charsets): UTF-8, else chardet's guess, whatever its confidence. On this short
    # windows-1252 CSV chardet 7 guesses windows-1250 with confidence 0.03 ("Hélène" would read "Hélčne"):
    # the result says so instead of passing a guess off as the truth
    data = ("nom;prénom;ville\r\nDupré;Hélène;Besançon\r\n" * 20).encode("cp1252")
    r = extract_text(data, filename="donateurs.csv")
    assert (r.format, r.status, r.codes) == ("csv", "ok", ("text.charset_guessed",))
    assert r.charset in r.problems[0].message and "confidence" in r.problems[0].message
    assert r.text.startswith("nom;pr") and "Besan" in r.text
