"""End-to-end behaviour of `scan` on small dumps built here, byte by byte."""
import base64
import hashlib
import json
import os

import pytest
from click.testing import CliRunner

from conftest import by_kind, scan_records
from leaktriage.cli.main import cli

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = base64.b64decode(b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def eml(subject=b"Hello", body=b"Body text\r\n", extra=b"", frm=b"Alice <alice@example.org>", eol=b"\r\n"):
    msg = (b"From: " + frm + b"\r\nTo: bob@example.com\r\nSubject: " + subject +
           b"\r\nDate: Wed, 1 Mar 2017 10:00:00 +0100\r\nMessage-ID: <m1@example.org>\r\n" + extra +
           b"\r\n" + body)
    return msg.replace(b"\r\n", eol)


def multipart_with_pdf(name=b"report.pdf", ctype=b"application/pdf", payload=PDF):
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (b"From: =?utf-8?q?H=C3=A9l=C3=A8ne?= <h@example.fr>\r\nTo: bob@example.com\r\n"
            b"Subject: =?iso-8859-1?q?R=E9union?=\r\nDate: Wed, 1 Mar 2017 10:00:00 +0100\r\n"
            b"Message-ID: <m2@example.fr>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
            b"This is a multi-part message in MIME format.\r\n--XX\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"Bonjour \xc3\xa0 tous\r\n--XX\r\n"
            b"Content-Type: " + ctype + b"; name=\"" + name + b"\"\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n\r\n" + b64 + b"--XX--\r\n")


@pytest.fixture()
def dump(tmp_path):
    d = tmp_path / "dump"
    (d / "alice" / "INBOX").mkdir(parents=True)
    (d / "alice" / "INBOX" / "1.eml").write_bytes(eml())
    (d / "alice" / "INBOX" / "2.eml").write_bytes(multipart_with_pdf())
    (d / "alice" / "INBOX" / "3.eml").write_bytes(multipart_with_pdf(b"photo.jpg", b"image/jpeg"))
    md = d / "bob" / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1488362400.M1P2Q3.host,S=100:2,FS").write_bytes(eml(b"In maildir", eol=b"\n"))
    (d / "bob" / "Sent.mbox").write_bytes(
        b"From alice@example.org Wed Mar  1 10:00:00 2017\n" + eml(b"First", b"line\n>From here\n>>From there\n", eol=b"\n") +
        b"\nFrom bob@example.com Thu Mar  2 11:00:00 2017\n" + eml(b"Second", b"From the start, a body line\n", eol=b"\n") + b"\n")
    (d / "notes.txt").write_bytes(b"just notes\n")
    (d / "empty.dat").write_bytes(b"")
    (d / "junk.eml").write_bytes(bytes(range(256)) * 4)
    os.symlink("notes.txt", d / "link.txt")
    return d


def test_counts_and_codes(dump, tmp_path):
    recs, out, res = scan_records(dump, tmp_path)
    kinds = {}
    for r in recs:
        kinds[r["record"]] = kinds.get(r["record"], 0) + 1
    assert kinds["file"] == 9
    assert kinds["message"] == 6
    assert kinds["summary"] == 1 and recs[-1]["record"] == "summary"
    codes = sorted(r["code"] for r in by_kind(recs, "problem"))
    assert codes == ["mbox.unquoted_from", "sniff.extension_mismatch", "type.mismatch_declared",
                     "type.mismatch_extension", "walk.empty_file", "walk.symlink"]
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert files["junk.eml"]["kind"] == "other"
    assert files["bob/Sent.mbox"]["kind"] == "mbox" and files["bob/Sent.mbox"]["messages"] == 2
    assert files["link.txt"]["entry"] == "symlink" and files["link.txt"]["symlink_target"] == "notes.txt"
    assert "sha256" not in files["link.txt"]  # never followed, never read
    for loc, r in files.items():
        if r["entry"] == "file":
            assert r["sha256"] == hashlib.sha256((dump / loc).read_bytes()).hexdigest()


def test_message_fields_and_parts(dump, tmp_path):
    recs, _, _ = scan_records(dump, tmp_path)
    msgs = {r["locator"]: r for r in by_kind(recs, "message")}
    m = msgs["alice/INBOX/2.eml"]
    assert m["subject"] == "Réunion"
    assert m["from"] == [{"name": "Hélène", "address": "h@example.fr"}]
    assert msgs["alice/INBOX/1.eml"]["to"] == [{"address": "bob@example.com"}]
    assert m["date"] == "2017-03-01T09:00:00Z" and m["date_tz"] == "+0100"
    assert m["custodian"] == "alice" and m["mailbox"] == "alice/INBOX"
    assert m["attachments"] == 1 and m["attachment_names"] == ["report.pdf"]
    assert m["line_endings"] == "crlf"
    parts = {r["path"]: r for r in by_kind(recs, "part") if r["message"] == "alice/INBOX/2.eml"}
    assert parts["1"]["content_type"] == "multipart/mixed" and parts["1"]["children"] == 2
    assert parts["1"]["preamble"]["data"] is False
    assert parts["1.1"]["charset"] == "utf-8" and parts["1.1"]["charset_source"] == "declared"
    assert parts["1.2"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert parts["1.2"]["magic"] == "application/pdf" and "mismatch" not in parts["1.2"]
    liar = [r for r in by_kind(recs, "part") if r["message"] == "alice/INBOX/3.eml" and r["path"] == "1.2"][0]
    assert liar["mismatch"] == ["declared-type", "extension"]
    md = msgs["bob/Maildir/cur/1488362400.M1P2Q3.host,S=100:2,FS"]
    assert md["source"] == "maildir" and md["maildir"]["flags"] == "FS" and md["line_endings"] == "lf"
    assert md["mailbox"] == "bob/Maildir"


def test_mbox_offsets_and_unquoting(dump, tmp_path):
    recs, _, _ = scan_records(dump, tmp_path)
    data = (dump / "bob" / "Sent.mbox").read_bytes()
    mb = [r for r in by_kind(recs, "message") if r["source"] == "mbox"]
    assert [r["locator"] for r in mb] == ["bob/Sent.mbox!mbox:0", "bob/Sent.mbox!mbox:%d" % mb[1]["mbox"]["marker_offset"]]
    for r in mb:
        stored = data[r["offset"]:r["offset"] + r["length"]]
        assert hashlib.sha256(stored).hexdigest() == r["sha256"]
        assert not stored.startswith(b"From ")
    first = mb[0]
    assert first["mbox"]["variant"] == "mboxrd" and first["mbox"]["unquoted_lines"] == 2
    stored = data[first["offset"]:first["offset"] + first["length"]]
    assert first["unquoted_sha256"] == hashlib.sha256(stored.replace(b"\n>From", b"\nFrom").replace(b">>From", b">From")).hexdigest()
    # the separator line break belongs to the mbox, not the message
    assert data[first["offset"] + first["length"]:first["offset"] + first["length"] + 6] == b"\nFrom "
    assert mb[1]["subject"] == "Second"


def test_deterministic_any_workers(dump, tmp_path):
    _, out1, r1 = scan_records(dump, tmp_path, name="a.jsonl")
    _, out2, r2 = scan_records(dump, tmp_path, workers=2, name="b.jsonl")
    assert out1.read_bytes() == out2.read_bytes()
    assert r1.manifest_sha256 == hashlib.sha256(out1.read_bytes()).hexdigest()
    side = (tmp_path / "a.jsonl.sha256").read_text()
    assert side == "%s  a.jsonl\n" % r1.manifest_sha256
    run = json.loads((tmp_path / "a.jsonl.run.json").read_text())
    assert run["record"] == "run" and run["volatile"] is True and run["manifest_sha256"] == r1.manifest_sha256


def test_schema_validates(dump, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from leaktriage.model.records import json_schema
    recs, _, _ = scan_records(dump, tmp_path)
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    per_kind = {v["title"]: jsonschema.Draft202012Validator(v) for v in schema["oneOf"]}
    for r in recs:
        errs = list(per_kind[r["record"]].iter_errors(r))
        assert not errs, (r, errs[0].message)


def test_dump_not_modified(dump, tmp_path):
    """Files, sizes, mtimes, contents and (where O_NOATIME is allowed, as for the owner or root)
    access times are the same after a scan; nothing is added to the dump."""
    import os as _os

    def state():
        out = {}
        for p in sorted(dump.rglob("*")):
            st = _os.lstat(p)
            out[str(p)] = (st.st_size, st.st_mtime_ns, st.st_atime_ns, read_noatime(p) if stat_regular(st) else None)
        return out

    def read_noatime(p):  # the test's own reads must not change access times either
        fd = _os.open(p, _os.O_RDONLY | getattr(_os, "O_NOATIME", 0))
        try:
            chunks = []
            while True:
                b = _os.read(fd, 1 << 20)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        finally:
            _os.close(fd)

    def stat_regular(st):
        import stat as _stat
        return _stat.S_ISREG(st.st_mode)

    # make access times old, so that any read that updates them (even under relatime) shows
    for p in dump.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = _os.stat(p)
            _os.utime(p, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
    before = state()
    scan_records(dump, tmp_path, workers=2)
    after = state()
    assert before == after


def test_cli_stdout_and_errors(dump, tmp_path):
    r = CliRunner().invoke(cli, ["scan", str(dump), "-o", "-", "--quiet", "-w", "1"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert all(json.loads(l)["v"] == 1 for l in lines)
    r = CliRunner().invoke(cli, ["scan", str(tmp_path / "nope"), "-o", "-", "--quiet"])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(cli, ["scan", str(dump), "-o", str(dump / "m.jsonl"), "--quiet"])
    assert r.exit_code == 2 and "inside the dump" in r.output and not (dump / "m.jsonl").exists()
    r = CliRunner().invoke(cli, ["scan", str(dump), "-o", "-", "--hash", "sha512"])
    assert r.exit_code == 2


def test_extra_digests(dump, tmp_path):
    recs, _, _ = scan_records(dump, tmp_path, algorithms=("sha256", "md5", "sha1"))
    f = [r for r in by_kind(recs, "file") if r["locator"] == "notes.txt"][0]
    assert f["md5"] == hashlib.md5(b"just notes\n").hexdigest()
    assert f["sha1"] == hashlib.sha1(b"just notes\n").hexdigest()
