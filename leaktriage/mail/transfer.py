"""Content-Transfer-Encoding decoders that run at C speed and report what they repaired.

decode(raw, cte) -> (decoded bytes, decoder name, [(problem code, detail)])
The decoder name says which step won: "identity", "base64", "base64-repaired",
"quoted-printable", "uuencode".
"""
from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

try:  # SIMD base64 (about 4x binascii on line-wrapped input); binascii when it is missing
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - a declared dependency
    _pybase64 = None

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_WS = b" \t\r\n"
_NOT_B64 = bytes(sorted(set(range(256)) - set(_B64_ALPHABET) - {ord("=")}))
_NOT_B64_OR_PAD = bytes(sorted(set(range(256)) - set(_B64_ALPHABET)))

IDENTITY = {None, "", "7bit", "8bit", "binary", "7-bit", "8-bit", "none", "plain", "text"}
UU_NAMES = {"x-uuencode", "uuencode", "x-uue", "uue"}

Problems = List[Tuple[str, dict]]


def decode(raw: bytes, cte: Optional[str]) -> Tuple[bytes, str, Problems]:
    c = (cte or "").strip().lower()
    if c in IDENTITY:
        return raw, "identity", []
    if c == "base64":
        return decode_base64(raw)
    if c == "quoted-printable":
        return decode_qp(raw)
    if c in UU_NAMES:
        data, probs = decode_uu_block(raw)
        return data, "uuencode", probs
    return raw, "identity", [("cte.unknown", {"cte": cte})]


_NOT_B64_PAD_WS = bytes(sorted(set(range(256)) - set(_B64_ALPHABET) - set(b"= \t\r\n")))


def decode_base64(raw: bytes) -> Tuple[bytes, str, Problems]:
    clean = raw.translate(None, _WS)
    # fast path: whole quanta, '=' only as the final one or two characters, nothing outside the
    # alphabet (pybase64 validates that in the same SIMD pass): such input is unambiguous, every
    # decoder gives the same bytes (a hypothesis test checks it against the binascii path)
    if _pybase64 is not None and clean and not len(clean) % 4:
        pad = clean.find(b"=")
        if pad < 0 or (pad >= len(clean) - 2 and clean.endswith(b"=" * (len(clean) - pad))):
            try:
                return _pybase64.b64decode(clean, validate=True), "base64", []
            except (binascii.Error, ValueError):
                pass  # anything odd: the careful path below decides and reports
    return _decode_base64_careful(raw, clean)


def _decode_base64_careful(raw: bytes, clean: bytes) -> Tuple[bytes, str, Problems]:
    problems: Problems = []
    if raw.translate(None, _NOT_B64_PAD_WS) != raw:
        stripped = clean
        clean = stripped.translate(None, _NOT_B64)
        problems.append(("base64.invalid_characters", {"count": len(stripped) - len(clean)}))
        if not clean:
            return b"", "base64", problems
    else:
        if not clean:
            return b"", "base64", problems
        # '=' only at the very end, whole quanta
        pad = raw.find(b"=")
        if pad < 0 or not raw[pad:].strip(b"= \t\r\n"):
            try:
                return binascii.a2b_base64(raw), "base64", problems
            except binascii.Error:
                pass  # a length that is not a multiple of 4: repaired below
    # repair: decode each padded block, drop a dangling 1-char fragment, pad the rest
    out = bytearray()
    blocks = [b for b in re.split(rb"=+", clean)]
    trailing = clean.endswith(b"=")
    data_blocks = [b for b in blocks if b]
    if len(data_blocks) > 1:
        problems.append(("base64.data_after_padding", {"blocks": len(data_blocks)}))
    for i, blk in enumerate(data_blocks):
        rem = len(blk) % 4
        if rem == 1:
            problems.append(("base64.truncated", {"dropped": 1}))
            blk = blk[:-1]
        elif rem:
            is_last = i == len(data_blocks) - 1
            if is_last and not trailing:
                # an unpadded final fragment: dropped, as mime4j does (a truncated body)
                problems.append(("base64.truncated", {"dropped": rem}))
                blk = blk[:-rem]
            else:
                if is_last and len(clean) - len(clean.rstrip(b"=")) != 4 - rem:
                    problems.append(("base64.bad_padding", {"expected": 4 - rem}))
                blk = blk + b"=" * (4 - rem)
        if blk:
            try:
                out += binascii.a2b_base64(blk)
            except binascii.Error:
                problems.append(("base64.bad_padding", {}))
    return bytes(out), "base64-repaired", problems


_QP_BAD = re.compile(rb"=(?![0-9A-Fa-f]{2})(?![ \t]*\r?\n)(?![ \t]*$)")


def decode_qp(raw: bytes) -> Tuple[bytes, str, Problems]:
    problems: Problems = []
    if b"=" in raw:
        bad = len(_QP_BAD.findall(raw))
        if bad:
            problems.append(("qp.invalid_escape", {"count": bad}))
    # RFC 2045: '=' followed by transport padding then a line break is a soft line break
    if b"= " in raw or b"=\t" in raw:
        raw = re.sub(rb"=[ \t]+(?=\r?\n)", b"=", raw)
    # RFC 2045: a hard line break in quoted-printable stands for CRLF, whatever the storage did to it
    if b"\n" in raw and raw.count(b"\n") != raw.count(b"\r\n"):
        raw = _LONE_LF.sub(b"\r\n", raw)
    return binascii.a2b_qp(raw), "quoted-printable", problems


_LONE_LF = re.compile(rb"(?<!\r)\n")


_UU_BEGIN = re.compile(rb"^begin(?:-base64)? +([0-7]{3,4}) +([^\r\n]*)\r?$", re.M)


def decode_uu_lines(lines: List[bytes]) -> Tuple[bytes, int]:
    out = bytearray()
    bad = 0
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line:
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders write extra trailing characters; decode the declared length only
            n = (line[0] - 32) & 63
            try:
                out += binascii.a2b_uu(line[: 1 + (n + 2) // 3 * 4])
            except binascii.Error:
                bad += 1
    return bytes(out), bad


def decode_uu_block(raw: bytes) -> Tuple[bytes, Problems]:
    """Decode a body declared as x-uuencode (with or without begin/end lines)."""
    problems: Problems = []
    m = _UU_BEGIN.search(raw)
    start = raw.find(b"\n", m.start()) + 1 if m else 0
    end_m = re.search(rb"^end\r?$", raw[start:], re.M)
    end = start + end_m.start() if end_m else len(raw)
    if m and not end_m:
        problems.append(("uu.no_end", {}))
    lines = [ln for ln in raw[start:end].split(b"\n") if ln.strip() and ln.strip() != b"`"]
    data, bad = decode_uu_lines(lines)
    if bad:
        problems.append(("uu.invalid", {"lines": bad}))
    return data, problems


MAX_UU_FILES = 1000     # uuencoded files decoded from one text part (uu.too_many beyond)
_UU_END = re.compile(rb"^end[ \t]*\r?$", re.M)


def find_uuencoded(text: bytes):
    """Find uuencoded files inside a text body.

    Yields (offset, length, mode, name, decoded bytes, problems) for each 'begin MODE NAME' ...
    'end' block, where offset/length are the byte range of the whole block in `text`.

    Linear time: a block ends at its 'end' line, looked for only up to the next 'begin' line; a
    block without one ends with its last line that can be uuencoded data (uu.no_end). Each stretch
    of text between two 'begin' lines is read a bounded number of times, so a body of 200,000
    'begin' lines costs no more than reading it (the search it replaces looked for an 'end' line
    from every 'begin' line to the end of the text).
    """
    n = len(text)
    m = _UU_BEGIN.search(text)
    while m is not None:
        start_body = text.find(b"\n", m.start())
        if start_body < 0:
            return
        start_body += 1
        nxt = _UU_BEGIN.search(text, start_body)
        if m.group(0).startswith(b"begin-base64"):
            m = nxt
            continue
        limit = nxt.start() if nxt is not None else n
        problems: Problems = []
        end_m = _UU_END.search(text, start_body, limit)
        if end_m:
            block_end = end_m.end()
            body = text[start_body:end_m.start()]
        else:
            problems.append(("uu.no_end", {}))
            body_end = block_end = _uu_run_end(text, start_body, limit)
            body = text[start_body:body_end]
        lines = [ln for ln in body.split(b"\n") if ln.strip() and ln.strip(b"\r") != b"`"]
        # every line of a real uuencoded block starts with a length char and has ~4/3 ratio
        if lines and all(32 <= ln[0] <= 96 for ln in lines[: min(5, len(lines))]):
            data, bad = decode_uu_lines(lines)
            if bad:
                problems.append(("uu.invalid", {"lines": bad}))
            yield m.start(), block_end - m.start(), m.group(1).decode("ascii"), m.group(2).strip(), data, problems
        m = nxt


def _uu_run_end(text: bytes, pos: int, limit: int) -> int:
    """End of the run of lines from pos (before limit) that can be uuencoded data: empty lines,
    '`' lines and lines whose first byte is a uuencode length character; the first other line (text
    after a block that lost its 'end' line) ends it."""
    end = pos
    while pos < limit:
        nl = text.find(b"\n", pos, limit)
        stop = limit if nl < 0 else nl + 1
        line = text[pos:stop].strip(b" \t\r\n")
        if line and not 32 <= text[pos] <= 96:
            break
        end = pos = stop
    return end


# -- BinHex 4.0 (application/mac-binhex40) ----------------------------------------------------------
#
# '(This file must be converted with BinHex 4.0)', then a stream between two ':' of characters of a
# 64-character alphabet, 6 bits each (line breaks ignored), then run-length decoding (0x90 n: the
# byte before it n times in all; 0x90 0x00: a literal 0x90), then: name length (1 byte), name,
# version (1), type (4), creator (4), Finder flags (2), data fork length (4), resource fork length
# (4), CRC; data fork, CRC; resource fork, CRC (CRC-16/XMODEM, binascii.crc_hqx, big-endian).
# Python 3.11 has no binhex module and no binascii.a2b_hqx / rledecode_hqx any more.

BINHEX_TYPES = frozenset({"application/mac-binhex40", "application/mac-binhex", "application/x-mac-binhex40",
                          "application/binhex", "application/binhex4", "application/x-binhex40"})
HQX_ALPHABET = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
_HQX_TO_B64 = bytes.maketrans(HQX_ALPHABET, _B64_ALPHABET)
_NOT_HQX = bytes(sorted(set(range(256)) - set(HQX_ALPHABET)))
_HQX_MARK = re.compile(rb"\(This file must be converted with BinHex[^)\r\n]{0,40}\)")
_HQX_START = re.compile(rb"^[ \t]*:", re.M)
MAX_HQX = 256 << 20     # bytes of forks decoded from one BinHex file (hqx.too_large beyond)


@dataclass
class BinHex:
    offset: int                   # the opening ':' in the text
    length: int                   # to the closing ':' included (or the end of the text)
    name: bytes = b""
    type: bytes = b""
    creator: bytes = b""
    flags: int = 0
    data: Optional[bytes] = None  # None: not decoded (damaged header, too large)
    rsrc: Optional[bytes] = None
    # (code, fork or None, detail): hqx.invalid, hqx.crc_mismatch, hqx.too_large
    problems: List[Tuple[str, Optional[str], dict]] = field(default_factory=list)


def find_binhex(text: bytes, declared: bool = False) -> Optional[BinHex]:
    """The BinHex 4.0 file in a text body: after its '(This file must be converted with BinHex'
    line, or, when the part is declared BinHex (`declared`), from the first line starting with ':'.
    None when there is none. Never raises; bounded: the forks are decoded only when their declared
    lengths add up to at most MAX_HQX, and run-length decoding stops there."""
    m = _HQX_MARK.search(text)
    if m is None and not declared:
        return None
    s = _HQX_START.search(text, m.end() if m else 0)
    if s is None:
        return None
    start = s.end() - 1
    end = text.find(b":", start + 1)
    out = BinHex(start, (end + 1 if end >= 0 else len(text)) - start)
    if end < 0:
        out.problems.append(("hqx.invalid", None, {"reason": "no closing ':'"}))
        end = len(text)
    chars = text[start + 1:end].translate(None, b" \t\r\n")
    bad = len(chars.translate(None, HQX_ALPHABET))
    if bad:
        out.problems.append(("hqx.invalid", None, {"reason": "characters outside the BinHex alphabet were skipped",
                                                    "count": bad}))
        chars = chars.translate(None, _NOT_HQX)
    if len(chars) % 4 == 1:
        chars = chars[:-1]          # 6 bits: not a byte
    raw = binascii.a2b_base64(chars.translate(_HQX_TO_B64) + b"=" * (-len(chars) % 4))
    head = _rle_decode(raw, 128)
    n = head[0] if head else 0
    if not 1 <= n <= 63 or len(head) < n + 22:
        out.problems.append(("hqx.invalid", None, {"reason": "no valid header (name length %d, %d bytes)"
                                                   % (n, len(head))}))
        return out
    hdr = head[:n + 20]
    out.name, out.type, out.creator = hdr[1:1 + n], hdr[n + 2:n + 6], hdr[n + 6:n + 10]
    out.flags = int.from_bytes(hdr[n + 10:n + 12], "big")
    dlen = int.from_bytes(hdr[n + 12:n + 16], "big")
    rlen = int.from_bytes(hdr[n + 16:n + 20], "big")
    _crc(out, None, hdr, head[n + 20:n + 22])
    if dlen + rlen > MAX_HQX:
        out.problems.append(("hqx.too_large", None, {"data_length": dlen, "rsrc_length": rlen, "max": MAX_HQX}))
        return out
    body = _rle_decode(raw, n + 22 + dlen + 2 + rlen + 2)
    pos = n + 22
    for fork, flen in (("data", dlen), ("rsrc", rlen)):
        got = body[pos:pos + flen]
        setattr(out, fork, got)
        if len(got) < flen:
            out.problems.append(("hqx.invalid", fork, {"reason": "the fork ends before its declared length",
                                                       "declared": flen, "decoded": len(got)}))
        elif not _crc(out, fork, got, body[pos + flen:pos + flen + 2]):
            pass
        pos += flen + 2
    return out


def _crc(out: BinHex, fork: Optional[str], data: bytes, stored: bytes) -> bool:
    """Check a CRC; a missing or wrong one is a problem."""
    if len(stored) < 2:
        out.problems.append(("hqx.invalid", fork, {"reason": "the CRC is missing"}))
        return False
    want = int.from_bytes(stored, "big")
    got = binascii.crc_hqx(data, 0)
    if want != got:
        out.problems.append(("hqx.crc_mismatch", fork, {"part": fork or "header", "stored": "%04x" % want,
                                                          "computed": "%04x" % got}))
        return False
    return True


def _rle_decode(raw: bytes, cap: int) -> bytes:
    """BinHex run-length decoding of raw, stopping at cap output bytes."""
    if b"\x90" not in raw:
        return raw[:cap]
    out = bytearray()
    pos, n = 0, len(raw)
    while pos < n and len(out) < cap:
        i = raw.find(b"\x90", pos)
        if i < 0:
            out += raw[pos:]
            break
        out += raw[pos:i]
        if i + 1 >= n:
            break                       # a marker with no count: dropped
        count = raw[i + 1]
        if count == 0:
            out.append(0x90)
        elif out and count > 1:
            out += out[-1:] * min(count - 1, cap - len(out))
        pos = i + 2
    return bytes(out[:cap])


# -- streaming (bodies too large to hold twice in memory) ------------------------------------------

STREAM_CHUNK = 4 << 20


class StreamAbort(Exception):
    """The body is not well-formed enough to decode in chunks; decode it in one piece instead."""


def iter_decoded(buf, start: int, end: int, cte: Optional[str], stats: Optional[dict] = None):
    """Yield the transfer-decoded body of buf[start:end] in chunks (identity, base64, QP).

    Raises StreamAbort (before or while yielding) when the body needs the repairing decoder
    (padding inside the data, a length that is not whole quanta, an unknown encoding); the caller
    then decodes the whole body with decode(). Characters outside the base64 alphabet are dropped
    and counted in stats["b64_invalid"], as decode() does.
    """
    c = (cte or "").strip().lower()
    if c not in IDENTITY and c not in ("base64", "quoted-printable"):
        raise StreamAbort(c)
    pos = start
    carry = b""
    while pos < end:
        stop = min(end, pos + STREAM_CHUNK)
        if stop < end and c == "quoted-printable":
            # quoted-printable is decoded line by line (soft breaks, escapes): cut after a line
            # break. Identity and base64 (whose carry keeps whole quanta) are cut anywhere, so a
            # body written as one giant line is still decoded 4 MiB at a time.
            nl = buf.find(b"\n", stop, min(end, stop + (1 << 16)))
            stop = end if nl < 0 else nl + 1
        chunk = bytes(buf[pos:stop])
        from leaktriage.content.pages import release
        release(buf, pos, stop)  # a memory-mapped file does not stay resident
        pos = stop
        if c in IDENTITY:
            yield chunk
        elif c == "base64":
            piece = chunk.translate(None, _WS)
            if piece.translate(None, _NOT_B64_PAD_WS) != piece:
                # characters outside the alphabet are dropped and counted, as the repairing
                # decoder does (a flipped byte in a 300 MB attachment must not force a whole copy)
                kept = piece.translate(None, _NOT_B64)
                if stats is not None:
                    stats["b64_invalid"] = stats.get("b64_invalid", 0) + len(piece) - len(kept)
                piece = kept
            if stats is not None:
                stats["b64_kept"] = stats.get("b64_kept", 0) + len(piece)
            clean = carry + piece
            eq = clean.find(b"=")
            if eq >= 0 and pos < end and end - pos <= (1 << 16) and not bytes(buf[pos:end]).translate(None, _WS):
                pos = end   # only white space follows the padding: this is the last chunk
            if eq >= 0 and (pos < end or clean[eq:].strip(b"=")):
                raise StreamAbort("base64 padding inside the data")
            if pos < end:
                cut = len(clean) - len(clean) % 4
                clean, carry = clean[:cut], clean[cut:]
            elif len(clean) % 4:
                raise StreamAbort("base64 length")
            if clean:
                yield binascii.a2b_base64(clean)
        else:
            if stats is not None and b"=" in chunk:
                stats["qp_invalid"] = stats.get("qp_invalid", 0) + len(_QP_BAD.findall(chunk))
            if b"= " in chunk or b"=\t" in chunk:
                chunk = re.sub(rb"=[ \t]+(?=\r?\n)", b"=", chunk)
            if chunk.count(b"\n") != chunk.count(b"\r\n"):
                chunk = _LONE_LF.sub(b"\r\n", chunk)
            yield binascii.a2b_qp(chunk)
