"""ODT, ODS, ODP (and ODG): content.xml streamed through expat (bounds in zipxml.py).

Paragraphs and headings end lines; a spreadsheet row is one line with cells separated by tabs
(a repeated cell or row is written once: repetition adds no words and is a cheap way to blow up
output); slides and sheets are separated by form feeds. Comments, tracked deletions and speaker
notes are included and reported (text.tracked_changes). An encrypted document (a password in
LibreOffice) is reported as text.encrypted.
"""
from __future__ import annotations

from .model import Context
from .zipxml import XmlHandler, ZipParts, parse_member, xml_attr

_SKIP = {"automatic-styles", "font-face-decls", "scripts", "forms", "sequence-decls", "variable-decls",
         "user-field-decls", "settings", "event-listeners"}
_HIDDEN = {"annotation", "tracked-changes", "notes"}


class _Content(XmlHandler):
    def __init__(self, ctx: Context, kind: str):
        self.ctx = ctx
        self.kind = kind
        self.skip = 0
        self.cell = 0
        self.cell_text = False
        self.cell_buf = []          # a cell's text, written at its end (tab-separated from the previous one)
        self.cell_len = 0
        self.row_cells = 0
        self.pages = 0
        self.hidden = 0
        self.hidden_text = False

    def start(self, tag, attrs):
        name = tag
        if self.skip or name in _SKIP:
            self.skip += 1
            return
        add = self.ctx.add
        if name in _HIDDEN:
            self.hidden += 1
        if name == "s":
            try:
                n = int(xml_attr(attrs, "c") or "1")
            except ValueError:
                n = 1
            self._put(" " * max(1, min(n, 1000)))
        elif name == "tab":
            self._put("\t" if not self.cell else " ")
        elif name == "line-break":
            self._put("\n" if not self.cell else " ")
        elif name == "table-cell" or name == "covered-table-cell":
            self.cell += 1
            if self.cell == 1:
                self.cell_text = False
                self.cell_buf = []
                self.cell_len = 0
        elif name == "table" and self.kind == "ods" and not self.cell:
            if self.pages:
                add("\f")
            self.pages += 1
            t = xml_attr(attrs, "name")
            if t:
                add(t + "\n")
        elif name == "page":                 # draw:page, a slide
            if self.pages:
                add("\f")
            self.pages += 1
        elif name in ("p", "h"):
            if self.cell and self.cell_text:
                self._put(" ")

    def end(self, tag):
        name = tag
        if self.skip:
            self.skip -= 1
            return
        add = self.ctx.add
        if name in _HIDDEN:
            self.hidden -= 1
        if name in ("p", "h"):
            if not self.cell:
                add("\n")
        elif name in ("table-cell", "covered-table-cell"):
            self.cell -= 1
            if self.cell == 0 and self.cell_text:
                text = "".join(self.cell_buf).strip()
                if text:
                    add(("\t" if self.row_cells else "") + text)
                    self.row_cells += 1
                self.cell_buf = []
        elif name == "table-row" and not self.cell:
            if self.row_cells:
                add("\n")
            self.row_cells = 0

    def data(self, text):
        if self.skip:
            return
        if self.cell:
            if text.strip():
                self.cell_text = True
            elif not self.cell_text:
                return
        if self.hidden and text.strip():
            self.hidden_text = True
        self._put(text)

    def _put(self, s: str) -> None:
        if self.cell:
            self.cell_buf.append(s)
            self.cell_len += len(s)
            if self.cell_len > self.ctx.room():   # a hostile cell: no more than the text limit is buffered
                self.ctx.add("".join(self.cell_buf))
        else:
            self.ctx.add(s)


def read_odf(data: bytes, ctx: Context) -> None:
    ctx.method = "odf-expat"
    zp = ZipParts(data, ctx)
    manifest = zp.read_small("META-INF/manifest.xml")
    if manifest is not None and b"encryption-data" in manifest:
        ctx.fail("text.encrypted", "the document is encrypted (a password was set when it was saved)")
        return
    if "content.xml" not in zp:
        ctx.fail("text.damaged", "no content.xml in the zip")
        return
    kind = ctx.hints.get("format") or "odt"
    h = _Content(ctx, kind)
    ok = parse_member(zp, "content.xml", h)
    if not ok and not ctx.size:
        ctx.fatal = True
    if kind in ("ods", "odp", "odg"):
        ctx.pages = h.pages
    if h.hidden_text:
        ctx.report("text.tracked_changes", "comments, tracked deletions or speaker notes are included in the text")
