"""Text of attachments and HTML bodies, for the search index, `show --text` and the privacy scanner.

    from leaktriage.text import extract_text, TextLimits
    r = extract_text(data, content_type="application/pdf", filename="facture.pdf")
    r.status, r.format, r.method, r.text, [p.code for p in r.problems]

extract_text never raises: every outcome is a TextResult with a status (ok, partial, empty, failed,
unsupported) and typed problems whose codes are in TEXT_CODES. Hard wall-clock and memory limits need
a separate process: IsolatedExtractor. See docs/text.md.
"""
from __future__ import annotations

from .codes import TEXT_CODES
from .detect import FORMATS, Detection, Format, detect_format
from .extract import DEFAULT_LIMITS, READERS, extract_html, extract_text
from .isolate import IsolatedExtractor
from .model import STATUSES, TextLimits, TextProblem, TextResult

__all__ = ["extract_text", "extract_html", "TextResult", "TextProblem", "TextLimits", "DEFAULT_LIMITS",
           "TEXT_CODES", "STATUSES", "FORMATS", "Format", "Detection", "detect_format", "READERS",
           "IsolatedExtractor"]
