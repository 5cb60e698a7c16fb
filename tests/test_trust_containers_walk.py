"""Issue #14 (Trust), the walk side: walk errors (items 7), the dump root (item 20). Each test scans a
real tree end to end. Every test here failed before its fix (see the commit that adds it)."""
import ctypes
import errno
import json
import os
import shutil
import stat
import sys
import tempfile

import pytest
from click.testing import CliRunner

from conftest import REPO, by_kind, scan_records

sys.path.insert(0, str(REPO / "tools"))
import make_fixtures  # noqa: E402

EML = make_fixtures.MESSAGE


def problems(recs, code=None):
    return [r for r in by_kind(recs, "problem") if code is None or r["code"] == code]


def _drop_dac_capabilities():
    """Root bypasses file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): drop both, for good,
    in this process, so that mode bits apply to it as to any owner."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    hdr, data = Header(0x20080522, 0), (Data * 2)()
    assert libc.capget(ctypes.byref(hdr), data) == 0
    mask = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    assert libc.capset(ctypes.byref(hdr), data) == 0, ctypes.get_errno()


def _scan_without_permission_bypass(root, out):
    """Scan in a forked child that cannot bypass permissions (as root: capabilities dropped)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if os.geteuid() == 0:
                _drop_dac_capabilities()
            from leaktriage import Options, scan
            scan(str(root), str(out), Options(workers=1))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with open(out, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# -- item 7: walk errors --------------------------------------------------------------------------------

def test_entries_of_a_readable_but_not_searchable_folder_are_unreadable_not_special(tmp_path):
    """A folder with read but no search permission lists its names, but nothing in it can be
    stat'ed: its file was recorded as 'a FIFO, socket or device file' with status ok, the error
    dropped, and its sub-folder's content had no record at all."""
    d = tmp_path / "dump"
    (d / "locked" / "sub").mkdir(parents=True)
    (d / "locked" / "a.eml").write_bytes(EML)
    (d / "locked" / "sub" / "b.eml").write_bytes(EML)
    (d / "ok.eml").write_bytes(EML)
    os.chmod(d / "locked", 0o644)
    try:
        recs = _scan_without_permission_bypass(d, tmp_path / "m.jsonl")
    finally:
        os.chmod(d / "locked", 0o755)
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert set(files) == {"locked/a.eml", "locked/sub", "ok.eml"}
    assert files["ok.eml"]["status"] == "ok"
    assert files["locked/a.eml"]["entry"] == "file" and files["locked/a.eml"]["status"] == "failed"
    assert files["locked/sub"]["status"] == "failed"
    assert problems(recs, "walk.special_file") == []
    un = {p["locator"]: p for p in problems(recs, "walk.unreadable")}
    assert set(un) == {"locked/a.eml", "locked/sub"}
    assert un["locked/a.eml"]["detail"] == {"errno": errno.EACCES}
    assert un["locked/sub"]["detail"] == {"errno": errno.EACCES}
    assert "not in the manifest" in un["locked/sub"]["message"]


def _deep_tree(base, depth=22, width=200):
    """base/ddd.../ddd.../... deeper than PATH_MAX (4096 bytes), built through directory fds;
    a message at the bottom and one about half way. Returns the rel paths of both."""
    name = b"d" * width
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    rels, rel = [], b""
    try:
        for level in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            rel = rel + b"/" + name if rel else name
            if level in (depth // 2, depth - 1):
                f = os.open(b"m.eml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(f, EML)
                os.close(f)
                rels.append(rel + b"/m.eml")
    finally:
        os.close(fd)
    return rels


def test_paths_past_path_max_are_walked_and_read(tmp_path):
    """A path longer than PATH_MAX could not be lstat'ed: the entry was recorded as a special
    file (status ok) and what lay deeper got no record. The walk and the reads now go through
    directory fds; show --raw and verify find the files too."""
    from leaktriage.manifest.resolver import resolve
    from leaktriage.model import locator as L
    d = tmp_path / "dump"
    d.mkdir()
    mid, deep = _deep_tree(str(d).encode())
    assert len(str(d).encode()) + 1 + len(deep) > 4096
    recs, out, _ = scan_records(d, tmp_path)
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert set(files) == {L.escape(mid), L.escape(deep)}
    for rel in (mid, deep):
        rec = files[L.escape(rel)]
        assert rec["status"] == "ok" and rec["kind"] == "message" and rec["size"] == len(EML)
    assert len(by_kind(recs, "message")) == 2
    assert problems(recs) == []
    assert resolve(str(d), L.escape(deep)) == EML
    res = CliRunner().invoke(__import__("leaktriage.cli.main", fromlist=["cli"]).cli,
                             ["verify", str(out), "--dump", str(d)])
    assert res.exit_code == 0, res.output


# -- item 20: the dump root ---------------------------------------------------------------------------------

def test_dump_root_that_is_a_maildir_gets_its_own_name_as_custodian(tmp_path):
    d = tmp_path / "Hélène Lefèvre"
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True)
    (d / "cur" / "1488362400.M1P2.host:2,S").write_bytes(EML)
    (d / ".Sent" / "cur").mkdir(parents=True)
    (d / ".Sent" / "new").mkdir()
    (d / ".Sent" / "cur" / "1488362401.M2P2.host:2,S").write_bytes(EML)
    recs, _, _ = scan_records(d, tmp_path)
    assert {r.get("custodian") for r in by_kind(recs, "file")} == {"Hélène Lefèvre"}
    msgs = {m["locator"]: m for m in by_kind(recs, "message")}
    assert msgs["cur/1488362400.M1P2.host:2,S"]["mailbox"] == "."
    assert msgs["cur/1488362400.M1P2.host:2,S"]["maildir"]["folder"] == "."
    assert msgs[".Sent/cur/1488362401.M2P2.host:2,S"]["mailbox"] == ".Sent"
    assert [m["locator"] for m in by_kind(recs, "mailbox")] == ["Hélène Lefèvre"]


def _cli(*args):
    from leaktriage.cli.main import cli
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_one_file_dump_scan_show_verify_resume(tmp_path, monkeypatch):
    """`leaktriage scan Inbox.mbox` was refused ('Directory ... is a file', exit 2). A single file is
    a one-file dump: its locator is its name, MANIFEST.run.json records the file as the dump root,
    and show --raw, verify and --resume find it."""
    from leaktriage import Options, api, scan
    mbox = make_fixtures.report_mbox(5, 1)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "Inbox.mbox").write_bytes(mbox)
    (evidence / "other.eml").write_bytes(EML)           # beside it, not part of the dump
    monkeypatch.chdir(tmp_path)
    res = _cli("scan", str(evidence / "Inbox.mbox"), "-o", "inbox.jsonl", "-q")
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in (tmp_path / "inbox.jsonl").read_text().splitlines()]
    files = by_kind(recs, "file")
    assert [f["locator"] for f in files] == ["Inbox.mbox"] and files[0]["messages"] == 5
    assert "custodian" not in files[0]
    second = mbox.index(b"\nFrom alice@") + 1
    assert [m["locator"] for m in by_kind(recs, "message")][:2] == ["Inbox.mbox!mbox:0", "Inbox.mbox!mbox:%d" % second]
    run = json.loads((tmp_path / "inbox.jsonl.run.json").read_text())
    assert run["dump_root"] == str(evidence / "Inbox.mbox")
    raw = _cli("show", "Inbox.mbox!mbox:0", "-m", "inbox.jsonl", "--raw")
    assert raw.exit_code == 0 and raw.stdout_bytes == mbox[mbox.index(b"\n") + 1:second - 1]  # the blank line before "From " is the separator's
    ver = _cli("verify", "inbox.jsonl")
    assert ver.exit_code == 0, ver.output
    assert json.loads(ver.stdout.splitlines()[-1])["counts"]["file"] == \
        {"matched": 1, "missing": 0, "modified": 0, "moved": 0, "new": 0}
    ver2 = _cli("verify", "inbox.jsonl", "--dump", str(evidence / "Inbox.mbox"))
    assert ver2.exit_code == 0, ver2.output
    # interrupted before its one unit was done, then resumed: byte-identical
    real = api.run_units

    def interrupted(root, entries, opts):
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(api, "run_units", interrupted)
    assert scan(str(evidence / "Inbox.mbox"), str(tmp_path / "r.jsonl"), Options(workers=1)).interrupted
    monkeypatch.setattr(api, "run_units", real)
    scan(str(evidence / "Inbox.mbox"), str(tmp_path / "r.jsonl"), Options(workers=1), resume=True)
    assert (tmp_path / "r.jsonl").read_bytes() == (tmp_path / "inbox.jsonl").read_bytes()


def test_one_file_archive_dump_custodian_is_the_archive_stem(tmp_path):
    d = tmp_path / "Sophie.zip"
    d.write_bytes(make_fixtures.simple_zip({"Inbox/1.eml": EML}))
    recs, _, _ = scan_records(d, tmp_path)
    assert [f["locator"] for f in by_kind(recs, "file")] == ["Sophie.zip", "Sophie.zip!zip:Inbox/1.eml"]
    assert by_kind(recs, "message")[0]["custodian"] == "Sophie"


def test_one_file_dump_is_never_written_onto(tmp_path, monkeypatch):
    from leaktriage import Options, scan
    from leaktriage.errors import UsageError
    ev = tmp_path / "m.jsonl.sha256"                     # evidence whose name is a sidecar's
    ev.write_bytes(make_fixtures.report_mbox(2, 1))
    before = ev.read_bytes()
    os.link(ev, tmp_path / "hard.jsonl")
    os.symlink(ev, tmp_path / "sym.jsonl")
    for out in (ev, tmp_path / "m.jsonl", tmp_path / "hard.jsonl", tmp_path / "sym.jsonl"):
        with pytest.raises(UsageError, match="evidence is read-only"):
            scan(str(ev), str(out), Options(workers=1))
    monkeypatch.chdir(tmp_path)
    res = _cli("scan", str(ev), "-o", str(ev), "-q")
    assert res.exit_code == 2 and "read-only" in res.output
    assert ev.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.jsonl", "m.jsonl.sha256", "sym.jsonl"]


# -- item 15: a file truncated while memory-mapped (SIGBUS) ------------------------------------------------

def _sigbus_dump(tmp_path):
    """A dump of five small messages and one file past IN_MEMORY_MAX (sparse: 65 MiB of zeros)."""
    from leaktriage.scanner import pipeline
    d = tmp_path / "dump"
    (d / "box").mkdir(parents=True)
    for i in range(5):
        (d / "box" / ("%d.eml" % i)).write_bytes(EML.replace(b"Fixture message", b"Fixture %d" % i))
    big = d / "box" / "big.bin"
    size = pipeline.IN_MEMORY_MAX + (1 << 20)
    big.write_bytes(b"")
    os.truncate(big, size)
    return d, big, size


def _truncate_after_mapping(monkeypatch, big, size, every_time):
    """The hook in the process that reads big.bin: right after it is memory-mapped (when the
    pipeline sniffs the map), the file is truncated to 0 bytes, so the first read of the map
    raises SIGBUS. every_time: the file is given its size back before each attempt to open it (the
    retries die too); otherwise it stays truncated and the retry reads it as it is now."""
    import types
    from leaktriage.scanner import pipeline
    real_sniff, real_open = pipeline.sniff, getattr(pipeline, "open_in_dump", None)

    log = str(big) + ".attempts"      # outside the dump's walk: written after the walk

    def note(what):
        with open(log, "a") as fh:
            fh.write("%d %s\n" % (os.getpid(), what))

    def sniff_hook(data, n):
        if n > pipeline.IN_MEMORY_MAX and os.path.getsize(big) == n:
            os.truncate(big, 0)
            note("truncated")
        return real_sniff.sniff(data, n)

    def open_hook(root, rel, flags):
        if rel == b"box/big.bin":
            note("open")
            if every_time:
                os.truncate(big, size)
        return real_open(root, rel, flags)

    monkeypatch.setattr(pipeline, "sniff", types.SimpleNamespace(sniff=sniff_hook,
                                                                 container_kind=real_sniff.container_kind))
    if real_open is not None:
        monkeypatch.setattr(pipeline, "open_in_dump", open_hook)

    def attempts():
        with open(log) as fh:
            return [line.split() for line in fh]
    return attempts


@pytest.mark.parametrize("workers", [1, 2])
def test_file_truncated_under_its_memory_map_every_time_is_recorded_as_worker_died(tmp_path, monkeypatch, workers):
    """A real SIGBUS: a 65 MiB file is memory-mapped, truncated by the hook, and the reader touches
    the map. Every attempt dies; the file is recorded as failed with internal.worker_died, the
    other files are read, the manifest is complete."""
    d, big, size = _sigbus_dump(tmp_path)
    attempts = _truncate_after_mapping(monkeypatch, big, size, every_time=True)
    recs, _, _ = scan_records(d, tmp_path, workers=workers)
    tried = attempts()
    # each attempt in a process of its own, each truncated under its map: all died (how many
    # tries the pool makes before it gives up is its business: at least two)
    assert len(tried) >= 4 and [w for _pid, w in tried] == ["open", "truncated"] * (len(tried) // 2)
    assert len({pid for pid, _w in tried}) == len(tried) // 2
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert files["box/big.bin"]["status"] == "failed" and "sha256" not in files["box/big.bin"]
    assert [p["locator"] for p in problems(recs, "internal.worker_died")] == ["box/big.bin"]
    assert sorted(m["locator"] for m in by_kind(recs, "message")) == ["box/%d.eml" % i for i in range(5)]
    assert recs[-1]["record"] == "summary"


@pytest.mark.parametrize("workers", [1, 2])
def test_file_truncated_once_under_its_memory_map_is_read_as_it_is_now(tmp_path, monkeypatch, workers):
    """Truncated once: the process that mapped it dies (SIGBUS), the retry reads the file as it is
    now (0 bytes) and says it changed since it was listed (the retry recorded an empty file and
    nothing else: the 65 MiB that were listed had vanished without a word)."""
    d, big, size = _sigbus_dump(tmp_path)
    attempts = _truncate_after_mapping(monkeypatch, big, size, every_time=False)
    recs, _, _ = scan_records(d, tmp_path, workers=workers)
    assert [w for _pid, w in attempts()] == ["open", "truncated", "open"]   # the first one died
    files = {r["locator"]: r for r in by_kind(recs, "file")}
    assert files["box/big.bin"]["size"] == 0 and os.path.getsize(big) == 0
    (ch,) = problems(recs, "walk.changed")
    assert ch["locator"] == "box/big.bin" and ch["detail"]["size_listed"] == size
    assert ch["detail"]["size_before"] == 0
    assert problems(recs, "internal.worker_died") == []
    assert len(by_kind(recs, "message")) == 5
