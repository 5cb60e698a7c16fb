"""`leaktriage verify`: audit a COPY of samples/ after modifying, deleting, adding and moving files."""
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.cli.main import cli

H = "Hélène Lefèvre"


@pytest.fixture()
def case(tmp_path):
    from leaktriage import Options, scan
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    m = tmp_path / "m.jsonl"
    scan(str(dump), str(m), Options(workers=1))
    return dump, m


def audit(m, dump, *extra):
    r = CliRunner().invoke(cli, ["verify", str(m), "--dump", str(dump), *extra])
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines and lines[-1]["record"] == "audit_summary"
    return r, lines[:-1], lines[-1]


def key(lines):
    return {(x["status"], x["level"], x["locator"]) + ((x["now"],) if "now" in x else ()) for x in lines}


def test_unchanged_copy_all_matched(case):
    dump, m = case
    r, lines, summary = audit(m, dump)
    assert r.exit_code == 0 and lines == []
    c = summary["counts"]
    assert (c["file"]["matched"], c["member"]["matched"], c["message"]["matched"], c["attachment"]["matched"]) \
        == (30, 8, 29, 10)
    assert summary["reparsed_files"] == 0  # nothing parsed again
    assert "All matched" in r.stderr
    r, lines, _ = audit(m, dump, "--all")
    assert len(lines) == 30 + 8 + 29 + 10 and {x["status"] for x in lines} == {"matched"}


def test_modified_deleted_added_moved(case):
    dump, m = case
    inbox = dump / H / "INBOX"
    # modified: one byte of an attachment's base64 in 0005 (png)
    p = inbox / "0005.eml"
    data = p.read_bytes()
    i = data.rindex(b"AAAA")
    p.write_bytes(data[:i] + b"AAAB" + data[i + 4:])
    # deleted
    (inbox / "0002.eml").unlink()
    # added
    (dump / H / "INBOX" / "0099.eml").write_bytes(b"From: x@example.org\r\nSubject: new\r\n\r\nnew\r\n")
    # moved (same bytes, other path), with its message and attachment
    os.rename(inbox / "0003.eml", dump / H / "Archives" / "0003-copy.eml")
    # a message that moved inside an mbox: swap the last two messages
    mb = dump / "Sarah Watson" / "Inbox.mbox"
    raw = mb.read_bytes()
    a, b = raw.rfind(b"\nFrom ", 0, raw.rfind(b"\nFrom ")), raw.rfind(b"\nFrom ")
    mb.write_bytes(raw[:a + 1] + raw[b + 1:].rstrip(b"\n") + b"\n\n" + raw[a + 1:b].rstrip(b"\n") + b"\n")
    r, lines, summary = audit(m, dump)
    assert r.exit_code == 16 + 1 + 2 + 4 + 8, r.output
    k = key(lines)
    assert ("modified", "file", "%s/INBOX/0005.eml" % H) in k
    assert ("modified", "message", "%s/INBOX/0005.eml" % H) in k
    assert ("modified", "attachment", "%s/INBOX/0005.eml#1.2" % H) in k
    assert ("missing", "file", "%s/INBOX/0002.eml" % H) in k
    assert ("missing", "message", "%s/INBOX/0002.eml" % H) in k
    assert ("new", "file", "%s/INBOX/0099.eml" % H) in k
    assert ("new", "message", "%s/INBOX/0099.eml" % H) in k
    moved = "%s/Archives/0003-copy.eml" % H
    assert ("moved", "file", "%s/INBOX/0003.eml" % H, moved) in k
    assert ("moved", "message", "%s/INBOX/0003.eml" % H, moved) in k
    assert ("moved", "attachment", "%s/INBOX/0003.eml#1.2" % H, moved + "#1.2") in k
    assert ("modified", "file", "Sarah Watson/Inbox.mbox") in k
    mbox_moves = [x for x in lines if x["status"] == "moved" and x["level"] == "message"
                  and x["locator"].startswith("Sarah Watson/Inbox.mbox")]
    assert len(mbox_moves) >= 1 and all("!mbox:" in x["now"] for x in mbox_moves)
    # untouched items inside the modified mbox still match; nothing else changed
    c = summary["counts"]
    assert c["member"] == {"matched": 8, "missing": 0, "modified": 0, "moved": 0, "new": 0}
    assert summary["reparsed_files"] == 3  # 0005.eml, the mbox, the new file; not the moved one
    assert "Differences" in r.stderr


def test_message_moved_between_files(case):
    dump, m = case
    inbox = dump / H / "INBOX"
    data = (inbox / "0006.eml").read_bytes()
    (inbox / "0006.eml").unlink()
    # the same message now stored as the first message of a new mbox
    (dump / H / "moved.mbox").write_bytes(b"From x@example.org Thu Mar  2 11:00:00 2017\n" + data)
    r, lines, _ = audit(m, dump)
    k = key(lines)
    assert ("missing", "file", "%s/INBOX/0006.eml" % H) in k
    assert ("new", "file", "%s/moved.mbox" % H) in k
    assert any(x[0] == "moved" and x[1] == "message" and x[2] == "%s/INBOX/0006.eml" % H for x in k), k


def test_wrong_or_moved_dump(case, tmp_path):
    dump, m = case
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("x")
    r = CliRunner().invoke(cli, ["verify", str(m), "--dump", str(other)])
    assert r.exit_code == 6 and "right folder" in r.stderr
    r = CliRunner().invoke(cli, ["verify", str(m), "--dump", str(tmp_path / "nowhere")])
    assert r.exit_code == 6 and "does not exist" in r.stderr
    # without --dump, the recorded dump root is used; when it moved, say so
    moved = tmp_path / "moved-dump"
    os.rename(dump, moved)
    r = CliRunner().invoke(cli, ["verify", str(m)])
    assert r.exit_code == 6 and "no longer exists" in r.stderr and "--dump" in r.stderr
    r = CliRunner().invoke(cli, ["verify", str(m), "--dump", str(moved)])
    assert r.exit_code == 0


def test_workers_give_the_same_result(case):
    dump, m = case
    (dump / H / "INBOX" / "0001.eml").write_bytes(b"changed\n")
    r1, l1, _ = audit(m, dump)
    r2, l2, _ = audit(m, dump, "--workers", "2")
    assert r1.exit_code == r2.exit_code == 16 + 1 + 2 and l1 == l2
