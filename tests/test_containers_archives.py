"""Archive readers against the fixtures built by tools/make_fixtures.py."""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from leaktriage.content import pages, sniff
from leaktriage.model import locator, problems  # noqa: E402
from leaktriage.containers import compressed, emlx, rar, sevenzip, streams, tar, tnef  # noqa: E402
from leaktriage.containers import zip as zipr  # noqa: E402
from leaktriage.model import container_codes as codes  # noqa: E402
from leaktriage.containers.base import Child, Context, Limits, Problem  # noqa: E402

FIX = os.path.join(ROOT, "tests", "fixtures", "containers")
READERS = {"zip": zipr.read_zip, "tar": tar.read_tar, "gzip": compressed.read_gzip,
           "bzip2": compressed.read_bzip2, "xz": compressed.read_xz, "7z": sevenzip.read_7z,
           "rar": rar.read_rar, "tnef": tnef.read_tnef, "emlx": emlx.read_emlx}


def fx(name: str) -> bytes:
    with open(os.path.join(FIX, name), "rb") as fh:
        return fh.read()


def run(reader, data, loc="x", limits=None, ctx=None):
    ctx = ctx or Context(locator=loc, depth=0, limits=limits or Limits())
    items = list(reader(data, ctx))
    for it in items:
        assert isinstance(it, (Child, Problem))
        for p in ([it] if isinstance(it, Problem) else it.problems):
            assert p.code in codes.CODES, p.code
        if isinstance(it, Child):
            locator.parse("a.zip!" + it.segment)   # every segment is valid locator grammar
    return items, ctx


def children(items):
    return [i for i in items if isinstance(i, Child)]


def pcodes(items):
    out = []
    for i in items:
        if isinstance(i, Problem):
            out.append(i.code)
        else:
            out.extend(p.code for p in i.problems)
    return out


def test_codes_register_cleanly():
    for code, (sev, stage, text) in codes.CODES.items():
        assert sev in ("info", "warning", "error")
        assert stage in ("container", "limit") and stage in problems.STAGES
        assert text
    assert all(problems.CODES[c] == spec for c, spec in codes.CODES.items())


def test_fixtures_are_deterministic_and_small():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_fixtures.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    total = sum(os.path.getsize(os.path.join(FIX, f)) for f in os.listdir(FIX))
    assert total < 1 << 20


def test_zip_bomb_stops_at_ratio_without_expanding():
    items, ctx = run(zipr.read_zip, fx("bomb.zip"))
    (ch,) = children(items)
    assert ch.data is None
    assert "zip.ratio_exceeded" in pcodes(items)
    assert ctx.expanded_so_far <= 5 << 20          # stopped near 200 x 20 KiB, not at 20 MiB


def test_zip_bomb_member_size_limit():
    lim = Limits(max_ratio=1e9, max_member_size=1 << 20)
    items, ctx = run(zipr.read_zip, fx("bomb.zip"), limits=lim)
    assert children(items)[0].data is None
    assert "zip.member_too_large" in pcodes(items)
    assert ctx.expanded_so_far <= 2 << 20


def test_zip_bomb_total_limit():
    lim = Limits(max_ratio=1e9, max_total_expanded=3 << 20)
    items, ctx = run(zipr.read_zip, fx("bomb.zip"), limits=lim)
    assert "zip.total_exceeded" in pcodes(items)
    assert ctx.expanded_so_far <= 4 << 20


def drive(data, loc, ctx_limits, depth=0, shared=None, out=None):
    """A miniature pipeline: sniff, read, recurse (the real one is pipeline.py)."""
    shared = shared if shared is not None else {"expanded": 0, "problems": []}
    out = out if out is not None else []
    kind = sniff.container_kind(data)
    if kind not in READERS:
        out.append((loc, data))
        return out, shared
    if depth >= ctx_limits.max_depth:
        shared["problems"].append((loc, "depth"))
        return out, shared
    ctx = Context(locator=loc, depth=depth, limits=ctx_limits, expanded_so_far=shared["expanded"])
    for it in READERS[kind](data, ctx):
        if isinstance(it, Problem):
            shared["problems"].append((loc, it.code))
            continue
        for p in it.problems:
            shared["problems"].append((locator.child(loc, it.segment), p.code))
        shared["expanded"] = ctx.expanded_so_far
        if it.data is not None:
            drive(it.data, locator.child(loc, it.segment), ctx_limits, depth + 1, shared, out)
        ctx.expanded_so_far = shared["expanded"]
    shared["expanded"] = ctx.expanded_so_far
    return out, shared


def test_nested_archive_locators():
    leaves, shared = drive(fx("nested.tar.gz"), "nested.tar.gz", Limits())
    locs = [loc for loc, _ in leaves]
    assert "nested.tar.gz!gz:nested.tar!tar:mailboxes/inner.zip!zip:deep.zip!zip:Sophie/Inbox/1.eml" in locs
    assert "nested.tar.gz!gz:nested.tar!tar:mailboxes/README" in locs
    msg = dict(leaves)["nested.tar.gz!gz:nested.tar!tar:mailboxes/inner.zip!zip:deep.zip!zip:Sophie/Inbox/1.eml"]
    assert msg.startswith(b"From: Alice")
    steps = locator.parse(locs[0])
    assert [s.kind for s in steps][:3] == ["path", "gz", "tar"]


def test_42_style_nesting_terminates_with_total_limit():
    lim = Limits(max_total_expanded=40 << 20)
    leaves, shared = drive(fx("nest42.zip"), "nest42.zip", lim)
    codes_seen = {c for _l, c in shared["problems"]}
    assert "zip.total_exceeded" in codes_seen
    assert shared["expanded"] <= (40 << 20) + (2 << 20)


def test_depth_limit_terminates_nesting():
    lim = Limits(max_depth=3)
    leaves, shared = drive(fx("nest42.zip"), "nest42.zip", lim)
    assert any(c == "depth" for _l, c in shared["problems"])
    assert not leaves or all(loc.count("!") <= 3 for loc, _ in leaves)


def test_self_nesting_terminates():
    # a zip containing a zip containing ... (each layer the same shape): the depth limit ends it
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import make_fixtures
    layer = make_fixtures.simple_zip({"1.eml": b"From: a@b\r\n\r\nx\r\n"})
    for _ in range(40):
        layer = make_fixtures.simple_zip({"again.zip": layer})
    leaves, shared = drive(layer, "q.zip", Limits(max_depth=24))
    assert not leaves and ("q.zip" + "!zip:again.zip" * 24, "depth") in shared["problems"]


def test_traversal_names_flagged_verbatim():
    items, _ = run(zipr.read_zip, fx("traversal.zip"))
    ch = {c.name: c for c in children(items)}
    assert ch["../../etc/passwd"].meta["name_flags"] == ["traversal"]
    assert ch["/abs"].meta["name_flags"] == ["absolute"]
    assert ch["C:\\x"].meta["name_flags"] == ["drive_letter"]
    assert ch["nul\x00name.txt"].meta["name_flags"] == ["nul"]
    assert ch["bell\x07.txt"].meta["name_flags"] == ["control_chars"]
    assert ch["nul\x00name.txt"].segment == "zip:nul%00name.txt"
    assert locator.parse("t.zip!" + ch["nul\x00name.txt"].segment)[1].raw() == b"nul\x00name.txt"
    assert pcodes(items).count("zip.suspicious_name") == 5
    # directories are not children; duplicates get distinct segments
    segs = [c.segment for c in children(items)]
    assert "zip:emptydir/" not in segs
    assert "zip:dup.txt" in segs and "zip:dup.txt%002" in segs
    assert len(set(segs)) == len(segs)
    assert [c.meta["index"] for c in children(items)] == sorted(c.meta["index"] for c in children(items))


def test_encrypted_member_reported():
    items, _ = run(zipr.read_zip, fx("encrypted.zip"))
    ch = {c.name: c for c in children(items)}
    assert ch["secret.eml"].data is None and ch["secret.eml"].meta["encrypted"] is True
    assert [p.code for p in ch["secret.eml"].problems] == ["zip.encrypted"]
    assert ch["plain.txt"].data == b"not encrypted\n"


def test_truncated_zip_recovers_members():
    items, _ = run(zipr.read_zip, fx("truncated.zip"))
    assert "zip.no_central_directory" in pcodes(items)
    ch = children(items)
    assert ch[0].name == "a.txt" and ch[0].data.endswith(b"first member\n")
    assert ch[1].name == "b.eml" and ch[1].meta["truncated"] is True and len(ch[1].data) == 200
    assert "zip.member_truncated" in pcodes(items)


def test_every_truncation_never_raises():
    for name in ("traversal.zip", "zip64.zip", "nested.tar.gz", "archive.7z", "single.eml.bz2", "single.eml.xz",
                 "hostile.tar", "stored.rar", "long-name.tnef", "message.emlx"):
        data = fx(name)
        kind = sniff.container_kind(data)
        for cut in range(0, len(data), max(1, len(data) // 40)):
            run(READERS[kind], data[:cut])
            run(READERS[kind], data[:cut] + b"\xff" * 7 + data[cut + 7:])


def test_zip64():
    items, _ = run(zipr.read_zip, fx("zip64.zip"))
    ch = children(items)
    assert [c.name for c in ch] == ["big-one.eml", "second.txt"]
    assert ch[0].data.startswith(b"From: Alice") and ch[1].data == b"zip64 second member\n"
    assert not pcodes(items)


def test_codepage_names():
    items, _ = run(zipr.read_zip, fx("codepage.zip"))
    ch = children(items)
    assert [c.name for c in ch] == ["Übersicht.txt", "Отчет за март.txt", "naïve résumé.txt", "Grüße.txt"]
    assert ch[0].meta["name_encoding"] == "cp437"
    assert ch[1].meta["name_encoding"] == "cp866"
    assert base64.b64decode(ch[1].meta["name_raw_b64"]) == "Отчет за март.txt".encode("cp866")
    assert ch[2].meta["name_encoding"] == "utf-8 (flag unset)"
    assert "name_encoding" not in ch[3].meta
    assert pcodes(items).count("zip.name_codepage") == 2


def test_member_mtime_and_order():
    items, _ = run(tar.read_tar, fx("hostile.tar"))
    ch = children(items)
    assert [c.name for c in ch] == ["../escape.txt", "ok/1.eml", "link"]
    assert ch[1].meta["mtime"] == "2017-03-01T10:30:00Z"
    assert ch[0].meta["name_flags"] == ["traversal"]
    assert ch[2].data is None and ch[2].meta["link_target"] == "/etc/shadow"
    items, _ = run(sevenzip.read_7z, fx("archive.7z"))
    assert children(items)[0].meta["mtime"] == "2017-03-01T10:30:00Z"


def test_truncated_tar():
    items, _ = run(tar.read_tar, fx("truncated.tar"))
    ch = children(items)
    assert ch[0].data == b"a" * 1000
    assert ch[1].meta["truncated"] and ch[1].data
    assert "tar.damaged" in pcodes(items) or "tar.member_truncated" in pcodes(items)


def test_7z():
    items, ctx = run(sevenzip.read_7z, fx("archive.7z"))
    ch = children(items)
    assert [c.segment for c in ch] == ["7z:inbox/1.eml", "7z:inbox/notes.txt"]
    assert ch[0].data.startswith(b"From: Alice") and ch[1].data == b"seven zip notes\n"
    assert ctx.expanded_so_far == len(ch[0].data) + len(ch[1].data)


def test_7z_member_limit():
    items, _ = run(sevenzip.read_7z, fx("archive.7z"), limits=Limits(max_member_size=100))
    ch = children(items)
    assert ch[0].data is None and "7z.member_too_large" in [p.code for p in ch[0].problems]
    assert ch[1].data == b"seven zip notes\n"


@pytest.mark.parametrize("name,reader,seg", [
    ("single.eml.gz", compressed.read_gzip, "gz:original-name.eml"),
    ("single.eml.bz2", compressed.read_bzip2, "bz2:single.eml"),
    ("single.eml.xz", compressed.read_xz, "xz:single.eml"),
])
def test_single_stream(name, reader, seg):
    items, _ = run(reader, fx(name), loc="dump/" + name)
    (ch,) = children(items)
    assert ch.segment == seg
    assert ch.data.startswith(b"From: Alice") and not pcodes(items)


def test_stream_name_from_parent_locator():
    items, _ = run(compressed.read_bzip2, fx("single.eml.bz2"), loc="a.zip!zip:x/y.tbz2")
    assert children(items)[0].segment == "bz2:y.tar"
    items, _ = run(compressed.read_xz, fx("single.eml.xz"), loc="m.eml#1.2")
    assert children(items)[0].segment == "xz:data"


def test_truncated_gzip_keeps_prefix():
    items, _ = run(compressed.read_gzip, fx("truncated.eml.gz"))
    (ch,) = children(items)
    assert ch.meta["truncated"] and ch.data.startswith(b"00000 From: Alice")
    assert "gzip.truncated" in pcodes(items)


def test_gzip_ratio_limit():
    import gzip
    bomb = gzip.compress(b"\x00" * (30 << 20))
    items, ctx = run(compressed.read_gzip, bomb)
    assert children(items)[0].data is None and "gzip.ratio_exceeded" in pcodes(items)
    assert ctx.expanded_so_far < 8 << 20


def test_rar_stored_and_unsupported():
    items, _ = run(rar.read_rar, fx("stored.rar"))
    ch = children(items)
    assert [c.segment for c in ch] == ["rar:mail/1.eml", "rar:mail/2.txt"]
    assert ch[1].data == b"rar stored\n"
    items, _ = run(rar.read_rar, fx("compressed.rar"))
    ch = {c.name: c for c in children(items)}
    if not rar.rar_tool_available():
        assert "rar.unsupported" in [i.code for i in items if isinstance(i, Problem)]
        assert ch["mail/1.eml"].data is None
        assert [p.code for p in ch["mail/1.eml"].problems] == ["rar.unsupported"]
    assert ch["plain.txt"].data == b"stored part\n"


def test_hidden_member_and_prefix_data():
    items, _ = run(zipr.read_zip, fx("hidden.zip"))
    ch = {c.name: c for c in children(items)}
    assert ch["listed.txt"].data == b"listed\n"
    assert ch["hidden.eml"].meta["unlisted"] is True and ch["hidden.eml"].data.startswith(b"From:")
    assert {"zip.prefix_data", "zip.unlisted_local_header"} <= set(pcodes(items))


def test_max_members():
    items, _ = run(zipr.read_zip, fx("traversal.zip"), limits=Limits(max_members=2))
    assert len(children(items)) == 2 and "zip.too_many_members" in pcodes(items)


def test_garbage_never_raises():
    import random
    rnd = random.Random(1)
    for kind, reader in READERS.items():
        for n in (0, 1, 10, 600):
            run(reader, bytes(rnd.randrange(256) for _ in range(n)))


@pytest.mark.parametrize("fmt,reader", [("bzip2", compressed.read_bzip2), ("xz", compressed.read_xz)])
def test_stream_bombs(fmt, reader):
    import bz2
    import lzma
    data = (bz2.compress if fmt == "bzip2" else lzma.compress)(b"\x00" * (12 << 20))
    items, ctx = run(reader, data)
    assert children(items)[0].data is None and fmt + ".ratio_exceeded" in pcodes(items)
    assert ctx.expanded_so_far <= 3 << 20


def test_encrypted_7z_reported():
    import io
    import py7zr
    for header in (False, True):
        bio = io.BytesIO()
        with py7zr.SevenZipFile(bio, "w", password="infected", header_encryption=header) as z:
            z.writestr(b"secret mail", "secret.eml")
        items, _ = run(sevenzip.read_7z, bio.getvalue())
        assert "7z.encrypted" in pcodes(items)
        assert all(c.data is None for c in children(items))
        if not header:
            assert [c.name for c in children(items)] == ["secret.eml"]


def test_many_tar_members_stream():
    import io
    import tarfile
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w") as tf:
        for i in range(2000):
            ti = tarfile.TarInfo("m/%04d.eml" % i)
            ti.size = 3
            tf.addfile(ti, io.BytesIO(b"abc"))
    items, _ = run(tar.read_tar, bio.getvalue())
    assert len(children(items)) == 2000 and not pcodes(items)


def test_random_mutations_never_raise():
    from hypothesis import given, settings, strategies as st

    blobs = [fx(n) for n in ("traversal.zip", "zip64.zip", "hostile.tar", "archive.7z", "stored.rar",
                             "long-name.tnef", "message.emlx", "single.eml.gz", "codepage.zip")]

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(st.integers(0, len(blobs) - 1), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8))
    def check(which, flips):
        data = bytearray(blobs[which])
        for pos, val in flips:
            data[pos % len(data)] = val
        kind = sniff.container_kind(bytes(blobs[which]))
        run(READERS[kind], bytes(data))

    check()


def _mapped(path):
    import mmap
    fh = open(path, "rb")
    return fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def test_7z_read_in_place_from_a_memory_map_and_big_members_spill(monkeypatch, tmp_path):
    """A memory-mapped 7z is read through a stream over the map (no copy of the archive), and a
    member past SPILL bytes is written to an unnamed temporary file and handed on as a memory map,
    not held in RAM; the bytes are the same either way."""
    import mmap
    import py7zr
    big = b"".join(b"line %08d of a large member\n" % i for i in range(4000))
    path = tmp_path / "a.7z"
    with py7zr.SevenZipFile(str(path), "w") as z:
        z.writestr(big, "big.txt")
        z.writestr(b"small\n", "small.txt")
    monkeypatch.setattr(streams, "SPILL", 4096)
    fh, m = _mapped(path)
    try:
        seen = []
        real = streams.io_stream
        monkeypatch.setattr(streams, "io_stream", lambda d: seen.append(type(d)) or real(d))
        items, ctx = run(sevenzip.read_7z, m)
        ch = children(items)
        assert [c.segment for c in ch] == ["7z:big.txt", "7z:small.txt"]
        assert seen and set(seen) == {mmap.mmap}          # py7zr read the map itself
        assert isinstance(ch[0].data, mmap.mmap) and ch[0].data[:] == big
        assert ch[1].data == b"small\n"                    # under SPILL: plain bytes
        assert ctx.expanded_so_far == len(big) + 6
    finally:
        m.close()
        fh.close()


def test_map_stream_reads_like_a_file(tmp_path):
    path = tmp_path / "b.bin"
    payload = bytes(range(256)) * 1000
    path.write_bytes(payload)
    fh, m = _mapped(path)
    try:
        s = streams.io_stream(m)
        assert s.read(10) == payload[:10]
        s.seek(-5, 2)
        assert s.read() == payload[-5:]
        s.seek(1000)
        assert s.tell() == 1000 and s.read(3) == payload[1000:1003]
        s.seek(0)
        assert s.read() == payload
    finally:
        m.close()
        fh.close()


def _releases(monkeypatch):
    """Record every (start, end) handed to pages.release, still releasing."""
    from leaktriage.content import pages
    calls = []
    real = pages.release
    monkeypatch.setattr(pages, "release", lambda d, a, b: (calls.append((a, b)), real(d, a, b)))
    return calls


def test_map_stream_releases_pages_behind_a_forward_read(tmp_path, monkeypatch):
    path = tmp_path / "big.bin"
    payload = os.urandom(5 << 20)
    path.write_bytes(payload)
    calls = _releases(monkeypatch)
    fh, m = _mapped(path)
    try:
        s = streams.io_stream(m)
        got = b"".join(iter(lambda: s.read(1 << 16), b""))
        assert got == payload
        assert calls and max(b for a, b in calls) >= len(payload) - (pages.ReleaseBehind.STEP + 2 * 65536)
        assert sum(b - a for a, b in calls) <= len(payload)       # each page released once
        s.seek(0)                                                  # read again: still right
        assert s.read(1000) == payload[:1000]
    finally:
        m.close()
        fh.close()


def test_mapped_zip_gives_its_pages_back(tmp_path, monkeypatch):
    import zipfile
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(200):
            z.writestr("m%03d.bin" % i, os.urandom(20000))
    calls = _releases(monkeypatch)
    fh, m = _mapped(path)
    try:
        kids = [c for c in zipr.read_zip(m, Context(locator="many.zip", depth=0)) if isinstance(c, Child)]
        assert len(kids) == 200 and all(len(c.data) == 20000 for c in kids)
    finally:
        m.close()
        fh.close()
    assert (0, path.stat().st_size) in calls               # after the header passes
    assert len(calls) == 201                               # and each member after it was read


def test_mapped_gzip_gives_its_pages_back_while_inflating(tmp_path, monkeypatch):
    import gzip
    payload = os.urandom(6 << 20)
    path = tmp_path / "big.eml.gz"
    path.write_bytes(gzip.compress(payload, compresslevel=1))
    calls = _releases(monkeypatch)
    fh, m = _mapped(path)
    try:
        kids = [c for c in compressed.read_gzip(m, Context(locator="big.eml.gz", depth=0)) if isinstance(c, Child)]
        assert len(kids) == 1 and hashlib.sha256(bytes(kids[0].data)).digest() == hashlib.sha256(payload).digest()
    finally:
        m.close()
        fh.close()
    assert calls and max(b for a, b in calls) >= path.stat().st_size - (pages.ReleaseBehind.STEP + 2 * 65536)
    assert sum(b - a for a, b in calls) <= path.stat().st_size


@pytest.mark.parametrize("name", ["stored.rar", "compressed.rar", "archive.7z"])
def test_memory_mapped_archive_reads_like_bytes(name):
    """RAR and 7z read straight from a memory map give exactly what they give from bytes."""
    fh, m = _mapped(os.path.join(FIX, name))
    reader = rar.read_rar if name.endswith(".rar") else sevenzip.read_7z
    try:
        def facts(items):
            return [(it.segment, it.data if it.data is None else bytes(it.data), sorted(p.code for p in it.problems))
                    if isinstance(it, Child) else ("problem", it.code) for it in items]
        from_map = facts(run(reader, m)[0])
        from_bytes = facts(run(reader, fx(name))[0])
        assert from_map == from_bytes and any(isinstance(f[1], bytes) for f in from_map)
    finally:
        m.close()
        fh.close()
