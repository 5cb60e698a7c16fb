"""RTF to text: a bounded tokenizer of the RTF 1.9 syntax (no recursion, one regex step per token).

Handles \\'hh escapes in the document's code page (\\ansicpg, \\mac, \\pc) or the current font's
(\\fcharset / \\cpg from the font table), including double-byte code pages (bytes are decoded per
run), \\uN with the \\ucN fallback skipped, \\binN data skipped, and the destinations that hold no
text (font/colour/style tables, pictures, object data, \\*\\ destinations, field instructions, ...).
Hidden text (\\v) is kept: what a reader could reveal is text a triage should see.
"""
from __future__ import annotations

import codecs
import re
from typing import Dict, List, Optional

from .model import Context

_TOKEN = re.compile(rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z'])|([{}])|([^\\{}\r\n]+)|[\r\n]+|\\",
                    re.S)

# destinations whose content is not document text
_SKIP_DEST = {
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "objdata", "objclass", "themedata", "colorschememapping",
    "datastore", "latentstyles", "listtable", "listoverridetable", "rsidtbl", "generator", "xmlnstbl", "mmathPr",
    "fldinst", "pntext", "pntxta", "pntxtb", "nonshppict", "sp", "filetbl", "revtbl", "protusertbl", "wgrffmtfilter",
    "bkmkstart", "bkmkend", "xe", "tc", "template", "operator", "author", "title", "subject", "keywords", "comment",
    "doccomm", "company", "category", "creatim", "revtim", "printim", "buptim", "userprops", "docvar", "passwordhash",
    "listpicture", "blipuid", "falt", "panose", "fname", "defchp", "defpap", "pgdsctbl", "pgptbl", "mhtmltag",
    "htmltag", "shpinst_sp", "atnid", "atnauthor", "atndate", "atnparent", "atnicn", "annotation_meta",
}
_SYMBOLS = {
    "par": "\n", "line": "\n", "sect": "\n", "page": "\n", "row": "\n", "tab": "\t", "cell": "\t", "nestcell": "\t",
    "emdash": "\u2014", "endash": "\u2013", "bullet": "\u2022", "lquote": "\u2018", "rquote": "\u2019",
    "ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ", "enspace": " ", "qmspace": " ", "zwj": "\u200d",
    "zwnj": "\u200c", "ltrmark": "\u200e", "rtlmark": "\u200f",
}
_CTRL_SYMBOLS = {b"\\": "\\", b"{": "{", b"}": "}", b"~": "\u00a0", b"_": "\u2011", b"-": "", b"\n": "\n",
                 b"\r": "\n", b"|": "", b":": ""}
# \fcharsetN -> codec
_FCHARSET = {0: None, 1: None, 2: "symbol", 77: "mac-roman", 128: "cp932", 129: "cp949", 130: "cp1361",
             134: "gb18030", 136: "cp950", 161: "cp1253", 162: "cp1254", 163: "cp1258", 177: "cp1255",
             178: "cp1256", 186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250", 255: "cp437"}


def _codec(cp: int) -> Optional[str]:
    if cp in (0, 65001):
        return "utf-8" if cp == 65001 else None
    name = {10000: "mac-roman", 932: "cp932", 936: "gb18030", 949: "cp949", 950: "cp950"}.get(cp, "cp%d" % cp)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


class _State:
    __slots__ = ("skip", "uc", "font", "fonttbl")

    def __init__(self, skip=False, uc=1, font=None, fonttbl=False):
        self.skip = skip
        self.uc = uc
        self.font = font
        self.fonttbl = fonttbl


def read_rtf(data: bytes, ctx: Context) -> None:
    ctx.method = "rtf-tokenizer"
    default = "cp1252"
    fonts: Dict[int, Optional[str]] = {}
    table_font: Optional[int] = None
    state = _State()
    stack: List[_State] = []
    max_depth = ctx.limits.max_depth
    too_deep = 0                     # >0: inside groups past the depth limit
    pending = bytearray()            # \'hh bytes not yet decoded
    units: List[int] = []            # \uN code units not yet decoded (surrogate pairs)
    skip_fallback = 0                # fallback characters still to skip after \uN
    replaced = [0]
    out = ctx.add
    new_dest = False                 # the token just after "{" (or "{\*") names the destination
    starred = False
    pos = 0
    n = len(data)
    tokens = 0
    match = _TOKEN.match

    def codec() -> str:
        c = fonts.get(state.font) if state.font is not None else None
        return c or default

    def flush() -> None:
        if pending:
            c = codec()
            if c == "symbol":
                pending.clear()
                return
            try:
                s = bytes(pending).decode(c)
            except UnicodeDecodeError:
                s = bytes(pending).decode(c, "replace")
                replaced[0] += s.count("\ufffd")
            except LookupError:
                s = bytes(pending).decode("cp1252", "replace")
            pending.clear()
            out(s)
        if units:
            b = b"".join(u.to_bytes(2, "little") for u in units)
            units.clear()
            s = b.decode("utf-16-le", "replace")
            out(s)

    while pos < n:
        tokens += 1
        if not tokens & 0xFFF:
            ctx.check_time()
        m = match(data, pos)
        if m is None:          # cannot happen: the last alternative matches a lone backslash
            pos += 1
            continue
        pos = m.end()
        word, num, hexbyte, sym, brace, text = m.groups()
        if brace is not None:
            flush()
            skip_fallback = 0
            if brace == b"{":
                if too_deep or len(stack) >= max_depth:
                    if not too_deep and not ctx.has("text.depth_limit"):
                        ctx.report("text.depth_limit", "RTF groups nested deeper than %d; the deeper content was "
                                   "skipped" % max_depth)
                    too_deep += 1
                    continue
                stack.append(state)
                state = _State(state.skip, state.uc, state.font, state.fonttbl)
                new_dest = True
                starred = False
            else:
                if too_deep:
                    too_deep -= 1
                    continue
                if state.fonttbl and stack and not stack[-1].fonttbl:
                    table_font = None
                if stack:
                    state = stack.pop()
                new_dest = False
            continue
        if too_deep:
            continue
        if word is not None:
            w = word.decode("ascii")
            first = new_dest
            new_dest = False
            if w == "bin":
                flush()
                pos += max(0, int(num or 0))   # binary data: skipped whatever the state
                continue
            if first and (starred or w in _SKIP_DEST):
                if w == "fonttbl":
                    state.fonttbl = True
                    state.skip = True
                elif not state.fonttbl:
                    state.skip = True
                if starred and w not in ("shptxt",):
                    state.skip = True
            if state.fonttbl:
                if w == "f" and num is not None:
                    table_font = int(num)
                    fonts.setdefault(table_font, None)
                elif w == "fcharset" and num is not None and table_font is not None:
                    fonts[table_font] = _FCHARSET.get(int(num)) or fonts.get(table_font)
                elif w == "cpg" and num is not None and table_font is not None:
                    fonts[table_font] = _codec(int(num)) or fonts.get(table_font)
                continue
            if w == "ansicpg" and num is not None:
                default = _codec(int(num)) or default
                continue
            if w in ("mac", "pc", "pca"):
                default = {"mac": "mac-roman", "pc": "cp437", "pca": "cp850"}[w]
                continue
            if w == "uc" and num is not None:
                state.uc = max(0, min(int(num), 10))
                continue
            if w == "f" and num is not None:
                flush()
                state.font = int(num)
                continue
            if state.skip:
                continue
            if w == "u" and num is not None:
                if pending:
                    flush()
                v = int(num)
                if v < 0:
                    v += 65536
                units.append(v & 0xFFFF)
                skip_fallback = state.uc
                continue
            if skip_fallback:
                skip_fallback -= 1
                continue
            s = _SYMBOLS.get(w)
            if s is not None:
                flush()
                out(s)
            continue
        new_dest_was = new_dest
        new_dest = False
        if hexbyte is not None:
            if state.skip or state.fonttbl:
                continue
            if skip_fallback:
                skip_fallback -= 1
                continue
            if units:
                flush()
            pending.append(int(hexbyte, 16))
            continue
        if sym is not None:
            if sym == b"*":
                starred = True
                new_dest = new_dest_was
                continue
            if state.skip or state.fonttbl:
                continue
            if skip_fallback:
                skip_fallback -= 1
                continue
            s = _CTRL_SYMBOLS.get(sym)
            if s:
                flush()
                out(s)
            continue
        if text is not None:
            if state.skip or state.fonttbl:
                continue
            if skip_fallback:
                k = min(skip_fallback, len(text))
                text = text[k:]
                skip_fallback -= k
                if not text:
                    continue
            c = codec()
            if pending and c in ("cp932", "cp949", "cp950", "gb18030", "cp1361"):
                pending.extend(text)       # a double-byte trail byte may be written as a plain character
                continue
            flush()
            if c == "symbol":
                continue
            out(text.decode(c if text.isascii() is False else "ascii", "replace"))
    flush()
    ctx.charset = default
    if stack and not ctx.size:
        ctx.report("text.damaged", "the RTF ends inside %d open group(s): it is truncated or damaged" % len(stack))
    elif stack:
        ctx.report("text.input_truncated", "the RTF ends inside %d open group(s): it may be cut short" % len(stack))
    if replaced[0]:
        ctx.report("text.charset_replaced", "%d byte sequence(s) invalid in the document's code page were replaced"
                   % replaced[0])
