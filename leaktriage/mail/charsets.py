"""Charset decoding with provenance: what was declared, what was used, how it was chosen.

Decoding order for a body (decode_text):
  1. a byte-order mark                          -> source "bom"
  2. pure ASCII bytes with an ASCII-compatible or no declared charset
                                                -> source "declared" (or "default" when none)
  3. the declared charset, if known and it decodes strictly -> "declared"
  4. UTF-8 if it decodes strictly               -> "detected" (method "utf-8")
  5. chardet's guess if it decodes strictly     -> "detected" (method "chardet", with confidence)
  6. the declared charset (or windows-1252) with replacement -> "fallback", replaced_bytes counted
"""
from __future__ import annotations

import codecs
import functools
from dataclasses import dataclass, field
from typing import List, Optional

# Labels seen in real mail that Python does not know, or knows under a narrower meaning.
ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "unknown": None,
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-8-e": "iso8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "cp1252",  # WHATWG: the web and real mail mean windows-1252 by latin-1
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso_8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "cp-850": "cp850",
    "ibm850": "cp850",
    "x-mac-cyrillic": "mac-cyrillic",
    "koi8-ru": "koi8-u",
    "big5": "big5hkscs",
}

# Python codecs that are text encodings to Python but not charsets: IDNA and Punycode (domain
# names), escape processing (\\uXXXX, \\N{...} in the bytes become other characters), the codec
# that always fails, and charmap without a table. The codecs that are not text encodings at all
# (rot13, base64, hex, zlib, bz2, uu, quopri: codecs.lookup(...)._is_text_encoding is False) are
# refused too. A mail that names one gets charset.refused and is read as if its label were unknown.
REFUSED = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "charmap"})

_cache: dict = {}
_refused: set = set()


def lookup(label: Optional[str]) -> Optional[str]:
    """Python codec name for a charset label, or None if unknown/meaningless or refused (a codec
    that is not a text encoding, see REFUSED): only real text encodings ever decode text."""
    if not label:
        return None
    key = label.strip().strip('"\'').lower()
    if key in _cache:
        return _cache[key]
    if key in ALIASES:
        res = ALIASES[key]
    else:
        try:
            info = codecs.lookup(key)
        except (LookupError, ValueError, TypeError):
            info = None
        res = info.name if info is not None else None
        if info is not None and (not getattr(info, "_is_text_encoding", True) or res in REFUSED):
            if len(_refused) < 4096:
                _refused.add(key)
            res = None
        if res in ("iso8859-1", "latin-1", "latin_1"):
            res = "cp1252"
    if len(_cache) < 4096:      # hostile mail writes a new label in every message
        _cache[key] = res
    return res


def refused(label: Optional[str]) -> bool:
    """True when `label` names a Python codec that lookup() refuses (not a text encoding)."""
    if not label:
        return False
    key = label.strip().strip('"\'').lower()
    if key not in _cache:
        lookup(label)
    return key in _refused


def _ascii_compatible(codec: Optional[str]) -> bool:
    if codec is None:
        return True
    return not (codec.startswith("utf-16") or codec.startswith("utf-32") or codec in ("utf-7",)
                or codec.startswith("iso2022") or codec.startswith("cp037") or codec == "hz")


_REPLACED = [0]


def _count_handler(exc):
    if isinstance(exc, UnicodeDecodeError):
        _REPLACED[0] += exc.end - exc.start
        return ("\ufffd", exc.end)
    raise exc


codecs.register_error("leaktriage-count", _count_handler)


def _decode_counting(data: bytes, codec: str):
    """Decode with replacement, counting the bytes replaced."""
    _REPLACED[0] = 0
    text = data.decode(codec, "leaktriage-count")
    return text, _REPLACED[0]


# windows-1252 leaves 5 bytes undefined; real mail uses them as Latin-1 C1 controls.
_CP1252_TABLE = None


def _cp1252_lenient(data: bytes) -> str:
    global _CP1252_TABLE
    if _CP1252_TABLE is None:
        table = {}
        for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D):
            table[b] = b  # map to the same Latin-1 code point
        _CP1252_TABLE = table
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return "".join(bytes([b]).decode("latin-1") if b in _CP1252_TABLE else bytes([b]).decode("cp1252")
                       for b in data)


_ALL_BYTES = bytes(range(256))


@functools.lru_cache(maxsize=256)
def single_byte(codec: str) -> bool:
    """A charset of one byte per character, ASCII below 0x80 (iso-8859-*, windows-125x, koi8, mac-*)."""
    if codec.replace("_", "-").startswith(("utf", "ascii")) or not _ascii_compatible(codec):
        return False
    try:
        text = _ALL_BYTES.decode(codec, "replace")
    except (LookupError, TypeError, ValueError, UnicodeError):
        return False
    return len(text) == 256 and text[:128] == _ALL_BYTES[:128].decode("ascii")


def decode_strict(data: bytes, codec: str) -> Optional[str]:
    try:
        if codec == "cp1252":
            return _cp1252_lenient(data)
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


@dataclass
class TextResult:
    text: str
    charset: str                 # codec actually used
    source: str                  # bom | declared | default | detected | fallback
    confidence: Optional[float] = None
    method: Optional[str] = None  # utf-8 | chardet (for detected)
    replaced_bytes: int = 0
    problems: List[str] = field(default_factory=list)


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))

CHARDET_SAMPLE = 16 * 1024
MIN_GUESS_OVER_DECLARED = 0.5   # chardet confidence needed to read a text otherwise than its label says


def detect(data: bytes):
    """chardet's guess: (codec, confidence) or (None, 0)."""
    try:
        import chardet
        res = chardet.detect(data[:CHARDET_SAMPLE])
    except Exception:  # chardet must never break a scan
        return None, 0.0
    enc = res.get("encoding")
    conf = res.get("confidence") or 0.0
    codec = lookup(enc) if enc else None
    return codec, round(float(conf), 2)


def decode_text(data: bytes, declared: Optional[str]) -> TextResult:
    problems: List[str] = []
    codec = lookup(declared)
    if declared and codec is None and declared.strip().lower() not in ALIASES:
        problems.append("charset.refused" if refused(declared) else "charset.unknown")
    for bom, name in _BOMS:
        if data.startswith(bom):
            t = decode_strict(data, name)
            if t is not None:
                return TextResult(t, name.replace("-sig", ""), "bom", problems=problems)
    if data.isascii() and _ascii_compatible(codec):
        return TextResult(data.decode("ascii"), codec or "ascii", "declared" if codec else "default",
                          problems=problems)
    if codec and not data.isascii() and single_byte(codec):
        # valid UTF-8 with multi-byte characters under a single-byte label (iso-8859-1, windows-1252, ...):
        # the label is wrong (a mailer that labels whatever it sends latin-1); read as labelled, every
        # accented letter would be two characters of mojibake ("trÃ©sorier") that search never finds.
        # Text really written in a single-byte charset is almost never valid UTF-8: it would need an
        # 'Ã' or 'Â' (0xC2-0xF4) followed by 0x80-0xBF at every non-ASCII place.
        t = decode_strict(data, "utf-8")
        if t is not None:
            return TextResult(t, "utf-8", "detected", confidence=1.0, method="utf-8",
                              problems=problems + ["charset.mislabelled"])
    if codec:
        t = decode_strict(data, codec)
        if t is not None:
            return TextResult(t, codec, "declared", problems=problems)
    # declared charset failed or missing: detect
    if codec:
        problems.append("charset.mislabelled")
    elif not declared:
        problems.append("charset.undeclared_8bit")
    if codec != "utf-8":
        t = decode_strict(data, "utf-8")
        if t is not None:
            return TextResult(t, "utf-8", "detected", confidence=1.0, method="utf-8", problems=problems)
    guess, conf = detect(data)
    # over a declared charset, only a confident guess: a UTF-8 text with one broken byte (a cut
    # base64 line) was read as hp-roman8, cp850 or EBCDIC cp500 at confidence 0.02-0.15, every accented
    # letter wrong; the declared charset with the broken bytes replaced is the better reading
    if guess and guess not in (codec, "utf-8", "ascii") and (codec is None or conf >= MIN_GUESS_OVER_DECLARED):
        t = decode_strict(data, guess)
        if t is not None:
            return TextResult(t, guess, "detected", confidence=conf, method="chardet", problems=problems)
    use = codec or "cp1252"
    if "charset.mislabelled" in problems:
        problems.remove("charset.mislabelled")
    try:
        text, replaced = _decode_counting(data, use)
    except (UnicodeError, LookupError, ValueError):
        # a codec that fails as a whole rather than byte by byte: windows-1252 reads every byte
        use = "cp1252"
        text, replaced = _cp1252_lenient(data), 0
    if use == "cp1252" and replaced:
        text = _cp1252_lenient(data)
        replaced = 0
    problems.append("charset.replaced") if replaced else None
    return TextResult(text, use, "fallback", replaced_bytes=replaced, problems=problems)


def decode_header_bytes(raw: bytes):
    """Decode raw header bytes: UTF-8 when valid (RFC 6532), else windows-1252.

    Returns (text, charset or None when plain ASCII).
    """
    if raw.isascii():
        return raw.decode("ascii"), None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _cp1252_lenient(raw), "cp1252"
