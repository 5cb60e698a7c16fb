"""Plain text, CSV, calendars, vCards: bytes to text with the scan's charset rules (leaktriage.mail.charsets):
a BOM, then the declared charset (a charset= parameter of the content type), then UTF-8, then chardet,
then windows-1252. How the charset was chosen becomes problems: text.charset_guessed (detected or
fallback) and text.charset_replaced (bytes replaced). Line ends become "\\n".
"""
from __future__ import annotations

import re
from typing import Optional

from . import charsets
from .model import Context

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.I)


def declared_charset(content_type: Optional[str]) -> Optional[str]:
    if not content_type:
        return None
    m = _CHARSET_PARAM.search(content_type)
    return m.group(1) if m else None


def decode(data: bytes, declared: Optional[str], ctx: Context) -> str:
    """Decode with provenance recorded in ctx (charset, problems)."""
    r = charsets.decode_text(data, declared)
    ctx.charset = r.charset
    if r.source == "fallback" or (r.source == "detected" and r.method != "utf-8"):
        how = "detected by %s" % (r.method or "fallback") if r.source == "detected" else "a fallback"
        ctx.report("text.charset_guessed", "charset %s (%s%s)" % (
            r.charset, how, ", confidence %.2f" % r.confidence if r.confidence is not None else ""))
    if r.replaced_bytes:
        ctx.report("text.charset_replaced", "%d byte(s) not valid in %s were replaced" % (r.replaced_bytes, r.charset))
    return r.text


def newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_plain(data: bytes, ctx: Context) -> None:
    ctx.method = "charsets"
    text = newlines(decode(data, declared_charset(ctx.hints.get("content_type")), ctx))
    ctx.add(text)

