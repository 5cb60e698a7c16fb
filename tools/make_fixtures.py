#!/usr/bin/env python3
"""Build the container test fixtures into tests/fixtures/containers/ (deterministic).

Every file is built from constants in this script (fixed times, fixed "random" bytes), so running
it twice gives byte-identical files; tests/test_containers_fixtures.py checks that. The zip
format, ZipCrypto, RAR5 and TNEF are written by hand so that damaged, hostile and legacy variants
can be produced exactly.

    python3 tools/make_fixtures.py [--out DIR] [--check]

--check rebuilds into memory and exits 1 if a file on disk differs (CI use).
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import lzma
import os
import struct
import sys
import tarfile
import tempfile
import zlib
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "containers")

DOS_TIME = (10 << 11) | (30 << 5) | 0          # 10:30:00
DOS_DATE = ((2017 - 1980) << 9) | (3 << 5) | 1  # 2017-03-01
EPOCH = 1488364200                               # 2017-03-01T10:30:00Z

MESSAGE = (b"From: Alice Example <alice@example.org>\r\n"
           b"To: Bob Example <bob@example.org>\r\n"
           b"Subject: Fixture message\r\n"
           b"Date: Wed, 01 Mar 2017 10:30:00 +0000\r\n"
           b"Message-ID: <fixture-1@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=us-ascii\r\n"
           b"\r\n"
           b"Hello Bob,\r\nthis is the fixture message.\r\n")


# ------------------------------------------------------------------------------------------------
# zip writer
# ------------------------------------------------------------------------------------------------

def _crc_update(crc: int, b: int) -> int:
    return zlib.crc32(bytes([b]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


class ZipCrypto:
    def __init__(self, password: bytes):
        self.k0, self.k1, self.k2 = 0x12345678, 0x23456789, 0x34567890
        for b in password:
            self._update(b)

    def _update(self, b: int) -> None:
        self.k0 = _crc_update(self.k0, b)
        self.k1 = (self.k1 + (self.k0 & 0xFF)) & 0xFFFFFFFF
        self.k1 = (self.k1 * 134775813 + 1) & 0xFFFFFFFF
        self.k2 = _crc_update(self.k2, self.k1 >> 24)

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for p in data:
            t = (self.k2 | 2) & 0xFFFF
            out.append(p ^ (((t * (t ^ 1)) >> 8) & 0xFF))
            self._update(p)
        return bytes(out)


def zip_bytes(members: List[dict], zip64: bool = False, prefix: bytes = b"", comment: bytes = b"") -> bytes:
    """members: dicts with name (bytes), data (bytes), method (0/8), utf8 (bool), password (bytes),
    extra (bytes), listed (bool, default True)."""
    out = io.BytesIO()
    out.write(prefix)
    central = []
    for m in members:
        name: bytes = m["name"]
        data: bytes = m["data"]
        method = m.get("method", 8)
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            comp = c.compress(data) + c.flush()
        else:
            comp = data
        flags = 0x800 if m.get("utf8") else 0
        if m.get("password") is not None:
            flags |= 1
            zc = ZipCrypto(m["password"])
            header = bytes(range(1, 12)) + bytes([crc >> 24])
            comp = zc.encrypt(header + comp)
        extra = m.get("extra", b"")
        offset = out.tell() - len(prefix) if not m.get("keep_prefix_offsets") else out.tell()
        lextra = extra
        csize, usize = len(comp), len(data)
        if zip64:
            lextra = struct.pack("<HHQQ", 1, 16, usize, csize) + extra
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, method, DOS_TIME, DOS_DATE,
                              crc, 0xFFFFFFFF if zip64 else csize, 0xFFFFFFFF if zip64 else usize,
                              len(name), len(lextra)))
        out.write(name)
        out.write(lextra)
        out.write(comp)
        if m.get("listed", True):
            central.append((name, flags, method, crc, csize, usize, offset, extra))
    cd_start = out.tell() - len(prefix)
    for name, flags, method, crc, csize, usize, offset, extra in central:
        cextra = extra
        if zip64:
            cextra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset) + extra
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 45 if zip64 else (3 << 8) | 20,
                              45 if zip64 else 20, flags, method, DOS_TIME, DOS_DATE, crc,
                              0xFFFFFFFF if zip64 else csize, 0xFFFFFFFF if zip64 else usize,
                              len(name), len(cextra), 0, 0, 0, 0o100644 << 16,
                              0xFFFFFFFF if zip64 else offset))
        out.write(name)
        out.write(cextra)
    cd_end = out.tell() - len(prefix)
    n = len(central)
    if zip64:
        z64 = out.tell() - len(prefix)
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_end - cd_start, cd_start))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)))
    else:
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_end - cd_start, cd_start, len(comment)))
    out.write(comment)
    return out.getvalue()


def simple_zip(files: Dict[str, bytes]) -> bytes:
    return zip_bytes([{"name": k.encode("utf-8"), "data": v, "utf8": not k.isascii()} for k, v in files.items()])


# ------------------------------------------------------------------------------------------------
# tar / gzip helpers
# ------------------------------------------------------------------------------------------------

def tar_bytes(files: List[tuple]) -> bytes:
    """files: (name, data) or (name, None, linkname) for a symlink."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for item in files:
            ti = tarfile.TarInfo(item[0])
            ti.mtime = EPOCH
            ti.uid = ti.gid = 1000
            ti.uname = ti.gname = "custodian"
            ti.mode = 0o644
            if item[1] is None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = item[2]
                tf.addfile(ti)
            else:
                ti.size = len(item[1])
                tf.addfile(ti, io.BytesIO(item[1]))
    return bio.getvalue()


def gzip_bytes(data: bytes, fname: Optional[str]) -> bytes:
    bio = io.BytesIO()
    with gzip.GzipFile(filename=fname or "", mode="wb", fileobj=bio, mtime=EPOCH, compresslevel=9) as g:
        g.write(data)
    return bio.getvalue()


# ------------------------------------------------------------------------------------------------
# RAR5 writer (stored members only; a "compressed" member is declared with bogus data)
# ------------------------------------------------------------------------------------------------

def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _rar5_block(body: bytes) -> bytes:
    size = _vint(len(body))
    return struct.pack("<I", zlib.crc32(size + body) & 0xFFFFFFFF) + size + body


def rar5_bytes(members: List[tuple]) -> bytes:
    """members: (name, data, method) with method 0 = stored; others get their data as 'compressed'."""
    out = bytearray(b"Rar!\x1a\x07\x01\x00")
    out += _rar5_block(_vint(1) + _vint(0) + _vint(0))          # main header, no flags
    for name, data, method in members:
        nb = name.encode("utf-8")
        payload = data if method == 0 else bytes(range(7, 47))  # bogus compressed data
        file_flags = 0x0002 | 0x0004                              # mtime + crc32 present
        comp_info = (method & 7) << 7
        body = (_vint(2) + _vint(0x0002) + _vint(len(payload)) + _vint(file_flags) + _vint(len(data))
                + _vint(0x20) + struct.pack("<I", EPOCH) + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)
                + _vint(comp_info) + _vint(1) + _vint(len(nb)) + nb)
        out += _rar5_block(body)
        out += payload
    out += _rar5_block(_vint(5) + _vint(0) + _vint(0))          # end of archive
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# TNEF writer
# ------------------------------------------------------------------------------------------------

def _tnef_attr(level: int, attr_id: int, data: bytes) -> bytes:
    return (struct.pack("<BII", level, attr_id, len(data)) + data
            + struct.pack("<H", sum(data) & 0xFFFF))


def _mapi_props(props: List[tuple]) -> bytes:
    """props: (type, id, value bytes) for variable types 0x1F/0x102 (single value)."""
    out = struct.pack("<I", len(props))
    for ptype, pid, value in props:
        out += struct.pack("<HH", ptype, pid)
        if ptype in (0x001E, 0x001F, 0x0102):
            out += struct.pack("<II", 1, len(value)) + value + b"\x00" * (-len(value) % 4)
        else:
            out += value + b"\x00" * (-len(value) % 4)
    return out


def tnef_bytes(attachments: List[tuple], body: Optional[bytes] = None) -> bytes:
    """attachments: (short name, long name or None, data)."""
    out = struct.pack("<IH", 0x223E9F78, 0x1234)
    out += _tnef_attr(1, 0x00089006, struct.pack("<I", 0x00010000))        # attTnefVersion
    out += _tnef_attr(1, 0x00069007, b"1252\x00\x00\x00\x00")               # attOemCodepage
    out += _tnef_attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")       # attMessageClass
    if body is not None:
        out += _tnef_attr(1, 0x0002800C, body)                               # attBody
    for short, long_name, data in attachments:
        out += _tnef_attr(2, 0x00069002, struct.pack("<HIHHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0))  # attAttachRenddata
        out += _tnef_attr(2, 0x00018010, short.encode("ascii") + b"\x00")  # attAttachTitle
        out += _tnef_attr(2, 0x0006800F, data)                              # attAttachData
        if long_name:
            props = [(0x001F, 0x3707, (long_name + "\x00").encode("utf-16-le"))]
            out += _tnef_attr(2, 0x00069005, _mapi_props(props))           # attAttachment
    return out


# ------------------------------------------------------------------------------------------------
# the fixtures
# ------------------------------------------------------------------------------------------------

# ------------------------------------------------------------------------------------------------
# issue #14 (Trust) fixtures
# ------------------------------------------------------------------------------------------------

def v7_tar(members: List[tuple]) -> bytes:
    """A pre-POSIX (Unix v7) tar: no ustar magic, version, uname or gname; checksums recomputed
    (as tests/test_sniff.py::v7_tar builds it)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = EPOCH
            tf.addfile(ti, io.BytesIO(data))
    raw = bytearray(bio.getvalue())
    pos = 0
    while pos + 512 <= len(raw) and any(raw[pos:pos + 512]):
        hdr = raw[pos:pos + 512]
        size = int(bytes(hdr[124:136]).strip(b"\x00 ") or b"0", 8)
        hdr[257:265] = b"\x00" * 8
        hdr[265:345] = b"\x00" * 80
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\x00 " % sum(hdr)
        raw[pos:pos + 512] = hdr
        pos += 512 + (size + 511) // 512 * 512
    return bytes(raw[:pos + 1024])     # the two end-of-archive blocks, without tarfile's record padding


_PARAS = (b"The quarterly figures are attached as discussed.\nPlease review them before the meeting on Thursday.\n",
          b"Thanks, I will forward them to the board.\n", b"Can we move the call to Friday morning?\n",
          b"Regards,\nAlice\n")


def report_mbox(n: int, first: int) -> bytes:
    """n short, highly compressible messages (numbered from first) as an mbox."""
    out = []
    for i in range(first, first + n):
        body = b"".join(_PARAS[(i * k) % 4] for k in range(1, 4))
        out.append(b"From alice@example.org Wed Mar  1 10:30:00 2017\nFrom: Alice <alice@example.org>\n"
                   b"To: bob@example.org\nSubject: Report %d\nDate: Wed, 01 Mar 2017 10:30:00 +0000\n"
                   b"Message-ID: <concat-%d@example.org>\n\n" % (i, i) + body + b"\n")
    return b"".join(out)


def concat_mbox_gz() -> bytes:
    """Two gzip members (3,600 messages, 1.3 MB compressed 53:1, then 3 more) and 512 NUL bytes of
    padding: the first member ends while zlib still holds unconsumed input, which the reader once
    counted twice (a false CRC mismatch, and the second member lost as 'trailing data')."""
    return gzip_bytes(report_mbox(3600, 1), "concat.mbox") + gzip_bytes(report_mbox(3, 3601), None) + b"\x00" * 512


def nested_zip(levels: int = 10, copies: int = 10) -> bytes:
    """A nested-archive bomb of tiny members: `levels` levels of `copies` copies (10 x 10: 22 KB,
    10^10 leaves). Every member is small, so no byte limit stops it; only counting members does."""
    level = simple_zip({"leaf.txt": b"leaf\n"})
    for depth in range(levels - 1):
        level = simple_zip({"l%d-%d.zip" % (depth, i): level for i in range(copies)})
    return level


def shared_header_zip(entries: int, payload: bytes, name: bytes = b"mail.mbox") -> bytes:
    """One local header and its deflated data, listed `entries` times by the central directory
    (names differ, every offset is 0): each entry would expand the same bytes again."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp = c.compress(payload) + c.flush()
    crc = zlib.crc32(payload) & 0xFFFFFFFF
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, DOS_TIME, DOS_DATE, crc, len(comp), len(payload),
                        len(name), 0) + name + comp
    cd = []
    for i in range(entries):
        n = b"mail%05d.mbox" % i
        cd.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, 8, DOS_TIME, DOS_DATE, crc,
                              len(comp), len(payload), len(n), 0, 0, 0, 0, 0o100644 << 16, 0) + n)
    cdb = b"".join(cd)
    k = min(entries, 0xFFFF)
    return local + cdb + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, k, k, len(cdb), len(local), 0)


def build() -> Dict[str, bytes]:
    f: Dict[str, bytes] = {}

    # 1. zip bomb: 20 MiB of zeros deflated to ~20 KiB (ratio ~1000)
    f["bomb.zip"] = zip_bytes([{"name": b"zeros.bin", "data": b"\x00" * (20 << 20)}])

    # 2. nested archive: message in deep.zip in inner.zip in nested.tar.gz
    deep = simple_zip({"Sophie/Inbox/1.eml": MESSAGE})
    inner = simple_zip({"deep.zip": deep, "notes.txt": b"inner notes\n"})
    f["nested.tar.gz"] = gzip_bytes(tar_bytes([("mailboxes/inner.zip", inner),
                                               ("mailboxes/README", b"custodian mailboxes\n")]), "nested.tar")

    # 3. hostile member names
    f["traversal.zip"] = zip_bytes([
        {"name": b"../../etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n"},
        {"name": b"/abs", "data": b"absolute\n"},
        {"name": b"C:\\x", "data": b"drive letter\n"},
        {"name": b"nul\x00name.txt", "data": b"nul byte in name\n"},
        {"name": b"bell\x07.txt", "data": b"control char in name\n"},
        {"name": b"dup.txt", "data": b"first\n"},
        {"name": b"dup.txt", "data": b"second\n"},
        {"name": b"emptydir/", "data": b"", "method": 0},
        {"name": b"ok.eml", "data": MESSAGE},
    ])

    # 4. encrypted member (ZipCrypto, password "infected") next to a plain one
    f["encrypted.zip"] = zip_bytes([
        {"name": b"secret.eml", "data": MESSAGE, "password": b"infected"},
        {"name": b"plain.txt", "data": b"not encrypted\n"},
    ])

    # 5. truncated archive: three members, cut inside the second (no central directory)
    full = zip_bytes([{"name": b"a.txt", "data": b"A" * 300 + b"first member\n"},
                      {"name": b"b.eml", "data": MESSAGE * 40, "method": 0},
                      {"name": b"c.txt", "data": b"third member\n"}])
    cut = full.find(b"b.eml") + 5 + 200
    f["truncated.zip"] = full[:cut]

    # 6. zip64 (sizes and offsets in zip64 extra fields, zip64 end records)
    f["zip64.zip"] = zip_bytes([{"name": b"big-one.eml", "data": MESSAGE},
                                {"name": b"second.txt", "data": b"zip64 second member\n"}], zip64=True)

    # 7. legacy code-page names (UTF-8 flag unset)
    f["codepage.zip"] = zip_bytes([
        {"name": "Übersicht.txt".encode("cp437"), "data": b"cp437 name\n"},
        {"name": "Отчет за март.txt".encode("cp866"), "data": b"cp866 name\n"},
        {"name": "naïve résumé.txt".encode("utf-8"), "data": b"utf-8 without the flag\n"},
        {"name": "Grüße.txt".encode("utf-8"), "data": b"utf-8 with the flag\n", "utf8": True},
    ])

    # 8. 7z (py7zr, files with fixed mtimes)
    f["archive.7z"] = sevenz_bytes({"inbox/1.eml": MESSAGE, "inbox/notes.txt": b"seven zip notes\n"})

    # 9. single-file compressors
    f["single.eml.gz"] = gzip_bytes(MESSAGE, "original-name.eml")
    f["single.eml.bz2"] = bz2.compress(MESSAGE, 9)
    f["single.eml.xz"] = lzma.compress(MESSAGE, preset=6)
    tg = gzip_bytes(b"".join(b"%05d " % i + MESSAGE for i in range(200)), "t.eml")
    f["truncated.eml.gz"] = tg[:len(tg) // 2]

    # 10. 42.zip-style nesting: 4 copies per level, 4 levels, 1 MiB of zeros at the bottom (256 MiB total)
    level = simple_zip({"zeros.bin": b"\x00" * (1 << 20)})
    for depth in range(4):
        level = simple_zip({"l%d-%d.zip" % (depth, i): level for i in range(4)})
    f["nest42.zip"] = level

    # 11. tar with hostile names, a symlink, then damaged
    t = tar_bytes([("../escape.txt", b"escape\n"), ("ok/1.eml", MESSAGE), ("link", None, "/etc/shadow")])
    f["hostile.tar"] = t
    f["truncated.tar"] = tar_bytes([("a.txt", b"a" * 1000), ("b.eml", MESSAGE * 20)])[:1024 + 512 + 700]

    # 12. zip with a member hidden from the central directory, and prefix data
    f["hidden.zip"] = zip_bytes([{"name": b"listed.txt", "data": b"listed\n"},
                                 {"name": b"hidden.eml", "data": MESSAGE, "listed": False}],
                                prefix=b"MZ-self-extractor-stub" + b"\x00" * 10)

    # 13. RAR5: stored members (readable without unrar) and a compressed one (needs unrar)
    f["stored.rar"] = rar5_bytes([("mail/1.eml", MESSAGE, 0), ("mail/2.txt", b"rar stored\n", 0)])
    f["compressed.rar"] = rar5_bytes([("mail/1.eml", MESSAGE, 3), ("plain.txt", b"stored part\n", 0)])

    # 14. TNEF with a long attachment name, and a TNEF nested inside a TNEF
    one = tnef_bytes([("REPORT~1.PDF", "Quarterly report 2017.pdf", b"%PDF-1.4 fake pdf\n")], body=b"Body text\r\n")
    f["long-name.tnef"] = one
    f["nested.tnef"] = tnef_bytes([("WINMAIL.DAT", None, one), ("a.txt", None, b"outer attachment\n")])

    # 15. Apple Mail .emlx
    plist = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
             b'<plist version="1.0">\n<dict>\n\t<key>date-received</key>\n\t<integer>1488364200</integer>\n'
             b'\t<key>flags</key>\n\t<integer>8590195713</integer>\n'
             b'\t<key>remote-id</key>\n\t<string>4242</string>\n</dict>\n</plist>\n')
    f["message.emlx"] = b"%d\n" % len(MESSAGE) + MESSAGE + plist

    # 16. issue #14: a pre-POSIX (v7) tar holding a message; a gzip file of two members
    f["v7.tar"] = v7_tar([("inbox/1.eml", MESSAGE)])
    f["concat.mbox.gz"] = concat_mbox_gz()
    # 17. issue #14: a nested-archive bomb of tiny members; five zip entries sharing one local header
    f["nest10.zip"] = nested_zip(10, 10)
    f["overlap.zip"] = shared_header_zip(5, report_mbox(200, 1))
    return f


def sevenz_bytes(files: Dict[str, bytes]) -> bytes:
    import py7zr
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in files.items():
            p = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(data)
            os.utime(p, (EPOCH, EPOCH))
            paths.append((p, name))
        bio = io.BytesIO()
        with py7zr.SevenZipFile(bio, "w") as z:
            for p, name in paths:
                z.write(p, name)
        return bio.getvalue()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    files = build()
    total = sum(len(v) for v in files.values())
    if total > 1 << 20:
        print("fixtures total %d bytes > 1 MiB" % total, file=sys.stderr)
        return 1
    bad = 0
    os.makedirs(args.out, exist_ok=True)
    for name, data in sorted(files.items()):
        path = os.path.join(args.out, name)
        if args.check:
            try:
                with open(path, "rb") as fh:
                    same = fh.read() == data
            except OSError:
                same = False
            if not same:
                print("differs: %s" % name, file=sys.stderr)
                bad += 1
            continue
        with open(path, "wb") as fh:
            fh.write(data)
        print("%-20s %8d  %s" % (name, len(data), hashlib.sha256(data).hexdigest()[:16]))
    if not args.check:
        print("total %d bytes in %d files" % (total, len(files)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
