"""Any other XML document (flat ODF, Office 2003 XML, RSS, SVG, ...): its character data, one line per
element that held text. Same parser and bounds as the zip-based formats (no DOCTYPE, no entities)."""
from __future__ import annotations

from .model import Context
from .zipxml import XmlHandler, parse_xml

CHUNK = 1 << 16


class _AllText(XmlHandler):
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.line = False

    def end(self, tag):
        if self.line:
            self.ctx.add("\n")
            self.line = False

    def data(self, text):
        if text.strip():
            self.ctx.add(text.strip() if not self.line else text)
            self.line = True


def read_xml(data: bytes, ctx: Context) -> None:
    ctx.method = "expat"
    ok = parse_xml((data[i:i + CHUNK] for i in range(0, len(data), CHUNK)), _AllText(ctx), ctx, "the document")
    if not ok and not ctx.size:
        ctx.fatal = True
