"""HTML to text with linear regex passes (no DOM; the time budget and the character limit apply).

script, style, template, noscript and the head's content are skipped (a <body> ends an unclosed head);
block elements start new lines, table cells are separated by tabs, white space is collapsed except in
<pre>, entities are decoded, <img alt> text is kept. Text hidden by CSS is kept: a triage reads what a
reader could reveal. The charset of HTML bytes is the <meta> one, else the content type's, else the
scan's detection (leaktriage.mail.charsets).
"""
from __future__ import annotations

import re
from html import unescape
from typing import Optional

from .model import Context
from .plain import declared_charset, decode

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr",
          "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer", "nav", "aside", "main", "figure",
          "figcaption", "address", "form", "fieldset", "legend", "caption", "thead", "tbody", "tfoot", "center",
          "details", "summary", "option", "title", "body", "html"}
_LINE_ONLY = {"tr", "li", "option", "dt", "dd"}   # a line break, not a paragraph break (<br>: one each)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


# Markers that stand for structure while the text is cleaned (control characters that HTML text cannot hold:
# they are removed from the input first, and html.unescape drops their character references).
_PARA, _LINE, _TAB, _PRE_ON, _PRE_OFF, _BR = "\x01", "\x02", "\x03", "\x04", "\x05", "\x06"
_MARKERS = re.compile("[\x01-\x06]")
_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*>?"""    # '>' optional: an unclosed tag never makes a pass quadratic
_DROP = re.compile(r"<!--.*?(?:-->|\Z)|<![^>]*>?|<\?[^>]*>?"
                   r"|<(script|style|noscript|template|svg|math|object|iframe|title|xmp|noembed|noframes)\b"
                   + _ATTRS + r".*?(?:</\1\s*>|\Z)"
                   r"|<head\b[^>]*>?.*?(?:</head\s*>|(?=<body[\s>])|\Z)", re.S | re.I)


def _names(names) -> str:
    return "|".join(sorted(names, key=lambda n: (-len(n), n)))


# one pass per kind of tag, each with a fixed replacement (no Python call per tag) except <img>
_IMG = re.compile(r"<img\b" + _ATTRS, re.I)
_PRE = re.compile(r"<(/?)pre\b" + _ATTRS, re.I)
_BRS = re.compile(r"</?br\b" + _ATTRS, re.I)
_CELL = re.compile(r"<t[dh]\b" + _ATTRS, re.I)
_LINES = re.compile(r"</?(?:%s)\b" % _names(_LINE_ONLY) + _ATTRS, re.I)
_PARAS = re.compile(r"</?(?:%s)\b" % _names(_BLOCK - _LINE_ONLY - {"pre", "br"}) + _ATTRS, re.I)
_OTHER = re.compile(r"</?[a-zA-Z][a-zA-Z0-9:-]*" + _ATTRS)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.I)
_PRE_SPLIT = re.compile("([\x04\x05])")
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_AROUND = re.compile(" *([\x01\x02\x03\x06]) *")
_TABS = re.compile("\x03+")
_LEAD_TAB = re.compile("(\\A|[\x01\x02\x06])\x03+")     # a row's first cell starts its line
_BREAKS = re.compile("[\x01\x02\x06]+")


def _img(m: "re.Match[str]") -> str:
    a = _ALT.search(m.group(0))
    return " " + next(g for g in a.groups() if g is not None) + " " if a else ""


def _breaks(m: "re.Match[str]") -> str:
    run = m.group(0)
    return "\n\n" if _PARA in run or run.count(_BR) > 1 else "\n"


def html_text(html: str, ctx: Context) -> None:
    """Text of decoded HTML into ctx (raises Full/Timeout like every reader).

    Regex passes at C speed with fixed replacements: html.parser costs ~15 us per tag (a 16 MB page of
    short tags took 55 s). No pattern has nested quantifiers over the same characters and no tag pattern
    requires its closing '>', so every pass is linear; the input is bounded by TextLimits.max_bytes."""
    ctx.check_time()
    s = _MARKERS.sub("", html)
    s = _DROP.sub(lambda m: _PARA if m.group(0)[:5].lower() == "<head" else "", s)
    s = _IMG.sub(_img, s)
    s = _PRE.sub(lambda m: _PARA + (_PRE_OFF if m.group(1) else _PRE_ON), s)
    s = _BRS.sub(_BR, s)
    s = _CELL.sub(_TAB, s)
    s = _LINES.sub(_LINE, s)
    s = _PARAS.sub(_PARA, s)
    s = _OTHER.sub("", s)
    ctx.check_time()
    s = unescape(s)
    out = []
    pre = 0
    for piece in _PRE_SPLIT.split(s):
        if piece == _PRE_ON:
            pre += 1
        elif piece == _PRE_OFF:
            pre = max(0, pre - 1)
        elif pre:
            out.append(piece.replace("\r\n", "\n"))
        else:
            piece = _AROUND.sub(r"\1", _SPACES.sub(" ", piece))
            out.append(_TABS.sub("\t", _LEAD_TAB.sub(r"\1", piece)))
    s = _BREAKS.sub(_breaks, "".join(out))
    ctx.check_time()
    ctx.add(s.strip(" \n\t"))


def meta_charset(data: bytes) -> Optional[str]:
    m = _META_CHARSET.search(data[:8192])
    return m.group(1).decode("ascii") if m else None


def read_html(data: bytes, ctx: Context) -> None:
    ctx.method = "html-tokenizer"
    declared = meta_charset(data) or declared_charset(ctx.hints.get("content_type"))
    html_text(decode(data, declared, ctx), ctx)
