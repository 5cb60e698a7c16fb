"""The manifest reader: streaming, and clear errors with line numbers and exit codes for bad input."""
import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.model import records
from leaktriage.cli.main import cli
from leaktriage.errors import EXIT_MANIFEST, EXIT_SCHEMA, ManifestError, SchemaVersionError
from leaktriage.manifest.reader import Manifest, check_manifest_digest, top_path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from leaktriage import Options, scan
    out = tmp_path_factory.mktemp("scan") / "samples.jsonl"
    scan(str(SAMPLES), str(out), Options(workers=1))
    return out


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def copy_with(tmp_path, src, new_lines, name="m.jsonl"):
    p = tmp_path / name
    p.write_bytes(b"".join(new_lines))
    return p


def test_reads_every_record_and_checks_sidecar(manifest):
    m = Manifest(str(manifest))
    recs = list(m.records())
    assert recs[-1]["record"] == "summary" and m.summary is recs[-1]
    assert m.lines == len(recs) == len(lines(manifest))
    assert m.sidecar() == ("ok", m.sha256)
    assert m.run_record()["dump_root"] == str(SAMPLES.resolve()) or m.run_record()["dump_root"].endswith("dump")


def test_truncated_mid_line(manifest, tmp_path):
    data = manifest.read_bytes()
    p = tmp_path / "cut.jsonl"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError) as e:
        list(Manifest(str(p)).records())
    assert "truncated" in str(e.value) and ":%d:" % len(p.read_bytes().splitlines()) in str(e.value)


def test_truncated_at_line_boundary_has_no_summary(manifest, tmp_path):
    p = copy_with(tmp_path, manifest, lines(manifest)[:-1])
    with pytest.raises(ManifestError) as e:
        list(Manifest(str(p)).records())
    assert "no summary record" in str(e.value)


def test_hand_edited_line_gives_its_number(manifest, tmp_path):
    ls = lines(manifest)
    ls[6] = ls[6].replace(b'"record":', b'"record" ', 1)
    p = copy_with(tmp_path, manifest, ls)
    with pytest.raises(ManifestError) as e:
        list(Manifest(str(p)).records())
    assert ":7:" in str(e.value) and "not valid JSON" in str(e.value)


def test_record_after_summary_and_empty_line(manifest, tmp_path):
    ls = lines(manifest)
    p = copy_with(tmp_path, manifest, ls + [ls[0]])
    with pytest.raises(ManifestError, match="after the summary"):
        list(Manifest(str(p)).records())
    p = copy_with(tmp_path, manifest, ls[:3] + [b"\n"] + ls[3:], "e.jsonl")
    with pytest.raises(ManifestError, match=":4: empty line"):
        list(Manifest(str(p)).records())


def test_newer_schema_version(manifest, tmp_path):
    ls = lines(manifest)
    rec = json.loads(ls[0])
    rec["v"] = records.SCHEMA_VERSION + 1
    p = copy_with(tmp_path, manifest, [records.dumps(rec).encode() + b"\n"] + ls[1:])
    with pytest.raises(SchemaVersionError) as e:
        list(Manifest(str(p)).records())
    assert e.value.exit_code == EXIT_SCHEMA and "upgrade" in str(e.value)


def test_not_a_manifest(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    with pytest.raises(ManifestError, match="not a leaktriage manifest"):
        list(Manifest(str(p)).records())
    p.write_text("")
    with pytest.raises(ManifestError, match="empty"):
        list(Manifest(str(p)).records())


@pytest.mark.parametrize("cmd", [["report", "{m}"], ["report", "{m}", "-f", "json"], ["export", "{m}"],
                                 ["show", "INBOX/1.eml", "-m", "{m}"], ["verify", "{m}", "--dump", "{d}"],
                                 ["extract", "{m}", "--dump", "{d}", "--to", "{o}"]])
def test_commands_exit_cleanly_on_bad_manifests(manifest, tmp_path, cmd):
    ls = lines(manifest)
    cases = {
        "truncated": (manifest.read_bytes()[:5000], EXIT_MANIFEST),
        "edited": (b"".join(ls[:10] + [b"{not json\n"] + ls[11:]), EXIT_MANIFEST),
        "newer": (b"".join([ls[0].replace(b'"v":1', b'"v":%d' % (records.SCHEMA_VERSION + 1))] + ls[1:]), EXIT_SCHEMA),
    }
    for name, (data, code) in cases.items():
        p = tmp_path / ("%s.jsonl" % name)
        p.write_bytes(data)
        args = [a.format(m=p, d=SAMPLES, o=tmp_path / "out") for a in cmd]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == code, (name, args, r.output)
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
        assert "leaktriage: error:" in r.stderr


def test_manifest_only_check(manifest, tmp_path):
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(manifest)])
    assert r.exit_code == 0 and "OK" in r.stderr
    bad = tmp_path / "m.jsonl"
    shutil.copy(manifest, bad)
    shutil.copy(str(manifest) + ".sha256", str(bad) + ".sha256")
    with open(bad, "ab") as f:
        f.write(b" ")
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(bad)])
    assert r.exit_code == 5 and "FAILED" in r.stderr
    digest = check_manifest_digest(str(manifest))[1]
    other = tmp_path / "nosidecar.jsonl"
    shutil.copy(manifest, other)
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(other)])
    assert r.exit_code == 3 and "--sha256" in r.stderr
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(other), "--sha256", digest])
    assert r.exit_code == 0
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(other), "--sha256", "0" * 64])
    assert r.exit_code == 5
    r = CliRunner().invoke(cli, ["verify", "--manifest-only", str(other), "--dump", str(SAMPLES)])
    assert r.exit_code == 2 and "exclude" in r.stderr
    # an audit against a changed manifest is refused
    r = CliRunner().invoke(cli, ["verify", str(bad), "--dump", str(SAMPLES)])
    assert r.exit_code == 5


def test_top_path():
    assert top_path("a/b.zip!zip:c.eml#1.2") == "a/b.zip"
    assert top_path("INBOX/1.eml#1") == "INBOX/1.eml"
    assert top_path("x") == "x"
