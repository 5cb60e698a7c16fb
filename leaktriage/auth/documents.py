"""Document indicators: what attached documents' own dates and authors say about a message
(modified after it was sent, written in a script no one in the mailbox uses, batches of old
documents modified together). The metadata itself is read by leaktriage.content.docmeta.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from leaktriage.auth.codes import indicator
from leaktriage.auth.received import iso

MODIFIED_AFTER_SENT_SLACK = timedelta(minutes=10)
BATCH_WINDOW = timedelta(minutes=10)
BATCH_MIN_DOCS = 3
OLD_AGE = timedelta(days=30)


# --- indicators --------------------------------------------------------------------------------

_LATIN_RANGE = re.compile("[\x00-\x7f\u00c0-\u024f]*")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")


def script_of(text: Optional[str]) -> Optional[str]:
    """Dominant Unicode script of the letters of a name (LATIN, CYRILLIC, GREEK, ARABIC, HEBREW,
    CJK, HANGUL, ...), or None if it has no letters."""
    if not text:
        return None
    if text.isascii() or _LATIN_RANGE.fullmatch(text):
        # the common cases (ASCII, French and other Latin names), without a Unicode name lookup
        # per letter: every letter of U+00C0-U+024F is named LATIN
        return "LATIN" if _LATIN_LETTER.search(text) else None
    counts: Dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        try:
            name = unicodedata.name(ch)
        except ValueError:
            continue
        word = name.split()[0]
        if word in ("HIRAGANA", "KATAKANA"):
            word = "JAPANESE"
        if word == "CJK":
            word = "CJK"
        counts[word] = counts.get(word, 0) + 1
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: kv[1])[0]


def parse_utc(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, TypeError):
        return None


def document_indicators(message_date: Optional[datetime], docs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Flags over the documents carried by a message (or any set of documents the caller groups).

    docs: docmeta() dicts, each optionally with "locator"/"filename" for the evidence.
    Author names in a foreign script need the whole mailbox: see auth/mailbox.py.
    """
    out: List[Dict[str, Any]] = []
    try:
        md = None
        if message_date is not None:
            md = message_date.replace(tzinfo=timezone.utc) if message_date.tzinfo is None else message_date.astimezone(timezone.utc)
        for k, doc in enumerate(docs):
            ref = {"doc": doc.get("locator") or doc.get("filename") or k}
            mod = parse_utc(doc.get("modified"))
            if md is not None and mod is not None and mod > md + MODIFIED_AFTER_SENT_SLACK:
                out.append(indicator("auth.doc_modified_after_sent",
                                     {**ref, "modified": iso(mod), "message_date": iso(md),
                                      "delta_seconds": int((mod - md).total_seconds()),
                                      "format": doc.get("format")},
                                     "The document says it was last modified after the message carrying it was sent."))
        # batch of old documents modified together
        olds = []
        for k, doc in enumerate(docs):
            cr, mod = parse_utc(doc.get("created")), parse_utc(doc.get("modified"))
            if cr is None or mod is None:
                continue
            ref_time = md or mod
            if ref_time - cr >= OLD_AGE:
                olds.append((mod, doc.get("locator") or doc.get("filename") or k, cr))
        olds.sort(key=lambda x: x[0])
        best: List[Any] = []
        j = 0
        for i in range(len(olds)):
            while olds[i][0] - olds[j][0] > BATCH_WINDOW:
                j += 1
            if i - j + 1 > len(best):
                best = olds[j:i + 1]
        if len(best) >= BATCH_MIN_DOCS:
            out.append(indicator("auth.doc_batch_modified",
                                 {"docs": [b[1] for b in best], "modified": [iso(b[0]) for b in best],
                                  "created": [iso(b[2]) for b in best],
                                  "window_seconds": int(BATCH_WINDOW.total_seconds())},
                                 "%d documents created long before were all modified within %d minutes of each other." % (len(best), BATCH_WINDOW.total_seconds() // 60)))
    except Exception as e:
        out.append(indicator("auth.internal_error", {"where": "document_indicators", "error": "%s: %s" % (type(e).__name__, e)},
                             "The document checks stopped on an unexpected error."))
    return out
