"""Interrupted scans resume to a manifest byte-identical to an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage import Options, api, scan
from leaktriage.cli.main import cli


def _interrupt_after(monkeypatch, k):
    real = api.run_units

    def run_units(root, entries, opts):
        for i, res in enumerate(real(root, entries, opts)):
            if i == k:
                raise KeyboardInterrupt
            yield res

    monkeypatch.setattr(api, "run_units", run_units)


@pytest.mark.parametrize("k", [0, 1, 7, 20])
def test_ctrl_c_then_resume_is_byte_identical(tmp_path, monkeypatch, k):
    full = tmp_path / "full.jsonl"
    scan(str(SAMPLES), str(full), Options(workers=1))
    out = tmp_path / "m.jsonl"
    _interrupt_after(monkeypatch, k)
    res = scan(str(SAMPLES), str(out), Options(workers=1))
    assert res.interrupted and res.units_done == k
    assert not out.exists() and (tmp_path / "m.jsonl.partial").exists()
    partial = (tmp_path / "m.jsonl.partial").read_bytes()
    assert full.read_bytes().startswith(partial)  # a valid prefix: whole records only
    monkeypatch.undo()
    res2 = scan(str(SAMPLES), str(out), Options(workers=2), resume=True)
    assert not res2.interrupted
    assert out.read_bytes() == full.read_bytes()
    assert not (tmp_path / "m.jsonl.partial").exists() and not (tmp_path / "m.jsonl.partial.ckpt").exists()
    assert (tmp_path / "m.jsonl.sha256").read_text().split()[0] == res2.manifest_sha256


def test_resume_refuses_other_options_or_changed_dump(tmp_path, monkeypatch):
    import shutil
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    out = tmp_path / "m.jsonl"
    _interrupt_after(monkeypatch, 5)
    scan(str(dump), str(out), Options(workers=1))
    monkeypatch.undo()
    with pytest.raises(api.UsageError, match="other options"):
        scan(str(dump), str(out), Options(workers=1, algorithms=("sha256", "md5")), resume=True)
    first = sorted(p for p in dump.rglob("*") if p.is_file())[0]
    first.write_bytes(first.read_bytes() + b"changed")
    with pytest.raises(api.UsageError, match="dump changed"):
        scan(str(dump), str(out), Options(workers=1), resume=True)
    r = CliRunner().invoke(cli, ["scan", str(dump), "-o", str(tmp_path / "none.jsonl"), "--resume", "-q"])
    assert r.exit_code == 2 and "nothing to resume" in r.output


def test_kill_minus_9_then_resume(tmp_path):
    """A real `kill -9` in the middle of a scan, then --resume."""
    dump = tmp_path / "dump"
    dump.mkdir()
    body = b"x" * 20000 + b"\r\n"
    for i in range(400):
        (dump / ("%04d.eml" % i)).write_bytes(
            b"From: a@example.org\r\nSubject: m%d\r\nDate: Wed, 1 Mar 2017 10:00:00 +0000\r\n\r\n" % i + body * 20)
    full = tmp_path / "full.jsonl"
    scan(str(dump), str(full), Options(workers=1))
    out = tmp_path / "m.jsonl"
    ckpt = tmp_path / "m.jsonl.partial.ckpt"
    cmd = [sys.executable, "-m", "leaktriage", "scan", str(dump), "-o", str(out), "-w", "1", "-q"]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ckpt.exists() and ckpt.read_text().count("\n") >= 5:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the scan finished before it could be killed: make the dump bigger"
    r = subprocess.run(cmd + ["--resume"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == full.read_bytes()


def test_resume_refuses_a_file_edited_in_place_at_the_same_size(tmp_path, monkeypatch):
    """A done file edited in place (same size, mtime set back) is noticed: --resume would otherwise
    mix the old file's records with the new dump (verify later exits 17)."""
    import shutil
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    out = tmp_path / "m.jsonl"
    _interrupt_after(monkeypatch, 5)
    scan(str(dump), str(out), Options(workers=1))
    monkeypatch.undo()
    first = sorted(p for p in dump.rglob("*") if p.is_file() and not p.is_symlink())[0]
    st = first.stat()
    data = bytearray(first.read_bytes())
    data[-3] ^= 0x20                                   # one byte changed, same size
    first.write_bytes(bytes(data))
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))   # and the modification time put back
    assert first.stat().st_size == st.st_size and first.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(api.UsageError, match="dump changed"):
        scan(str(dump), str(out), Options(workers=1), resume=True)


def test_spill_folders_left_by_kill_9_are_removed(tmp_path):
    """A scan killed with kill -9 leaves its .leaktriage-spill-* folder; the next scan beside it
    removes it when its process is gone, and leaves a live scan's folder alone."""
    from leaktriage.scanner import sinks
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (sinks.spill_prefix().replace("-%d-" % os.getpid(), "-%d-" % dead.pid) + "abcd")
    stale.mkdir()
    (stale / "unit.jsonl").write_bytes(b"x" * 1000)
    live = tmp_path / (sinks.spill_prefix() + "efgh")      # this process: alive
    live.mkdir()
    other = tmp_path / ".leaktriage-spill-otherhost-1-zz"   # another host's: not ours to judge
    other.mkdir()
    scan(str(SAMPLES), str(tmp_path / "m.jsonl"), Options(workers=1))
    assert not stale.exists() and live.exists() and other.exists()
