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
    store = [f for f in files if f.startswith("sha256" + os.sep)]
    links = [f for f in files if f.startswith("by-mailbox" + os.sep)]
    assert sorted(store + links + ["index.jsonl"]) == sorted(files), files
    pat = re.compile(r"^sha256/[0-9a-f]{2}/([0-9a-f]{64})(\.[a-z0-9]{1,8}_?)?$")
    assert all(pat.match(f) for f in store), store
    for f in store:
        assert hashlib.sha256((out / f).read_bytes()).hexdigest() == pat.match(f).group(1)
        assert not os.access(out / f, os.W_OK) or os.geteuid() == 0
    # the browsable view: a link per item, every name safe, every link pointing into the store
    assert len(links) == sum(len(r["items"]) for r in map(json.loads, (out / "index.jsonl").read_text().splitlines()))
    for f in links:
        parts = f.split(os.sep)
        for c in parts:
            assert c not in (".", "..") and not c.startswith(".") and c == c.strip() and len(c.encode()) <= 150
            assert not re.search(r'[\x00-\x1f<>:"\\|?*]', c), c
            assert c.split(".")[0].lower() not in ("con", "aux", "nul", "prn")
        assert os.path.islink(out / f)
        target = os.path.realpath(out / f)
        assert target.startswith(str(out / "sha256") + os.sep) and os.path.isfile(target)
    index = [json.loads(l) for l in (out / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    names = {it.get("filename") for rec in index for it in rec["items"]}
    assert "../../x" in names and "/etc/passwd" in names and "CON" in names
    assert "\x00nul\nnewline\r.txt" in names and "../../../tmp/pwned" in names and "index.jsonl" in names
    assert "../../../evil.sh" in names
    # "payload 0" was sent twice (as ../../x and as same.txt): stored once, indexed twice
    d0 = hashlib.sha256(b"payload 0\n").hexdigest()
    rec0 = next(r for r in index if r["sha256"] == d0)
    assert {it["filename"] for it in rec0["items"]} == {"../../x", "same.txt"}
    assert sum(1 for f in store if os.path.basename(f).startswith(d0)) == 1
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




# -- issue #14 item 6: attachments of forwards of forwards; item 21: links planted in OUT -----------------

PE = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 400
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def _att(name: bytes, ctype: bytes, data: bytes) -> bytes:
    return (b"--I\r\nContent-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n\r\n" +
            base64.encodebytes(data).replace(b"\n", b"\r\n"))


def forward_of_forward() -> bytes:
    """A message forwarding a message that forwards one with three attachments, the second an executable
    named .pdf (its type-mismatch problems sit between the part records of the innermost message)."""
    inner = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: factures\r\nDate: Wed, 1 Mar 2017 09:00:00 +0100\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n"
             b"--I\r\nContent-Type: text/plain\r\n\r\nci-joint\r\n" +
             _att(b"notes.txt", b"text/plain", b"first attachment\n") +
             _att(b"Facture_6561.pdf", b"application/pdf", PE) +
             _att(b"facture.pdf", b"application/pdf", PDF) + b"--I--\r\n")
    middle = (b"From: b@example.org\r\nTo: c@example.org\r\nSubject: Tr: factures\r\nDate: Wed, 1 Mar 2017 10:00:00 +0100\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
              b"--M\r\nContent-Type: text/plain\r\n\r\nvoir ci-dessous\r\n"
              b"--M\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--M--\r\n")
    return (b"From: c@example.org\r\nTo: d@example.org\r\nSubject: Tr: Tr: factures\r\nDate: Wed, 1 Mar 2017 11:00:00 +0100\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=O\r\n\r\n"
            b"--O\r\nContent-Type: text/plain\r\n\r\npour info\r\n"
            b"--O\r\nContent-Type: message/rfc822\r\n\r\n" + middle + b"\r\n--O--\r\n")


@pytest.fixture()
def nested(tmp_path):
    dump = tmp_path / "dump"
    (dump / "rfournier" / "INBOX").mkdir(parents=True)
    (dump / "rfournier" / "INBOX" / "179.eml").write_bytes(forward_of_forward())
    from leaktriage import Options, scan
    m = tmp_path / "m.jsonl"
    scan(str(dump), str(m), Options(workers=1))
    return dump, m


def test_every_attachment_of_a_forward_of_a_forward_is_extracted(nested, tmp_path):
    dump, m = nested
    recs = [json.loads(l) for l in m.read_text(encoding="utf-8").splitlines()]
    atts = {r["locator"] for r in recs if r["record"] == "part" and r.get("attachment")}
    inner = "rfournier/INBOX/179.eml#1.2.1.2"
    assert {inner + "#1.3", inner + ".1.3", inner + ".1.4"} & atts    # the parts the issue lost
    # the manifest puts the mismatch problems of the executable between the inner message's parts
    order = [(r["record"], r["locator"]) for r in recs]
    assert ("problem", "rfournier/INBOX/179.eml#1.2.1.2.1.3") in order
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 0, r.output
    index = [json.loads(l) for l in (out / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    got = {it["locator"] for rec in index for it in rec["items"]}
    assert got == atts, atts - got
    assert "%d attachments in the manifest: %d selected, 0 left out by the filters, 0 not extracted" \
        % (len(atts), len(atts)) in r.stderr
    # export sees them too (the same grouping)
    r = CliRunner().invoke(cli, ["export", str(m), "-t", "attachments", "-f", "jsonl"])
    assert {json.loads(l)["locator"] for l in r.stdout.splitlines()} == atts


def test_store_names_carry_the_detected_type_and_executables_are_defused(nested, tmp_path):
    dump, m = nested
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out), "--messages"])
    assert r.exit_code == 0, r.output
    names = {os.path.basename(f) for _, _, fs in os.walk(out / "sha256") for f in fs}
    assert hashlib.sha256(PDF).hexdigest() + ".pdf" in names
    assert hashlib.sha256(PE).hexdigest() + ".exe_" in names          # named .pdf, stored so it does not run
    assert hashlib.sha256(b"first attachment\n").hexdigest() + ".txt" in names
    assert any(n.endswith(".eml") for n in names)
    view = out / "by-mailbox" / "rfournier" / "INBOX"
    listed = set(os.listdir(view))
    # the executable named Facture_6561.pdf keeps its defused store extension in the view too: the
    # link a person double-clicks was named .pdf
    assert {"Facture_6561.pdf.exe_", "facture.pdf", "notes.txt", "2017-03-01 Tr_ Tr_ factures.eml"} <= listed
    assert "Facture_6561.pdf" not in listed
    assert len([n for n in listed if n.endswith(".eml")]) == 3 and len(listed) == 6   # the two attached messages
    assert os.readlink(view / "facture.pdf") == os.path.join("..", "..", "..", "sha256", hashlib.sha256(PDF).hexdigest()[:2],
                                                             hashlib.sha256(PDF).hexdigest() + ".pdf")
    assert (view / "facture.pdf").read_bytes() == PDF


def test_an_older_store_without_extensions_is_renamed(nested, tmp_path):
    dump, m = nested
    out = tmp_path / "out"
    d = hashlib.sha256(PDF).hexdigest()
    (out / "sha256" / d[:2]).mkdir(parents=True)
    (out / "sha256" / d[:2] / d).write_bytes(PDF)
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out / "sha256" / d[:2])) == [d + ".pdf"]


def test_links_planted_in_out_are_never_written_through(nested, tmp_path):
    dump, m = nested
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("victim\n")
    os.symlink(victim, out / "index.jsonl.tmp")          # the temporary name older versions used
    os.symlink(victim, out / ".index.jsonl.tmp")
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "victim\n"
    assert not os.path.islink(out / "index.jsonl") and (out / "index.jsonl").stat().st_size > 0
    # index.jsonl itself a link: refused, nothing written through it
    (out / "index.jsonl").unlink()
    os.symlink(victim, out / "index.jsonl")
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 2 and "not a regular file" in r.stderr
    assert victim.read_text() == "victim\n"
    # the view folder a link: refused
    (out / "index.jsonl").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import shutil
    shutil.rmtree(out / "by-mailbox")
    os.symlink(elsewhere, out / "by-mailbox")
    r = CliRunner().invoke(cli, ["extract", str(m), "--dump", str(dump), "--to", str(out)])
    assert r.exit_code == 2 and os.listdir(elsewhere) == []
