#!/usr/bin/env python3
"""Build the bundled sample leaked-mailbox dump used by leaktriage's tests and docs.

Run from the repository root:

    python3 tools/make_samples.py [--out samples/]

Writes  OUT/dump/            the dump itself (custodian folders, Maildir, mbox, zip, ...)
        OUT/dkim-keys.json   DKIM key store (selector._domainkey.domain -> TXT value)
        OUT/truth.json       ground truth for tests
        OUT/README.md        what the dump contains and what each oddity demonstrates

Everything is deterministic: fixed dates, fixed zip/gzip timestamps and member order,
a seeded random.Random for the few "random" bytes, DKIM t= pinned by replacing the
`time` module seen by dkimpy while signing, and RSA keys committed under
tools/sample_keys/ (PKCS#1 v1.5 signatures are deterministic).

Only the standard library, dkimpy and cryptography are used. All names, domains
(RFC 2606 ``.example``), addresses and IPs (RFC 5737 / RFC 3849) are fictional.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import io
import json
import re
import random
import shutil
import struct
import sys
import types
import zipfile
import zlib
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization

HERE = Path(__file__).resolve().parent
KEY_DIR = HERE / "sample_keys"
SEED = 20170301

# (selector, domain, pem file, bits)
KEYS = {
    "elan": (b"s2017", b"elan-citoyen.example", "elan-citoyen.example.s2017.pem", 2048),
    "ledger": (b"mail", b"dailyledger.example", "dailyledger.example.mail.pem", 1024),
}

CET = dt.timezone(dt.timedelta(hours=1))
CEST = dt.timezone(dt.timedelta(hours=2))
GMT = dt.timezone.utc
BST = dt.timezone(dt.timedelta(hours=1))

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

MIME_PDF = "application/pdf"
MIME_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MIME_PNG = "image/png"
MIME_TXT = "text/plain"
MIME_ZIP = "application/zip"
MIME_EML = "message/rfc822"


# --------------------------------------------------------------------------- helpers

def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def lf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n")


def crlf(b: bytes) -> bytes:
    return lf(b).replace(b"\n", b"\r\n")


def rfc2822_date(t: dt.datetime) -> str:
    off = t.utcoffset()
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return (f"{DAYS[t.weekday()]}, {t.day} {MONTHS[t.month - 1]} {t.year} "
            f"{t:%H:%M:%S} {sign}{mins // 60:02d}{mins % 60:02d}")


def received_date(t: dt.datetime) -> str:
    """Postfix style: 'Wed,  1 Mar 2017 09:58:03 +0100 (CET)'."""
    s = rfc2822_date(t)
    day, rest = s.split(", ", 1)
    d, rest = rest.split(" ", 1)
    zone = {3600: "CET", 7200: "CEST", 0: "GMT"}.get(int(t.utcoffset().total_seconds()), "")
    if t.tzinfo is BST:
        zone = "BST"
    return f"{day}, {int(d):2d} {rest} ({zone})"


def iso_utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def asctime_utc(t: dt.datetime) -> str:
    u = t.astimezone(dt.timezone.utc)
    return f"{DAYS[u.weekday()]} {MONTHS[u.month - 1]} {u.day:2d} {u:%H:%M:%S} {u.year}"


def q_word(text: str, charset: str) -> str:
    """One RFC 2047 Q encoded-word."""
    out = []
    for byte in text.encode(charset):
        c = chr(byte)
        if c == " ":
            out.append("_")
        elif c.isascii() and (c.isalnum() or c in "!*+-/"):
            out.append(c)
        else:
            out.append(f"={byte:02X}")
    return f"=?{charset}?Q?{''.join(out)}?="


def b_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def b64_body(data: bytes) -> bytes:
    """base64 in 76-column lines, LF terminated."""
    enc = base64.b64encode(data)
    return b"".join(enc[i:i + 76] + b"\n" for i in range(0, len(enc), 76))


def qp_body(text: str, charset: str = "utf-8") -> bytes:
    """Quoted-printable (soft line breaks at 76), LF line ends."""
    out_lines = []
    for line in text.split("\n"):
        enc = []
        for byte in line.encode(charset):
            c = chr(byte)
            if c == "=" or byte > 126 or (byte < 32 and c != "\t"):
                enc.append(f"={byte:02X}")
            else:
                enc.append(c)
        if enc and enc[-1] in (" ", "\t"):
            enc[-1] = f"={ord(enc[-1]):02X}"
        cur = ""
        for tok in enc:
            if len(cur) + len(tok) > 75:
                out_lines.append(cur + "=")
                cur = ""
            cur += tok
        out_lines.append(cur)
    return ("\n".join(out_lines)).encode("ascii")


def uuencode(name: str, data: bytes) -> bytes:
    out = [f"begin 644 {name}\n".encode()]
    for i in range(0, len(data), 45):
        out.append(binascii.b2a_uu(data[i:i + 45], backtick=True))
    out.append(b"`\nend\n")
    return b"".join(out)


def header_block(headers: list[tuple[str, str]]) -> bytes:
    """Headers -> bytes (LF). Values may contain pre-folded '\n\t' continuations.

    Values are encoded as UTF-8: a non-ASCII value produces raw 8-bit header bytes,
    which we only do on purpose (see the raw-8-bit subject message)."""
    return b"".join(f"{k}: {v}\n".encode("utf-8") for k, v in headers)


def entity(headers: list[tuple[str, str]], body: bytes) -> bytes:
    if not body.endswith(b"\n"):
        body += b"\n"
    return header_block(headers) + b"\n" + body


def multipart(boundary: str, parts: list[bytes], preamble: bytes = b"",
              epilogue: bytes = b"", close: bool = True) -> bytes:
    out = preamble
    for p in parts:
        out += f"--{boundary}\n".encode() + p
    if close:
        out += f"--{boundary}--\n".encode() + epilogue
    return out


def attachment(ctype: str, filename_params: str, data: bytes, disposition: str = "attachment") -> bytes:
    """A base64 attachment entity. filename_params is pre-rendered ('name=..' parts)."""
    name_param, file_param = filename_params.split("|")
    return entity([
        ("Content-Type", f"{ctype};\n\t{name_param}"),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Disposition", f"{disposition};\n\t{file_param}"),
    ], b64_body(data))


def plain_names(fn: str) -> str:
    return f'name="{fn}"|filename="{fn}"'


# --------------------------------------------------------------------------- documents

def pdf_string(s: str) -> bytes:
    if s.isascii():
        return b"(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode() + b")"
    return b"<FEFF" + s.encode("utf-16-be").hex().upper().encode() + b">"


def pdf_text_line(s: str) -> bytes:
    out = b""
    for byte in s.encode("cp1252"):
        c = bytes([byte])
        if c in b"\\()":
            out += b"\\" + c
        elif byte > 126:
            out += b"\\%03o" % byte
        else:
            out += c
    return out


def make_pdf(info: dict[str, str], lines: list[str]) -> bytes:
    """A small valid one-page PDF 1.4 with an Info dictionary and a correct xref."""
    content = b"BT\n/F1 11 Tf\n14 TL\n72 770 Td\n"
    for i, line in enumerate(lines):
        content += b"(" + pdf_text_line(line) + (b") Tj\n" if i == 0 else b") '\n")
    content += b"ET\n"
    info_items = b"".join(b"/" + k.encode() + b" " + pdf_string(v) + b"\n" for k, v in info.items())
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<<\n" + info_items + b">>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    doc_id = hashlib.md5(out, usedforsecurity=False).hexdigest().upper().encode()
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, len(objs), doc_id, doc_id, xref))
    return out


# Deflate and zip are written by hand (below) instead of with zlib/zipfile so that the
# compressed bytes do not depend on the zlib build (zlib, zlib-ng, Apple's libz all emit
# different but valid deflate streams for the same input).

_LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
             115, 131, 163, 195, 227, 258]
_LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
_DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
              1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
_DIST_EXTRA = [0, 0, 0, 0] + [n for n in range(1, 14) for _ in (0, 1)]


def deflate_raw(data: bytes) -> bytes:
    """Raw deflate (RFC 1951): one final block, fixed Huffman codes, greedy LZ77.

    Pure Python, deterministic by construction; fine for the few KB we compress."""
    bitbuf = 0
    nbits = 0
    out = bytearray()

    def put(value: int, n: int):  # LSB-first
        nonlocal bitbuf, nbits
        bitbuf |= value << nbits
        nbits += n
        while nbits >= 8:
            out.append(bitbuf & 0xFF)
            bitbuf >>= 8
            nbits -= 8

    def put_huff(code: int, n: int):  # Huffman codes are sent MSB-first
        put(int(f"{code:0{n}b}"[::-1], 2), n)

    def lit(sym: int):
        if sym < 144:
            put_huff(0x30 + sym, 8)
        elif sym < 256:
            put_huff(0x190 + sym - 144, 9)
        elif sym < 280:
            put_huff(sym - 256, 7)
        else:
            put_huff(0xC0 + sym - 280, 8)

    put(1, 1)  # BFINAL
    put(1, 2)  # BTYPE=01 fixed Huffman
    chains: dict[bytes, list[int]] = {}
    i, n = 0, len(data)
    while i < n:
        best_len, best_dist = 0, 0
        if i + 3 <= n:
            key = data[i:i + 3]
            for j in reversed(chains.get(key, [])[-64:]):
                if i - j > 32768:
                    break
                length = 3
                while length < 258 and i + length < n and data[j + length] == data[i + length]:
                    length += 1
                if length > best_len:
                    best_len, best_dist = length, i - j
                    if length == 258:
                        break
        step = best_len if best_len >= 3 else 1
        if best_len >= 3:
            code = max(k for k in range(29) if _LEN_BASE[k] <= best_len)
            lit(257 + code)
            put(best_len - _LEN_BASE[code], _LEN_EXTRA[code])
            dcode = max(k for k in range(30) if _DIST_BASE[k] <= best_dist)
            put_huff(dcode, 5)
            put(best_dist - _DIST_BASE[dcode], _DIST_EXTRA[dcode])
        else:
            lit(data[i])
        for k in range(i, min(i + step, n - 2)):
            chains.setdefault(data[k:k + 3], []).append(k)
        i += step
    lit(256)
    if nbits:
        out.append(bitbuf & 0xFF)
    result = bytes(out)
    assert zlib.decompress(result, -15) == data
    return result


def zlib_stream(data: bytes) -> bytes:
    return b"\x78\x9c" + deflate_raw(data) + struct.pack(">I", zlib.adler32(data))


def gzip_stream(data: bytes, name: str) -> bytes:
    """gzip (RFC 1952) with MTIME=0, the original name, OS=3 (Unix)."""
    return (b"\x1f\x8b\x08\x08" + struct.pack("<I", 0) + b"\x00\x03" + name.encode("latin-1") + b"\x00"
            + deflate_raw(data) + struct.pack("<II", zlib.crc32(data), len(data)))


def _dos_time(date_time) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def zip_bytes(members: list[tuple[str, bytes]], date_time=(2017, 5, 10, 12, 0, 0)) -> bytes:
    """A deterministic zip (deflate, given member order, fixed times, Unix 0644, UTF-8 flag on
    non-ASCII names). Read back with zipfile to check it."""
    dtime, ddate = _dos_time(date_time)
    out = b""
    central = b""
    for name, data in members:
        fname = name.encode("utf-8")
        flags = 0x0800 if not name.isascii() else 0
        comp = deflate_raw(data)
        crc = zlib.crc32(data)
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 8, dtime, ddate, crc, len(comp),
                            len(data), len(fname), 0)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, flags, 8, dtime, ddate,
                               crc, len(comp), len(data), len(fname), 0, 0, 0, 0, 0o100644 << 16,
                               len(out)) + fname
        out += local + fname + comp
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    result = out + central + eocd
    with zipfile.ZipFile(io.BytesIO(result)) as z:
        assert z.testzip() is None and [i.filename for i in z.infolist()] == [m[0] for m in members]
    return result


def tar_bytes(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    """Deterministic ustar archive: fixed mtime, uid/gid 0, owner names 'root'."""
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        dirs = sorted({m[0].rsplit("/", 1)[0] for m in members if "/" in m[0]})
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime, ti.uname, ti.gname = tarfile.DIRTYPE, 0o755, mtime, "root", "root"
            t.addfile(ti)
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime, ti.uname, ti.gname = len(data), 0o644, mtime, "root", "root"
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_docx(title: str, paragraphs: list[str], creator: str, last_by: str,
              created: str, modified: str, company: str) -> bytes:
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    ctypes_ = (xml + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
               '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
               '<Default Extension="xml" ContentType="application/xml"/>'
               '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
               'officedocument.wordprocessingml.document.main+xml"/>'
               '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
               'package.core-properties+xml"/>'
               '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-'
               'officedocument.extended-properties+xml"/></Types>')
    rels = (xml + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/extended-properties" Target="docProps/app.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
            'metadata/core-properties" Target="docProps/core.xml"/>'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{esc(p)}</w:t></w:r></w:p>' for p in paragraphs)
    document = (xml + '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                f'<w:body>{body}<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>')
    core = (xml + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/'
            'terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:title>{esc(title)}</dc:title><dc:creator>{esc(creator)}</dc:creator>'
            f'<cp:lastModifiedBy>{esc(last_by)}</cp:lastModifiedBy><cp:revision>7</cp:revision>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{modified}</dcterms:modified>'
            '</cp:coreProperties>')
    app = (xml + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"'
           ' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
           '<Template>Normal.dotm</Template><TotalTime>94</TotalTime><Pages>1</Pages>'
           '<Application>Microsoft Office Word</Application><DocSecurity>0</DocSecurity>'
           f'<Company>{esc(company)}</Company><AppVersion>16.0000</AppVersion></Properties>')
    return zip_bytes([
        ("[Content_Types].xml", ctypes_.encode()),
        ("_rels/.rels", rels.encode()),
        ("word/document.xml", document.encode()),
        ("docProps/core.xml", core.encode()),
        ("docProps/app.xml", app.encode()),
    ], date_time=(1980, 1, 1, 0, 0, 0))


def make_png(width: int = 60, height: int = 40) -> bytes:
    """A small RGB poster thumbnail: blue/white/red bands with a dark title bar."""
    rows = b""
    for y in range(height):
        row = b"\x00"
        for x in range(width):
            if 4 <= y < 12:
                px = (30, 30, 40)
            elif x < width // 3:
                px = (0, 85, 164)
            elif x < 2 * width // 3:
                px = (250, 250, 250)
            else:
                px = (239, 65, 53)
            row += bytes(px)
        rows += row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"tEXt", b"Software\x00Adobe Photoshop CC 2017 (Windows)")
            + chunk(b"IDAT", zlib_stream(rows))
            + chunk(b"IEND", b""))


def make_ds_store(names: list[str]) -> bytes:
    """A .DS_Store-like binary (Bud1 header + UTF-16BE names + padding). Not parseable by Finder."""
    out = b"\x00\x00\x00\x01Bud1" + struct.pack(">IIII", 0x1000, 0x800, 0x1000, 0x0000100C)
    out += b"\x00" * (0x20 - len(out))
    for n in names:
        u = n.encode("utf-16-be")
        out += (struct.pack(">I", len(u) // 2) + u + b"Iloc" + b"blob"
                + struct.pack(">IIIII", 16, 120, 88, 0xFFFFFFFF, 0xFFFF0000))
    return out + b"\x00" * (2048 - len(out))


# --------------------------------------------------------------------------- DKIM

@contextlib.contextmanager
def dkim_clock(ts: int):
    """dkimpy reads time.time() for t=; give it a fixed clock while signing."""
    real = dkim.time
    dkim.time = types.SimpleNamespace(time=lambda: float(ts))
    try:
        yield
    finally:
        dkim.time = real


def load_key(name: str) -> bytes:
    path = KEY_DIR / KEYS[name][2]
    if not path.exists():
        sys.exit(f"missing {path}; the test keys must be committed under tools/sample_keys/")
    return path.read_bytes()


def dkim_txt(name: str) -> str:
    priv = serialization.load_pem_private_key(load_key(name), password=None)
    spki = priv.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


def key_store() -> dict[str, str]:
    return {f"{sel.decode()}._domainkey.{dom.decode()}": dkim_txt(k) for k, (sel, dom, _f, _b) in KEYS.items()}


def offline_dns(store: dict[str, str]):
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        v = store.get(n.rstrip("."))
        return v.encode() if v is not None else None
    return dnsfunc


def dkim_verdict(msg: bytes, store: dict[str, str]) -> str:
    """'pass', 'body-hash-mismatch', 'fail' or 'none' for the first DKIM-Signature."""
    d = dkim.DKIM(msg)
    if not d.present():
        return "none"
    try:
        return "pass" if d.verify(dnsfunc=offline_dns(store)) else "fail"
    except dkim.ValidationError as e:
        return "body-hash-mismatch" if "body hash mismatch" in str(e) else "fail"


def dkim_sign(msg_lf: bytes, key: str, canon: tuple[bytes, bytes], ts: int, length: bool = False) -> bytes:
    """Sign the CRLF form of msg (as an MTA would); return DKIM-Signature header (LF)."""
    sel, dom, _f, _b = KEYS[key]
    m = crlf(msg_lf)
    present = {k.strip().lower() for k in re.findall(rb"(?m)^([A-Za-z-]+):", m.split(b"\r\n\r\n", 1)[0])}
    want = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to",
            b"references", b"mime-version", b"content-type"]
    include = [h for h in want if h in present]
    with dkim_clock(ts):
        sig = dkim.sign(m, sel, dom, load_key(key), canonicalize=canon,
                        include_headers=include, length=length)
    return lf(sig)


# --------------------------------------------------------------------------- the dump

class Dump:
    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, bytes] = {}
        self.messages: list[dict] = []
        self.non_mail: list[dict] = []
        self.empty_dirs: list[str] = []

    def put(self, rel: str, data: bytes) -> str:
        assert rel not in self.files, rel
        self.files[rel] = data
        return rel

    def write(self):
        for rel in sorted(self.files):
            p = self.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(self.files[rel])
        for d in self.empty_dirs:
            (self.root / d).mkdir(parents=True, exist_ok=True)


def loc_escape(s: str) -> str:
    out = []
    for ch in s:
        if ch in "%!#" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def att(filename: str, data: bytes, true_type: str, part: str, declared: str, **extra) -> dict:
    d = {"filename": filename, "sha256": sha256(data), "size": len(data), "true_type": true_type,
         "declared_type": declared, "part": part}
    d.update(extra)
    return d


def record(dump: Dump, *, path: str, container: str, raw: bytes | None, message_id: str, subject: str,
           from_: str, to: list[str], date: dt.datetime, attachments=(), dkim_: str = "none",
           notes=(), cc=(), in_reply_to: str | None = None, locator: str | None = None, **extra) -> dict:
    r = {
        "path": path, "container": container,
        "locator": locator or loc_escape(path),
        "message_id": message_id, "subject": subject, "from": from_, "to": list(to), "cc": list(cc),
        "date": iso_utc(date), "attachments": list(attachments), "dkim": dkim_, "notes": list(notes),
        "in_reply_to": in_reply_to,
    }
    if raw is not None:
        r["sha256"] = sha256(raw)
        r["size"] = len(raw)
        r["line_endings"] = "crlf" if b"\r\n" in raw else "lf"
    top = path.split("/", 1)[0]
    r["custodian"] = {"jmercier": "Jean Mercier", "Thomas Girard.zip": "Thomas Girard"}.get(top, top)
    r.update(extra)
    dump.messages.append(r)
    return r


def transport(hops: list[str], return_path: str, delivered_to: str) -> list[tuple[str, str]]:
    h = [("Return-Path", f"<{return_path}>"), ("Delivered-To", delivered_to)]
    h += [("Received", hop) for hop in hops]
    return h


ELAN_MX = ("from mx1.elan-citoyen.example (mx1.elan-citoyen.example [192.0.2.25])\n"
           "\tby imap.elan-citoyen.example (Postfix) with ESMTPS id {qid}\n"
           "\tfor <{rcpt}>; {date}")
ELAN_SUBMIT = ("from [10.17.3.{ip}] (unknown [198.51.100.{pub}])\n"
               "\t(Authenticated sender: {user})\n"
               "\tby smtp.elan-citoyen.example (Postfix) with ESMTPSA id {qid}\n"
               "\tfor <{rcpt}>; {date}")
LEDGER_OUT = ("from mail-out2.dailyledger.example (mail-out2.dailyledger.example [203.0.113.42])\n"
              "\tby mx1.elan-citoyen.example (Postfix) with ESMTPS id {qid}\n"
              "\tfor <{rcpt}>; {date}")


def build(dump: Dump, store: dict[str, str]) -> dict:
    rng = random.Random(SEED)
    truth: dict = {"duplicate_pairs": {"exact": [], "canonical": []}, "malformed": [], "lying_extension": []}

    HL = "Hélène Lefèvre"
    HL_ADDR = "h.lefevre@elan-citoyen.example"
    JM_ADDR = "j.mercier@elan-citoyen.example"
    SW_ADDR = "sarah.watson@dailyledger.example"
    TG_ADDR = "t.girard@elan-citoyen.example"
    HL_Q = q_word("Hélène Lefèvre", "ISO-8859-1")
    HL_B = b_word("Hélène Lefèvre", "UTF-8")

    def verify_expect(msg: bytes, expect: str):
        got = dkim_verdict(msg, store)
        assert got == expect, (got, expect)
        return got

    # ---------------------------------------------------------------- attachments / documents
    budget_docx = make_docx(
        "Prévisions budgétaires – mars 2017",
        ["Prévisions budgétaires – mars 2017 (document de travail)",
         "Location de salles (Lyon, Bordeaux, Marseille) : 38 400 €",
         "Impression affiches et tracts : 21 750 €",
         "Déplacements équipe : 12 300 €",
         "Total prévisionnel : 72 450 € — plafond légal non atteint.",
         "Ne pas diffuser en dehors du bureau de campagne."],
        creator="Jean Mercier", last_by="Рошка Георгий Петрович",
        created="2017-02-27T16:12:00Z", modified="2017-03-01T08:41:00Z",
        company="Association de financement Élan Citoyen")
    cr_pdf = make_pdf({
        "Title": "Compte rendu – comité de soutien du 6 mars 2017",
        "Author": "Thomas Girard",
        "Creator": "Microsoft® Word 2016",
        "Producer": "Microsoft® Word 2016",
        "CreationDate": "D:20170306183000+01'00'",
        "ModDate": "D:20170306191500+01'00'"},
        ["Compte rendu du comité de soutien — 6 mars 2017",
         "Présents : H. Lefèvre, J. Mercier, T. Girard, A. Rousseau",
         "1. Calendrier des meetings : Lyon (18/03), Bordeaux (25/03), Marseille (8/04).",
         "2. Budget : voir prévisions de J. Mercier, validation jeudi.",
         "3. Presse : demande d'entretien du Daily Ledger (S. Watson) à traiter.",
         "Document interne — ne pas transférer."])
    invoice_pdf = make_pdf({
        "Title": "Facture 2017-031",
        "Author": "Comptabilité Imprimerie Rousseau",
        "Creator": "Sage 100c Gestion commerciale",
        "Producer": "PDFlib 9.0.5 (Win32)",
        "CreationDate": "D:20170309101204+01'00'",
        "ModDate": "D:20170309101204+01'00'"},
        ["IMPRIMERIE ROUSSEAU — 12 rue des Canuts, 69004 Lyon",
         "FACTURE N° 2017-031 du 9 mars 2017",
         "Client : Association de financement Élan Citoyen",
         "5 000 affiches 60x80 quadri : 6 250,00 € HT",
         "20 000 tracts A5 recto-verso : 2 180,00 € HT",
         "Total TTC : 10 116,00 €  —  Règlement à 30 jours."])
    scan_pdf = make_pdf({
        "Title": "Scan_0001",
        "Author": "iR-ADV C5535",
        "Producer": "Canon iR-ADV C5535 PDF",
        "CreationDate": "D:20170325141522+01'00'",
        "ModDate": "D:20170325141522+01'00'"},
        ["[page numérisée]",
         "Liste d'émargement — meeting de Bordeaux, 25 mars 2017",
         "Bénévoles présents : 43 — Responsable : M. Dubois"])
    note_pdf = make_pdf({
        "Title": "Note stratégique – avril 2017",
        "Author": "Hélène Lefèvre",
        "Creator": "Writer",
        "Producer": "LibreOffice 5.3",
        "CreationDate": "D:20170402211000+02'00'",
        "ModDate": "D:20170404080500+02'00'"},
        ["Note stratégique — avril 2017 (confidentiel)",
         "Objectif : consolider l'électorat urbain avant le premier tour.",
         "Risque principal : l'enquête du Daily Ledger sur les dons.",
         "Réponse : transparence totale, publication des comptes le 10 avril."])
    poster_png = make_png()
    benevoles_txt = ("Liste des bénévoles — Bordeaux\n"
                     "Dubois, Marc;06 00 00 00 01;tractage\n"
                     "Nguyen, Linh;06 00 00 00 02;accueil\n"
                     "Vasseur, Bernard;06 00 00 00 03;logistique\n").encode("utf-8")

    # ================================================================ Hélène Lefèvre (loose .eml, CRLF)
    H = HL + "/"

    # H1: budget mail, Inbox copy (Sent copy lives in jmercier/Maildir/.Sent) -- DKIM 2048 relaxed/relaxed
    h1_date = dt.datetime(2017, 3, 1, 9, 58, 0, tzinfo=CET)
    h1_id = "<2d6c1f0e-8a3b-4c7e-9f21-5b0e7d3a9c41@elan-citoyen.example>"
    h1_subject = "Prévisions budgétaires – mars"
    docx_name = "prévisions budget mars.docx"
    h1_core = header_block([
        ("From", f"Jean Mercier <{JM_ADDR}>"),
        ("To", f"{HL_Q} <{HL_ADDR}>"),
        ("Subject", q_word(h1_subject, "UTF-8")),
        ("Message-ID", h1_id),
        ("Date", rfc2822_date(h1_date)),
        ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:45.0) Gecko/20100101\n\tThunderbird/45.7.1"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed;\n\tboundary="------------8E1F0A4C2B7D3E5F6A9B0C1D"'),
        ("Content-Language", "fr"),
    ]) + b"\n" + multipart("------------8E1F0A4C2B7D3E5F6A9B0C1D", [
        entity([("Content-Type", "text/plain; charset=utf-8; format=flowed"),
                ("Content-Transfer-Encoding", "8bit")],
               "Bonjour Hélène,\n\nCi-joint les prévisions pour mars. On dépasse un peu sur les\n"
               "salles, je propose qu'on en parle jeudi avant le comité.\n\n"
               "Merci de ne pas faire circuler au-delà du bureau.\n\nJean\n".encode()),
        entity([("Content-Type", f"{MIME_DOCX};\n\tname*=UTF-8''{quote2231(docx_name)}"),
                ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", f"attachment;\n\tfilename*=UTF-8''{quote2231(docx_name)}")],
               b64_body(budget_docx)),
    ], preamble=b"This is a multi-part message in MIME format.\n")
    h1_sig = dkim_sign(h1_core, "elan", (b"relaxed", b"relaxed"), ts=int(h1_date.timestamp()) + 1)
    h1_inbox = crlf(header_block(transport([
        ELAN_MX.format(qid="3vYh2k1Zq7z9sDm", rcpt=HL_ADDR,
                       date=received_date(h1_date + dt.timedelta(seconds=3))),
        ELAN_SUBMIT.format(ip=54, pub=77, user=JM_ADDR, qid="3vYh2k0mVnz9sCx", rcpt=HL_ADDR,
                           date=received_date(h1_date + dt.timedelta(seconds=2))),
    ], JM_ADDR, HL_ADDR)) + h1_sig + h1_core)
    verify_expect(h1_inbox, "pass")
    p = dump.put(H + "INBOX/0001.eml", h1_inbox)
    h1_att = [att(docx_name, budget_docx, MIME_DOCX, "1.2", MIME_DOCX, filename_encoding="rfc2231")]
    record(dump, path=p, container="file", raw=h1_inbox, message_id=h1_id, subject=h1_subject,
           from_=JM_ADDR, to=[HL_ADDR], date=h1_date, attachments=h1_att, dkim_="pass",
           dkim_detail={"d": "elan-citoyen.example", "s": "s2017", "bits": 2048, "c": "relaxed/relaxed"},
           notes=["recipient's Inbox copy; sender's Sent copy is in jmercier/Maildir/.Sent",
                  "attachment filename in RFC 2231 (filename*=UTF-8''...)",
                  "To display name RFC 2047 Q ISO-8859-1; Subject RFC 2047 Q UTF-8"])

    # H2: press request from Sarah Watson -- DKIM 1024 simple/simple
    h2_date = dt.datetime(2017, 3, 2, 9, 12, 0, tzinfo=GMT)
    h2_id = "<CAF7d2Kq9x3Lr+0vWd7e1sN5=mPq@mail.dailyledger.example>"
    h2_subject = "Interview request: campaign finances"
    h2_core = header_block([
        ("MIME-Version", "1.0"),
        ("From", f"Sarah Watson <{SW_ADDR}>"),
        ("Date", rfc2822_date(h2_date)),
        ("Message-ID", h2_id),
        ("Subject", h2_subject),
        ("To", f"{HL_Q} <{HL_ADDR}>"),
        ("Content-Type", "text/plain; charset=UTF-8"),
    ]) + b"\n" + (
        "Dear Ms Lefèvre,\n\n"
        "I am a correspondent for The Daily Ledger in Paris. We are preparing a piece on\n"
        "how the main campaigns are financing their spring rallies, and I would very\n"
        "much like to speak with you, on the record, before 10 March.\n\n"
        "In particular I would like to ask about the venue costs in Lyon and Bordeaux\n"
        "and about donations received in cash.\n\n"
        "Best regards,\nSarah Watson\nParis correspondent, The Daily Ledger\n+33 1 00 00 00 00\n").encode()
    h2_sig = dkim_sign(h2_core, "ledger", (b"simple", b"simple"), ts=int(h2_date.timestamp()))
    h2 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vZ0Qs5cXgz9sGb", rcpt=HL_ADDR, date=received_date(
            (h2_date + dt.timedelta(seconds=4)).astimezone(CET))),
        LEDGER_OUT.format(qid="3vZ0Qs3LbKz9sDq", rcpt=HL_ADDR, date=received_date(
            (h2_date + dt.timedelta(seconds=3)).astimezone(CET))),
    ], SW_ADDR, HL_ADDR)) + h2_sig + h2_core)
    verify_expect(h2, "pass")
    p = dump.put(H + "INBOX/0002.eml", h2)
    record(dump, path=p, container="file", raw=h2, message_id=h2_id, subject=h2_subject, from_=SW_ADDR,
           to=[HL_ADDR], date=h2_date, dkim_="pass",
           dkim_detail={"d": "dailyledger.example", "s": "mail", "bits": 1024, "c": "simple/simple"},
           notes=["English press request; thread root (reply in Éléments envoyés/0001.eml)",
                  "body is UTF-8 without Content-Transfer-Encoding header (7bit assumed, 8-bit present)"])

    # H3: minutes with PDF; subject split across two B encoded-words; PDF filename in RFC 2047
    h3_date = dt.datetime(2017, 3, 6, 19, 22, 10, tzinfo=CET)
    h3_id = "<DB6PR0701MB2455A1C3E0F24B7C9F21A5D2C2140@DB6PR0701MB2455.eurprd07.prod.outlook.example>"
    h3_subject = "Compte rendu de la réunion du comité de soutien"
    pdf_name = "compte-rendu-comité.pdf"
    h3_core = header_block([
        ("From", f"Thomas Girard <{TG_ADDR}>"),
        ("To", f"{HL_B} <{HL_ADDR}>"),
        ("CC", f"Jean Mercier <{JM_ADDR}>"),
        ("Subject", b_word("Compte rendu de la réunion", "UTF-8") + "\n\t"
         + b_word(" du comité de soutien", "UTF-8")),
        ("Thread-Topic", "Compte rendu"),
        ("Date", rfc2822_date(h3_date)),
        ("Message-ID", h3_id),
        ("Accept-Language", "fr-FR, en-US"),
        ("Content-Language", "fr-FR"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed;\n\tboundary="_004_DB6PR0701MB2455A1C3E0F2_"'),
    ]) + b"\n" + multipart("_004_DB6PR0701MB2455A1C3E0F2_", [
        entity([("Content-Type", 'text/plain; charset="utf-8"'),
                ("Content-Transfer-Encoding", "base64")],
               b64_body("Bonjour à tous,\r\n\r\nVoici le compte rendu du comité de ce soir.\r\n"
                        "Merci de me faire vos retours avant jeudi.\r\n\r\nThomas\r\n".encode())),
        attachment(MIME_PDF, f'name="{q_word(pdf_name, "UTF-8")}"|filename="{q_word(pdf_name, "UTF-8")}"',
                   cr_pdf),
    ])
    h3_sig = dkim_sign(h3_core, "elan", (b"simple", b"simple"), ts=int(h3_date.timestamp()) + 1)
    h3 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vbq5M2xRTz9sJ4", rcpt=HL_ADDR,
                       date=received_date(h3_date + dt.timedelta(seconds=2))),
    ], TG_ADDR, HL_ADDR)) + h3_sig + h3_core)
    verify_expect(h3, "pass")
    h3_att = [att(pdf_name, cr_pdf, MIME_PDF, "1.2", MIME_PDF, filename_encoding="rfc2047")]
    for where in ("INBOX/0003.eml", "Archives/Réunions/0003.eml"):
        p = dump.put(H + where, h3)
        record(dump, path=p, container="file", raw=h3, message_id=h3_id, subject=h3_subject, from_=TG_ADDR,
               to=[HL_ADDR], cc=[JM_ADDR], date=h3_date, attachments=h3_att, dkim_="pass",
               dkim_detail={"d": "elan-citoyen.example", "s": "s2017", "bits": 2048, "c": "simple/simple"},
               notes=["byte-identical copy stored in INBOX/ and Archives/Réunions/",
                      "Subject split across two RFC 2047 B UTF-8 encoded-words (folded)",
                      "PDF filename RFC 2047 encoded inside a quoted parameter"])
    truth["duplicate_pairs"]["exact"].append([loc_escape(H + "INBOX/0003.eml"),
                                              loc_escape(H + "Archives/Réunions/0003.eml")])

    # H4: forwarded invoice as message/rfc822 (which itself has a PDF attachment)
    inner_date = dt.datetime(2017, 3, 9, 10, 14, 0, tzinfo=CET)
    inner_id = "<000a01d298b4$6c1e2f50$445a8df0$@imprimerie-rousseau.example>"
    inner_subject = "Facture n° 2017-031"
    inner = header_block([
        ("From", f"{b_word('Comptabilité Imprimerie Rousseau', 'ISO-8859-1')} <compta@imprimerie-rousseau.example>"),
        ("To", f"<{JM_ADDR}>"),
        ("Subject", q_word(inner_subject, "ISO-8859-1")),
        ("Date", rfc2822_date(inner_date)),
        ("Message-ID", inner_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed;\n\tboundary="----=_NextPart_000_000B_01D298BC.CDE29750"'),
        ("X-Mailer", "Microsoft Outlook 14.0"),
    ]) + b"\n" + multipart("----=_NextPart_000_000B_01D298BC.CDE29750", [
        entity([("Content-Type", 'text/plain;\n\tcharset="iso-8859-1"'),
                ("Content-Transfer-Encoding", "quoted-printable")],
               qp_body("Bonjour Monsieur Mercier,\n\nVeuillez trouver ci-joint notre facture n° 2017-031 "
                       "relative à l'impression des affiches et tracts.\n\nCordialement,\nService "
                       "comptabilité\nImprimerie Rousseau", "iso-8859-1")),
        attachment(MIME_PDF, plain_names("facture-2017-031.pdf"), invoice_pdf),
    ], preamble=b"This is a multipart message in MIME format.\n\n")
    h4_date = dt.datetime(2017, 3, 9, 11, 2, 40, tzinfo=CET)
    h4_id = "<5f0c9e3a-1b7d-4a62-8c15-0e9d2f6b7a13@elan-citoyen.example>"
    h4_subject = "Tr: Facture n° 2017-031"
    h4_core = header_block([
        ("From", f"Jean Mercier <{JM_ADDR}>"),
        ("To", f"{HL_Q} <{HL_ADDR}>"),
        ("Subject", q_word(h4_subject, "UTF-8")),
        ("Message-ID", h4_id),
        ("Date", rfc2822_date(h4_date)),
        ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:45.0) Gecko/20100101\n\tThunderbird/45.7.1"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed;\n\tboundary="------------0C2A7B9E4D1F3A6B8C5E7D90"'),
    ]) + b"\n" + multipart("------------0C2A7B9E4D1F3A6B8C5E7D90", [
        entity([("Content-Type", "text/plain; charset=utf-8; format=flowed"),
                ("Content-Transfer-Encoding", "8bit")],
               "Pour info, la facture de l'imprimeur. Plus élevée que le devis\n"
               "(+1 100 € HT). Je la passe sur mars ?\n\nJean\n".encode()),
        entity([("Content-Type", f'{MIME_EML};\n\tname="{q_word("Facture n° 2017-031.eml", "UTF-8")}"'),
                ("Content-Transfer-Encoding", "8bit"),
                ("Content-Disposition", 'attachment;\n\tfilename="Facture 2017-031.eml"')], inner),
    ], preamble=b"This is a multi-part message in MIME format.\n")
    h4 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vdD1c6YkWz9sK7", rcpt=HL_ADDR,
                       date=received_date(h4_date + dt.timedelta(seconds=1))),
    ], JM_ADDR, HL_ADDR)) + h4_core)
    p = dump.put(H + "INBOX/0004.eml", h4)
    inner_bytes = crlf(inner)[:-2]  # RFC 2046: the CRLF before the next boundary belongs to it
    record(dump, path=p, container="file", raw=h4, message_id=h4_id, subject=h4_subject, from_=JM_ADDR,
           to=[HL_ADDR], date=h4_date,
           attachments=[att("Facture 2017-031.eml", inner_bytes, MIME_EML, "1.2", MIME_EML,
                            note="sha256/size: embedded entity body as stored (CRLF), without the CRLF "
                                 "that precedes the closing boundary (RFC 2046)")],
           notes=["forward with the original as a message/rfc822 part (1.2)"])
    record(dump, path=p, container="attached", raw=None, locator=loc_escape(p) + "#1.2",
           message_id=inner_id, subject=inner_subject, from_="compta@imprimerie-rousseau.example",
           to=[JM_ADDR], date=inner_date,
           attachments=[att("facture-2017-031.pdf", invoice_pdf, MIME_PDF, "1.2.1.2", MIME_PDF)],
           notes=["message/rfc822 attached to INBOX/0004.eml; its root entity is 1.2.1",
                  "body quoted-printable ISO-8859-1; From display name RFC 2047 B ISO-8859-1"],
           parent=loc_escape(p))

    # H5: windows-1252 body, Outlook style, PNG attachment, From name B ISO-8859-1
    h5_date = dt.datetime(2017, 3, 13, 17, 45, 12, tzinfo=CET)
    h5_id = "<001b01d29c1a$3f6e2a10$be2a7e30$@imprimerie-rousseau.example>"
    h5_subject = "Affiches pour le meeting de Lyon – épreuve"
    h5 = crlf(header_block(transport([
        "from smtp.imprimerie-rousseau.example (smtp.imprimerie-rousseau.example [198.51.100.140])\n"
        f"\tby mx1.elan-citoyen.example (Postfix) with ESMTP id 3vgL4n0RtPz9sLb\n"
        f"\tfor <{HL_ADDR}>; {received_date(h5_date + dt.timedelta(seconds=5))}",
        "from PCAGNES (lyon-adsl-17.isp.example [203.0.113.17])\n"
        "\tby smtp.imprimerie-rousseau.example (Postfix) with ESMTPA id 7C1A2E00B4\n"
        f"\tfor <{HL_ADDR}>; {received_date(h5_date + dt.timedelta(seconds=3))}",
    ], "a.rousseau@imprimerie-rousseau.example", HL_ADDR) + [
        ("From", f"{b_word('Agnès Rousseau', 'ISO-8859-1')} <a.rousseau@imprimerie-rousseau.example>"),
        ("To", f"{q_word('Hélène Lefèvre', 'ISO-8859-1')} <{HL_ADDR}>"),
        ("Subject", q_word("Affiches pour le meeting de Lyon", "ISO-8859-1") + "\n\t"
         + q_word(" – épreuve", "UTF-8")),
        ("Date", rfc2822_date(h5_date)),
        ("Message-ID", h5_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed;\n\tboundary="----=_NextPart_000_001C_01D29C22.A1D29230"'),
        ("X-Mailer", "Microsoft Outlook 14.0"),
        ("Thread-Index", "AdKcGj4HKx3hF0ZtQ7yS8aV1bN2c9A=="),
        ("Content-Language", "fr"),
    ]) + b"\n" + multipart("----=_NextPart_000_001C_01D29C22.A1D29230", [
        entity([("Content-Type", 'text/plain;\n\tcharset="windows-1252"'),
                ("Content-Transfer-Encoding", "8bit")],
               ("Bonjour Hélène,\n\nVoici l’épreuve de l’affiche « Lyon, 18 mars » en basse définition.\n"
                "Le slogan “Ensemble, pour l’élan” est en Œuvre Grotesk, comme convenu…\n"
                "Tirage prévu : 5 000 exemplaires, 1,25 € pièce.\n\nBien à vous,\nAgnès\n").encode("cp1252")),
        attachment(MIME_PNG, plain_names("affiche-lyon.png"), poster_png),
    ]))
    p = dump.put(H + "INBOX/0005.eml", h5)
    record(dump, path=p, container="file", raw=h5, message_id=h5_id, subject=h5_subject,
           from_="a.rousseau@imprimerie-rousseau.example", to=[HL_ADDR], date=h5_date,
           attachments=[att("affiche-lyon.png", poster_png, MIME_PNG, "1.2", MIME_PNG)],
           notes=["body text in windows-1252, 8bit (curly quotes, €, Œ, … are 0x80-0x9F bytes)",
                  "From display name RFC 2047 B ISO-8859-1; Subject = Q ISO-8859-1 word + Q UTF-8 word"])

    # H6: LF-only line endings and raw 8-bit UTF-8 in the Subject header
    h6_date = dt.datetime(2017, 3, 15, 8, 3, 55, tzinfo=CET)
    h6_id = "<20170315070355.GA4172@t-girard-laptop.example>"
    h6_subject = "Déplacement à Marseille – horaires du TGV"
    h6 = lf(header_block(transport([
        ELAN_MX.format(qid="3vhW7r4FNbz9sMc", rcpt=HL_ADDR,
                       date=received_date(h6_date + dt.timedelta(seconds=1))),
    ], TG_ADDR, HL_ADDR) + [
        ("Date", rfc2822_date(h6_date)),
        ("From", f"Thomas Girard <{TG_ADDR}>"),
        ("To", f"Hélène Lefèvre <{HL_ADDR}>"),
        ("Subject", h6_subject),
        ("Message-ID", h6_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Disposition", "inline"),
        ("Content-Transfer-Encoding", "8bit"),
        ("User-Agent", "Mutt/1.7.2 (2016-11-26)"),
    ]) + b"\n" + ("Hélène,\n\nAller le 7 avril : TGV 6171, Paris-Gare-de-Lyon 07:37 → Marseille 10:58.\n"
                  "Retour le 8 au soir, 21:04. Billets pris sur le compte de l'association.\n\n"
                  "-- \nThomas\n").encode())
    p = dump.put(H + "INBOX/0006.eml", h6)
    record(dump, path=p, container="file", raw=h6, message_id=h6_id, subject=h6_subject, from_=TG_ADDR,
           to=[HL_ADDR], date=h6_date,
           notes=["LF-only line endings (the other loose .eml files are CRLF)",
                  "Subject and To display name are raw 8-bit UTF-8 bytes (not RFC 2047)"])

    # H7: malformed: missing closing boundary + base64 with bad padding / invalid characters
    h7_date = dt.datetime(2017, 3, 20, 22, 41, 3, tzinfo=CET)
    h7_id = "<1490046063.8812.1.camel@elan-citoyen.example>"
    h7_subject = "Résultats sondage interne (ne pas diffuser)"
    bad_b64 = (b"UEsDBBQABgAIAAAAIQBi7p1oXgEAAJAEAAATAAgCW0NvbnRlbnRfVHlwZXNdLnhtbCCiBAIooAAC\n"
               b"AAAAAAAAAAAAAAAAAAAAAAAA*#AAAAAAAAAAAAAAAAAAAA!!AAAAAAAAAAAAAAAAAAAAAAAAAA\n"
               b"QUJD=\n"
               b"RE=FR0ZI\n"
               b"SktM=\n")
    h7 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vl1Xc2GpBz9sNd", rcpt=HL_ADDR,
                       date=received_date(h7_date + dt.timedelta(seconds=2))),
    ], "sondages@elan-citoyen.example", HL_ADDR) + [
        ("Subject", q_word(h7_subject, "UTF-8")),
        ("From", "Cellule sondages <sondages@elan-citoyen.example>"),
        ("To", f"{HL_ADDR}, {JM_ADDR}"),
        ("Date", rfc2822_date(h7_date)),
        ("Message-ID", h7_id),
        ("Content-Type", 'multipart/mixed; boundary="=-Xk2pQ9vW3mZ7rT1bN8cL"'),
        ("X-Mailer", "Evolution 3.22.6-1"),
        ("Mime-Version", "1.0"),
    ]) + b"\n" + multipart("=-Xk2pQ9vW3mZ7rT1bN8cL", [
        entity([("Content-Type", "text/plain; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit")],
               "Intentions de vote, vague 3 (échantillon interne, n=1 012).\n"
               "Fichier complet ci-joint.\n".encode()),
        entity([("Content-Type", 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\n'
                                 '\tname="sondage-vague3.xlsx"'),
                ("Content-Disposition", 'attachment; filename="sondage-vague3.xlsx"'),
                ("Content-Transfer-Encoding", "base64")], bad_b64),
    ], close=False))
    p = dump.put(H + "INBOX/0007.eml", h7)
    record(dump, path=p, container="file", raw=h7, message_id=h7_id, subject=h7_subject,
           from_="sondages@elan-citoyen.example", to=[HL_ADDR, JM_ADDR], date=h7_date,
           attachments=[{"filename": "sondage-vague3.xlsx", "part": "1.2", "sha256": None, "size": None,
                         "true_type": None, "declared_type":
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         "note": "base64 is corrupt (invalid characters, '=' padding mid-stream); "
                                 "decoded bytes are implementation-defined"}],
           notes=["malformed: multipart/mixed without closing boundary (file ends inside part 1.2)",
                  "malformed: base64 part with invalid characters (*, #, !) and bad padding"])
    truth["malformed"].append({"locator": loc_escape(p), "problems": [
        "multipart-missing-close-boundary", "base64-invalid-characters", "base64-bad-padding"]})

    # H8: quoted-printable body + lying extension (PDF sent as photo.jpg, image/jpeg)
    h8_date = dt.datetime(2017, 3, 25, 18, 20, 0, tzinfo=CET)
    h8_id = "<CAM4rX=9pQ2kLw7vB0aT1yZ-3nE5hG8dJ6fR@mail.postmail.example>"
    h8_subject = "Photo du meeting de Bordeaux"
    h8 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vn8Jd5QyHz9sPf", rcpt=HL_ADDR,
                       date=received_date(h8_date + dt.timedelta(seconds=6))),
        "from mail-vk1-f170.postmail.example (mail-vk1-f170.postmail.example [203.0.113.170])\n"
        "\tby mx1.elan-citoyen.example (Postfix) with ESMTPS id 3vn8Jd3kxsz9sNm\n"
        f"\tfor <{HL_ADDR}>; {received_date(h8_date + dt.timedelta(seconds=5))}",
    ], "marc.dubois@postmail.example", HL_ADDR) + [
        ("MIME-Version", "1.0"),
        ("From", f"Marc Dubois <marc.dubois@postmail.example>"),
        ("Date", rfc2822_date(h8_date)),
        ("Message-ID", h8_id),
        ("Subject", h8_subject),
        ("To", f"{HL_ADDR}"),
        ("Content-Type", 'multipart/mixed; boundary="001a1140f1e8c6d2a2054b8f5e21"'),
    ]) + b"\n" + multipart("001a1140f1e8c6d2a2054b8f5e21", [
        entity([("Content-Type", 'text/plain; charset="UTF-8"'),
                ("Content-Transfer-Encoding", "quoted-printable")],
               qp_body("Bonjour Madame Lefèvre,\n\nComme promis, la photo de la liste d'émargement du meeting "
                       "de ce midi à Bordeaux (43 bénévoles présents, un record !).\n\nBonne soirée,\n"
                       "Marc Dubois — équipe Gironde")),
        attachment("image/jpeg", plain_names("photo.jpg"), scan_pdf),
    ]))
    p = dump.put(H + "INBOX/0008.eml", h8)
    record(dump, path=p, container="file", raw=h8, message_id=h8_id, subject=h8_subject,
           from_="marc.dubois@postmail.example", to=[HL_ADDR], date=h8_date,
           attachments=[att("photo.jpg", scan_pdf, MIME_PDF, "1.2", "image/jpeg")],
           notes=["text part is quoted-printable UTF-8",
                  "lying extension: photo.jpg / image/jpeg is really a PDF (starts with %PDF-)"])
    truth["lying_extension"].append({"locator": loc_escape(p) + "#1.2", "filename": "photo.jpg",
                                     "declared_type": "image/jpeg", "true_type": MIME_PDF,
                                     "sha256": sha256(scan_pdf)})

    # H9: multipart/alternative newsletter with data in the MIME epilogue
    h9_date = dt.datetime(2017, 3, 28, 7, 0, 0, tzinfo=CEST)
    h9_id = "<lettre-2017-13.7f3a91@listes.elan-citoyen.example>"
    h9_subject = "La Lettre d'Élan Citoyen – n° 13"
    epilogue = (b"\n"
                b"[brouillon 2017-03-27 - version non publiee]\n"
                b"Sondage interne vague 3 : 21,5 % - NE PAS PUBLIER avant validation H.L.\n")
    h9 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vq2Vw0Hcdz9sQg", rcpt=HL_ADDR,
                       date=received_date(h9_date + dt.timedelta(seconds=9))),
    ], "bounce-13-hl@listes.elan-citoyen.example", HL_ADDR) + [
        ("From", f"{q_word('La Lettre d’Élan Citoyen', 'UTF-8')} <lettre@elan-citoyen.example>"),
        ("To", HL_ADDR),
        ("Subject", q_word(h9_subject, "UTF-8")),
        ("Date", rfc2822_date(h9_date)),
        ("Message-ID", h9_id),
        ("List-Unsubscribe", "<mailto:desinscription@listes.elan-citoyen.example?subject=hl>"),
        ("Precedence", "bulk"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/alternative; boundary="=_lettre13_alt"'),
    ]) + b"\n" + multipart("=_lettre13_alt", [
        entity([("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
               "LA LETTRE D'ÉLAN CITOYEN — n° 13\n\nCette semaine : Lyon a fait salle comble,\n"
               "Bordeaux samedi, Marseille le 8 avril.\n".encode()),
        entity([("Content-Type", "text/html; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
               "<html><body><h1>La Lettre d'Élan Citoyen — n° 13</h1>\n<p>Cette semaine : Lyon a fait "
               "salle comble, Bordeaux samedi, Marseille le 8 avril.</p></body></html>\n".encode()),
    ], preamble=b"This is a multi-part message in MIME format.\n", epilogue=epilogue))
    p = dump.put(H + "INBOX/0009.eml", h9)
    record(dump, path=p, container="file", raw=h9, message_id=h9_id, subject=h9_subject,
           from_="lettre@elan-citoyen.example", to=[HL_ADDR], date=h9_date,
           notes=["data after the closing boundary (MIME epilogue): a leaked draft line about an internal poll"],
           epilogue_sha256=sha256(crlf(epilogue)))

    # H10: uuencoded file inside a text/plain body (Pine, ISO-8859-1)
    h10_date = dt.datetime(2017, 3, 29, 21, 37, 0, tzinfo=CEST)
    h10_id = "<Pine.LNX.4.64.1703292134110.2291@vasseur.postmail.example>"
    h10_subject = "liste des bénévoles"
    h10_body = ("Bonsoir Hélène,\n\nVoici la liste des bénévoles de Bordeaux. Mon vieux logiciel\n"
                "ne sait pas joindre les fichiers, alors je l'ai uuencodée :\n\n").encode("iso-8859-1") \
        + uuencode("benevoles.txt", benevoles_txt) + "\nAmitiés,\nBernard\n".encode("iso-8859-1")
    h10 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vqz8T1mLcz9sRh", rcpt=HL_ADDR,
                       date=received_date(h10_date + dt.timedelta(seconds=3))),
    ], "bvasseur@postmail.example", HL_ADDR) + [
        ("Date", rfc2822_date(h10_date)),
        ("From", "Bernard Vasseur <bvasseur@postmail.example>"),
        ("To", f"{HL_Q} <{HL_ADDR}>"),
        ("Subject", q_word(h10_subject, "ISO-8859-1")),
        ("Message-ID", h10_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "TEXT/PLAIN; charset=ISO-8859-1"),
        ("Content-Transfer-Encoding", "8BIT"),
    ]) + b"\n" + h10_body)
    p = dump.put(H + "INBOX/0010.eml", h10)
    record(dump, path=p, container="file", raw=h10, message_id=h10_id, subject=h10_subject,
           from_="bvasseur@postmail.example", to=[HL_ADDR], date=h10_date,
           uuencoded=[{"locator": loc_escape(p) + "#1!uu:1", "filename": "benevoles.txt", "mode": "644",
                       "sha256": sha256(benevoles_txt), "size": len(benevoles_txt), "true_type": MIME_TXT}],
           notes=["uuencoded file (begin 644 benevoles.txt ... end) inside a single-part text/plain body",
                  "ISO-8859-1 8bit body; upper-case TEXT/PLAIN and 8BIT"])

    # H11: Hélène's reply to Sarah (Sent copy; delivered copy in Sarah Watson/Inbox.mbox)
    h11_date = dt.datetime(2017, 3, 2, 18, 30, 5, tzinfo=CET)
    h11_id = "<b91e0d7c-3f2a-4e8b-a6c1-7d5e9f0a2b34@elan-citoyen.example>"
    h11_subject = "Re: Interview request: campaign finances"
    h11_core = header_block([
        ("From", f"{HL_B} <{HL_ADDR}>"),
        ("To", f"Sarah Watson <{SW_ADDR}>"),
        ("Subject", h11_subject),
        ("Message-ID", h11_id),
        ("In-Reply-To", h2_id),
        ("References", h2_id),
        ("Date", rfc2822_date(h11_date)),
        ("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:45.0)\n\tGecko/20100101 Thunderbird/45.7.1"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8; format=flowed"),
        ("Content-Language", "en-GB"),
        ("Content-Transfer-Encoding", "8bit"),
    ]) + b"\n" + ("Dear Ms Watson,\n\nThank you for your message. I can offer you 30 minutes on\n"
                  "Wednesday 8 March at 11:00, at our offices.\n\nOn the points you raise: all venue "
                  "contracts were signed by the\nfinancing association and will appear in the published "
                  "accounts.\n\nKind regards,\nHélène Lefèvre\nDirectrice de la communication, Élan Citoyen\n\n"
                  f"Le 02/03/2017 à 10:12, Sarah Watson a écrit :\n> Dear Ms Lefèvre,\n>\n"
                  "> I am a correspondent for The Daily Ledger in Paris.\n").encode()
    h11 = crlf(h11_core)
    p = dump.put(H + "Éléments envoyés/0001.eml", h11)
    record(dump, path=p, container="file", raw=h11, message_id=h11_id, subject=h11_subject,
           from_=HL_ADDR, to=[SW_ADDR], date=h11_date, in_reply_to=h2_id,
           notes=["sender's Sent copy (no Return-Path/Received/Delivered-To/DKIM-Signature)",
                  "canonical duplicate of the copy delivered to Sarah Watson/Inbox.mbox"])

    # H12: Hélène's reply to the minutes (Outlook style "RE:")
    h12_date = dt.datetime(2017, 3, 7, 8, 15, 44, tzinfo=CET)
    h12_id = "<a0d4c8e2-6b19-4f73-9e05-3c7a1b2d8f60@elan-citoyen.example>"
    h12_subject = "RE: Compte rendu de la réunion du comité de soutien"
    h12 = crlf(header_block([
        ("From", f"{HL_B} <{HL_ADDR}>"),
        ("To", f"Thomas Girard <{TG_ADDR}>"),
        ("Cc", f"Jean Mercier <{JM_ADDR}>"),
        ("Subject", q_word(h12_subject, "UTF-8")),
        ("Message-ID", h12_id),
        ("In-Reply-To", h3_id),
        ("References", h3_id),
        ("Date", rfc2822_date(h12_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]) + b"\n" + qp_body("Merci Thomas. Point 3 : je réponds moi-même au Daily Ledger,\n"
                         "personne d'autre ne leur parle. Point 2 : on valide jeudi.\n\nH.\n"))
    p = dump.put(H + "Éléments envoyés/0002.eml", h12)
    record(dump, path=p, container="file", raw=h12, message_id=h12_id, subject=h12_subject, from_=HL_ADDR,
           to=[TG_ADDR], cc=[JM_ADDR], date=h12_date, in_reply_to=h3_id,
           notes=["Sent copy; reply to INBOX/0003.eml; quoted-printable body"])

    # non-mail files in Hélène's folder
    rng_junk = rng.randbytes(3000)
    notes_txt = ("À faire — semaine 10\n"
                 "- rappeler S. Watson (Daily Ledger) : entretien mercredi 11h\n"
                 "- valider budget avec Jean jeudi\n"
                 "- vérifier facture Rousseau (+1 100 €)\n"
                 "- code porte bureau : demander à Thomas\n").encode("utf-8")
    ds = make_ds_store(["Documents", "INBOX", "notes.txt", "Éléments envoyés"])
    for rel, data, kind, note in [
        (H + "notes.txt", notes_txt, "text", "UTF-8 plain text notes"),
        (H + "Documents/Note stratégique – avril.pdf", note_pdf, "pdf",
         "standalone PDF with Info dictionary (Author Hélène Lefèvre, Producer LibreOffice 5.3)"),
        (H + ".DS_Store", ds, "binary", ".DS_Store-like binary (Bud1 magic)"),
        (H + "Documents/Sans titre.txt", b"", "empty", "empty file"),
        (H + "INBOX/0011.eml", rng_junk, "junk", "named .eml but is binary junk (seeded random bytes)"),
    ]:
        dump.put(rel, data)
        dump.non_mail.append({"path": rel, "locator": loc_escape(rel), "kind": kind, "size": len(data),
                              "sha256": sha256(data), "note": note})

    # ================================================================ jmercier (Maildir, LF)
    J = "jmercier/Maildir/"

    def maildir_name(secs: int, usec: int, pid: int, n: int, data: bytes, flags: str | None) -> str:
        base = f"{secs}.M{usec}P{pid}Q{n}.mail,S={len(data)}"
        return base + (f":2,{flags}" if flags is not None else "")

    def maildir_put(sub: str, secs: int, usec: int, pid: int, n: int, data: bytes, flags: str | None) -> str:
        return dump.put(J + sub + "/" + maildir_name(secs, usec, pid, n, data, flags), data)

    # J4: Jean's Sent copy of H1 (same core headers + body, LF, no transport headers, no DKIM)
    j4 = lf(h1_core)
    p = maildir_put(".Sent/cur", int(h1_date.timestamp()), 118733, 20311, 1, j4, "S")
    record(dump, path=p, container="maildir", raw=j4, message_id=h1_id, subject=h1_subject, from_=JM_ADDR,
           to=[HL_ADDR], date=h1_date,
           attachments=[att(docx_name, budget_docx, MIME_DOCX, "1.2", MIME_DOCX, filename_encoding="rfc2231")],
           maildir={"folder": ".Sent", "subdir": "cur", "flags": "S"},
           notes=["sender's Sent copy of Hélène Lefèvre/INBOX/0001.eml (LF, no transport headers)"])
    truth["duplicate_pairs"]["canonical"].append([loc_escape(H + "INBOX/0001.eml"), loc_escape(p)])

    # J1: Hélène's answer about the budget, DKIM relaxed/relaxed, stored LF, flags RS
    j1_date = dt.datetime(2017, 3, 1, 10, 40, 17, tzinfo=CET)
    j1_id = "<c4a7e9b2-0d3f-4e51-8a6c-2b9d7f1e3a05@elan-citoyen.example>"
    j1_subject = "Re: Prévisions budgétaires – mars"
    j1_core = header_block([
        ("From", f"{HL_B} <{HL_ADDR}>"),
        ("To", f"Jean Mercier <{JM_ADDR}>"),
        ("Subject", q_word(j1_subject, "UTF-8")),
        ("Message-ID", j1_id),
        ("In-Reply-To", h1_id),
        ("References", h1_id),
        ("Date", rfc2822_date(j1_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8; format=flowed"),
        ("Content-Transfer-Encoding", "8bit"),
    ]) + b"\n" + ("Jean,\n\nOK pour jeudi. Pour les salles, on ne peut pas réduire Lyon.\n"
                  "Si la presse pose la question, on parle de 'dépenses de mobilisation'.\n\nH.\n\n"
                  "Le 01/03/2017 à 09:58, Jean Mercier a écrit :\n> Ci-joint les prévisions pour mars.\n"
                  ).encode()
    j1_sig = dkim_sign(j1_core, "elan", (b"relaxed", b"relaxed"), ts=int(j1_date.timestamp()) + 1)
    j1 = lf(header_block(transport([
        ELAN_MX.format(qid="3vYk0P5b2Vz9sFt", rcpt=JM_ADDR,
                       date=received_date(j1_date + dt.timedelta(seconds=2))),
    ], HL_ADDR, JM_ADDR)) + j1_sig + j1_core)
    verify_expect(j1, "pass")
    p = maildir_put("cur", int(j1_date.timestamp()) + 2, 412907, 20388, 1, j1, "RS")
    record(dump, path=p, container="maildir", raw=j1, message_id=j1_id, subject=j1_subject, from_=HL_ADDR,
           to=[JM_ADDR], date=j1_date, in_reply_to=h1_id, dkim_="pass",
           dkim_detail={"d": "elan-citoyen.example", "s": "s2017", "bits": 2048, "c": "relaxed/relaxed"},
           maildir={"folder": "", "subdir": "cur", "flags": "RS"},
           notes=["signed over CRLF by the MTA, stored with LF by the MDA; still verifies"])

    # J2: bank statement notice, quoted-printable, flagged (FS)
    j2_date = dt.datetime(2017, 3, 3, 6, 12, 0, tzinfo=CET)
    j2_id = "<20170303061200.11F2.notifications@banque-solidaire.example>"
    j2_subject = "Votre relevé de compte – février 2017"
    j2 = lf(header_block(transport([
        ELAN_MX.format(qid="3vZr8D1XyMz9sH2", rcpt=JM_ADDR,
                       date=received_date(j2_date + dt.timedelta(seconds=7))),
        "from out.banque-solidaire.example (out.banque-solidaire.example [198.51.100.200])\n"
        "\tby mx1.elan-citoyen.example (Postfix) with ESMTPS id 3vZr8C6qTRz9sGx\n"
        f"\tfor <{JM_ADDR}>; {received_date(j2_date + dt.timedelta(seconds=6))}",
    ], "notifications@banque-solidaire.example", JM_ADDR) + [
        ("From", "Banque Solidaire <notifications@banque-solidaire.example>"),
        ("To", JM_ADDR),
        ("Subject", q_word(j2_subject, "UTF-8")),
        ("Date", rfc2822_date(j2_date)),
        ("Message-ID", j2_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=UTF-8"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]) + b"\n" + qp_body(
        "Bonjour,\n\nLe relevé du compte n° FR76 0000 0000 0000 0000 0000 042 (Association de financement "
        "Élan Citoyen) pour février 2017 est disponible dans votre espace client.\n\n"
        "Solde au 28/02/2017 : 187 412,35 € — 4 remises d'espèces ce mois-ci.\n\n"
        "Ceci est un message automatique, merci de ne pas y répondre.") + b"\n")
    p = maildir_put("cur", int(j2_date.timestamp()) + 7, 8803, 20401, 2, j2, "FS")
    record(dump, path=p, container="maildir", raw=j2, message_id=j2_id, subject=j2_subject,
           from_="notifications@banque-solidaire.example", to=[JM_ADDR], date=j2_date,
           maildir={"folder": "", "subdir": "cur", "flags": "FS"},
           notes=["quoted-printable UTF-8 body with soft line breaks", "flagged + seen (:2,FS)"])

    # J3: Sarah -> Jean, DKIM 1024 relaxed/simple with l=, a footer appended after signing
    j3_date = dt.datetime(2017, 3, 20, 15, 5, 0, tzinfo=GMT)
    j3_id = "<CAF7d2KqB8wZ1yP0e4Hn7sT3=uXv@mail.dailyledger.example>"
    j3_subject = "Question about the donors list"
    j3_core = header_block([
        ("MIME-Version", "1.0"),
        ("From", f"Sarah Watson <{SW_ADDR}>"),
        ("Date", rfc2822_date(j3_date)),
        ("Message-ID", j3_id),
        ("Subject", j3_subject),
        ("To", f"Jean Mercier <{JM_ADDR}>"),
        ("Content-Type", "text/plain; charset=UTF-8"),
    ]) + (b"\nDear Mr Mercier,\n\nWe have been told that the association received three cash\n"
          b"donations of more than EUR 7,500 each in February. Can you confirm\n"
          b"whether these were accepted or returned?\n\nMany thanks,\nSarah Watson\nThe Daily Ledger\n")
    j3_sig = dkim_sign(j3_core, "ledger", (b"relaxed", b"simple"), ts=int(j3_date.timestamp()), length=True)
    footer = b"\n--\nThis message was scanned by the Daily Ledger mail gateway.\n"
    j3 = lf(header_block(transport([
        ELAN_MX.format(qid="3vkT2W4cPRz9sMn", rcpt=JM_ADDR, date=received_date(
            (j3_date + dt.timedelta(seconds=3)).astimezone(CET))),
        LEDGER_OUT.format(qid="3vkT2W2bLjz9sLw", rcpt=JM_ADDR, date=received_date(
            (j3_date + dt.timedelta(seconds=2)).astimezone(CET))),
    ], SW_ADDR, JM_ADDR)) + j3_sig + j3_core + footer)
    verify_expect(j3, "pass")
    p = maildir_put("new", int(j3_date.timestamp()) + 3, 652001, 20554, 1, j3, None)
    record(dump, path=p, container="maildir", raw=j3, message_id=j3_id, subject=j3_subject, from_=SW_ADDR,
           to=[JM_ADDR], date=j3_date, dkim_="pass",
           dkim_detail={"d": "dailyledger.example", "s": "mail", "bits": 1024, "c": "relaxed/simple",
                        "l": True, "unsigned_trailing_bytes": len(footer)},
           maildir={"folder": "", "subdir": "new", "flags": None},
           notes=["in Maildir/new (unread, no :2, info suffix)",
                  "DKIM l= covers only the original body; a footer was appended after signing "
                  "and still verifies"])

    # J5: Jean's answer to Sarah (Sent copy, original wording)
    j5_date = dt.datetime(2017, 3, 21, 9, 47, 30, tzinfo=CET)
    j5_id = "<7e3b5a90-c2d4-4f18-b6a7-91e0d3c5f248@elan-citoyen.example>"
    j5_subject = "Re: Question about the donors list"
    j5_core = header_block([
        ("From", f"Jean Mercier <{JM_ADDR}>"),
        ("To", f"Sarah Watson <{SW_ADDR}>"),
        ("Subject", j5_subject),
        ("Message-ID", j5_id),
        ("In-Reply-To", j3_id),
        ("References", j3_id),
        ("Date", rfc2822_date(j5_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8; format=flowed"),
        ("Content-Transfer-Encoding", "7bit"),
    ]) + (b"\nDear Ms Watson,\n\nWe declined the three cash donations you mention; the funds were\n"
          b"returned to the donors within the legal deadline. The bank records\n"
          b"will be part of the published accounts.\n\nRegards,\nJean Mercier\nTreasurer\n")
    j5 = lf(j5_core)
    p = maildir_put(".Sent/cur", int(j5_date.timestamp()), 90312, 21877, 1, j5, "S")
    j5_loc = loc_escape(p)
    record(dump, path=p, container="maildir", raw=j5, message_id=j5_id, subject=j5_subject, from_=JM_ADDR,
           to=[SW_ADDR], date=j5_date, in_reply_to=j3_id,
           maildir={"folder": ".Sent", "subdir": "cur", "flags": "S"},
           notes=["Sent copy with the original wording ('declined'); the copy in Sarah Watson/Inbox.mbox "
                  "was altered after DKIM signing ('accepted')"])

    # Maildir/tmp: an interrupted delivery (truncated mid-message)
    tmp_full = lf(header_block(transport([
        ELAN_MX.format(qid="3vm0Hq7TgLz9sPq", rcpt=JM_ADDR,
                       date=received_date(dt.datetime(2017, 3, 22, 23, 59, 58, tzinfo=CET))),
    ], "noreply@elan-citoyen.example", JM_ADDR) + [
        ("From", "Intranet <noreply@elan-citoyen.example>"),
        ("To", JM_ADDR),
        ("Subject", "[intranet] Sauvegarde nocturne OK"),
        ("Date", rfc2822_date(dt.datetime(2017, 3, 22, 23, 59, 55, tzinfo=CET))),
        ("Message-ID", "<20170322225955.backup@intranet.elan-citoyen.example>"),
    ]) + b"\nSauvegarde terminee : 14 212 fichiers, 3,2 Go.\nDuree : 00:41:07\n")
    tmp_cut = tmp_full[:len(tmp_full) - 40]
    p = dump.put(J + "tmp/1490223598.M1P20999Q1.mail", tmp_cut)
    record(dump, path=p, container="maildir", raw=tmp_cut,
           message_id="<20170322225955.backup@intranet.elan-citoyen.example>",
           subject="[intranet] Sauvegarde nocturne OK", from_="noreply@elan-citoyen.example", to=[JM_ADDR],
           date=dt.datetime(2017, 3, 22, 23, 59, 55, tzinfo=CET),
           maildir={"folder": "", "subdir": "tmp", "flags": None},
           notes=["in Maildir/tmp: interrupted delivery, truncated (no trailing newline, body cut)"])
    truth["malformed"].append({"locator": loc_escape(p), "problems": ["maildir-tmp-partial-delivery",
                                                                        "truncated"]})

    # Maildir bookkeeping files
    uidlist = (b"3 V1488362400 N6 G3b1f0c2e8d3a6b5c7e90000000000000\n"
               b"1 :" + maildir_name(int(j1_date.timestamp()) + 2, 412907, 20388, 1, j1, None).encode() + b"\n"
               b"2 :" + maildir_name(int(j2_date.timestamp()) + 7, 8803, 20401, 2, j2, None).encode() + b"\n")
    for rel, data, kind, note in [
        (J + "dovecot-uidlist", uidlist, "maildir-meta", "Dovecot UID list (not mail)"),
        (J + "subscriptions", b"Sent\n", "maildir-meta", "IMAP subscriptions (not mail)"),
        (J + ".Sent/maildirfolder", b"", "empty", "Maildir++ folder marker (empty file)"),
    ]:
        dump.put(rel, data)
        dump.non_mail.append({"path": rel, "locator": loc_escape(rel), "kind": kind, "size": len(data),
                              "sha256": sha256(data), "note": note})
    # empty Maildir dirs: created on disk, but git does not keep empty directories
    dump.empty_dirs += [J + ".Sent/new", J + ".Sent/tmp"]

    # ================================================================ Sarah Watson (mboxrd, LF)
    mbox_msgs: list[tuple[str, dt.datetime, bytes, dict]] = []

    # S1: delivered copy of H11 (Hélène -> Sarah), DKIM relaxed/relaxed by elan
    s1_sig = dkim_sign(h11_core, "elan", (b"relaxed", b"relaxed"), ts=int(h11_date.timestamp()) + 1)
    s1 = lf(header_block([
        ("X-GM-THRID", "1560812345678901234"),
        ("X-Gmail-Labels", "Inbox,Important,Opened,Category Personal"),
        ("Delivered-To", SW_ADDR),
        ("Received", "by 10.28.51.7 with SMTP id z7csp1184721wmz;\n"
                     f"\t{rfc2822_date((h11_date + dt.timedelta(seconds=4)).astimezone(GMT))}"),
        ("Return-Path", f"<{HL_ADDR}>"),
        ("Received", "from smtp.elan-citoyen.example (smtp.elan-citoyen.example. [192.0.2.26])\n"
                     "\tby mx.dailyledger.example with ESMTPS id k3si912874wrd.2017.03.02.09.30.08\n"
                     f"\tfor <{SW_ADDR}>;\n\t{rfc2822_date((h11_date + dt.timedelta(seconds=3)).astimezone(GMT))}"),
    ]) + s1_sig + h11_core)
    mbox_msgs.append((HL_ADDR, h11_date, s1, dict(
        message_id=h11_id, subject=h11_subject, from_=HL_ADDR, to=[SW_ADDR], date=h11_date, in_reply_to=h2_id,
        dkim_="pass", dkim_detail={"d": "elan-citoyen.example", "s": "s2017", "bits": 2048,
                                   "c": "relaxed/relaxed"},
        notes=["recipient's copy of Hélène Lefèvre/Éléments envoyés/0001.eml (canonical duplicate)"])))

    # S2: editor -> Sarah, DKIM signed; body has 'From ' and '>From ' lines => mboxrd quoting
    s2_date = dt.datetime(2017, 3, 22, 19, 2, 11, tzinfo=GMT)
    s2_id = "<CAH3x9Lm2Zq+TbW0u8vR5pK1=eYs@mail.dailyledger.example>"
    s2_subject = "Re: Campaign finance story — draft"
    s2_core = header_block([
        ("MIME-Version", "1.0"),
        ("From", "Tom Hughes <t.hughes@dailyledger.example>"),
        ("Date", rfc2822_date(s2_date)),
        ("Message-ID", s2_id),
        ("In-Reply-To", "<CAF7d2KqY1tQ5mR8e0Wb3nH6=pLz@mail.dailyledger.example>"),
        ("References", "<CAF7d2KqY1tQ5mR8e0Wb3nH6=pLz@mail.dailyledger.example>"),
        ("Subject", q_word(s2_subject, "UTF-8")),
        ("To", f"Sarah Watson <{SW_ADDR}>"),
        ("Content-Type", "text/plain; charset=UTF-8"),
    ]) + (b"\nSarah,\n\nGood draft. Two things before legal sees it:\n\n"
          b"From the documents we have seen, the bank statement mentions four cash\n"
          b"deposits, not three. Check with your source.\n\n"
          b"Also your quote below needs a second source:\n\n"
          b">From the leaked spreadsheet, donors were asked to split payments.\n\n"
          b"Tom\n")
    s2_sig = dkim_sign(s2_core, "ledger", (b"relaxed", b"relaxed"), ts=int(s2_date.timestamp()))
    s2 = lf(header_block([
        ("Delivered-To", SW_ADDR),
        ("Return-Path", "<t.hughes@dailyledger.example>"),
        ("Received", "from mail-out2.dailyledger.example (mail-out2.dailyledger.example [203.0.113.42])\n"
                     "\tby mx.dailyledger.example with ESMTPS id p9si118273wrc.2017.03.22.12.02.12\n"
                     f"\tfor <{SW_ADDR}>;\n\t{rfc2822_date(s2_date + dt.timedelta(seconds=1))}"),
    ]) + s2_sig + s2_core)
    verify_expect(s2, "pass")
    mbox_msgs.append(("t.hughes@dailyledger.example", s2_date, s2, dict(
        message_id=s2_id, subject=s2_subject, from_="t.hughes@dailyledger.example", to=[SW_ADDR],
        date=s2_date, in_reply_to="<CAF7d2KqY1tQ5mR8e0Wb3nH6=pLz@mail.dailyledger.example>",
        dkim_="pass", dkim_detail={"d": "dailyledger.example", "s": "mail", "bits": 1024, "c": "relaxed/relaxed",
                                   "verifies_only_after_mboxrd_unquoting": True},
        notes=["body lines 'From the…' and '>From the…' stored as '>From the…' and '>>From the…' (mboxrd)",
               "DKIM verifies only after un-quoting; the raw stored bytes give a body hash mismatch",
               "parent message (In-Reply-To) is not in the dump"])))

    # S3: press release with a Content-Length: header
    s3_date = dt.datetime(2017, 4, 10, 8, 0, 0, tzinfo=CEST)
    s3_id = "<communique-2017-04-10@presse.elan-citoyen.example>"
    s3_subject = "Communiqué : Élan Citoyen publie ses comptes de campagne"
    s3_body = ("Paris, le 10 avril 2017 — Élan Citoyen publie aujourd'hui l'intégralité de ses comptes\n"
               "de campagne arrêtés au 31 mars 2017.\n\n"
               "Press release (English version): Élan Citoyen today publishes its full campaign\n"
               "accounts as of 31 March 2017. All cash donations above the legal limit were returned.\n\n"
               "Contact presse : presse@elan-citoyen.example\n").encode()
    s3 = lf(header_block([
        ("Delivered-To", SW_ADDR),
        ("Return-Path", "<presse@elan-citoyen.example>"),
        ("Received", "from smtp.elan-citoyen.example (smtp.elan-citoyen.example. [192.0.2.26])\n"
                     "\tby mx.dailyledger.example with ESMTPS id a2si448120wrb.2017.04.10.06.00.03\n"
                     f"\tfor <{SW_ADDR}>;\n\t{rfc2822_date((s3_date + dt.timedelta(seconds=3)).astimezone(BST))}"),
        ("From", f"{q_word('Élan Citoyen – Presse', 'UTF-8')} <presse@elan-citoyen.example>"),
        ("To", "undisclosed-recipients:;"),
        ("Subject", q_word(s3_subject, "UTF-8")),
        ("Date", rfc2822_date(s3_date)),
        ("Message-ID", s3_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
        ("Content-Length", str(len(s3_body))),
    ]) + b"\n" + s3_body)
    mbox_msgs.append(("presse@elan-citoyen.example", s3_date, s3, dict(
        message_id=s3_id, subject=s3_subject, from_="presse@elan-citoyen.example", to=[], date=s3_date,
        content_length=len(s3_body),
        notes=["has a Content-Length: header (value = body bytes as stored)",
               "To: undisclosed-recipients:; (press list in Bcc)"])))

    # S4: Jean's answer as received by Sarah, altered after signing (declined -> accepted)
    s4_sig = dkim_sign(j5_core, "elan", (b"relaxed", b"relaxed"), ts=int(j5_date.timestamp()) + 1)
    s4_core = j5_core.replace(b"We declined the three", b"We accepted the three")
    assert s4_core != j5_core
    s4 = lf(header_block([
        ("Delivered-To", SW_ADDR),
        ("Return-Path", f"<{JM_ADDR}>"),
        ("Received", "from smtp.elan-citoyen.example (smtp.elan-citoyen.example. [192.0.2.26])\n"
                     "\tby mx.dailyledger.example with ESMTPS id c8si330917wrf.2017.03.21.01.47.33\n"
                     f"\tfor <{SW_ADDR}>;\n\t{rfc2822_date((j5_date + dt.timedelta(seconds=3)).astimezone(GMT))}"),
    ]) + s4_sig + s4_core)
    verify_expect(s4, "body-hash-mismatch")
    mbox_msgs.append((JM_ADDR, j5_date, s4, dict(
        message_id=j5_id, subject=j5_subject, from_=JM_ADDR, to=[SW_ADDR], date=j5_date, in_reply_to=j3_id,
        dkim_="body-hash-mismatch", dkim_detail={"d": "elan-citoyen.example", "s": "s2017", "bits": 2048,
                                                 "c": "relaxed/relaxed"},
        altered_copy_of=j5_loc,
        notes=["altered after DKIM signing: 'declined' changed to 'accepted' in the body",
               "headers still verify; the body hash does not",
               "same Message-ID as jmercier/Maildir/.Sent copy, different body: NOT a canonical duplicate"])))

    mbox = b""
    mbox_path = "Sarah Watson/Inbox.mbox"
    mbox_msgs.sort(key=lambda m: m[1])  # delivery order
    for idx, (env, when, msg, info) in enumerate(mbox_msgs):
        offset = len(mbox)
        quoted = re.sub(rb"(?m)^(>*From )", rb">\1", msg)
        if not quoted.endswith(b"\n"):
            quoted += b"\n"
        mbox += f"From {env} {asctime_utc(when)}\n".encode() + quoted + b"\n"
        rec = record(dump, path=mbox_path, container="mbox", raw=None,
                     locator=f"{loc_escape(mbox_path)}!mbox:{offset}", mbox_index=idx, mbox_offset=offset,
                     message_sha256_unquoted=sha256(msg), line_endings="lf", **info)
        if info["message_id"] == h11_id:
            truth["duplicate_pairs"]["canonical"].append([loc_escape(H + "Éléments envoyés/0001.eml"),
                                                          rec["locator"]])
    dump.put(mbox_path, mbox)
    assert mbox.count(b"\n>>From ") == 1 and mbox.count(b"\n>From ") == 1

    # ================================================================ Thomas Girard.zip (+ nested zip)
    t1_date = dt.datetime(2017, 3, 17, 9, 30, 0, tzinfo=CET)
    t1_id = "<e2f8a1c6-9b4d-4c37-8e50-6a1d3f7b9c02@elan-citoyen.example>"
    t1_subject = "Planning réseaux sociaux – semaine 12"
    t1 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vjB6x2NqKz9sLr", rcpt=TG_ADDR,
                       date=received_date(t1_date + dt.timedelta(seconds=2))),
    ], HL_ADDR, TG_ADDR) + [
        ("From", f"{HL_B} <{HL_ADDR}>"),
        ("To", f"Thomas Girard <{TG_ADDR}>"),
        ("Subject", q_word(t1_subject, "UTF-8")),
        ("Message-ID", t1_id),
        ("Date", rfc2822_date(t1_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ]) + b"\n" + ("Thomas,\n\nLundi : vidéo Lyon. Mercredi : chiffres de participation (on dit 6 000).\n"
                  "Vendredi : teaser Bordeaux. Rien sur les finances avant le 10 avril.\n\nH.\n").encode())
    t2_date = dt.datetime(2017, 3, 19, 20, 14, 0, tzinfo=GMT)
    t2_id = "<CAF7d2KqR4nV8bX2m6Ty0cJ9=wEa@mail.dailyledger.example>"
    t2_subject = "Rally attendance figures"
    t2 = crlf(header_block(transport([
        ELAN_MX.format(qid="3vk0Ff6SmYz9sM1", rcpt=TG_ADDR, date=received_date(
            (t2_date + dt.timedelta(seconds=3)).astimezone(CET))),
    ], SW_ADDR, TG_ADDR) + [
        ("MIME-Version", "1.0"),
        ("From", f"Sarah Watson <{SW_ADDR}>"),
        ("Date", rfc2822_date(t2_date)),
        ("Message-ID", t2_id),
        ("Subject", t2_subject),
        ("To", TG_ADDR),
        ("Content-Type", "text/plain; charset=UTF-8"),
    ]) + b"\n" + (b"Hi Thomas,\n\nYour team announced 6,000 people in Lyon; the venue capacity is 4,200.\n"
                  b"Would you like to comment?\n\nSarah\n"))
    t3_date = dt.datetime(2017, 3, 17, 10, 2, 0, tzinfo=CET)
    t3_id = "<0b7c2e94-5a1f-4d68-9c3e-8f2a6b1d7e05@elan-citoyen.example>"
    t3_subject = "Re: Planning réseaux sociaux – semaine 12"
    t3 = crlf(header_block([
        ("From", f"Thomas Girard <{TG_ADDR}>"),
        ("To", f"{HL_B} <{HL_ADDR}>"),
        ("Subject", q_word(t3_subject, "UTF-8")),
        ("Message-ID", t3_id),
        ("In-Reply-To", t1_id),
        ("References", t1_id),
        ("Date", rfc2822_date(t3_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ]) + b"\n" + "Reçu. 6 000 pour Lyon, c'est noté.\n\nThomas\n".encode())
    n1_date = dt.datetime(2016, 11, 28, 9, 0, 0, tzinfo=CET)
    n1_id = "<merci-primaire-2016@elan-citoyen.example>"
    n1_subject = "Merci ! Résultats de la primaire"
    n1 = crlf(header_block(transport([
        ELAN_MX.format(qid="3tS9Lm1VbQz9sAa", rcpt=TG_ADDR,
                       date=received_date(n1_date + dt.timedelta(seconds=4))),
    ], "bounce@listes.elan-citoyen.example", TG_ADDR) + [
        ("From", f"{q_word('Comité de soutien', 'ISO-8859-1')} <comite@elan-citoyen.example>"),
        ("To", TG_ADDR),
        ("Subject", b_word(n1_subject, "UTF-8")),
        ("Message-ID", n1_id),
        ("Date", rfc2822_date(n1_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ]) + b"\n" + "Merci à tous les bénévoles : 58,3 % au second tour de la primaire.\n".encode())
    nested_name = "Thomas Girard/archives-2016.zip"
    nested = zip_bytes([("primaire-2016/0001.eml", n1)], date_time=(2016, 12, 1, 18, 30, 0))
    zip_members = [
        ("Thomas Girard/Boîte de réception/0001.eml", t1),
        ("Thomas Girard/Boîte de réception/0002.eml", t2),
        ("Thomas Girard/Éléments envoyés/0001.eml", t3),
        (nested_name, nested),
    ]
    zpath = "Thomas Girard.zip"
    dump.put(zpath, zip_bytes(zip_members))
    for member, data, mid, subj, frm, to, when, irt, note in [
        (zip_members[0][0], t1, t1_id, t1_subject, HL_ADDR, [TG_ADDR], t1_date, None, "zip member name non-ASCII"),
        (zip_members[1][0], t2, t2_id, t2_subject, SW_ADDR, [TG_ADDR], t2_date, None, "zip member name non-ASCII"),
        (zip_members[2][0], t3, t3_id, t3_subject, TG_ADDR, [HL_ADDR], t3_date, t1_id, "Sent copy inside zip"),
    ]:
        record(dump, path=zpath, container="zip", raw=data, members=[member],
               locator=f"{loc_escape(zpath)}!zip:{loc_escape(member)}", message_id=mid, subject=subj,
               from_=frm, to=to, date=when, in_reply_to=irt, notes=[note])
    record(dump, path=zpath, container="zip", raw=n1, members=[nested_name, "primaire-2016/0001.eml"],
           locator=f"{loc_escape(zpath)}!zip:{loc_escape(nested_name)}!zip:primaire-2016/0001.eml",
           message_id=n1_id, subject=n1_subject, from_="comite@elan-citoyen.example", to=[TG_ADDR],
           date=n1_date, notes=["zip inside a zip"])
    # ================================================================ jmercier/sauvegarde-2016.tar.gz (tar.gz > zip > eml)
    b1_date = dt.datetime(2016, 10, 4, 14, 26, 0, tzinfo=CEST)
    b1_id = "<20161004122600.5A3C1E0F11@smtp.elan-citoyen.example>"
    b1_subject = "Ouverture du compte de l'association de financement"
    b1 = crlf(header_block(transport([
        ELAN_MX.format(qid="3snQ2x4TrVz9s8k", rcpt=JM_ADDR,
                       date=received_date(b1_date + dt.timedelta(seconds=2))),
    ], "ouverture@banque-solidaire.example", JM_ADDR) + [
        ("From", "Banque Solidaire <ouverture@banque-solidaire.example>"),
        ("To", f"Jean Mercier <{JM_ADDR}>"),
        ("Subject", q_word(b1_subject, "ISO-8859-1")),
        ("Message-ID", b1_id),
        ("Date", rfc2822_date(b1_date)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=iso-8859-1"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]) + b"\n" + qp_body("Monsieur,\n\nLe compte de l'association de financement Élan Citoyen est ouvert.\n"
                         "Mandataire financier : M. Jean Mercier.\n\nBanque Solidaire, agence Paris-Bastille\n",
                         "iso-8859-1"))
    inner_zip_name = "sauvegarde-2016/boite-2016.zip"
    inner_zip = zip_bytes([("INBOX/0001.eml", b1)], date_time=(2016, 12, 31, 23, 58, 0))
    tar = tar_bytes([(inner_zip_name, inner_zip)], mtime=int(dt.datetime(2017, 1, 2, 9, 0, tzinfo=CET).timestamp()))
    tgz_path = "jmercier/sauvegarde-2016.tar.gz"
    dump.put(tgz_path, gzip_stream(tar, "sauvegarde-2016.tar"))
    tgz_chain = ["gz:sauvegarde-2016.tar", f"tar:{inner_zip_name}", "zip:INBOX/0001.eml"]
    record(dump, path=tgz_path, container="tar.gz", raw=b1, members=["sauvegarde-2016.tar", inner_zip_name,
                                                                     "INBOX/0001.eml"],
           locator=loc_escape(tgz_path) + "".join("!" + seg for seg in tgz_chain),
           message_id=b1_id, subject=b1_subject, from_="ouverture@banque-solidaire.example", to=[JM_ADDR],
           date=b1_date, notes=["nested: .tar.gz (gzip stream) > tar member .zip > .eml",
                                "quoted-printable ISO-8859-1 body"])

    truth["containers"] = [
        {"path": zpath, "kind": "zip", "sha256": sha256(dump.files[zpath]),
         "members": [{"name": n, "size": len(d), "sha256": sha256(d)} for n, d in zip_members]},
        {"path": zpath, "kind": "zip", "locator": f"{loc_escape(zpath)}!zip:{loc_escape(nested_name)}",
         "sha256": sha256(nested), "members": [{"name": "primaire-2016/0001.eml", "size": len(n1),
                                                "sha256": sha256(n1)}]},
        {"path": tgz_path, "kind": "gzip", "sha256": sha256(dump.files[tgz_path]),
         "members": [{"name": "sauvegarde-2016.tar", "size": len(tar), "sha256": sha256(tar)}]},
        {"path": tgz_path, "kind": "tar", "locator": f"{loc_escape(tgz_path)}!gz:sauvegarde-2016.tar",
         "sha256": sha256(tar), "members": [{"name": inner_zip_name, "size": len(inner_zip),
                                             "sha256": sha256(inner_zip)}]},
        {"path": tgz_path, "kind": "zip",
         "locator": f"{loc_escape(tgz_path)}!gz:sauvegarde-2016.tar!tar:{inner_zip_name}",
         "sha256": sha256(inner_zip), "members": [{"name": "INBOX/0001.eml", "size": len(b1),
                                                   "sha256": sha256(b1)}]},
    ]
    return truth


def quote2231(s: str) -> str:
    out = []
    for byte in s.encode("utf-8"):
        c = chr(byte)
        out.append(c if c.isascii() and (c.isalnum() or c in "-._~") else f"%{byte:02X}")
    return "".join(out)


README = """\
# leaktriage sample dump

Generated by `python3 tools/make_samples.py` — do not edit by hand; change the script
and regenerate. `tests/test_samples_generator.py` checks that the committed files are
exactly what the script produces. Everything here is fictional: people, the campaign
"Élan Citoyen", the newspaper "The Daily Ledger", all `*.example` domains (RFC 2606) and
IP addresses (RFC 5737 documentation ranges). The DKIM keys are public test keys
(`tools/sample_keys/`).

## Files

- `dump/` — the dump to scan (point `leaktriage` at `samples/dump`).
- `dkim-keys.json` — DKIM key store, kept *beside* the dump: `selector._domainkey.domain` →
  TXT value (`v=DKIM1; k=rsa; p=...`), for offline verification.
- `truth.json` — ground truth for tests (every message, attachment hashes, DKIM verdicts,
  duplicates, malformed items, non-mail files). Hashes are computed from the bytes written.

## Story

Spring 2017. Hélène Lefèvre (communication director of the French campaign *Élan
Citoyen*), Jean Mercier (its treasurer, `jmercier`), Thomas Girard (digital team, as a zip
export) and Sarah Watson (Paris correspondent of the English-language *Daily Ledger*)
exchange mail about budgets, a printer's invoice, rally attendance and cash donations.

## Layout and what each oddity demonstrates

| path (under `dump/`) | demonstrates |
|---|---|
| `Hélène Lefèvre/INBOX/0001.eml` | Inbox copy (Return-Path, Received, Delivered-To, DKIM 2048 relaxed/relaxed) of a mail whose Sent copy is in `jmercier/Maildir/.Sent/cur/` → canonical duplicate; DOCX attachment (core.xml/app.xml metadata) named in RFC 2231 (`filename*=UTF-8''…`); Q ISO-8859-1 display name, Q UTF-8 subject |
| `Hélène Lefèvre/INBOX/0002.eml` | English press request, DKIM 1024 simple/simple |
| `Hélène Lefèvre/INBOX/0003.eml` and `Archives/Réunions/0003.eml` | byte-identical duplicate; subject split over two B UTF-8 encoded-words; PDF (Info dict) whose filename is RFC 2047 encoded; DKIM simple/simple |
| `Hélène Lefèvre/INBOX/0004.eml` | forward: `message/rfc822` part 1.2 containing its own PDF invoice (1.2.1.2) |
| `Hélène Lefèvre/INBOX/0005.eml` | windows-1252 8bit body (bytes 0x80–0x9F); B ISO-8859-1 display name; subject mixing ISO-8859-1 and UTF-8 words; PNG attachment |
| `Hélène Lefèvre/INBOX/0006.eml` | LF-only line endings among CRLF files; raw 8-bit UTF-8 in Subject/To headers |
| `Hélène Lefèvre/INBOX/0007.eml` | malformed: no closing boundary + base64 with invalid characters and bad padding |
| `Hélène Lefèvre/INBOX/0008.eml` | quoted-printable body; lying extension: `photo.jpg` (`image/jpeg`) is a PDF |
| `Hélène Lefèvre/INBOX/0009.eml` | data in the MIME epilogue (a leaked draft line) |
| `Hélène Lefèvre/INBOX/0010.eml` | uuencoded `benevoles.txt` inside a text/plain body (`…#1!uu:1`) |
| `Hélène Lefèvre/INBOX/0011.eml` | not mail: binary junk with an `.eml` name |
| `Hélène Lefèvre/Éléments envoyés/` | Sent copies (no transport headers); 0001 is a canonical duplicate of a message in Sarah's mbox |
| `Hélène Lefèvre/notes.txt`, `Documents/…pdf`, `Documents/Sans titre.txt`, `.DS_Store` | non-mail files: text, standalone PDF, empty file, Finder-like binary |
| `jmercier/Maildir/` | Maildir with `cur/` (flags `:2,RS`, `:2,FS`), `new/` (no info suffix), `tmp/` (a truncated, interrupted delivery) and a Maildir++ `.Sent` folder; files are LF; `dovecot-uidlist`, `subscriptions`, `.Sent/maildirfolder` are not mail |
| `jmercier/Maildir/new/…` | DKIM with `l=`: a gateway footer appended after signing still verifies |
| `Sarah Watson/Inbox.mbox` | mboxrd, LF, messages in delivery order (`mbox_index` 0–3): 0 = delivered copy of Hélène's Sent reply (canonical duplicate); 1 = Jean's answer altered after DKIM signing ("declined" → "accepted": body hash mismatch; the original is his Sent copy in the Maildir); 2 = a `>From ` and a `>>From ` body line, DKIM verifies only after un-quoting; 3 = has a `Content-Length:` header |
| `jmercier/sauvegarde-2016.tar.gz` | nested containers: gzip stream → tar → `boite-2016.zip` → `INBOX/0001.eml` |
| `Thomas Girard.zip` | a custodian's mailbox as a zip; non-ASCII member names (`Boîte de réception/`, UTF-8 flag set); nested `archives-2016.zip` holding one more .eml |

## truth.json

Sorted keys, indent 1, UTF-8. Top level:
- `custodians` — `{name, path, kind: folder|zip}`.
- `messages` — one record per stored message: `path` (dump-relative file), `container`
  (`file`, `maildir`, `mbox`, `zip`, `tar.gz`, `attached` for a message/rfc822 part), `locator`
  (grammar of docs/architecture.md), `custodian`, `message_id`, `subject` (decoded), `from`,
  `to`, `cc`, `date` (ISO-8601 UTC), `in_reply_to`, `attachments` (`filename` decoded,
  `part` MIME path, `declared_type`, `true_type`, `sha256`/`size` of the decoded bytes),
  `dkim` (`pass`, `body-hash-mismatch`, `none`) with `dkim_detail`, `notes`; plus
  `sha256`/`size`/`line_endings` of the stored message bytes where they are a whole file or
  member, `mbox_index`/`mbox_offset`/`message_sha256_unquoted` for mbox messages,
  `members` (archive member chain), `maildir` (`folder`, `subdir`, `flags`), `uuencoded`.
- `duplicate_pairs` — `exact` (same bytes) and `canonical` (same email, transport headers
  and line endings differ) pairs of locators.
- `malformed`, `lying_extension`, `non_mail_files`, `containers`, `empty_dirs`, and
  `files` (size and sha256 of every file in `dump/`).

Notes:
- Maildir file names contain `:` (normal on Unix, impossible on Windows checkouts).
- `jmercier/Maildir/.Sent/new` and `.Sent/tmp` are created empty by the script; git does
  not keep empty directories, so a fresh clone lacks them (scanners must cope).
- Zip, gzip and PNG deflate streams are produced by a small pure-Python encoder in the
  script, so the bytes do not depend on the local zlib build.
- Locators in `truth.json` follow docs/architecture.md (`path!mbox:OFFSET`, `path!zip:member`,
  `path#1.2`, `path#1!uu:1`).
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="samples", help="output directory (default: samples/)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_dir = out / "dump"
    if dump_dir.exists():
        shutil.rmtree(dump_dir)
    store = key_store()
    dump = Dump(dump_dir)
    truth = build(dump, store)
    dump.write()

    custodians = [{"name": "Hélène Lefèvre", "path": "Hélène Lefèvre", "kind": "folder"},
                  {"name": "Jean Mercier", "path": "jmercier", "kind": "folder"},
                  {"name": "Sarah Watson", "path": "Sarah Watson", "kind": "folder"},
                  {"name": "Thomas Girard", "path": "Thomas Girard.zip", "kind": "zip"}]
    truth.update({
        "schema": 1,
        "custodians": custodians,
        "messages": dump.messages,
        "non_mail_files": dump.non_mail,
        "empty_dirs": dump.empty_dirs,
        "files": {rel: {"size": len(d), "sha256": sha256(d)} for rel, d in dump.files.items()},
        "dkim_key_store": "dkim-keys.json",
    })
    (out / "truth.json").write_bytes(
        (json.dumps(truth, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    (out / "dkim-keys.json").write_bytes(
        (json.dumps(store, sort_keys=True, indent=1) + "\n").encode("utf-8"))
    (out / "README.md").write_bytes(README.encode("utf-8"))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024, total
    print(f"wrote {len(dump.files)} dump files, {len(dump.messages)} messages, {total} bytes under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
