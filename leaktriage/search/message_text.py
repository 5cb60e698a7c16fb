"""The text of a message, as the index stores and searches it: its text parts decoded with the
charset the scan chose (HTML turned into text), and the text of its attachments.

Runs in the index's worker processes; every failure becomes a problem row (INDEX_CODES), never an
exception and never a silent empty string.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Dict, List, Optional

from leaktriage.manifest.resolver import ItemChanged, Resolver
from leaktriage.search.schema import short_type

MAX_BODY_CHARS = 2_000_000          # text kept per message (the rest is cut, with a problem row)
MAX_ATTACHMENT_TEXT_BYTES = 20 << 20  # attachments larger than this are not opened for text
MAX_ATTACHMENT_CHARS = 500_000



_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
          "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer", "title"}
_SKIP = {"script", "style", "head", "noscript", "template"}


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: List[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")
        elif tag == "td" or tag == "th":
            self.out.append("\t")
        elif tag == "img":
            for k, v in attrs:
                if k == "alt" and v:
                    self.out.append(" %s " % v)

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


_WS_RUN = re.compile(r"[ \t\r\f\v\u00a0]+")
_NL_RUN = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    p = _TextParser()
    p.feed(html)
    p.close()
    text = "".join(p.out)
    text = _WS_RUN.sub(" ", text)
    text = _NL_RUN.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


# --------------------------------------------------------------------------------------------
# Attachment text (stdlib only: OOXML / ODF are zip + XML)

_XML_TEXT = {
    "docx": ("word/document.xml", re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>|<w:(?:p|br|tab)\b[^>]*/?>")),
    "xlsx": ("xl/sharedStrings.xml", re.compile(rb"<t(?:\s[^>]*)?>([^<]*)</t>")),
    "pptx": (None, re.compile(rb"<a:t>([^<]*)</a:t>")),
    "odt": ("content.xml", re.compile(rb">([^<]+)<")),
    "ods": ("content.xml", re.compile(rb">([^<]+)<")),
}


def _xml_unescape(b: bytes) -> str:
    import html
    return html.unescape(b.decode("utf-8", "replace"))


def attachment_text(data: bytes, kind: Optional[str]) -> Optional[str]:
    """Text of an attachment, or None when its type is not extracted. Raises on damaged files."""
    if kind in ("txt", "csv"):
        from leaktriage.mail import charsets
        return charsets.decode_text(data, None).text
    if kind in ("html",):
        from leaktriage.mail import charsets
        return html_to_text(charsets.decode_text(data, None).text)
    if kind in _XML_TEXT:
        import io
        import zipfile
        member, rx = _XML_TEXT[kind]
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if member is None:
                names = sorted(n for n in z.namelist() if n.startswith("ppt/slides/slide") and n.endswith(".xml"))
            else:
                names = [member] if member in z.namelist() else []
            out = []
            total = 0
            for n in names:
                info = z.getinfo(n)
                if info.file_size > 64 << 20:
                    raise ValueError("%s expands to %d bytes" % (n, info.file_size))
                xml = z.read(n)
                for m in rx.finditer(xml):
                    g = m.group(1)
                    out.append(_xml_unescape(g) if g is not None else "\n")
                    total += len(out[-1])
                    if total > MAX_ATTACHMENT_CHARS:
                        break
            if kind == "docx":
                return "".join(out)
            return " ".join(s for s in out if s.strip())
    if kind == "pdf":
        try:
            import pypdf  # optional: only used when installed
        except ImportError:
            return None
        import io
        reader = pypdf.PdfReader(io.BytesIO(data))
        out = []
        for page in reader.pages[:200]:
            out.append(page.extract_text() or "")
            if sum(map(len, out)) > MAX_ATTACHMENT_CHARS:
                break
        return "\n".join(out)
    return None




def _decode_part(data: bytes, p: dict) -> str:
    from leaktriage.mail import charsets, transfer
    raw = data[p["body_offset"]:p["body_offset"] + p["body_length"]]
    dec = transfer.decode(raw, p.get("cte"))[0]
    codec = charsets.lookup(p.get("charset")) if p.get("charset") else None
    if codec:
        t = charsets.decode_strict(dec, codec)
        if t is not None:
            return t
        try:
            return dec.decode(codec, "replace")
        except LookupError:
            pass
    return charsets.decode_text(dec, p.get("charset_declared")).text


def _text_parts(parts: List[dict]) -> List[dict]:
    """Parts whose text is the message body: text/plain and text/html that are not attachments;
    an HTML alternative of a text/plain part is skipped (same text twice)."""
    by_path = {p["path"]: p for p in parts}
    plain_parents = set()
    for p in parts:
        if p["content_type"] == "text/plain" and not p.get("attachment") and "uu_offset" not in p:
            plain_parents.add(p["path"].rpartition(".")[0])
    out = []
    for p in parts:
        if p.get("attachment") or "uu_offset" in p or "body_offset" not in p:
            continue
        ct = p["content_type"]
        if ct == "text/plain":
            out.append(p)
        elif ct in ("text/html", "text/enriched", "text/richtext"):
            parent = p["path"].rpartition(".")[0]
            pp = by_path.get(parent)
            if parent in plain_parents and pp is not None and pp["content_type"] == "multipart/alternative":
                continue
            out.append(p)
    return out


def extract_message(resolver: Resolver, msg: dict, parts: List[dict], with_attachments: bool = True):
    """-> (body text or None, {attachment locator: chars}, [problem rows], status)"""
    problems: List[tuple] = []
    loc = msg["locator"]
    try:
        data = resolver.message(msg, unquoted=True)
    except ItemChanged:
        problems.append((loc, "index.bytes_changed", None, None))
        return None, {}, problems, "bytes_changed", ""
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
        problems.append((loc, "index.bytes_unavailable", None, {"error": "%s: %s" % (type(exc).__name__, exc)}))
        return None, {}, problems, "bytes_unavailable", ""
    texts: List[str] = []
    for p in _text_parts(parts):
        try:
            t = _decode_part(data, p)
            if p["content_type"] != "text/plain":
                t = html_to_text(t)
            texts.append(t)
        except Exception as exc:  # noqa: BLE001
            problems.append((p["locator"], "index.text_failed", None, {"error": "%s: %s" % (type(exc).__name__, exc)}))
    att_text: Dict[str, int] = {}
    extra: List[str] = []
    if with_attachments:
        for p in parts:
            if not p.get("attachment") or "uu_offset" in p or "body_offset" not in p:
                continue
            if (p.get("size") or 0) > MAX_ATTACHMENT_TEXT_BYTES:
                continue
            kind = short_type(p.get("magic"), p.get("content_type"), p.get("filename"))
            if kind not in ("txt", "csv", "html", "docx", "xlsx", "pptx", "odt", "ods", "pdf"):
                continue
            try:
                from leaktriage.mail import transfer
                raw = data[p["body_offset"]:p["body_offset"] + p["body_length"]]
                blob = transfer.decode(raw, p.get("cte"))[0]
                t = attachment_text(blob, kind)
            except Exception as exc:  # noqa: BLE001
                problems.append((p["locator"], "index.attachment_text_failed", None,
                                 {"type": kind, "error": "%s: %s" % (type(exc).__name__, str(exc)[:200])}))
                continue
            if t:
                t = t[:MAX_ATTACHMENT_CHARS]
                att_text[p["locator"]] = len(t)
                extra.append(t)
    body = "\n\n".join(x for x in texts if x)
    status = "ok"
    if len(body) > MAX_BODY_CHARS:
        problems.append((loc, "index.text_truncated", None, {"chars": len(body), "kept": MAX_BODY_CHARS}))
        body = body[:MAX_BODY_CHARS]
        status = "truncated"
    return body, att_text, problems, status, "\n".join(extra)
