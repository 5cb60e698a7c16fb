"""The one resolver (leaktriage.manifest.resolver): every message, part and member the manifest
lists comes back with the bytes its digest covers, in manifest order with caches, from scratch
one at a time, and under a tiny memory budget; failures are typed, never swallowed."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from conftest import SAMPLES, corpus
from leaktriage import Options, scan
from leaktriage.errors import DumpError, IntegrityError
from leaktriage.manifest.reader import Manifest
from leaktriage.manifest.resolver import (ItemChanged, ItemMissing, NotRegularFile, ResolveError, Resolver,
                                          resolve)


def _checkable(rec):
    """Records whose sha256 covers the bytes the resolver returns (files on disk, members, messages,
    decoded parts); multipart containers and symlinks carry no digest."""
    return rec["record"] in ("message", "part", "file") and rec.get("sha256") and rec.get("entry", "file") == "file" \
        and rec.get("status", "ok") != "failed" and not rec.get("encrypted")


def _all_bytes(root, manifest, budget):
    r = Resolver(str(root), budget=budget)
    n = 0
    for rec in Manifest(str(manifest)).records():
        if not _checkable(rec):
            continue
        if rec["record"] == "message":
            data = r.message(rec)
        else:
            data = r.part(rec)
        assert hashlib.sha256(data).hexdigest() == rec["sha256"], rec["locator"]
        n += 1
    return n


@pytest.fixture(scope="module")
def samples_manifest(tmp_path_factory):
    m = tmp_path_factory.mktemp("res") / "s.jsonl"
    scan(str(SAMPLES), str(m), Options(workers=1))
    return m


def test_every_item_of_samples_in_order(samples_manifest):
    n = _all_bytes(SAMPLES, samples_manifest, budget=512 << 20)
    assert n >= 29 + 9 + 60   # messages, attachments, parts and files of the sample dump


def test_tiny_budget_gives_the_same_bytes(samples_manifest):
    """A budget smaller than most items: nothing is kept, every item is still right."""
    assert _all_bytes(SAMPLES, samples_manifest, budget=4096) == _all_bytes(SAMPLES, samples_manifest, 512 << 20)


def test_one_shot_resolve_agrees(samples_manifest):
    r = Resolver(str(SAMPLES))
    for rec in Manifest(str(samples_manifest)).records():
        if _checkable(rec) and rec["record"] != "message":
            assert resolve(str(SAMPLES), rec["locator"]) == bytes(r.part(rec)), rec["locator"]


@pytest.mark.parametrize("name", ["apache-james-mime4j", "mikel-mail", "aquasync-ruby-msg", "jstedfast-mimekit"])
def test_every_item_of_a_corpus(name, tmp_path):
    root = corpus(name)
    m = tmp_path / "c.jsonl"
    scan(str(root), str(m), Options(workers=2))
    assert _all_bytes(root, m, budget=64 << 20) > 50


def test_typed_failures(tmp_path, samples_manifest):
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump)
    recs = [r for r in Manifest(str(samples_manifest)).records() if r["record"] == "message"]
    loose = next(r for r in recs if r["locator"].endswith("INBOX/0002.eml"))
    mbox_msg = next(r for r in recs if "!mbox:" in r["locator"])
    path = dump / loose["locator"]
    # changed bytes: ItemChanged, an integrity failure (exit 5), not a read failure
    path.write_bytes(path.read_bytes().replace(b"Subject:", b"Subject: X", 1))
    with pytest.raises(ItemChanged) as ei:
        Resolver(str(dump)).message(loose)
    assert isinstance(ei.value, IntegrityError) and ei.value.exit_code == 5
    # a FIFO where the file was: refused at once, never waited on
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(NotRegularFile) as ei:
        Resolver(str(dump)).message(loose)
    assert isinstance(ei.value, DumpError) and ei.value.exit_code == 6
    # gone: ItemMissing
    path.unlink()
    with pytest.raises(ItemMissing):
        resolve(str(dump), loose["locator"])
    # an mbox message whose From line moved: ItemMissing, with the offset in the message
    bad = dict(mbox_msg, locator=mbox_msg["locator"].rsplit(":", 1)[0] + ":7", offset=None, length=None)
    with pytest.raises(ResolveError, match="byte 7"):
        Resolver(str(dump)).message(bad)

