"""The one sniffer (leaktriage.content.sniff): the kinds the scan decides from the content, and
the same answers for a whole file (sniff) and for a member or attachment (container_kind)."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from leaktriage.content import sniff

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "containers")


def fx(name: str) -> bytes:
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name,kind", [
    ("bomb.zip", "zip"), ("nested.tar.gz", "gzip"), ("hostile.tar", "tar"), ("archive.7z", "7z"),
    ("single.eml.bz2", "bzip2"), ("single.eml.xz", "xz"), ("stored.rar", "rar"), ("long-name.tnef", "tnef"),
    ("message.emlx", "emlx"), ("zip64.zip", "zip"), ("truncated.zip", "zip"),
])
def test_fixture_kinds(name, kind):
    data = fx(name)
    assert sniff.sniff(data, len(data))[0] == kind
    assert sniff.container_kind(data) == kind


def test_emlx_structure():
    assert sniff.looks_like_emlx(fx("message.emlx"))
    assert not sniff.looks_like_emlx(b"123\nnot a header line\n")


def test_ole_msg_pst_and_empty():
    assert sniff.sniff(b"", 0)[0] == "empty"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 22 + b"\x09\x00" + b"\x00" * 16 + b"\x00\x00\x00\x00" + b"\x00" * 460
    assert sniff.sniff(ole, len(ole))[0] == "ole"
    assert sniff.container_kind(ole) is None
    msg = ole + "__substg1.0_0037001F".encode("utf-16-le")
    assert sniff.sniff(msg, len(msg))[0] == "msg" and sniff.container_kind(msg) == "msg"
    pst = b"!BDN\x00\x00\x00\x00SM\x17\x00" + b"\x00" * 500
    assert sniff.sniff(pst, len(pst))[0] == "pst"


def v7_tar(members, signed: bool = False) -> bytes:
    """A pre-POSIX (Unix v7) tar: the ustar magic and version fields blank, checksums recomputed
    (signed: over signed bytes, as old Sun and early GNU tars computed them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1493900000
            tf.addfile(ti, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    pos = 0
    while pos + 512 <= len(raw) and any(raw[pos:pos + 512]):
        hdr = raw[pos:pos + 512]
        size = int(bytes(hdr[124:136]).strip(b"\x00 ") or b"0", 8)
        hdr[257:265] = b"\x00" * 8            # no "ustar\x0000": a v7 header
        hdr[265:345] = b"\x00" * 80           # no uname/gname
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\x00 " % sum((b - 256 if signed and b > 127 else b) for b in hdr)
        raw[pos:pos + 512] = hdr
        pos += 512 + (size + 511) // 512 * 512
    return bytes(raw)


EML = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: v7\r\nDate: Thu, 4 May 2017 10:00:00 +0200\r\n\r\nhi\r\n"


def test_pre_posix_tar_is_a_tar():
    data = v7_tar([("inbox/1.eml", EML)])
    assert data[257:262] != b"ustar"
    assert sniff.sniff(data, len(data)) [0:2] == ("tar", "structure")
    assert sniff.container_kind(data) == "tar"
    # python's own reader agrees it is a tar (the bytes are a valid v7 archive)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["inbox/1.eml"]


def test_pre_posix_tar_with_a_signed_checksum_is_a_tar():
    """Old tars (Sun, early GNU) summed the header as signed bytes: a member name with non-ASCII
    bytes gives another checksum, which Python's tarfile (and GNU tar) accept; the sniffer
    checked the unsigned sum only, and the archive was kind `other`, its mail unread."""
    data = v7_tar([("inbox/réunion.eml", EML)], signed=True)
    want = int(data[148:154], 8)
    assert want != sum(data[:148]) + 256 + sum(data[156:512])      # the unsigned sum differs
    assert sniff.sniff(data, len(data))[0:2] == ("tar", "structure")
    assert sniff.container_kind(data) == "tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["inbox/réunion.eml"]
