"""Checks for tools/make_samples.py and the committed samples/ it produces.

- the committed samples/ are exactly what the script generates (current + deterministic);
- everything in samples/ is under 3 MB;
- every DKIM verdict in truth.json holds with dkimpy, verified offline against
  samples/dkim-keys.json (network access is blocked during verification);
- truth.json agrees with an independent parse by the standard library email package;
- the PDF/DOCX/PNG attachments and documents have the right magic bytes / structure.
"""
from __future__ import annotations

import binascii
import email
import email.policy
import email.utils
import gzip
import hashlib
import io
import json
import re
import socket
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

dkim = pytest.importorskip("dkim")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
DUMP = SAMPLES / "dump"
SCRIPT = REPO / "tools" / "make_samples.py"


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((SAMPLES / "truth.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def key_store() -> dict:
    return json.loads((SAMPLES / "dkim-keys.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    return out


# ----------------------------------------------------------------------------- determinism

def test_committed_samples_match_regeneration(regenerated):
    """Every generated file is committed byte for byte; samples/dump holds nothing else."""
    committed = files_under(SAMPLES)
    fresh = files_under(regenerated)
    missing = sorted(set(fresh) - set(committed))
    assert not missing, f"not committed (run python3 tools/make_samples.py): {missing}"
    extra = sorted(r for r in set(committed) - set(fresh) if r.startswith("dump/"))
    assert not extra, f"stale files in samples/dump: {extra}"
    different = [rel for rel in fresh if committed[rel].read_bytes() != fresh[rel].read_bytes()]
    assert not different, f"stale or non-deterministic files: {different}"


def test_two_runs_identical(regenerated, tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], cwd=REPO, check=True,
                   capture_output=True)
    a, b = files_under(regenerated), files_under(tmp_path)
    assert sorted(a) == sorted(b)
    assert all(a[r].read_bytes() == b[r].read_bytes() for r in a)


def test_total_size_under_3mb():
    total = sum(p.stat().st_size for p in files_under(SAMPLES).values())
    assert 0 < total < 3 * 1024 * 1024


def test_key_store_outside_dump(key_store):
    assert not any(p.name == "dkim-keys.json" for p in DUMP.rglob("*"))
    assert key_store and all(k.count("._domainkey.") == 1 for k in key_store)
    assert all(v.startswith("v=DKIM1; k=rsa; p=") for v in key_store.values())


def test_truth_file_table(truth):
    on_disk = files_under(DUMP)
    assert sorted(truth["files"]) == sorted(on_disk)
    for rel, meta in truth["files"].items():
        data = on_disk[rel].read_bytes()
        assert (len(data), sha256(data)) == (meta["size"], meta["sha256"]), rel


# ----------------------------------------------------------------------------- DKIM

@pytest.fixture
def offline(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network access attempted during offline DKIM verification")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)


def verdict(msg: bytes, store: dict) -> str:
    def dnsfunc(name, timeout=5):
        v = store.get(name.decode().rstrip("."))
        return v.encode() if v is not None else None
    d = dkim.DKIM(msg)
    if not d.present():
        return "none"
    try:
        return "pass" if d.verify(dnsfunc=dnsfunc) else "fail"
    except dkim.ValidationError as e:
        return "body-hash-mismatch" if "body hash mismatch" in str(e) else "fail"


def mbox_messages(data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """offset -> (stored bytes, mboxrd-unquoted bytes) for each message of an mboxrd file."""
    starts = [0] + [m.start() + 1 for m in re.finditer(rb"\nFrom ", data)]
    out = {}
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(data)
        chunk = data[s:e]
        body = chunk[chunk.index(b"\n") + 1:]
        assert body.endswith(b"\n\n")
        body = body[:-1]
        out[s] = (body, re.sub(rb"(?m)^>(>*From )", rb"\1", body))
    return out


def unescape(value: str) -> str:
    """Undo locator escaping (%XX) -- see docs/architecture.md."""
    raw = value.encode("utf-8")
    return re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw).decode("utf-8")


def resolve(locator: str, unquote: bool = True) -> bytes:
    """Bytes named by a locator made of a path and !gz/!tar/!zip/!mbox segments."""
    path, *segments = locator.split("!")
    data = (DUMP / unescape(path)).read_bytes()
    for seg in segments:
        kind, value = seg.split(":", 1)
        value = unescape(value)
        if kind == "gz":
            data = gzip.decompress(data)
        elif kind == "tar":
            data = tarfile.open(fileobj=io.BytesIO(data)).extractfile(value).read()
        elif kind == "zip":
            data = zipfile.ZipFile(io.BytesIO(data)).read(value)
        elif kind == "mbox":
            stored, unquoted = mbox_messages(data)[int(value)]
            data = unquoted if unquote else stored
        else:
            raise KeyError(kind)
    return data


def message_bytes(rec: dict, unquote: bool = True) -> bytes:
    if rec["container"] == "attached":
        raise KeyError("attached")
    return resolve(rec["locator"], unquote)


def test_dkim_verdicts(truth, key_store, offline):
    checked = {"pass": 0, "body-hash-mismatch": 0}
    for rec in truth["messages"]:
        if rec["container"] == "attached":
            continue
        got = verdict(message_bytes(rec), key_store)
        assert got == rec["dkim"], (rec["locator"], got)
        if got in checked:
            checked[got] += 1
    assert checked["pass"] >= 5 and checked["body-hash-mismatch"] >= 1


def test_dkim_variety(truth):
    details = [r["dkim_detail"] for r in truth["messages"] if r["dkim"] != "none"]
    assert {d["bits"] for d in details} == {1024, 2048}
    assert {"relaxed/relaxed", "simple/simple"} <= {d["c"] for d in details}
    assert any(d.get("l") for d in details)


def test_mbox_dkim_needs_unquoting(truth, key_store, offline):
    recs = [r for r in truth["messages"] if r.get("dkim_detail", {}).get("verifies_only_after_mboxrd_unquoting")]
    assert len(recs) == 1
    rec = recs[0]
    stored = message_bytes(rec, unquote=False)
    assert b"\n>>From " in stored and b"\n>From " in stored
    assert verdict(stored, key_store) == "body-hash-mismatch"
    assert verdict(message_bytes(rec), key_store) == "pass"


def test_dkim_signature_timestamps_fixed(truth):
    for rec in truth["messages"]:
        if rec["dkim"] != "none":
            raw = message_bytes(rec)
            t = int(re.search(rb"\bt=(\d+);", raw).group(1))
            assert 1480000000 < t < 1500000000  # 2016-11 .. 2017-07, not "now"


# ----------------------------------------------------------------------------- truth vs stdlib parse

def walk(part, path="1"):
    yield path, part
    if part.is_multipart():
        if part.get_content_type() == "message/rfc822":
            for sub in part.get_payload():
                yield from walk(sub, path + ".1")
        else:
            for i, sub in enumerate(part.get_payload(), 1):
                yield from walk(sub, f"{path}.{i}")


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_messages_agree_with_stdlib(truth):
    n = 0
    for rec in truth["messages"]:
        if rec["container"] == "attached":
            outer = parse((DUMP / rec["path"]).read_bytes())
            parts = dict(walk(outer))
            msg = parts[rec["locator"].rsplit("#", 1)[1] + ".1"]
        else:
            raw = message_bytes(rec)
            if "sha256" in rec and rec["container"] != "mbox":
                assert sha256(raw) == rec["sha256"], rec["locator"]
            if rec["container"] == "mbox":
                assert sha256(raw) == rec["message_sha256_unquoted"]
            msg = parse(raw)
            parts = dict(walk(msg))
        assert msg["Message-ID"].strip() == rec["message_id"], rec["locator"]
        subj_raw = msg.get("Subject")
        if subj_raw is not None and "\ufffd" not in str(subj_raw):
            assert str(msg["Subject"]) == rec["subject"], rec["locator"]
        assert email.utils.parseaddr(str(msg["From"]))[1] == rec["from"], rec["locator"]
        date = msg["Date"].datetime.astimezone(email.utils.datetime.timezone.utc)
        assert date.strftime("%Y-%m-%dT%H:%M:%SZ") == rec["date"], rec["locator"]
        for a in rec["attachments"]:
            part = parts[a["part"]]
            if a["sha256"] is None or a["true_type"] == "message/rfc822":
                continue
            data = part.get_payload(decode=True)
            assert (sha256(data), len(data)) == (a["sha256"], a["size"]), (rec["locator"], a["filename"])
            assert part.get_filename() == a["filename"], rec["locator"]
            assert part.get_content_type() == a["declared_type"]
        n += 1
    assert n == len(truth["messages"]) >= 20


def test_raw_8bit_subject_header(truth):
    rec = next(r for r in truth["messages"] if any("raw 8-bit" in n for n in r["notes"]))
    raw = message_bytes(rec)
    line = re.search(rb"(?m)^Subject: (.*)$", raw).group(1)
    assert line.decode("utf-8") == rec["subject"] and not line.isascii()
    assert rec["line_endings"] == "lf" and b"\r" not in raw


def test_line_endings_mixed(truth):
    loose = [r for r in truth["messages"] if r["container"] == "file"]
    kinds = {r["line_endings"] for r in loose}
    assert kinds == {"crlf", "lf"}
    assert sum(r["line_endings"] == "lf" for r in loose) == 1


def test_duplicates(truth):
    by_loc = {r["locator"]: r for r in truth["messages"]}
    for a, b in truth["duplicate_pairs"]["exact"]:
        assert (DUMP / a).read_bytes() == (DUMP / b).read_bytes()
    assert truth["duplicate_pairs"]["canonical"]
    for a, b in truth["duplicate_pairs"]["canonical"]:
        ra, rb = by_loc[a], by_loc[b]
        ma, mb = parse(message_bytes(ra)), parse(message_bytes(rb))
        assert ma["Message-ID"] == mb["Message-ID"]
        assert message_bytes(ra) != message_bytes(rb)
        body = lambda m: m.as_bytes().split(b"\n\n", 1)[1].replace(b"\r\n", b"\n")  # noqa: E731
        assert body(ma) == body(mb)
        sent = ra if "Received" not in ma else rb
        sent_msg = parse(message_bytes(sent))
        for h in ("Received", "Return-Path", "Delivered-To", "DKIM-Signature"):
            assert h not in sent_msg


def test_uuencoded_file(truth):
    rec = next(r for r in truth["messages"] if r.get("uuencoded"))
    raw = message_bytes(rec)
    m = re.search(rb"(?ms)^begin 644 (\S+)\r?\n(.*?)^end\r?$", raw)
    data = b"".join(binascii.a2b_uu(line) for line in m.group(2).splitlines() if line)
    uu = rec["uuencoded"][0]
    assert m.group(1).decode() == uu["filename"]
    assert sha256(data) == uu["sha256"]


def test_mbox_features(truth):
    mbox_recs = [r for r in truth["messages"] if r["container"] == "mbox"]
    data = (DUMP / mbox_recs[0]["path"]).read_bytes()
    msgs = mbox_messages(data)
    assert sorted(msgs) == sorted(r["mbox_offset"] for r in mbox_recs)
    assert [r["mbox_index"] for r in sorted(mbox_recs, key=lambda r: r["mbox_offset"])] == \
        list(range(len(mbox_recs)))
    cl = [r for r in mbox_recs if "content_length" in r]
    assert len(cl) == 1
    stored, _ = msgs[cl[0]["mbox_offset"]]
    assert re.search(rb"(?m)^Content-Length: (\d+)$", stored).group(1) == str(cl[0]["content_length"]).encode()
    assert len(stored.split(b"\n\n", 1)[1]) == cl[0]["content_length"]


def test_maildir(truth):
    recs = [r for r in truth["messages"] if r["container"] == "maildir"]
    subdirs = {r["maildir"]["subdir"] for r in recs}
    assert subdirs == {"cur", "new", "tmp"}
    assert any(r["maildir"]["folder"] == ".Sent" for r in recs)
    for r in recs:
        name = r["path"].rsplit("/", 1)[1]
        m = re.search(r",S=(\d+)", name)
        if m:
            assert int(m.group(1)) == (DUMP / r["path"]).stat().st_size
        if r["maildir"]["subdir"] == "cur":
            assert name.endswith(":2," + r["maildir"]["flags"])


def test_containers(truth):
    names = []
    for c in truth["containers"]:
        data = resolve(c.get("locator", c["path"]))
        assert sha256(data) == c["sha256"]
        if c["kind"] == "zip":
            assert data.startswith(b"PK\x03\x04")
            z = zipfile.ZipFile(io.BytesIO(data))
            assert z.testzip() is None
            assert [i.filename for i in z.infolist()] == [m["name"] for m in c["members"]]
            content = {m["name"]: z.read(m["name"]) for m in c["members"]}
        elif c["kind"] == "tar":
            t = tarfile.open(fileobj=io.BytesIO(data))
            files = [i for i in t.getmembers() if i.isfile()]
            assert [i.name for i in files] == [m["name"] for m in c["members"]]
            content = {i.name: t.extractfile(i).read() for i in files}
        else:
            assert c["kind"] == "gzip" and data.startswith(b"\x1f\x8b")
            content = {c["members"][0]["name"]: gzip.decompress(data)}
        for m in c["members"]:
            assert (len(content[m["name"]]), sha256(content[m["name"]])) == (m["size"], m["sha256"])
        names += [m["name"] for m in c["members"]]
    assert any(not n.isascii() for n in names)
    assert sum(n.endswith(".zip") for n in names) >= 2  # zip in zip, zip in tar.gz


def test_non_mail_files(truth):
    kinds = {f["kind"] for f in truth["non_mail_files"]}
    assert {"text", "pdf", "binary", "empty", "junk"} <= kinds
    for f in truth["non_mail_files"]:
        data = (DUMP / f["path"]).read_bytes()
        assert (len(data), sha256(data)) == (f["size"], f["sha256"])
    junk = next(f for f in truth["non_mail_files"] if f["kind"] == "junk")
    assert junk["path"].endswith(".eml")


# ----------------------------------------------------------------------------- document magic

def all_attachments(truth):
    for rec in truth["messages"]:
        if rec["container"] not in ("file", "maildir", "attached"):
            continue
        msg = parse((DUMP / rec["path"]).read_bytes())
        parts = dict(walk(msg))
        for a in rec["attachments"]:
            if a["sha256"] and a["true_type"] != "message/rfc822":
                yield a, parts[a["part"]].get_payload(decode=True)


def check_pdf(data: bytes):
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)", data).group(1))
    assert data[startxref:startxref + 4] == b"xref"
    first, count = map(int, re.match(rb"xref\s+(\d+) (\d+)\s", data[startxref:]).groups())
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf]) ?\r?\n", data[startxref:])[:count]
    assert len(entries) == count
    for num, (off, _gen, kind) in enumerate(entries, first):
        if kind == b"n":
            assert data[int(off):].startswith(b"%d 0 obj" % num)
    length = int(re.search(rb"/Length (\d+)", data).group(1))
    stream = data.index(b"stream\n") + len(b"stream\n")
    assert data[stream + length:].startswith(b"endstream")
    for key in (b"/Author", b"/Producer", b"/CreationDate", b"/ModDate"):
        assert key in data


def check_docx(data: bytes):
    assert data.startswith(b"PK\x03\x04")
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None
    names = z.namelist()
    assert names[0] == "[Content_Types].xml"
    assert {"word/document.xml", "docProps/core.xml", "docProps/app.xml", "_rels/.rels"} <= set(names)
    core = z.read("docProps/core.xml").decode()
    for tag in ("dc:creator", "cp:lastModifiedBy", "dcterms:created", "dcterms:modified"):
        assert f"<{tag}" in core
    app = z.read("docProps/app.xml").decode()
    assert "<Application>" in app and "<Company>" in app


def check_png(data: bytes):
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
        if tag == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        idat += body if tag == b"IDAT" else b""
        pos += 12 + n
    assert (depth, color) == (8, 2)
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)


def test_attachment_magic(truth):
    seen = set()
    for a, data in all_attachments(truth):
        {"application/pdf": check_pdf,
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document": check_docx,
         "image/png": check_png}[a["true_type"]](data)
        seen.add(a["true_type"])
    assert {"application/pdf", "image/png",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"} <= seen
    for f in truth["non_mail_files"]:
        if f["kind"] == "pdf":
            check_pdf((DUMP / f["path"]).read_bytes())


def test_lying_extension(truth):
    (lie,) = truth["lying_extension"]
    assert lie["filename"].endswith(".jpg") and lie["declared_type"] == "image/jpeg"
    found = [data for a, data in all_attachments(truth) if a["filename"] == lie["filename"]]
    assert found and found[0].startswith(b"%PDF-") and sha256(found[0]) == lie["sha256"]


def test_embedded_message_part_bytes(truth):
    """The message/rfc822 attachment hash covers the entity body exactly as stored."""
    rec = next(r for r in truth["messages"] if r["container"] == "attached")
    outer = next(r for r in truth["messages"] if r["locator"] == rec["parent"])
    a = next(a for a in outer["attachments"] if a["true_type"] == "message/rfc822")
    raw = (DUMP / outer["path"]).read_bytes()
    boundary = parse(raw).get_boundary().encode()
    chunks = raw.split(b"\r\n--" + boundary)
    index = int(a["part"].rsplit(".", 1)[1])
    body = chunks[index].split(b"\r\n\r\n", 1)[1]
    assert (len(body), sha256(body)) == (a["size"], a["sha256"])
    assert parse(body)["Message-ID"] == rec["message_id"]


def test_every_message_record_complete(truth):
    keys = {"path", "container", "locator", "message_id", "subject", "from", "to", "date", "attachments",
            "dkim", "notes", "custodian"}
    for r in truth["messages"]:
        assert keys <= set(r), r["locator"]
        assert r["custodian"] in {c["name"] for c in truth["custodians"]}
        if r["container"] == "mbox":
            assert isinstance(r["mbox_index"], int)
        if r["container"] in ("zip", "tar.gz"):
            assert r["members"]
    assert {r["container"] for r in truth["messages"]} >= {"file", "maildir", "mbox", "zip", "attached"}
