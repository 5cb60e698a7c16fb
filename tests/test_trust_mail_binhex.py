"""Issue #14 (trust), item 8: BinHex 4.0 attachments (application/mac-binhex40) were not decoded:
their content stayed hidden while uuencoded files were decoded. Now each fork of a BinHex file is a
part record (loc!hqx:data, loc!hqx:rsrc) with its digests, type and Macintosh facts, CRC failures
are problems, and what a fork holds (an archive, an email) is opened like any attachment.

The BinHex files are written by the small encoder below (BinHex 4.0: header, CRC-16/XMODEM after
the header and each fork, run-length encoding with 0x90, the 64-character alphabet). The tests fail
on the code before the fix."""
from __future__ import annotations

import binascii
import hashlib
import io
import zipfile

import pytest

from conftest import by_kind
from leaktriage.mail import transfer
from support.trust_mail import BASIC, codes_at, msg, scan_one

ALPHABET = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM written out (poly 0x1021, init 0), not binascii's."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def binhex(name: bytes, data: bytes, rsrc: bytes = b"", type_=b"TEXT", creator=b"ttxt", flags=0x0100,
           bad_crc: str = "") -> bytes:
    def with_crc(block, part):
        crc = crc16_xmodem(block) ^ (1 if bad_crc == part else 0)
        return block + crc.to_bytes(2, "big")
    hdr = bytes([len(name)]) + name + b"\0" + type_ + creator + flags.to_bytes(2, "big") + \
        len(data).to_bytes(4, "big") + len(rsrc).to_bytes(4, "big")
    stream = with_crc(hdr, "header") + with_crc(data, "data") + with_crc(rsrc, "rsrc")
    rle, i = bytearray(), 0
    while i < len(stream):                      # runs of 4 and more: byte, 0x90, count
        j = i
        while j < len(stream) and stream[j] == stream[i] and j - i < 255:
            j += 1
        b = stream[i]
        lit = bytes([b, 0]) if b == 0x90 else bytes([b])
        if j - i >= 4:
            rle += lit + bytes([0x90, j - i])
        else:
            rle += lit * (j - i)
        i = j
    bits, chars = 0, bytearray()
    nbits = 0
    for b in rle:
        bits, nbits = (bits << 8) | b, nbits + 8
        while nbits >= 6:
            nbits -= 6
            chars.append(ALPHABET[(bits >> nbits) & 63])
    if nbits:
        chars.append(ALPHABET[(bits << (6 - nbits)) & 63])
    body = b":" + bytes(chars) + b":"
    lines = [body[k:k + 64] for k in range(0, len(body), 64)]
    return b"(This file must be converted with BinHex 4.0)\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"


DATA = b"Quarterly figures\r\n" + b"\x00" * 300 + b"\x90\x90\x90 end " + bytes(range(256))
RSRC = b"\x00\x00\x01\x00" + b"\xff" * 40 + b"resource"


def message_with(part: bytes, ctype=b"application/mac-binhex40", name=b"figures.txt.hqx") -> bytes:
    return msg(*BASIC, b"Content-Type: multipart/mixed; boundary=zz", body=(
        b"--zz\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n"
        b"--zz\r\nContent-Type: " + ctype + b"; name=\"" + name + b"\"\r\n"
        b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n\r\n" + part + b"--zz--\r\n"))


def test_crc_is_xmodem():
    assert crc16_xmodem(b"123456789") == 0x31C3      # the catalogue check value of CRC-16/XMODEM


def test_binhex_attachment_forks_are_decoded(tmp_path):
    recs = scan_one(tmp_path, "m.eml", message_with(binhex(b"figures.txt", DATA, RSRC)))
    parts = {p["locator"]: p for p in by_kind(recs, "part")}
    d, r = parts["m.eml#1.2!hqx:data"], parts["m.eml#1.2!hqx:rsrc"]
    assert (d["sha256"], d["size"], r["sha256"], r["size"]) == (
        hashlib.sha256(DATA).hexdigest(), len(DATA), hashlib.sha256(RSRC).hexdigest(), len(RSRC))
    assert d["filename"] == "figures.txt" and d["decoder"] == "binhex" and d["attachment"]
    assert d["binhex"] == {"fork": "data", "name": "figures.txt", "type": "TEXT", "creator": "ttxt",
                           "flags": 0x0100, "offset": d["binhex"]["offset"]}
    assert d["path"] == "1.2" and r["binhex"]["fork"] == "rsrc"
    m = by_kind(recs, "message")[0]
    assert m["parts"] == 3                                  # the forks are not MIME entities
    assert m["attachments"] == 3                            # the .hqx part and its two forks
    assert not by_kind(recs, "problem")
    assert by_kind(recs, "summary")[0]["parts"] == 3
    # the new `binhex` field is in the manifest's JSON Schema: every record of this scan validates
    import jsonschema
    from leaktriage.model.records import json_schema
    per_kind = {v["title"]: jsonschema.Draft202012Validator(v) for v in json_schema()["oneOf"]}
    for rec in recs:
        errs = list(per_kind[rec["record"]].iter_errors(rec))
        assert not errs, (rec, errs[0].message)


def test_binhex_in_a_text_body_without_resource_fork(tmp_path):
    data = msg(*BASIC, body=b"Here it is:\r\n\r\n" + binhex(b"notes", b"plain notes\r\n") + b"\r\nBye\r\n")
    recs = scan_one(tmp_path, "t.eml", data)
    parts = {p["locator"]: p for p in by_kind(recs, "part")}
    assert set(parts) == {"t.eml#1", "t.eml#1!hqx:data"}
    assert parts["t.eml#1!hqx:data"]["size"] == len(b"plain notes\r\n")
    assert parts["t.eml#1!hqx:data"]["binhex"]["offset"] == data.index(b":", data.index(b"BinHex")) - \
        data.index(b"Here it is")


@pytest.mark.parametrize("which", ["header", "data", "rsrc"])
def test_crc_failures_are_problems(tmp_path, which):
    recs = scan_one(tmp_path, "c.eml", message_with(binhex(b"figures.txt", DATA, RSRC, bad_crc=which)))
    at = "c.eml#1.2" if which == "header" else "c.eml#1.2!hqx:" + which
    assert codes_at(recs, at) == ["hqx.crc_mismatch"]
    p = [r for r in by_kind(recs, "problem") if r["code"] == "hqx.crc_mismatch"][0]
    assert p["detail"]["part"] == which
    # the bytes are kept as decoded
    d = [p for p in by_kind(recs, "part") if p["locator"] == "c.eml#1.2!hqx:data"][0]
    assert d["sha256"] == hashlib.sha256(DATA).hexdigest()


def test_a_fork_holding_an_archive_is_opened(tmp_path):
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("inner.eml", msg(*BASIC, body=b"inside the zip\r\n"))
    recs = scan_one(tmp_path, "z.eml", message_with(binhex(b"mail.zip", z.getvalue(), type_=b"ZIP ", creator=b"SITx")))
    msgs = [m["locator"] for m in by_kind(recs, "message")]
    assert msgs == ["z.eml", "z.eml#1.2!hqx:data!zip:inner.eml"]


def test_forks_resolve_back_to_their_bytes(tmp_path):
    from leaktriage.manifest.resolver import Resolver
    data = message_with(binhex(b"figures.txt", DATA, RSRC))
    scan_one(tmp_path, "m.eml", data)
    r = Resolver(str(tmp_path / "d"))
    assert r.item("m.eml#1.2!hqx:data") == DATA and r.item("m.eml#1.2!hqx:rsrc") == RSRC
    assert r.item("m.eml#1.2").startswith(b"(This file must be converted")   # the entity itself


def test_hostile_binhex_is_bounded():
    # a data fork declared 4 GiB long, then a stream of runs (each 3 bytes expand to 255): the
    # forks are not decoded, nothing is expanded past the header
    hdr = bytes([1]) + b"x" + b"\0" + b"TEXTttxt" + b"\0\0" + (0xFFFFFFFF).to_bytes(4, "big") + b"\0\0\0\0"
    runs = b"\x00\x90\xff" * 20000
    stream = hdr + binascii.crc_hqx(hdr, 0).to_bytes(2, "big") + runs
    chars = binascii.b2a_base64(stream, newline=False).translate(bytes.maketrans(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", ALPHABET)).rstrip(b"=")
    bomb = transfer.find_binhex(b"(This file must be converted with BinHex 4.0)\n:" + chars + b":\n")
    assert bomb.data is None and [c for c, _f, _d in bomb.problems] == ["hqx.too_large"]
    # no closing ':', a truncated fork
    text = binhex(b"figures.txt", DATA).rstrip(b"\r\n")[:-40]
    cut = transfer.find_binhex(text)
    codes = {(c, f) for c, f, _d in cut.problems}
    assert ("hqx.invalid", None) in codes and ("hqx.invalid", "data") in codes
    text = binhex(b"figures.txt", DATA)
    at = text.index(b":") + 30
    garbled = transfer.find_binhex(text[:at] + b"~" + text[at:])
    assert ("hqx.invalid", None) in {(c, f) for c, f, _d in garbled.problems}
