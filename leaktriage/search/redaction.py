"""`leaktriage export --redact pii` and `--exclude-sphere`: texts for publication, with a redaction log.

    drop_sphere(records, spheres, exclude)   the manifest's records without the messages (and their parts,
                                             attachments, problems) whose sphere is excluded; .dropped counts
    TextExport(resolver, view, redact=..., log=...).rows(records, flt)
                                             one row per message (subject and body text) and per attachment
                                             or document in an attached archive (its extracted text)

The text of a message is read as `show --text` reads it (leaktriage.manifest.mailtext, the charsets the
scan chose); an attachment's with leaktriage.text. Personal data are found on that very text (the rules of
the index, and the mail providers the index learned from the whole dump: leaktriage.search.privacy_view)
and replaced by labelled placeholders ([IBAN], [TÉLÉPHONE], ...: leaktriage.privacy.redact). Every
replacement is a line of the redaction log: the item's locator, the field (subject, text), the offsets in
the original and in the redacted text, the kind, the placeholder, the rule that found it and whether it
was validated, and the SHA-256 and length of what was removed (never the value itself), so an editor can
check each one against the evidence. The evidence is only read (through the resolver, checked against the
manifest's digests); nothing is written inside the dump.
"""
from __future__ import annotations

import json
from typing import Dict, Iterable, Iterator, List, Optional, TextIO

from leaktriage.search.build import owner_locator

TEXT_COLUMNS = ("locator", "message", "kind", "filename", "sphere", "status", "redactions", "subject", "text")
TEXT_DEFAULT = TEXT_COLUMNS
KIND_OF_RECORD = {"message": "message", "part": "attachment", "file": "document"}


def choose_text_fields(fields: Optional[str]) -> List[str]:
    from leaktriage.errors import UsageError
    if not fields or fields.strip() == "all":
        return list(TEXT_DEFAULT)
    out = []
    for f in (x.strip() for x in fields.split(",")):
        if f and f not in TEXT_COLUMNS:
            raise UsageError("unknown field %r for table text; choose from: %s" % (f, ", ".join(TEXT_COLUMNS)))
        if f and f not in out:
            out.append(f)
    if not out:
        raise UsageError("--fields is empty")
    return out


class SphereFilter:
    """Leaves out the records of messages whose sphere (in the index) is excluded."""

    def __init__(self, spheres: Dict[str, Optional[str]], exclude: Iterable[str]):
        self.spheres = spheres
        self.exclude = set(exclude)
        self.dropped = 0            # messages left out
        self.not_indexed = 0        # messages the index does not know (kept)
        self._last = (None, False)

    def excluded(self, loc: str) -> bool:
        owner = owner_locator(self.spheres, loc)
        if owner is None:
            return False
        if self._last[0] == owner:
            return self._last[1]
        out = self.spheres.get(owner) in self.exclude
        self._last = (owner, out)
        return out

    def records(self, records: Iterable[dict]) -> Iterator[dict]:
        for r in records:
            kind = r.get("record")
            if kind == "message":
                if r["locator"] not in self.spheres:
                    self.not_indexed += 1
                if self.excluded(r["locator"]):
                    self.dropped += 1
                    continue
            elif kind in ("part", "problem") or (kind == "file" and "#" in r.get("locator", "")):
                # a problem of the message itself has its locator; a document in an attachment X#1.3!zip:a
                # (a part names its message; a problem's "message" is its text)
                if self.excluded((r.get("message") if kind == "part" else None) or r["locator"]):
                    continue
            yield r


class TextExport:
    """Rows of the `text` table; with redact, personal data replaced and each replacement logged."""

    def __init__(self, resolver, view=None, *, redact: bool = False, log: Optional[TextIO] = None,
                 language: str = "fr"):
        self.resolver, self.view, self.redact, self.log, self.language = resolver, view, redact, log, language
        self.redactions = 0
        self.items_redacted = 0
        self.failed = 0
        self._providers = None
        self._spheres = view.spheres() if view is not None else {}

    def _findings(self, text: str):
        if self.view is not None:
            return self.view.findings(text)
        from leaktriage.search.privacy_view import text_findings
        return text_findings(text)

    def _clean(self, locator: str, field: str, text: Optional[str]) -> tuple:
        if not text or not self.redact:
            return text, 0
        from leaktriage.privacy import redact
        new, log = redact(text, self._findings(text), language=self.language, where=field)
        for r in log:
            if self.log is not None:
                d = {"locator": locator}
                d.update(r.as_dict())
                d["field"] = d.pop("where", field)
                self.log.write(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n")
        self.redactions += len(log)
        return new, len(log)

    def _row(self, loc: str, message: str, kind: str, filename, subject, text, status) -> dict:
        subject, n1 = self._clean(loc, "subject", subject)
        text, n2 = self._clean(loc, "text", text)
        if n1 + n2:
            self.items_redacted += 1
        return {"locator": loc, "message": message, "kind": kind, "filename": filename,
                "sphere": self._spheres.get(message), "status": status, "redactions": n1 + n2 if self.redact else None,
                "subject": subject, "text": text}

    def rows(self, records: Iterable[dict], flt) -> Iterator[dict]:
        from leaktriage.manifest.export import groups
        from leaktriage.manifest.mailtext import message_body
        messages: set = set()          # exported message locators (their archive members follow them)
        for g in groups(records):
            head = g.head
            if g.is_message:
                if not flt.message_ok(g):
                    continue
                loc = head["locator"]
                own = [p for p in g.parts if p.get("message") == loc]
                if flt.types and not any(p.get("attachment") and flt.attachment_ok(p) for p in own):
                    continue        # --type: the messages with such an attachment (as -t messages)
                messages.add(loc)
                try:
                    data = self.resolver.message(head, unquoted=True)
                except Exception as exc:  # noqa: BLE001 - the row says why, the export goes on
                    self.failed += 1
                    yield self._row(loc, loc, "message", None, head.get("subject"), None, "unreadable: %s" % exc)
                    continue
                body = message_body(data, own)
                yield self._row(loc, loc, "message", None, head.get("subject"), body.text, "ok")
                for p in own:
                    # an attached message is a message of its own: its row (and its attachments') follow
                    if p.get("attachment") and p.get("sha256") and not _is_message_part(p) and flt.attachment_ok(p):
                        yield self._document(p, loc, data)
            elif head.get("record") == "file" and "#" in head.get("locator", ""):
                owner = owner_locator(messages, head["locator"])
                if owner is not None and head.get("sha256") and head.get("kind") not in _CONTAINERS \
                        and flt.attachment_ok(head):
                    yield self._document(head, owner, None)

    def _document(self, rec: dict, message: str, data: Optional[bytes]) -> dict:
        from leaktriage.text import extract_text
        loc = rec["locator"]
        name = rec.get("filename") or (rec.get("path") or "").rpartition("/")[2] or None
        kind = KIND_OF_RECORD.get(rec.get("record"), "attachment")
        try:
            blob = self.resolver.part(rec, message=data if rec.get("record") == "part" else None)
        except Exception as exc:  # noqa: BLE001
            self.failed += 1
            return self._row(loc, message, kind, name, None, None, "unreadable: %s" % exc)
        r = extract_text(blob, content_type=rec.get("content_type"), magic=rec.get("magic"), filename=name)
        return self._row(loc, message, kind, name, None, r.text, r.status)


def _is_message_part(p: dict) -> bool:
    return "message/rfc822" in ((p.get("content_type") or "").lower(), (p.get("magic") or "").lower())


_CONTAINERS = frozenset({"message", "mbox", "emlx", "msg", "pst", "zip", "tar", "gzip", "bzip2", "xz", "7z", "rar",
                         "tnef", "empty"})
