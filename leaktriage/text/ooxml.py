"""DOCX, XLSX and PPTX: the zip's XML parts, streamed through expat (see zipxml.py for the bounds).

Order is the document's own: the main part named by _rels/.rels, sheets and slides in the order the
workbook and presentation list them (by number when those lists cannot be read). DOCX text includes
footnotes, endnotes, comments, headers and footers, and tracked deletions; PPTX includes speaker notes;
XLSX rows come out one line each, cells separated by tabs (shared strings, inline strings, numbers,
booleans and cached formula results; the formulas themselves are not text).
"""
from __future__ import annotations

import posixpath
import re
from typing import Dict, List, Optional, Tuple

from .model import Context
from .zipxml import XmlHandler, ZipParts, parse_member, xml_attr

_NUM = re.compile(r"(\d+)")


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in _NUM.split(name)]


def _resolve(source: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def _rels_path(part: str) -> str:
    d, f = posixpath.split(part)
    return posixpath.join(d, "_rels", f + ".rels")


class _Rels(XmlHandler):
    def __init__(self):
        self.by_id: Dict[str, Tuple[str, str]] = {}   # Id -> (Type suffix, Target)

    def start(self, tag, attrs):
        if tag == "Relationship" and attrs.get("Id") and attrs.get("Target") \
                and attrs.get("TargetMode") != "External":
            self.by_id[attrs["Id"]] = (attrs.get("Type", "").rsplit("/", 1)[-1], attrs["Target"])


def _rels(zp: ZipParts, part: str) -> Dict[str, Tuple[str, str]]:
    """Relationships of a part: Id -> (type, resolved target). Empty when absent or unreadable."""
    path = _rels_path(part) if part else "_rels/.rels"
    if path not in zp:
        return {}
    h = _Rels()
    parse_member(zp, path, h)
    return {k: (t, _resolve(part or "", target)) for k, (t, target) in h.by_id.items()}


def _main_part(zp: ZipParts, default: str) -> str:
    for typ, target in _rels(zp, "").values():
        if typ == "officeDocument" and target in zp:
            return target
    return default


class _Runs(XmlHandler):
    """Text of WordprocessingML / DrawingML: text elements, paragraph and line breaks, tabs.
    mc:Fallback content is skipped (it repeats mc:Choice)."""

    TEXT = {"t", "delText"}
    PARA = {"p"}
    BREAK = {"br", "cr"}

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.in_text = 0
        self.fallback = 0
        self.props = 0              # inside w:tabs (tab stop definitions, not tab characters)
        self.deleted = False
        self.any_text = False
        self.line: List[str] = []

    def start(self, tag, attrs):
        name = tag
        if name == "Fallback":
            self.fallback += 1
        elif self.fallback:
            return
        elif name in self.TEXT:
            self.in_text += 1
            if name == "delText":
                self.deleted = True
        elif name == "tabs":
            self.props += 1
        elif name == "tab":
            if not self.props:
                self._put("\t")
        elif name == "noBreakHyphen":
            self._put("\u2011")
        elif name in self.BREAK:
            self._put("\n")

    def end(self, tag):
        name = tag
        if name == "Fallback":
            self.fallback -= 1
        elif self.fallback:
            return
        elif name in self.TEXT:
            self.in_text -= 1
        elif name == "tabs":
            self.props -= 1
        elif name in self.PARA:
            self._put("\n")

    def data(self, text):
        if self.in_text and not self.fallback:
            self.any_text = True
            self._put(text)

    def _put(self, s):
        self.ctx.add(s)


def read_docx(data: bytes, ctx: Context) -> None:
    ctx.method = "ooxml-expat"
    zp = ZipParts(data, ctx)
    main = _main_part(zp, "word/document.xml")
    if main not in zp:
        ctx.fail("text.damaged", "no main document part (%s) in the zip" % main)
        return
    parts = [main]
    rels = _rels(zp, main)
    order = {"footnotes": 0, "endnotes": 1, "comments": 2, "header": 3, "footer": 4}
    extra = sorted((order[typ], _natural(t), t) for typ, t in rels.values() if typ in order and t in zp)
    parts += [t for _, _, t in extra if t not in parts]
    hidden = False
    for i, part in enumerate(parts):
        h = _Runs(ctx)
        ok = parse_member(zp, part, h)
        if i == 0 and not ok and not h.any_text and not ctx.size:
            ctx.fatal = True
        if h.deleted or (i > 0 and h.any_text and "comments" in part):
            hidden = True
        ctx.add("\n")
    if hidden:
        ctx.report("text.tracked_changes", "tracked deletions or comments are included in the text")


class _SharedStrings(XmlHandler):
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.strings: List[str] = []
        self.cur: List[str] = []
        self.in_t = 0
        self.in_rph = 0
        self.budget = ctx.limits.max_chars
        self.over = False

    def start(self, tag, attrs):
        name = tag
        if name == "si":
            self.cur = []
        elif name == "t":
            self.in_t += 1
        elif name == "rPh":
            self.in_rph += 1

    def end(self, tag):
        name = tag
        if name == "si":
            s = "".join(self.cur)
            if len(s) > self.budget:
                s = s[:max(0, self.budget)]
                self.over = True
            self.budget -= len(s)
            self.strings.append(s)
        elif name == "t":
            self.in_t -= 1
        elif name == "rPh":
            self.in_rph -= 1

    def data(self, text):
        if self.in_t and not self.in_rph:
            self.cur.append(text)


class _Sheet(XmlHandler):
    def __init__(self, ctx: Context, shared: List[str]):
        self.ctx = ctx
        self.shared = shared
        self.cells: List[str] = []
        self.ctype: Optional[str] = None
        self.in_cell = False
        self.value: List[str] = []
        self.capture = 0
        self.rows = 0

    def start(self, tag, attrs):
        name = tag
        if name == "c":
            self.ctype = attrs.get("t")
            self.in_cell = True
            self.value = []
        elif name in ("v", "t") and self.in_cell:
            self.capture += 1

    def end(self, tag):
        name = tag
        if name in ("v", "t") and self.capture:
            self.capture -= 1
        elif name == "c":
            raw = "".join(self.value)
            t = self.ctype
            if t == "s":
                try:
                    raw = self.shared[int(raw.strip())]
                except (ValueError, IndexError):
                    raw = ""
            elif t == "b":
                raw = {"1": "TRUE", "0": "FALSE"}.get(raw.strip(), raw)
            if raw:
                self.cells.append(raw)
            self.ctype = None
            self.in_cell = False
        elif name == "row":
            if self.cells:
                self.ctx.add("\t".join(self.cells) + "\n")
            self.cells = []
            self.rows += 1

    def data(self, text):
        if self.capture:
            self.value.append(text)


class _Workbook(XmlHandler):
    def __init__(self):
        self.sheets: List[Tuple[str, Optional[str]]] = []   # (name, r:id)

    def start(self, tag, attrs):
        if tag == "sheet":
            self.sheets.append((attrs.get("name") or "", xml_attr(attrs, "id")))


def read_xlsx(data: bytes, ctx: Context) -> None:
    ctx.method = "ooxml-expat"
    zp = ZipParts(data, ctx)
    main = _main_part(zp, "xl/workbook.xml")
    rels = _rels(zp, main) if main in zp else {}
    shared: List[str] = []
    for typ, target in rels.values():
        if typ == "sharedStrings" and target in zp:
            h = _SharedStrings(ctx)
            parse_member(zp, target, h)
            shared = h.strings
            if h.over:
                ctx.mark_full()
            break
    else:
        if "xl/sharedStrings.xml" in zp:
            h = _SharedStrings(ctx)
            parse_member(zp, "xl/sharedStrings.xml", h)
            shared = h.strings
    sheets: List[Tuple[str, str]] = []
    if main in zp:
        wb = _Workbook()
        parse_member(zp, main, wb)
        for name, rid in wb.sheets:
            if rid in rels and rels[rid][1] in zp:
                sheets.append((name, rels[rid][1]))
    if not sheets:
        sheets = [("", n) for n in sorted((n for n in zp.names() if re.match(r"xl/worksheets/[^/]+\.xml$", n)),
                                          key=_natural)]
    if not sheets:
        ctx.fail("text.damaged", "no worksheet in the workbook")
        return
    _pages(ctx, len(sheets), "sheets")
    for i, (name, part) in enumerate(sheets[:ctx.limits.max_pages]):
        ctx.check_time()
        if name:
            ctx.add(name + "\n")
        h = _Sheet(ctx, shared)
        parse_member(zp, part, h)
        if i + 1 < len(sheets):
            ctx.add("\f")


def _pages(ctx: Context, n: int, what: str) -> None:
    ctx.pages = n
    if n > ctx.limits.max_pages:
        ctx.report("text.pages_limit", "%d %s, more than the limit of %d; the rest were skipped"
                   % (n, what, ctx.limits.max_pages))


class _SlideList(XmlHandler):
    def __init__(self):
        self.ids: List[str] = []

    def start(self, tag, attrs):
        if tag == "sldId":
            rid = None
            for k, v in attrs.items():
                if k.endswith(" id"):   # r:id (namespaced), not the numeric id
                    rid = v
            if rid:
                self.ids.append(rid)


def read_pptx(data: bytes, ctx: Context) -> None:
    ctx.method = "ooxml-expat"
    zp = ZipParts(data, ctx)
    main = _main_part(zp, "ppt/presentation.xml")
    slides: List[str] = []
    if main in zp:
        rels = _rels(zp, main)
        sl = _SlideList()
        parse_member(zp, main, sl)
        slides = [rels[r][1] for r in sl.ids if r in rels and rels[r][1] in zp]
    if not slides:
        slides = sorted((n for n in zp.names() if re.match(r"ppt/slides/slide\d+\.xml$", n)), key=_natural)
    if not slides:
        if main in zp:
            return   # a presentation without slides: empty
        ctx.fail("text.damaged", "no presentation part and no slide in the zip")
        return
    _pages(ctx, len(slides), "slides")
    notes_seen = False
    for i, part in enumerate(slides[:ctx.limits.max_pages]):
        ctx.check_time()
        if i:
            ctx.add("\f")
        parse_member(zp, part, _Runs(ctx))
        for typ, target in _rels(zp, part).values():
            if typ == "notesSlide" and target in zp:
                h = _Runs(ctx)
                parse_member(zp, target, h)
                notes_seen = notes_seen or h.any_text
    if notes_seen:
        ctx.report("text.tracked_changes", "speaker notes are included in the text")
