"""Every command that reads a manifest refuses the same bad manifests with the same one-line error
and the same exit code (issue #13 item 1, #14 item 17): truncated, foreign, newer, hand-edited
(refused against MANIFEST.sha256 unless --allow-modified-manifest), wrong field types, JSON nested
too deeply, and lines no scan writes."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage import Options, scan
from leaktriage.cli.main import cli


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("trust")
    m = d / "m.jsonl"
    scan(str(SAMPLES), str(m), Options(workers=1))
    return m


def commands(m, tmp, heavy=True):
    """Each command reading MANIFEST m (with the sample dump where it needs one); keys recover
    only when heavy (on a readable manifest it factors RSA moduli: slow)."""
    dump = str(SAMPLES)
    cmds = {
        "report": ["report", str(m)],
        "show": ["show", "Sarah Watson/Inbox.mbox!mbox:0", "-m", str(m)],
        "export": ["export", str(m)],
        "extract": ["extract", str(m), "--dump", dump, "--to", str(tmp / "out")],
        "verify": ["verify", str(m), "--dump", dump],
        "index": ["index", str(m), "--dump", dump, "-o", str(tmp / "t.db")],
    }
    if heavy:
        cmds["keys recover"] = ["keys", "recover", str(m), "--dump", dump, "-o", str(tmp / "k.json")]
    return cmds


def run_all(m, tmp, extra=(), heavy=True):
    out = {}
    for name, argv in commands(m, tmp, heavy).items():
        r = CliRunner().invoke(cli, argv + list(extra))
        out[name] = r
    return out


def variant(tmp_path, good, name, lines_fn, sidecar=False):
    lines = good.read_bytes().splitlines(keepends=True)
    p = tmp_path / name
    p.write_bytes(b"".join(lines_fn(lines)))
    if sidecar:
        shutil.copy(str(good) + ".sha256", str(p) + ".sha256")
    return p


def assert_all(results, code, needle):
    for name, r in results.items():
        assert r.exit_code == code, (name, r.exit_code, r.stderr, r.output)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("leaktriage: error:"), (name, r.stderr)
        assert needle in err[0], (name, err[0])
        assert "Traceback" not in r.output + r.stderr


def test_truncated(tmp_path, good):
    m = variant(tmp_path, good, "cut.jsonl", lambda ls: ls[:100])
    assert_all(run_all(m, tmp_path), 3, "truncated")


def test_not_a_manifest(tmp_path, good):
    m = tmp_path / "truth.jsonl"
    m.write_text("".join(json.dumps({"item": i, "sha256": "00"}) + "\n" for i in range(5)))
    assert_all(run_all(m, tmp_path), 3, "not a leaktriage manifest")


def test_a_missing_manifest_is_a_usage_error_everywhere(tmp_path):
    """A wrong path is a usage error (exit 2, as the exit-code table says), not a damaged manifest
    (report said exit 3; a folder given as the manifest got exit 2 from Click)."""
    assert_all(run_all(tmp_path / "nothere.jsonl", tmp_path), 2, "no such file")


def test_newer_schema(tmp_path, good):
    def newer(ls):
        rec = json.loads(ls[0])
        rec["v"] = 99
        return [(json.dumps(rec) + "\n").encode()] + ls[1:]
    m = variant(tmp_path, good, "newer.jsonl", newer)
    assert_all(run_all(m, tmp_path), 4, "schema version 99")


def test_wrong_field_type(tmp_path, good):
    def edit(ls):
        out = []
        for line in ls:
            rec = json.loads(line)
            if rec["record"] == "message" and "subject" in rec:
                rec["subject"] = 5
                line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
            out.append(line)
        return out
    m = variant(tmp_path, good, "typed.jsonl", edit)
    assert_all(run_all(m, tmp_path), 3, "field 'subject'")


def test_nested_too_deeply(tmp_path, good):
    def edit(ls):
        rec = json.loads(ls[1])
        line = json.dumps(rec)[:-1] + ',"x":' + "[" * 100000 + "]" * 100000 + "}\n"
        return [ls[0], line.encode()] + ls[2:]
    m = variant(tmp_path, good, "deep.jsonl", edit)
    assert_all(run_all(m, tmp_path), 3, "nested too deeply")


def test_hand_edited_is_refused_unless_allowed(tmp_path, good):
    def edit(ls):   # one subject changed, as someone "fixing" a manifest by hand would
        out, done = [], False
        for line in ls:
            if not done and b'"record":"message"' in line and b'"subject":"' in line:
                line, done = line.replace(b'"subject":"', b'"subject":"EDITED ', 1), True
            out.append(line)
        return out
    m = variant(tmp_path, good, "edited.jsonl", edit, sidecar=True)
    assert m.read_bytes() != good.read_bytes()
    assert_all(run_all(m, tmp_path), 5, "MANIFEST.sha256")
    (tmp_path / "allowed").mkdir()
    for name, r in run_all(m, tmp_path / "allowed", ["--allow-modified-manifest"], heavy=False).items():
        assert r.exit_code == 0, (name, r.stderr)


def test_the_original_passes_everywhere(tmp_path, good):
    for name, r in run_all(good, tmp_path, heavy=False).items():
        assert r.exit_code == 0, (name, r.stderr)


def test_custodian_matches_folded_words_and_an_unknown_one_gets_a_hint(good):
    """--custodian 'helene lefevre' finds 'Hélène Lefèvre', words in any order, accents folded;
    an unknown custodian is named on stderr with a suggestion, never silently nothing."""
    from leaktriage.manifest.export import Filters, custodian_key
    assert custodian_key("BESANÇON_Julie") == custodian_key("Julie Besancon") == "besancon julie"
    assert custodian_key("Lecœur, Zoé") == custodian_key("zoe LECOEUR")
    r = CliRunner().invoke(cli, ["export", str(good), "--custodian", "lefevre HELENE", "-f", "jsonl"])
    assert r.exit_code == 0
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert rows and all(x["custodian"] == "Hélène Lefèvre" for x in rows)
    r = CliRunner().invoke(cli, ["export", str(good), "--custodian", "Helene Lefebvre", "-f", "jsonl"])
    assert r.exit_code == 0 and r.stdout == ""
    assert "no custodian matches 'helene lefebvre'; did you mean 'Hélène Lefèvre'?" in r.stderr
    flt = Filters.build(custodians=["nobody"])
    assert not flt.custodian_ok("jmercier") and "custodians: 'jmercier'" in flt.unmatched_custodians()[0]
