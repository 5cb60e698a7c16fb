"""extract_text(): detection, the reader table, limits, and the one place where outcomes become a status.

Every path ends in a TextResult; nothing raises (hostile bytes, bugs and memory errors included).
Status is decided here only:
  unsupported  the format is not one whose text is extracted (text None)
  failed       a reader could not produce usable text (text None; problems say why)
  empty        the document was read and has no text (text ""; problems say why: text.empty,
               text.no_text_layer, ...)
  partial      text, with a warning or error problem (something is missing or was altered)
  ok           text, and at most info problems
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from .detect import BY_NAME, Detection, detect_format, hinted_formats
from .model import Context, Full, TextLimits, TextResult, Timeout, problem

DEFAULT_LIMITS = TextLimits()


def _reader(module: str, func: str) -> Callable[[bytes, Context], None]:
    def call(data: bytes, ctx: Context) -> None:
        import importlib
        getattr(importlib.import_module("." + module, __package__), func)(data, ctx)
    call.__name__ = func
    return call


# Format.reader -> the function that writes the text of such bytes into a Context
READERS: Dict[str, Callable[[bytes, Context], None]] = {
    "pdf": _reader("pdf", "read_pdf"),
    "docx": _reader("ooxml", "read_docx"),
    "xlsx": _reader("ooxml", "read_xlsx"),
    "pptx": _reader("ooxml", "read_pptx"),
    "odf": _reader("odf", "read_odf"),
    "rtf": _reader("rtf", "read_rtf"),
    "html": _reader("html", "read_html"),
    "xml": _reader("xmldoc", "read_xml"),
    "plain": _reader("plain", "read_plain"),
}

_UNSUPPORTED_WHY = {
    "image": ("text.needs_ocr", "an image (%s): its text, if any, needs OCR"),
    "archive": ("text.unsupported", "an archive (%s): its members are extracted one by one by the scan"),
    "message": ("text.unsupported", "a message (%s): its parts are extracted one by one by the scan"),
    "ole2": ("text.unsupported", "a legacy binary Office/OLE2 file (%s): not extracted"),
    "binary": ("text.unsupported", "a binary file (%s): no text to extract"),
}


def _as_bytes(data) -> Optional[bytes]:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return None


def _mismatch(det: Detection, content_type: Optional[str], filename: Optional[str]) -> Optional[str]:
    """A note when the declared type or the extension names another format than the content."""
    fmt = det.format
    if det.detected_by not in ("signature", "zip-members", "ole2"):
        return None
    for f, source in hinted_formats(None, content_type, filename):
        if f.name in ("unknown", "zip", "ole2") or f.name == fmt.name:
            continue
        if f.family == fmt.family and f.family in ("text", "ole2", "archive"):
            continue
        return "the %s says %s, the content is %s" % ("content type" if source == "content-type" else "file name",
                                                      f.name, fmt.name)
    return None


def extract_text(data: bytes, *, content_type: Optional[str] = None, magic: Optional[str] = None,
                 filename: Optional[str] = None, limits: TextLimits = DEFAULT_LIMITS) -> TextResult:
    """The text of a document's bytes, as a TextResult; never raises.

    content_type: the declared MIME type (charset parameter used for text), magic: libmagic's MIME type,
    filename: the attachment's name (its extension is the last hint). The bytes decide first.
    """
    try:
        return _extract(data, content_type, magic, filename, limits)
    except MemoryError:
        return TextResult(None, "unknown", None, "failed",
                          (problem("text.memory_limit", "out of memory while extracting text"),))
    except BaseException as e:  # noqa: B902 - the contract is "never raises"; KeyboardInterrupt passes through
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return TextResult(None, "unknown", None, "failed",
                          (problem("text.internal_error", "%s: %s" % (type(e).__name__, str(e)[:300])),))


def _extract(data, content_type, magic, filename, limits: TextLimits) -> TextResult:
    raw = _as_bytes(data)
    if raw is None:
        return TextResult(None, "unknown", None, "failed",
                          (problem("text.internal_error", "expected bytes, got %s" % type(data).__name__),))
    # a document over the size limit is still named (from its first 64 KiB), never parsed
    head = raw if len(raw) <= limits.max_bytes else raw[:1 << 16]
    det = detect_format(head, content_type=content_type, magic=magic, filename=filename)
    fmt = det.format
    notes = []
    why = _mismatch(det, content_type, filename)
    if why:
        notes.append(problem("text.type_mismatch", why))

    def result(text, method, status, problems, **kw) -> TextResult:
        return TextResult(text, fmt.name, method, status, tuple(notes) + tuple(problems),
                          chars=len(text) if text else 0, detected_by=det.detected_by, **kw)

    if fmt.reader is None:
        code, msg = _UNSUPPORTED_WHY.get(fmt.family, ("text.unsupported", "%s: not extracted"))
        if fmt.name == "unknown":
            msg = "an unrecognised binary format (%s)"
        return result(None, None, "unsupported", [problem(code, msg % fmt.name)])
    if len(raw) > limits.max_bytes:
        return result(None, None, "failed", [problem("text.too_large", "%d bytes, more than the limit of %d"
                                                     % (len(raw), limits.max_bytes))])
    if det.note == "encrypted-ooxml":
        return result(None, None, "failed", [problem("text.encrypted", "a password-protected Office document "
                                                     "(an encrypted package inside an OLE2 file)")])

    ctx = Context(limits, hints={"content_type": content_type, "format": fmt.name})
    try:
        READERS[fmt.reader](raw, ctx)
    except Full:
        pass
    except Timeout:
        ctx.report("text.timeout", "extraction stopped after the time budget of %ss; the text read until then is kept"
                   % limits.time_budget)
    except RecursionError:
        ctx.fail("text.depth_limit", "nesting too deep for the reader")
    text = ctx.text()
    if ctx.fatal and not text.strip():
        return result(None, ctx.method, "failed", ctx.problems, pages=ctx.pages, charset=ctx.charset)
    problems = list(ctx.problems)
    if not text.strip():
        text = ""
        if not any(p.code in ("text.empty", "text.no_text_layer", "text.timeout") or p.severity == "error"
                   for p in problems):
            problems.append(problem("text.empty", "the document holds no text"))
        return result(text, ctx.method, "empty", problems, pages=ctx.pages, charset=ctx.charset)
    lossy = any(p.severity in ("warning", "error") for p in problems)
    return result(text, ctx.method, "partial" if lossy else "ok", problems, pages=ctx.pages, charset=ctx.charset)


def extract_html(html: str, *, limits: TextLimits = DEFAULT_LIMITS) -> TextResult:
    """The text of an HTML body that is already decoded (a text/html MIME part); never raises."""
    from .html import html_text
    try:
        ctx = Context(limits)
        ctx.method = "html-tokenizer"
        try:
            html_text(html if isinstance(html, str) else str(html), ctx)
        except Full:
            pass
        except Timeout:
            ctx.report("text.timeout", "extraction stopped after the time budget of %ss" % limits.time_budget)
        text = ctx.text()
        problems = list(ctx.problems)
        if not text.strip():
            problems.append(problem("text.empty", "the HTML holds no text"))
            status = "empty"
            text = ""
        else:
            status = "partial" if any(p.severity != "info" for p in problems) else "ok"
        return TextResult(text, "html", "html-tokenizer", status, tuple(problems), chars=len(text),
                          detected_by="caller")
    except MemoryError:
        return TextResult(None, "html", None, "failed", (problem("text.memory_limit", "out of memory"),))
    except Exception as e:
        return TextResult(None, "html", None, "failed",
                          (problem("text.internal_error", "%s: %s" % (type(e).__name__, str(e)[:300])),))


def format_of(name: str):
    return BY_NAME.get(name)
