"""Issue #14 (trust), mail side, item 4: charset labels that name Python codecs which are not text
encodings (rot13, hex, zlib, base64, undefined, idna, ...) in a body, an RFC 2047 encoded-word or
an RFC 2231 parameter crashed message analysis (the message record was lost). Only real text
encodings may decode text; what was refused is recorded (charset.refused).

The scan test fails on the code before the fix for every label (internal.error, or the label used
as a charset)."""
from __future__ import annotations

import codecs

import pytest

from conftest import by_kind
from leaktriage.mail import charsets
from support.trust_mail import BASIC, codes_at, msg, scan_one

NOT_TEXT = ["rot13", "hex", "zlib", "base64", "punycode", "undefined", "uu", "bz2", "quopri", "idna",
            "mbcs", "raw_unicode_escape", "unicode_escape", "charmap", "rot_13", "base64_codec"]


def _python_knows(label):
    try:
        codecs.lookup(label)
        return True
    except LookupError:
        return False


def _real_text_encoding(name):
    """A codec that decodes bytes to text as a charset does (not a bytes transform, not IDNA
    or escape processing, not the codec that always fails)."""
    info = codecs.lookup(name)
    return info._is_text_encoding and info.name not in (
        "idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "charmap")


@pytest.mark.parametrize("label", NOT_TEXT)
def test_codec_that_is_not_a_text_encoding_is_refused(tmp_path, label):
    lb = label.encode()
    body = b"caf\xe9 \\u0041 \\N{BULLET} \xff\xfe end\r\n"
    data = msg(BASIC[0], BASIC[1], b"Subject: =?" + lb + b"?Q?caf=E9_=5Cu0041?=", BASIC[3],
               b"Content-Type: multipart/mixed; boundary=zz",
               body=b"--zz\r\nContent-Type: text/plain; charset=" + lb + b"\r\n"
                    b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body +
                    # bytes no charset detector recognises: the declared label is the last resort
                    b"--zz\r\nContent-Type: text/plain; charset=" + lb + b"\r\n\r\n\x00\xff\x00\xfe\r\n"
                    b"--zz\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Disposition: attachment; filename*=" + lb + b"''caf%E9%5Cu0041.txt\r\n\r\n"
                    b"data\r\n--zz--\r\n")
    recs = scan_one(tmp_path, "c.eml", data)
    f = by_kind(recs, "file")[0]
    msgs = by_kind(recs, "message")
    assert f["messages"] == len(msgs) == 1
    want = "charset.refused" if _python_knows(label) else "charset.unknown"
    for path in ("1.1", "1.2"):
        text = [p for p in by_kind(recs, "part") if p["path"] == path][0]
        assert text["charset_declared"] == label and _real_text_encoding(text["charset"])
        assert want in codes_at(recs, "c.eml#" + path)
    att = [p for p in by_kind(recs, "part") if p["path"] == "1.3"][0]
    assert att["filename"].startswith("caf") and att["filename"].endswith(".txt")
    if want == "charset.refused":
        assert "charset.refused" in codes_at(recs, "c.eml#1.3")      # RFC 2231 parameter
        assert "charset.refused" in codes_at(recs, "c.eml")          # RFC 2047 word in Subject
    assert msgs[0]["subject"].startswith("caf")


def test_lookup_allows_only_text_encodings():
    for label in NOT_TEXT:
        assert charsets.lookup(label) is None, label
        assert charsets.refused(label) == _python_knows(label), label
    for label in ("utf-8", "iso-8859-15", "windows-1251", "koi8-r", "utf-16", "shift_jis", "gb2312",
                  "big5", "utf-7", "macintosh", "ks_c_5601-1987", "latin1"):
        assert charsets.lookup(label) and not charsets.refused(label), label
    # chardet's guesses go through the same gate
    assert all(_real_text_encoding(charsets.decode_text(b, "rot13").charset)
               for b in (b"\xe9t\xe9", b"\\u00e9\xff", "привет".encode("koi8-r"), b"\x00\xff\x00\xfe"))


@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252", "iso-8859-15"])
def test_utf8_text_under_a_single_byte_label_is_read_as_utf8(tmp_path, label):
    """A mailer that labels everything latin-1 sends UTF-8 bytes: read as labelled, 'trésorier' became
    'trÃ©sorier' in show --text and in the index, and a search for trésorier missed the message (266
    parts of the 10,000-message generated dump). The part is read as UTF-8, the label recorded as wrong."""
    body = "Le trésorier a validé la note, à bientôt.\r\n".encode("utf-8")
    data = msg(*BASIC, b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=" + label.encode(),
               b"Content-Transfer-Encoding: 8bit", body=body)
    recs = scan_one(tmp_path, "m.eml", data)
    part = [r for r in by_kind(recs, "part") if r["locator"] == "m.eml#1"][0]
    assert (part["charset"], part["charset_source"], part["charset_method"]) == ("utf-8", "detected", "utf-8")
    assert part["charset_declared"] == label
    assert "charset.mislabelled" in codes_at(recs, "m.eml#1")


def test_real_latin1_text_keeps_its_label(tmp_path):
    body = "Le trésorier a validé la note, à bientôt. Ça coûte 5 €.\r\n".encode("cp1252")
    data = msg(*BASIC, b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=windows-1252",
               b"Content-Transfer-Encoding: 8bit", body=body)
    recs = scan_one(tmp_path, "m.eml", data)
    part = [r for r in by_kind(recs, "part") if r["locator"] == "m.eml#1"][0]
    assert (part["charset"], part["charset_source"]) == ("cp1252", "declared")
    assert "charset.mislabelled" not in codes_at(recs, "m.eml#1")
    # and text in a multi-byte charset is never taken for UTF-8 by this rule
    assert charsets.single_byte("cp1252") and not charsets.single_byte("shift_jis") \
        and not charsets.single_byte("utf-8") and not charsets.single_byte("gb2312")


def test_seven_bit_charsets_are_not_taken_for_utf8():
    """ISO-2022-JP is pure ASCII bytes with escape sequences: valid UTF-8, and still not UTF-8 (MimeKit's
    japanese.txt and mikel-mail's japanese_iso_2022.eml read as escape codes with a first cut of the rule)."""
    data = "すみません。".encode("iso2022_jp")
    res = charsets.decode_text(data, "iso-2022-jp")
    assert (res.text, res.charset, res.source) == ("すみません。", "iso2022_jp", "declared")
    assert not charsets.single_byte("iso2022_jp")


def test_utf8_with_a_broken_byte_keeps_its_label(tmp_path):
    """A declared UTF-8 text with one invalid byte (a cut base64 line) went to chardet, which guessed
    hp-roman8, cp850 or EBCDIC cp500 at confidence 0.02-0.15 (spamscope's mail_test_6, flanker's
    enclosed-broken-body.eml): every accented letter came out wrong. Read it as declared, the broken
    byte replaced and counted."""
    text = "Réunion du comité à Besançon: l'ordre du jour est arrêté. " * 20
    body = text.encode("utf-8") + b"\xff" + "Fin du message, à bientôt.\r\n".encode("utf-8")
    res = charsets.decode_text(body, "utf-8")
    assert res.charset == "utf-8" and res.replaced_bytes == 1 and "charset.replaced" in res.problems
    assert "Réunion du comité à Besançon" in res.text and "à bientôt" in res.text
    data = msg(*BASIC, b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=utf-8",
               b"Content-Transfer-Encoding: 8bit", body=body)
    recs = scan_one(tmp_path, "m.eml", data)
    part = [r for r in by_kind(recs, "part") if r["locator"] == "m.eml#1"][0]
    assert part["charset"] == "utf-8"
