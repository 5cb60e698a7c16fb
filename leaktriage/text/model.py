"""Typed values of the text package: limits, problems, results, and the collector extractors write into."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from .codes import TEXT_CODES

MiB = 1 << 20

STATUSES = ("ok", "partial", "empty", "failed", "unsupported")


@dataclass(frozen=True)
class TextLimits:
    """Bounds on hostile input. Every one is enforced in-process except wall_timeout and max_memory,
    which only an isolated process can enforce (see IsolatedExtractor and docs/text.md)."""

    max_bytes: int = 128 * MiB          # larger inputs are not parsed (text.too_large)
    max_chars: int = 4_000_000          # text kept per document (text.truncated)
    max_pages: int = 5000               # PDF pages, slides, sheets read (text.pages_limit)
    max_member_bytes: int = 128 * MiB   # one part of a zip-based document, expanded (text.member_too_large)
    max_total_bytes: int = 512 * MiB    # all parts of one zip-based document, expanded
    max_ratio: int = 200                # expanded/compressed ratio of a part above 1 MiB (text.zip_bomb)
    max_depth: int = 256                # XML element / RTF group nesting (text.depth_limit)
    time_budget: Optional[float] = 120.0  # seconds, checked between pages/chunks (text.timeout); None: no limit
    wall_timeout: float = 180.0         # seconds, hard limit of IsolatedExtractor (kills the process)
    max_memory: int = 2048 * MiB        # address-space limit of IsolatedExtractor's process

    def replace(self, **changes) -> "TextLimits":
        return replace(self, **changes)


@dataclass(frozen=True)
class TextProblem:
    code: str
    severity: str
    message: str
    page: Optional[int] = None          # 1-based page/slide/sheet, when the problem is about one
    part: Optional[str] = None          # zip member name, when the problem is about one

    def to_dict(self) -> Dict[str, object]:
        d: Dict[str, object] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.page is not None:
            d["page"] = self.page
        if self.part is not None:
            d["part"] = self.part
        return d


def problem(code: str, message: str, *, page: Optional[int] = None, part: Optional[str] = None) -> TextProblem:
    return TextProblem(code, TEXT_CODES[code][0], message, page, part)


@dataclass(frozen=True)
class TextResult:
    """What extract_text found. `text` is None when status is failed or unsupported, "" when empty.

    status: ok (all text read), partial (text, but some is missing or altered: see problems),
    empty (read, no text: see problems for why), failed (no text: see problems), unsupported.
    Pages are separated by form feeds (U+000C) in PDF text; lines end with "\\n".
    """

    text: Optional[str]
    format: str                         # pdf, docx, xlsx, pptx, odt, ods, odp, rtf, html, xml, txt, csv, ... or unknown
    method: Optional[str]               # the library or reader that produced the text, e.g. "pypdfium2", "ooxml-expat"
    status: str
    problems: Tuple[TextProblem, ...] = ()
    pages: Optional[int] = None         # pages (PDF), slides (PPTX/ODP), sheets (XLSX/ODS); None where meaningless
    chars: int = 0                      # len(text)
    charset: Optional[str] = None       # codec used for txt/csv/html/rtf bytes
    detected_by: Optional[str] = None   # signature | zip-members | ole2 | text-sniff | libmagic | content-type | extension | none

    @property
    def codes(self) -> Tuple[str, ...]:
        return tuple(p.code for p in self.problems)

    def to_dict(self) -> Dict[str, object]:
        """A JSON-ready dict with a fixed key set (deterministic: no times, no host facts)."""
        return {"text": self.text, "format": self.format, "method": self.method, "status": self.status,
                "problems": [p.to_dict() for p in self.problems], "pages": self.pages, "chars": self.chars,
                "charset": self.charset, "detected_by": self.detected_by}


class Timeout(Exception):
    """Raised inside an extractor when the cooperative time budget is spent (caught by the driver)."""


class Full(Exception):
    """Raised inside an extractor when max_chars is reached (caught by the driver)."""


@dataclass
class Context:
    """What an extractor writes into: text pieces (bounded), problems, counts."""

    limits: TextLimits
    hints: Dict[str, Optional[str]] = field(default_factory=dict)
    pieces: List[str] = field(default_factory=list)
    size: int = 0
    problems: List[TextProblem] = field(default_factory=list)
    pages: Optional[int] = None
    charset: Optional[str] = None
    method: Optional[str] = None
    fatal: bool = False                 # no usable text: status failed whatever was collected
    full: bool = False
    deadline: Optional[float] = None

    def __post_init__(self):
        if self.limits.time_budget is not None:
            self.deadline = time.monotonic() + self.limits.time_budget

    # -- text
    def add(self, s: str) -> None:
        """Append text; raises Full once max_chars is reached (the kept text ends exactly there)."""
        if not s:
            return
        room = self.limits.max_chars - self.size
        if len(s) >= room:
            if room > 0:
                self.pieces.append(s[:room])
                self.size += room
            if len(s) > room:
                self.mark_full()
                raise Full()
            return
        self.pieces.append(s)
        self.size += len(s)

    def room(self) -> int:
        return self.limits.max_chars - self.size

    def mark_full(self) -> None:
        if not self.full:
            self.full = True
            self.report("text.truncated", "the text reached the limit of %d characters; the rest was not extracted"
                        % self.limits.max_chars)

    def text(self) -> str:
        return "".join(self.pieces)

    # -- problems
    def report(self, code: str, message: str, *, page: Optional[int] = None, part: Optional[str] = None) -> None:
        self.problems.append(problem(code, message, page=page, part=part))

    def fail(self, code: str, message: str, **kw) -> None:
        self.report(code, message, **kw)
        self.fatal = True

    def has(self, code: str) -> bool:
        return any(p.code == code for p in self.problems)

    # -- time
    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Timeout()
