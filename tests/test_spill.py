"""A unit's manifest lines do not pile up in memory: past pipeline.SPILL_BYTES they go to a
temporary file beside the manifest, which the main process copies in and deletes. The manifest is
byte-identical whether a unit spills or not, with one worker or two, and when the temporary file
cannot be made; nothing is left behind."""
import os
import tempfile

import pytest

from leaktriage import api
from leaktriage.scanner import pipeline
from leaktriage.auth import mailbox
from leaktriage.scanner.pipeline import Options


def mbox_of(n: int) -> bytes:
    return b"".join(b"From a@b.example Mon Mar  6 10:00:00 2017\nFrom: a@b.example\nSubject: m%d\n"
                    b"Date: Mon, 6 Mar 2017 10:00:%02d +0000\nMessage-ID: <m%d@b.example>\n\nbody %d\n\n"
                    % (i, i % 60, i, i) for i in range(n))


@pytest.fixture
def dump(tmp_path):
    d = tmp_path / "dump"
    (d / "box").mkdir(parents=True)
    (d / "box" / "big.mbox").write_bytes(mbox_of(400))
    (d / "box" / "small.mbox").write_bytes(mbox_of(3))
    (d / "a.eml").write_bytes(b"From: x@y.example\nSubject: loose\n\nhi\n")
    return d


def scan(dump, out, workers=1):
    api.scan(str(dump), str(out), Options(workers=workers))
    return out.read_bytes()


def leftovers(d):
    return [n for n in os.listdir(d) if n.startswith(".leaktriage-spill-") or n.startswith(pipeline.SPILL_PREFIX)]


@pytest.mark.parametrize("workers", [1, 2])
def test_spilled_units_give_the_same_manifest(dump, tmp_path, monkeypatch, workers):
    expected = scan(dump, tmp_path / "plain.jsonl")
    copied = []
    real = api.ManifestWriter.write_file
    monkeypatch.setattr(api.ManifestWriter, "write_file", lambda self, p: (copied.append(p), real(self, p)))
    monkeypatch.setattr(pipeline, "SPILL_BYTES", 16384)     # forked workers inherit it
    out = tmp_path / "out" / "spilled.jsonl"
    out.parent.mkdir()
    assert scan(dump, out, workers) == expected
    assert len(copied) == 1                        # the 400-message mbox spilled, the others did not
    assert not any(os.path.exists(p) for p in copied)
    assert leftovers(out.parent) == [] and leftovers(tempfile.gettempdir()) == []


def test_a_spill_file_that_cannot_be_made_keeps_the_lines_in_memory(dump, tmp_path, monkeypatch):
    expected = scan(dump, tmp_path / "plain.jsonl")
    monkeypatch.setattr(pipeline, "SPILL_BYTES", 4096)

    def refuse(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert scan(dump, tmp_path / "nospace.jsonl") == expected


def test_a_failed_spill_write_is_cut_back_and_nothing_is_lost(dump, tmp_path, monkeypatch):
    expected = scan(dump, tmp_path / "plain.jsonl")
    monkeypatch.setattr(pipeline, "SPILL_BYTES", 4096)
    real_write, writes = os.write, []

    def flaky(fd, data):                          # the third spill write fails half-way
        writes.append(len(data))
        if len(writes) == 3:
            real_write(fd, bytes(data[:len(data) // 2]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(pipeline.os, "write", flaky)
    assert scan(dump, tmp_path / "flaky.jsonl") == expected
    assert len(writes) >= 3                       # the failure happened (other writers may follow)


def test_document_context_is_bounded(monkeypatch):
    """The per-message context that document parts look up stays small however many messages
    one unit holds, and a part still finds its own message."""
    monkeypatch.setattr(mailbox, "CONTEXT_MAX", 8)
    ev = mailbox.MailboxEvidence()
    for i in range(100):
        ev.add_message({"locator": "m%d" % i, "custodian": "c", "date": "2017-01-01T00:00:%02dZ" % (i % 60)})
        ev.add_document({"locator": "m%d#2" % i, "message": "m%d" % i, "docmeta": {"format": "pdf"}})
    assert len(ev._ctx) <= 8
    assert [d[-1] for d in ev.docs["c"]] == ["2017-01-01T00:00:%02dZ" % (i % 60) for i in range(100)]
