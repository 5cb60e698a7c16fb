"""Evidence stays read-only whatever the options (issue #14 item 16): no option writes inside the
dump, and a folder given where a file is expected is a usage error, checked before the scan."""
from __future__ import annotations

import shutil

from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.cli.main import cli


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_no_option_writes_inside_the_dump(tmp_path):
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    before = listing(dump)
    out = tmp_path / "m.jsonl"
    for extra, needle in ((["--run-record", str(dump / "run.json")], "run record"),
                          (["--db", str(dump / "Sarah Watson" / "t.db")], "search database")):
        r = CliRunner().invoke(cli, ["scan", str(dump), "-o", str(out), "-q"] + extra)
        assert r.exit_code == 2, (extra, r.output)
        assert "inside the dump" in r.stderr and needle in r.stderr and len(r.stderr.splitlines()) == 1
        assert listing(dump) == before
        assert not out.exists()          # refused before scanning, not after


def test_a_folder_where_a_file_is_expected(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    for extra in (["--db", str(d)], ["--run-record", str(d)]):
        r = CliRunner().invoke(cli, ["scan", str(SAMPLES), "-o", str(tmp_path / "m.jsonl"), "-q"] + extra)
        assert r.exit_code == 2 and "is a folder" in r.stderr, r.output
        assert "Traceback" not in r.output
    # -o a folder: scanned everything, then "[Errno 21] Is a directory" with exit 1 and a stray
    # adir.partial beside it; refused before the scan now
    r = CliRunner().invoke(cli, ["scan", str(SAMPLES), "-o", str(d), "-q"])
    assert r.exit_code == 2 and "is a folder" in r.stderr and "Errno" not in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"] and not list(d.iterdir())


def test_the_manifest_does_not_depend_on_where_the_dump_and_keys_lie(tmp_path):
    """The same dump and key store, copied elsewhere, give the byte-identical manifest (the key
    store's path used to be written into every verdict)."""
    from leaktriage import Options, scan
    from conftest import REPO
    a, b = tmp_path / "a", tmp_path / "elsewhere" / "b"
    for d in (a, b):
        shutil.copytree(SAMPLES, d / "dump", symlinks=True)
        shutil.copy(REPO / "samples" / "dkim-keys.json", d / "k.json")
        scan(str(d / "dump"), str(d / "m.jsonl"), Options(workers=1, keystore=str(d / "k.json")))
    assert (a / "m.jsonl").read_bytes() == (b / "m.jsonl").read_bytes()
    assert b'"key_source":"keystore:sha256:' in (a / "m.jsonl").read_bytes()
