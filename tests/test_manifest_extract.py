"""`leaktriage extract`: content-addressed, deduplicated, checked, and never outside OUT whatever the names."""
import base64
import hashlib
import json
import os
import re
import zipfile

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.cli.main import cli

HOSTILE = [b'"../../x"', b'"/etc/passwd"', b'"CON"', b'"..\\\\..\\\\win.ini"', b'"C:\\\\Windows\\\\evil.dll"',
           b"*=utf-8''%00nul%0Anewline%0D.txt", b'"."', b'".."', b'"aux.txt"', b'"' + b"A" * 300 + b'.pdf"',
           b"*=utf-8''..%2F..%2F..%2Ftmp%2Fpwned", b'"sha256"', b'"index.jsonl"', b'"~/.bashrc"']


def hostile_message(payloads):
    parts = []
    for i, (name, data) in enumerate(payloads):
        parts.append(b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
                     b"Content-Disposition: attachment; filename" + (name if name.startswith(b"*") else b"=" + name) +
                     b"\r\n\r\n" + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    return (b"From: Mallory <m@evil.example>\r\nTo: victim@example.org\r\nSubject: names\r\n"
            b"Date: Wed, 1 Mar 2017 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
            b"".join(parts) + b"--B--\r\n")


def tree(root):
    out = set()
    for dp, dn, fn in os.walk(root):
        for n in fn + dn:
            out.add(os.path.relpath(os.path.join(dp, n), root))
    return out


@pytest.fixture()
def hostile(tmp_path):
    dump = tmp_path / "case" / "dump"
    (dump / "mallory").mkdir(parents=True)
    payloads = [(n, b"payload %d\n" % i) for i, n in enumerate(HOSTILE)] + [(b'"same.txt"', b"payload 0\n")]
    (dump / "mallory" / "1.eml").write_bytes(hostile_message(payloads))
    with zipfile.ZipFile(dump / "mallory" / "slip.zip", "w") as z:
        z.writestr("../../zipslip.eml", hostile_message([(b'"../../../evil.sh"', b"#!/bin/sh\n")]))
    from leaktriage import Options, scan
    m = tmp_path / "case" / "m.jsonl"
    scan(str(dump), str(m), Options(workers=1))
    return tmp_path, dump, m


def test_hostile_names_never_become_paths(hostile):
    root, dump, m = hostile
    out = root / "case" / "out"
    before = tree(root)
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out), "--messages"])
    assert r.exit_code == 0, r.output
    after = tree(root)
    created = {p for p in after - before}
    assert all(p == os.path.join("case", "out") or p.startswith(os.path.join("case", "out") + os.sep)
               for p in created), created
    files = [os.path.relpath(os.path.join(dp, f), out) for dp, _, fs in os.walk(out) for f in fs]
    pat = re.compile(r"^sha256/[0-9a-f]{2}/[0-9a-f]{64}$")
    assert all(f == "index.jsonl" or pat.match(f) for f in files), files
    for f in files:
        if f != "index.jsonl":
            assert hashlib.sha256((out / f).read_bytes()).hexdigest() == os.path.basename(f)
            assert not os.access(out / f, os.W_OK) or os.geteuid() == 0
    index = [json.loads(l) for l in (out / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    names = {it.get("filename") for rec in index for it in rec["items"]}
    assert "../../x" in names and "/etc/passwd" in names and "CON" in names
    assert "\x00nul\nnewline\r.txt" in names and "../../../tmp/pwned" in names and "index.jsonl" in names
    assert "../../../evil.sh" in names
    # "payload 0" was sent twice (as ../../x and as same.txt): stored once, indexed twice
    d0 = hashlib.sha256(b"payload 0\n").hexdigest()
    rec0 = next(r for r in index if r["sha256"] == d0)
    assert {it["filename"] for it in rec0["items"]} == {"../../x", "same.txt"}
    assert sum(1 for f in files if f.endswith(d0)) == 1
    # the message stored in the zip under ../../zipslip.eml is extracted by digest too
    assert any(it["kind"] == "message" and "zipslip" in it["locator"] for rec in index for it in rec["items"])


def test_rerun_is_idempotent_and_rechecks(hostile):
    root, dump, m = hostile
    out = root / "case" / "out"
    args = ["extract", str(m), "--dump", str(dump), "--to", str(out)]
    r1 = CliRunner().invoke(cli, args)
    idx1 = (out / "index.jsonl").read_bytes()
    r2 = CliRunner().invoke(cli, args)
    assert r1.exit_code == r2.exit_code == 0
    assert "0 files written" in r2.stderr and (out / "index.jsonl").read_bytes() == idx1


def test_refuses_unsafe_out(hostile, tmp_path):
    root, dump, m = hostile
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(dump / "mallory" / "x")])
    assert r.exit_code == 2 and "inside the dump" in r.stderr and not (dump / "mallory" / "x").exists()
    # a symbolic link planted in OUT is never written through
    out = tmp_path / "out2"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "sha256")
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 2 and "not a real folder" in r.stderr and os.listdir(elsewhere) == []
    # OUT given as a link into the dump
    os.symlink(dump, tmp_path / "sneaky")
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(tmp_path / "sneaky" / "o")])
    assert r.exit_code == 2


def test_changed_item_is_not_written(hostile):
    root, dump, m = hostile
    p = dump / "mallory" / "1.eml"
    p.write_bytes(p.read_bytes().replace(base64.encodebytes(b"payload 3\n").strip(),
                                         base64.encodebytes(b"payload X\n").strip()))
    out = root / "case" / "out"
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 5 and "NOT written" in r.stderr
    assert not any(f.endswith(hashlib.sha256(b"payload X\n").hexdigest()) for _, _, fs in os.walk(out) for f in fs)


def test_filters_and_samples(tmp_path):
    from leaktriage import Options, scan
    m = tmp_path / "s.jsonl"
    scan(str(SAMPLES), str(m), Options(workers=1))
    out = tmp_path / "pdfs"
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(SAMPLES), "--to", str(out), "--type", "application/pdf"])
    assert r.exit_code == 0 and "4 items selected" in r.stderr
    index = [json.loads(l) for l in (out / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(it["magic"] == "application/pdf" for rec in index for it in rec["items"])
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(SAMPLES), "--to", str(out), "--no-attachments"])
    assert r.exit_code == 2
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(tmp_path / "gone"), "--to", str(out)])
    assert r.exit_code == 6 and "moved" in r.stderr


