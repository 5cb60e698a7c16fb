"""PDF text with pypdfium2 (Google's PDFium, the PDF engine of Chrome; chosen over pdfminer.six after
the comparison in docs/text.md: 7-20x faster, and as good or better on reading order, ToUnicode maps,
compressed streams, vertical CJK text and repaired files).

PDFium is C: a call cannot be interrupted from Python. The time budget is checked between pages, so
one hostile page can still run long: callers that need a hard wall-clock limit run extraction in
IsolatedExtractor (a child process that is killed at the limit). PDFium is not thread-safe: every
call goes through one lock.
"""
from __future__ import annotations

import re
import threading

from .model import Context, Full

_LOCK = threading.Lock()
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")

_OPEN_ERRORS = {
    1: ("text.damaged", "PDFium could not open it (unknown error)"),
    2: ("text.damaged", "PDFium could not read it as a file"),
    3: ("text.damaged", "not a PDF or damaged beyond repair (PDFium format error)"),
    4: ("text.encrypted", "encrypted with a user password"),
    5: ("text.encrypted", "encrypted with an unsupported security handler"),
    6: ("text.damaged", "the page tree is damaged"),
}


def _clean(s: str) -> str:
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", s)


def read_pdf(data: bytes, ctx: Context) -> None:
    try:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c
    except ImportError:  # pragma: no cover - a core dependency
        ctx.fail("text.unsupported", "pypdfium2 is not installed: PDF text cannot be extracted")
        return
    ctx.method = "pypdfium2"
    if b"%%EOF" not in data[-1024:]:
        ctx.report("text.input_truncated", "no %%EOF marker at the end of the file: it may be cut short")
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            code, why = _OPEN_ERRORS.get(getattr(e, "err_code", None) or 1, _OPEN_ERRORS[1])
            ctx.fail(code, why)
            return
        try:
            _read_pages(doc, pdfium, pdfium_c, ctx)
        finally:
            doc.close()


def _read_pages(doc, pdfium, pdfium_c, ctx: Context) -> None:
    try:
        revision = pdfium_c.FPDF_GetSecurityHandlerRevision(doc)
    except Exception:  # pragma: no cover - defensive: a metadata call must not stop extraction
        revision = -1
    if revision != -1:
        ctx.report("text.encrypted_readable", "encrypted (security handler revision %d) with an empty user password"
                   % revision)
    n = len(doc)
    ctx.pages = n
    if n > ctx.limits.max_pages:
        ctx.report("text.pages_limit", "%d pages, more than the limit of %d; the rest were skipped"
                   % (n, ctx.limits.max_pages))
    textless_with_images = []
    textless = 0
    with_text = 0
    for i in range(min(n, ctx.limits.max_pages)):
        ctx.check_time()
        if i:
            ctx.add("\f")
        try:
            page = doc[i]
        except pdfium.PdfiumError as e:
            ctx.report("text.page_failed", "page %d could not be loaded (%s)" % (i + 1, e), page=i + 1)
            continue
        try:
            tp = page.get_textpage()
            try:
                count = tp.count_chars()
                if count > 0:
                    room = ctx.room()
                    text = _clean(tp.get_text_range(0, min(count, max(1, room))))
                    if text.strip():
                        with_text += 1
                    else:
                        count = 0
                    ctx.add(text)
                    if count > room:
                        ctx.mark_full()
                        raise Full()
                if count <= 0:
                    textless += 1
                    images = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3)
                    if next(iter(images), None) is not None:
                        textless_with_images.append(i + 1)
            finally:
                tp.close()
        except pdfium.PdfiumError as e:
            ctx.report("text.page_failed", "the text of page %d could not be read (%s)" % (i + 1, e), page=i + 1)
        finally:
            page.close()
    if n == 0:
        ctx.report("text.empty", "the document has no pages")
    elif not with_text:
        if textless_with_images:
            ctx.report("text.no_text_layer", "%d page(s), images but no text on any: a scan, needs OCR" % n)
    elif textless_with_images:
        shown = ", ".join(map(str, textless_with_images[:20])) + (", ..." if len(textless_with_images) > 20 else "")
        ctx.report("text.partial_text_layer", "%d of %d pages hold images but no text (pages %s): they need OCR"
                   % (len(textless_with_images), n, shown))
