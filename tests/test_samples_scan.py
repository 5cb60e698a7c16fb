"""The bundled sample dump: schema-valid, deterministic, and pinned record counts and problem codes."""
import collections
import json

import pytest

from conftest import SAMPLES, scan_records


@pytest.fixture(scope="module")
def samples_scan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samples")
    return scan_records(SAMPLES, tmp, workers=1, name="one.jsonl"), tmp


def test_schema_valid(samples_scan):
    jsonschema = pytest.importorskip("jsonschema")
    from leaktriage.model.records import json_schema
    (recs, _, _), _ = samples_scan
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for r in recs:
        assert v.is_valid(r), r["locator"]


def test_byte_identical_twice_and_any_workers(samples_scan):
    (_, out1, res1), tmp = samples_scan
    _, out2, res2 = scan_records(SAMPLES, tmp, workers=1, name="two.jsonl")
    _, out3, res3 = scan_records(SAMPLES, tmp, workers=2, name="three.jsonl")
    assert out1.read_bytes() == out2.read_bytes() == out3.read_bytes()
    assert res1.manifest_sha256 == res2.manifest_sha256 == res3.manifest_sha256


def test_pinned_counts_and_codes(samples_scan):
    (recs, _, _), _ = samples_scan
    kinds = collections.Counter(r["record"] for r in recs)
    codes = collections.Counter(r["code"] for r in recs if r["record"] == "problem")
    summary = recs[-1]
    print(json.dumps({"kinds": kinds, "codes": codes}, sort_keys=True))
    assert dict(kinds) == PINNED_KINDS
    assert dict(codes) == PINNED_CODES
    assert summary["messages"]["total"] == kinds["message"]


def test_truth(samples_scan):
    """Facts the sample generator wrote down (samples/truth.json) are what the scan finds."""
    (recs, _, _), _ = samples_scan
    truth = json.loads((SAMPLES.parent / "truth.json").read_text(encoding="utf-8"))
    msgs = {r["locator"]: r for r in recs if r["record"] == "message"}
    parts = {r["locator"]: r for r in recs if r["record"] == "part"}
    assert sorted(msgs) == sorted(t["locator"] for t in truth["messages"])
    for t in truth["messages"]:
        m = msgs[t["locator"]]
        assert m.get("subject") == t["subject"], t["locator"]
        assert m.get("message_id") == t["message_id"], t["locator"]
        if t.get("from"):
            assert [a.get("address") for a in m.get("from", [])] == [t["from"]], t["locator"]
        assert [a.get("address") for a in m.get("to", [])] == t["to"], t["locator"]
        for a in t["attachments"]:
            p = parts[t["locator"] + "#" + a["part"]] if "#" not in t["locator"] else \
                parts[t["locator"].rsplit("#", 1)[0] + "#" + a["part"]]
            if a.get("sha256"):
                assert p["sha256"] == a["sha256"] and p["size"] == a["size"], (t["locator"], a)
            assert p.get("filename") == a["filename"]
    groups = [r for r in recs if r["record"] == "duplicate_group"]
    for kind in ("exact", "canonical"):
        for pair in truth["duplicate_pairs"][kind]:
            assert any(g["kind"] == kind and set(pair) <= set(g["members"]) for g in groups), (kind, pair)
    for lie in truth["lying_extension"]:
        assert parts[lie["locator"]]["magic"] == lie["true_type"]
        assert parts[lie["locator"]]["mismatch"] == ["declared-type", "extension"]
    mal = {r["locator"] for r in recs if r["record"] == "problem"}
    for m in truth["malformed"]:
        assert any(l == m["locator"] or l.startswith(m["locator"] + "#") for l in mal), m


PINNED_KINDS = {"duplicate_group": 4, "file": 38, "mailbox": 4, "message": 29, "part": 50, "problem": 12, "summary": 1}
PINNED_CODES = {"base64.data_after_padding": 1, "base64.invalid_characters": 1, "base64.truncated": 1,
                "header.8bit": 1, "maildir.tmp": 1, "mime.close_boundary_not_found": 1, "mime.epilogue_data": 1,
                "sniff.extension_mismatch": 1, "type.mismatch_declared": 1, "type.mismatch_extension": 1,
                "walk.empty_file": 2}
