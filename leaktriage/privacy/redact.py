"""Redaction for publication: personal data replaced by labelled placeholders, with a log.

    text2, log = redact(text, findings)                 # French labels: [IBAN], [TÉLÉPHONE], ...
    text2, log = redact(text, findings, language="en")  # [IBAN], [PHONE], ...

The input text is never modified (Python strings are immutable; the evidence files are not
touched): a new text is returned. Each log entry says what was removed (kind, the SHA-256 of the
exact characters removed, their length; the characters themselves only with keep_values=True),
where (start/end in the original text, start/end of the placeholder in the redacted text) and why
(the rule that found it and whether it was validated). A log entry's digest lets anyone holding the
evidence check what a placeholder stands for, without the log itself disclosing it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Tuple

from .data import data_path
from .pii import PII_KINDS, Finding


@dataclass(frozen=True)
class Redaction:
    kind: str
    start: int            # span in the original text
    end: int
    new_start: int        # span of the placeholder in the redacted text
    new_end: int
    placeholder: str
    rule: str             # why: the rule that found it
    validated: bool
    sha256: str           # of text[start:end], UTF-8
    length: int
    value: Optional[str] = None     # text[start:end], only with keep_values=True
    where: Optional[str] = None     # the part of the message ("body", "attachment:x.pdf"), when given

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["value"] is None:
            del d["value"]
        if d["where"] is None:
            del d["where"]
        return d


@lru_cache(maxsize=1)
def placeholders() -> Dict[str, Dict[str, str]]:
    with open(data_path("placeholders.json"), encoding="utf-8") as f:
        d = json.load(f)
    return {lang: labels for lang, labels in d.items() if not lang.startswith("_")}


def redact(text: str, findings: Iterable[Finding], *, language: str = "fr", keep_values: bool = False,
           kinds: Iterable[str] = PII_KINDS, where: Optional[str] = None) -> Tuple[str, List[Redaction]]:
    """(redacted text, log). Overlapping findings are merged into the first one (the longest when
    they start together); findings of kinds not in `kinds` are left in the text."""
    labels = placeholders().get(language) or placeholders()["fr"]
    want = set(kinds)
    chosen: List[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -(f.end - f.start), f.kind)):
        if f.kind not in want or f.start < 0 or f.end > len(text) or f.start >= f.end:
            continue
        if chosen and f.start < chosen[-1].end:
            continue
        chosen.append(f)
    out: List[str] = []
    log: List[Redaction] = []
    pos = 0
    size = 0
    for f in chosen:
        out.append(text[pos:f.start])
        size += f.start - pos
        label = labels.get(f.kind, "[%s]" % f.kind.upper())
        removed = text[f.start:f.end]
        log.append(Redaction(f.kind, f.start, f.end, size, size + len(label), label, f.rule, f.validated,
                             hashlib.sha256(removed.encode("utf-8", "surrogatepass")).hexdigest(), len(removed),
                             removed if keep_values else None, where))
        out.append(label)
        size += len(label)
        pos = f.end
    out.append(text[pos:])
    return "".join(out), log
