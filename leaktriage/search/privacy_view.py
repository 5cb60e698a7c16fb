"""The private sphere in what a person reads: `show --text --db` (highlighted personal data, the sphere
and its reasons) and the texts `export --redact pii` writes (leaktriage.search.redaction).

    view = PrivacyView.open(db_path)        the index's learned mail providers and its per-message results
    view.findings(text)                     personal data in a text as shown (e-mail addresses decided with
                                            the providers the index learned from the whole dump)
    view.sphere(locator)                    the sphere row of the message that holds locator (or None)
    decorate(text, locator, view, color)    the text, highlighted (color) and followed by a privacy block

The findings are computed on the very text that is shown or exported (the same rules as the index, with
the same providers), so their offsets are into that text: nothing depends on two extractions agreeing.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import List, Optional

from leaktriage.errors import UsageError

# ANSI styles per kind (terminal only; NO_COLOR and pipes get none)
_STYLE = {"iban": "1;30;43", "nir": "1;30;43", "card": "1;30;43", "passport": "1;30;43", "phone": "30;46",
          "email": "30;46", "dob": "30;45", "address": "30;45"}


@dataclass
class SphereRow:
    locator: str
    sphere: Optional[str]
    confidence: Optional[float]
    sensitive: List[str]
    pii_kinds: List[str]
    reasons: List[dict]


class PrivacyView:
    def __init__(self, con: sqlite3.Connection, providers: frozenset, path: str):
        self.con, self.providers, self.path = con, providers, path

    @classmethod
    def open(cls, db_path: str) -> "PrivacyView":
        if not os.path.isfile(db_path):
            raise UsageError("--db: no index at %s (build one with: leaktriage index MANIFEST --dump DIR -o %s)"
                             % (db_path, db_path))
        try:
            con = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(db_path), uri=True)
            con.execute("SELECT 1 FROM privacy LIMIT 0")
            row = con.execute("SELECT value FROM meta WHERE key = 'privacy_knowledge'").fetchone()
        except sqlite3.DatabaseError:
            raise UsageError("--db: %s is not a leaktriage index with the privacy analyses (rebuild it with "
                             "leaktriage index)" % db_path)
        know = json.loads(row[0]) if row and row[0] else {}
        return cls(con, frozenset((know.get("personal_domains") or {}).keys()), db_path)

    def close(self) -> None:
        self.con.close()

    def findings(self, text: str):
        """[Finding] in text, by position; e-mail addresses only on personal mail providers."""
        return text_findings(text, self.providers)

    def message_locator(self, loc: str) -> Optional[str]:
        """The indexed message that holds loc: loc itself, or the nearest enclosing message."""
        from leaktriage.search.build import owner_locator
        view = self

        class _InIndex:
            def __contains__(self, x):
                return view.con.execute("SELECT 1 FROM messages WHERE locator = ?", (x,)).fetchone() is not None

        return owner_locator(_InIndex(), loc)

    def sphere(self, loc: str) -> Optional[SphereRow]:
        mloc = self.message_locator(loc)
        if mloc is None:
            return None
        row = self.con.execute("SELECT p.sphere, p.confidence, p.sensitive, p.pii_kinds, p.reasons FROM messages m "
                               "LEFT JOIN privacy p ON p.message_id = m.id WHERE m.locator = ?", (mloc,)).fetchone()
        if row is None:
            return None
        return SphereRow(mloc, row[0], row[1], json.loads(row[2]) if row[2] else [],
                         json.loads(row[3]) if row[3] else [], json.loads(row[4]) if row[4] else [])

    def manifest_sha256(self) -> Optional[str]:
        """The SHA-256 of the manifest the index was built from (meta manifest_sha256)."""
        row = self.con.execute("SELECT value FROM meta WHERE key = 'manifest_sha256'").fetchone()
        return row[0] if row and row[0] not in (None, "", "None") else None

    def spheres(self) -> dict:
        """{message locator: sphere} for the whole index."""
        return dict(self.con.execute("SELECT m.locator, p.sphere FROM messages m JOIN privacy p "
                                     "ON p.message_id = m.id"))


def text_findings(text: str, providers=()):
    """[Finding] in a text, by position (the index's rules: leaktriage.search.privacy_analysis.analyse_text,
    charset slips repaired); e-mail addresses only on the known providers and `providers`."""
    from leaktriage.privacy import MessageAnalysis
    from leaktriage.search.privacy_analysis import analyse_text
    return [f for _, f in MessageAnalysis([analyse_text("text", text)], None).findings(providers)]


def _line_col(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return "%d:%d" % (line, col)


def highlight(text: str, findings, color: bool) -> str:
    if not color:
        return text
    out, pos = [], 0
    for f in findings:
        if f.start < pos:
            continue
        out.append(text[pos:f.start])
        out.append("\x1b[%sm%s\x1b[0m" % (_STYLE.get(f.kind, "7"), text[f.start:f.end]))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def privacy_block(text: str, findings, row: Optional[SphereRow], color: bool = False, locator: str = "") -> str:
    """The block printed after the text: the message's sphere with its reasons (from the index), its
    sensitive topics, and every piece of personal data in the text shown (line:column, kind, value, rule)."""
    b = (lambda s: "\x1b[1m%s\x1b[0m" % s) if color else (lambda s: s)
    out = ["", b("Privacy (leaktriage index)")]
    if row is None:
        out.append("  Sphere: not in the index (rebuild it with leaktriage index)")
    elif row.sphere is None:
        out.append("  Sphere: not computed for this message")
    else:
        out.append("  Sphere: %s (confidence %.2f)%s" % (row.sphere, row.confidence or 0,
                                                        "" if row.locator == locator else "  (of the message %s)"
                                                        % row.locator))
        for r in row.reasons[:6]:
            out.append("    %+.2f %s: %s" % (r.get("contribution", 0), r.get("signal"), r.get("detail")))
        out.append("  Sensitive topics: %s" % (", ".join(row.sensitive) or "none"))
    out.append("  Personal data in this text: %d" % len(findings))
    for f in findings:
        out.append("    %-8s %-9s %s  (%s%s)" % (_line_col(text, f.start), f.kind, " ".join(f.value.split()),
                                                 f.rule, "" if f.validated else ", not validated"))
    return "\n".join(out) + "\n"


def decorate(text: str, locator: str, view: PrivacyView, color: bool) -> str:
    fs = view.findings(text)
    shown = highlight(text, fs, color)
    block = privacy_block(text, fs, view.sphere(locator), color, locator)
    # before the closing `Locator:` line of show --text, as the other sections are
    head, sep, tail = shown.rpartition("\nLocator: ")
    if not sep:
        return shown + block
    return head + "\n" + block.rstrip("\n") + sep + tail
