"""Every document of a generated dump (make_dump.py --doc-markers, run at test time): the codeword planted
in each document is found in its extracted text, for every document type the generator makes."""
import collections
import io
import zipfile

import pytest

from leaktriage.text import extract_text
from test_text_common import documents, generate_dump


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("text-dump") / "dump"
    truth = generate_dump(out, messages=300, seed=3)
    docs = list(documents(out, truth))
    assert docs, "the generator made no attachment"
    return docs


def _kind(a):
    if a["true_type"] == "pdf":
        if not a.get("filename", "").lower().endswith(".pdf"):
            return "pdf-named-otherwise"
        return "pdf-flate" if a.get("pdf_flate") else "pdf-plain"
    return a["true_type"]


def test_marker_in_every_generated_document(generated):
    found = collections.Counter()
    total = collections.Counter()
    missing = []
    for a, data in generated:
        if "marker" not in a or data is None:
            continue
        kind = _kind(a)
        if kind == "zip":   # an archive: the scan opens it; its members are documents like any other
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                results = [extract_text(z.read(n), filename=n) for n in z.namelist()]
            text = "\n".join(r.text or "" for r in results)
            assert all(r.status in ("ok", "unsupported") for r in results)
        else:
            r = extract_text(data, content_type=a.get("declared_content_type"), filename=a.get("filename"))
            assert r.status == "ok", (kind, r.status, r.codes)
            assert r.format == a["true_type"], (kind, r.format)
            text = r.text
        total[kind] += 1
        if a["marker"] in text:
            found[kind] += 1
        else:
            missing.append((kind, a["marker"], a.get("filename")))
    assert not missing
    # every document type the generator plants markers in was seen (pdf both plain and FlateDecode)
    assert {"pdf-plain", "pdf-flate", "docx", "xlsx", "txt", "csv", "zip"} <= set(total), total
    assert found == total


def test_other_generated_attachments_get_their_status(generated):
    seen = collections.defaultdict(set)
    for a, data in generated:
        if data is None:
            continue
        r = extract_text(data, content_type=a.get("declared_content_type"), filename=a.get("filename"))
        seen[a["true_type"]].add((r.format, r.status, r.codes))
    assert seen["jpeg"] == {("jpeg", "unsupported", ("text.needs_ocr",))}
    assert seen["png"] == {("png", "unsupported", ("text.needs_ocr",))}
    assert {s for s in seen["exe"]} <= {("exe", "unsupported", ("text.unsupported",)),
                                        ("exe", "unsupported", ("text.type_mismatch", "text.unsupported"))}
    assert all(fmt == "ics" and status == "ok" for fmt, status, _ in seen["ics"])
    assert all(status == "unsupported" for _, status, _ in seen["tnef"])


def test_generated_exe_named_pdf_is_flagged(generated):
    exes = [(a, d) for a, d in generated if a["true_type"] == "exe" and d is not None
            and a.get("filename", "").lower().endswith(".pdf")]
    for a, data in exes:
        r = extract_text(data, content_type=a.get("declared_content_type"), filename=a["filename"])
        assert (r.format, r.status, r.codes) == ("exe", "unsupported", ("text.type_mismatch", "text.unsupported"))
