"""The text of a message, as the index stores and searches it (runs in the index's worker processes).

    extract_message(resolver, job, extractor, analyses) -> MessageResult

- the body: leaktriage.manifest.mailtext (the text parts a reader sees, decoded with the charsets the
  scan chose; HTML turned into text), cut at MAX_BODY_CHARS;
- every attachment, and every document inside an archive attached to the message: its bytes through
  the resolver (checked against the manifest's SHA-256), its danger class (leaktriage.manifest.danger)
  and its text (leaktriage.text, in an IsolatedExtractor: a separate process with hard time and memory
  limits, because PDFium cannot be interrupted). A document whose content was already extracted for an
  earlier message (same SHA-256) is not extracted again: the build hands the first result over;
- the per-message analyses (leaktriage.search.analysis) on the body and attachment texts.

Every failure is a problem with a code (INDEX_CODES or leaktriage.text's TEXT_CODES) and the locator
of what failed, never an exception and never a silent empty string. Results are picklable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from leaktriage.manifest import danger
from leaktriage.manifest.mailtext import message_body
from leaktriage.manifest.resolver import ItemChanged, Resolver
from leaktriage.search.analysis import AttachmentText, MessageAnalysis, MessageText
from leaktriage.search.schema import short_type
from leaktriage.text import TextLimits, detect_format, extract_text

MAX_BODY_CHARS = 2_000_000          # text kept per message body (the rest is cut, with a problem row)
# one document: at most a million characters; a hard 120 s (IsolatedExtractor kills the process), 2 GiB
LIMITS = TextLimits(max_chars=1_000_000, time_budget=60.0, wall_timeout=120.0)
# member kinds (file records inside attachments) whose text is not extracted: containers (their members
# are listed themselves) and mail (messages are indexed as messages)
NO_TEXT_KINDS = frozenset({"message", "mbox", "emlx", "msg", "pst", "zip", "tar", "gzip", "bzip2", "xz", "7z", "rar",
                           "tnef", "empty"})
REPORTED = ("warning", "error")     # text problems of these severities become problem rows; all are in text_codes


@dataclass
class AttachmentResult:
    """What the index stores about one attachment or archive member (locator-free: it may be reused)."""

    risk: Optional[str] = None
    status: Optional[str] = None            # leaktriage.text status, None when the bytes were not read
    format: Optional[str] = None
    chars: Optional[int] = None
    pages: Optional[int] = None
    codes: Tuple[str, ...] = ()             # every text problem code (info ones included)
    text: Optional[str] = None
    problems: List[tuple] = field(default_factory=list)   # (code, message, detail) of reported severities


@dataclass
class MessageResult:
    locator: str
    body: Optional[str]
    status: str                              # ok, truncated, bytes_changed, bytes_unavailable
    problems: List[tuple] = field(default_factory=list)   # (locator, code, message, detail)
    attachments: Dict[str, AttachmentResult] = field(default_factory=dict)   # locator -> result
    analyses: Dict[str, object] = field(default_factory=dict)


@dataclass
class Job:
    """One message to index: its slim record, its own parts, the members of its attached archives, and
    the locators whose text the build will take from an earlier result (same SHA-256)."""

    msg: dict
    parts: List[dict]
    members: List[dict] = field(default_factory=list)
    reuse: frozenset = frozenset()


def _err(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, str(exc)[:300])


def attachment_result(data: bytes, rec: dict, extractor) -> AttachmentResult:
    """Danger class and text of one attachment's (or member's) bytes."""
    name = rec.get("filename") or (rec.get("path") or "").rpartition("/")[2] or None
    res = AttachmentResult(risk=danger.classify(rec.get("magic"), name, data))
    hints = {"content_type": rec.get("content_type"), "magic": rec.get("magic"), "filename": name}
    if detect_format(bytes(data[:1 << 20]), **hints).format.reader is None:
        r = extract_text(data, limits=LIMITS, **hints)        # recognised only: nothing is parsed
    elif extractor is not None:
        r = extractor.extract(data, **hints)
    else:
        r = extract_text(data, limits=LIMITS, **hints)
    res.status, res.format, res.chars, res.pages = r.status, r.format, r.chars, r.pages
    res.codes = tuple(dict.fromkeys(r.codes))
    res.text = r.text
    for p in r.problems:
        if p.severity in REPORTED:
            detail = {k: v for k, v in (("page", p.page), ("part", p.part), ("format", r.format)) if v is not None}
            res.problems.append((p.code, p.message, detail))
    return res


def extract_message(resolver: Resolver, job: Job, extractor=None, analyses: Sequence[MessageAnalysis] = (),
                    with_attachments: bool = True) -> MessageResult:
    msg = job.msg
    loc = msg["locator"]
    try:
        data = resolver.message(msg, unquoted=True)
    except ItemChanged as exc:
        return MessageResult(loc, None, "bytes_changed", [(loc, "index.bytes_changed", str(exc), None)])
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
        return MessageResult(loc, None, "bytes_unavailable", [(loc, "index.bytes_unavailable", _err(exc), None)])
    body = message_body(data, job.parts, LIMITS)
    res = MessageResult(loc, body.text, "ok")
    for n in body.notes:
        if n.severity in REPORTED:
            res.problems.append((n.locator, n.code, n.message, n.detail))
    if len(res.body) > MAX_BODY_CHARS:
        res.problems.append((loc, "index.text_truncated", "%d characters, %d kept" % (len(res.body), MAX_BODY_CHARS),
                             {"chars": len(res.body), "kept": MAX_BODY_CHARS}))
        res.body = res.body[:MAX_BODY_CHARS]
        res.status = "truncated"
    texts: List[AttachmentText] = []
    if with_attachments:
        for rec in [p for p in job.parts if p.get("attachment")] + job.members:
            aloc = rec["locator"]
            if rec.get("is_message") or not rec.get("sha256") or \
                    (rec.get("record") == "file" and rec.get("kind") in NO_TEXT_KINDS):
                continue   # a message of its own, bytes the scan could not read (its problem says why), a container
            name = rec.get("filename") or rec.get("path")
            kind = short_type(rec.get("magic"), rec.get("content_type"), name)
            if aloc in job.reuse:   # the build takes the result of the first copy of these bytes
                texts.append(AttachmentText(aloc, rec.get("sha256"), name, kind, "reused", None))
                continue
            try:
                blob = resolver.part(rec, message=data if rec.get("record") != "file" else None)
            except ItemChanged as exc:
                res.attachments[aloc] = AttachmentResult(problems=[("index.bytes_changed", str(exc), None)])
                continue
            except Exception as exc:  # noqa: BLE001
                res.attachments[aloc] = AttachmentResult(problems=[("index.bytes_unavailable", _err(exc), None)])
                continue
            ar = attachment_result(blob, rec, extractor)
            res.attachments[aloc] = ar
            texts.append(AttachmentText(aloc, rec.get("sha256"), name, kind, ar.status, ar.text))
    if analyses:
        mt = MessageText(loc, msg, res.body or "", tuple(texts))
        for a in analyses:
            try:
                res.analyses[a.name] = a.analyse(mt)
            except Exception as exc:  # noqa: BLE001 - an analysis failing is a problem row, not a crash
                res.problems.append((loc, "index.analysis_failed", "%s: %s" % (a.name, _err(exc)), {"analysis": a.name}))
    return res
