"""HTML to text (stdlib html.parser, fed in chunks so the time budget and the character limit apply).

script, style, template, noscript and the head's content are skipped (a <body> ends an unclosed head);
block elements start new lines, table cells are separated by tabs, white space is collapsed except in
<pre>, entities are decoded, <img alt> text is kept. Text hidden by CSS is kept: a triage reads what a
reader could reveal. The charset of HTML bytes is the <meta> one, else the content type's, else the
scan's detection (leaktriage.charsets).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Optional

from .model import Context
from .plain import declared_charset, decode

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr",
          "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer", "nav", "aside", "main", "figure",
          "figcaption", "address", "form", "fieldset", "legend", "caption", "thead", "tbody", "tfoot", "center",
          "details", "summary", "option", "title", "body", "html"}
_LINE_ONLY = {"tr": 1, "li": 1, "option": 1, "dt": 1, "dd": 1, "br": 2}   # a line break, never a blank line (br: one per tag)
_SKIP = {"script", "style", "head", "noscript", "template", "svg", "math", "object", "iframe"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "param", "source", "track", "wbr"}
_WS = re.compile(r"[ \t\r\n\f\v]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
CHUNK = 1 << 16


class _Text(HTMLParser):
    def __init__(self, ctx: Context):
        super().__init__(convert_charrefs=True)
        self.ctx = ctx
        self.skip = 0
        self.pre = 0
        self.newlines = 2           # newlines at the end of the output so far (2 = start of text)
        self.space = True           # output ends with white space

    def _nl(self, limit: int = 2) -> None:
        if self.newlines < limit:
            self.ctx.add("\n")
            self.newlines += 1
            self.space = True

    def handle_starttag(self, tag, attrs):
        if tag == "body" and self.skip:
            self.skip = 0           # an unclosed <head> (or script) must not swallow the body
        if tag in _SKIP:
            if tag not in _VOID:
                self.skip += 1
            return
        if self.skip:
            return
        if tag in _BLOCK:
            self._nl(_LINE_ONLY.get(tag, 2))
        elif tag in ("td", "th"):
            if not self.space:
                self.ctx.add("\t")
                self.space = True
        elif tag == "img":
            for k, v in attrs:
                if k == "alt" and v and v.strip():
                    self._data(v)
        if tag == "pre":
            self.pre += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag in _BLOCK:
            self._nl(_LINE_ONLY.get(tag, 2))
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if not self.skip:
            self._data(data)

    def _data(self, data: str) -> None:
        if self.pre:
            if data:
                self.ctx.add(data)
                self.newlines = len(data) - len(data.rstrip("\n")) if data.endswith("\n") else 0
                self.space = data[-1:].isspace()
            return
        s = _WS.sub(" ", data)
        if self.space:
            s = s.lstrip(" ")
        if not s:
            return
        self.ctx.add(s)
        self.newlines = 0
        self.space = s.endswith(" ")


def html_text(html: str, ctx: Context) -> None:
    """Text of decoded HTML into ctx (raises Full/Timeout like every reader)."""
    p = _Text(ctx)
    for i in range(0, len(html), CHUNK):
        ctx.check_time()
        p.feed(html[i:i + CHUNK])
    p.close()
    # drop the trailing white space of the text (a final block's line end)
    while ctx.pieces and ctx.pieces[-1].strip(" \n") == "":
        ctx.size -= len(ctx.pieces.pop())


def meta_charset(data: bytes) -> Optional[str]:
    m = _META_CHARSET.search(data[:8192])
    return m.group(1).decode("ascii") if m else None


def read_html(data: bytes, ctx: Context) -> None:
    ctx.method = "html.parser"
    declared = meta_charset(data) or declared_charset(ctx.hints.get("content_type"))
    html_text(decode(data, declared, ctx), ctx)
