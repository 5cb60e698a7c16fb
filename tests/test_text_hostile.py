"""Hostile input: bombs, entity expansion, deep nesting, random bytes, truncations; the isolated process;
determinism; the problem-code registry."""
import os
import threading
import time
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from leaktriage.text import STATUSES, TEXT_CODES, IsolatedExtractor, TextLimits, extract_text
from leaktriage.text.codes import SEVERITIES
from test_text_common import W, build_pdf, docx, odf, para, rels, zip_bytes


def _check_invariants(r):
    assert r.status in STATUSES
    assert all(p.code in TEXT_CODES and p.severity == TEXT_CODES[p.code][0] and p.message for p in r.problems)
    if r.status in ("failed", "unsupported"):
        assert r.text is None and r.problems, r
    elif r.status == "empty":
        assert r.text == "" and r.problems, r
    else:
        assert r.text and r.text.strip() and r.chars == len(r.text)
        lossy = any(p.severity != "info" for p in r.problems)
        assert (r.status == "partial") == lossy, r


def test_registry_is_well_formed():
    for code, (severity, description) in TEXT_CODES.items():
        assert code.startswith("text.") and code == code.lower() and " " not in code
        assert severity in SEVERITIES and description.endswith(".")


def test_zip_bomb_member_is_not_expanded():
    big = b"<w:document %s><w:body><w:p><w:t>" % W.encode() + b" " * (300 << 20) + b"</w:t></w:p></w:body></w:document>"
    bomb = zip_bytes({"word/document.xml": big})
    assert len(bomb) < 400_000
    r = extract_text(bomb)
    assert (r.format, r.status, r.codes) == ("docx", "failed", ("text.zip_bomb",))
    assert "ratio" in r.problems[0].message


def test_zip_bomb_caught_while_expanding_when_sizes_lie():
    big = b"<w:document %s><w:body>" % W.encode() + para("start").encode() + b"<!--" + b"x" * (40 << 20) + b"-->" \
        + para("end").encode() + b"</w:body></w:document>"
    data = bytearray(zip_bytes({"word/document.xml": big}))
    # make the central directory and local header claim a small expanded size
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = data.find(sig)
        data[i + off:i + off + 4] = (1000).to_bytes(4, "little")
    r = extract_text(bytes(data))
    assert r.status in ("partial", "failed")
    assert {"text.zip_bomb", "text.member_too_large", "text.damaged"} & set(r.codes)


def test_member_size_cap():
    data = docx(para("a" * 5000) + para("tail"))
    r = extract_text(data, limits=TextLimits(max_member_bytes=2000))
    assert r.status == "partial" and "text.member_too_large" in r.codes
    assert r.text.startswith("a" * 100) and "tail" not in r.text


def test_billion_laughs_and_external_entities_are_refused():
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
           '<w:document %s><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>' % W)
    r = extract_text(zip_bytes({"word/document.xml": lol}))
    assert (r.status, r.codes) == ("failed", ("text.xml_forbidden",))
    xxe = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><x>&e;</x>'
           '</office:document-content>')
    data = odf("odt", "<office:text/>")
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["content.xml"] = xxe
    r = extract_text(zip_bytes(members))
    assert (r.status, r.codes) == ("failed", ("text.xml_forbidden",))
    r = extract_text(b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY b 'c'>]><a>&b;</a>")
    assert (r.format, r.status, r.codes) == ("xml", "failed", ("text.xml_forbidden",))


def test_deep_xml_nesting_is_skipped_not_recursed():
    deep = para("top") + "<w:x>" * 20000 + para("deep") + "</w:x>" * 20000 + para("after")
    r = extract_text(docx(deep))
    assert (r.status, r.codes) == ("partial", ("text.depth_limit",))
    assert [ln for ln in r.text.split("\n") if ln] == ["top", "after"]


def test_input_size_limit():
    r = extract_text(build_pdf([("text", ["x" * 50])]), limits=TextLimits(max_bytes=100))
    assert (r.format, r.status, r.text, r.codes) == ("pdf", "failed", None, ("text.too_large",))


def test_html_flood_is_bounded_by_chars_and_time():
    data = b"<div>" * 200000 + b"word " * 200000
    t = time.monotonic()
    r = extract_text(data, limits=TextLimits(max_chars=1000))
    assert time.monotonic() - t < 60      # a hang guard (quadratic would be hours), not a speed measure
    assert (r.status, r.chars, r.codes) == ("partial", 1000, ("text.truncated",))


SAMPLES = {
    "pdf": build_pdf([("text", ["un", "deux"]), ("text", ["trois"])], flate=True),
    "docx": docx(para("bonjour") + para("monde")),
    "xlsx": zip_bytes({"xl/workbook.xml": "<workbook/>", "xl/worksheets/sheet1.xml":
                       '<worksheet><sheetData><row><c t="inlineStr"><is><t>x</t></is></c></row></sheetData></worksheet>'}),
    "odt": odf("odt", "<office:text><text:p>bonjour</text:p></office:text>"),
    "rtf": rb"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 caf\'e9\par fin}",
    "html": b"<html><body><p>un</p><p>deux</p></body></html>",
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_truncation_and_single_byte_flip_gives_a_typed_result(kind):
    data = SAMPLES[kind]
    step = max(1, len(data) // 150)
    for cut in range(0, len(data), step):
        _check_invariants(extract_text(data[:cut], filename="x." + kind))
    for i in range(0, len(data), step):
        flipped = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        _check_invariants(extract_text(flipped, filename="x." + kind))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.sampled_from([None, "application/pdf", "text/html", "application/rtf",
                                                  "application/vnd.oasis.opendocument.text"]),
       st.sampled_from([None, "a.docx", "b.xlsx", "c.pptx", "d.csv"]),
       st.sampled_from([b"", b"%PDF-1.4\n", b"PK\x03\x04", b"{\\rtf1 ", b"<html>", b"<?xml version='1.0'?>"]))
def test_random_bytes_never_raise(data, ctype, name, prefix):
    _check_invariants(extract_text(prefix + data, content_type=ctype, filename=name))


def test_not_bytes_is_a_typed_failure():
    r = extract_text("a str, not bytes")
    assert (r.status, r.codes) == ("failed", ("text.internal_error",))
    assert extract_text(bytearray(b"bytes-like")).text == "bytes-like"


def test_results_are_deterministic():
    for kind, data in SAMPLES.items():
        a = extract_text(data).to_dict()
        b = extract_text(bytes(data)).to_dict()
        assert a == b, kind


# ------------------------------------------------------------------------------------------------
# IsolatedExtractor: the wall-clock and memory limits a C library needs

def test_isolated_extractor_gives_the_same_result():
    data = build_pdf([("text", ["isolated words"])])
    with IsolatedExtractor() as ex:
        r = ex.extract(data, filename="a.pdf")
        assert r == extract_text(data, filename="a.pdf")
        assert ex.extract(b"plain").text == "plain"      # the same child serves the next document


SLOW_RTF = b"{\\rtf1 " + b"\\b x" * 600_000 + b"}"     # 2.4 MB, 1.2 million tokens: seconds of pure Python


def test_isolated_extractor_kills_at_the_wall_clock_limit_and_recovers():
    slow = SLOW_RTF
    with IsolatedExtractor(TextLimits(wall_timeout=0.5, time_budget=None)) as ex:
        ex.extract(b"warm up")                                     # the child is started and imported
        r = ex.extract(slow, filename="big.rtf")
        assert (r.format, r.status, r.text, r.codes) == ("rtf", "failed", None, ("text.timeout",))
        # the replacement child's start-up does not count against the next document's limit, however
        # busy the machine
        assert ex.extract(b"after the kill").text == "after the kill"


def test_isolated_extractor_reports_a_dead_child():
    slow = SLOW_RTF
    with IsolatedExtractor(TextLimits(wall_timeout=60, time_budget=None)) as ex:
        ex.extract(b"warm up")
        pid = ex._proc.pid
        threading.Timer(0.3, os.kill, (pid, 9)).start()
        r = ex.extract(slow, filename="big.rtf")
        assert (r.status, r.codes) == ("failed", ("text.crashed",))
        assert "signal 9" in r.problems[0].message
        assert ex.extract(b"next").status == "ok"


def _vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc to size the limit")
def test_isolated_extractor_memory_limit():
    with IsolatedExtractor() as probe:
        probe.extract(b"warm up")
        base = _vm_size(probe._proc.pid)            # the child's address space once warm
    data = b"x" * (160 << 20)                        # receiving it alone needs 160 MiB more than 100 MiB of room
    with IsolatedExtractor(TextLimits(max_memory=base + (100 << 20), time_budget=None)) as ex:
        r = ex.extract(data, filename="huge.txt")
        assert (r.format, r.status, r.codes) == ("txt", "failed", ("text.memory_limit",))
        assert ex.extract(b"small").status == "ok"
