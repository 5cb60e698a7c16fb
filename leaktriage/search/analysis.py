"""Where analyses plug into the index: per message (in the workers, next to the text) and per dump
(in the main process, after every message is in).

    MessageAnalysis  name, version, schema; analyse(MessageText) -> result; store(con, message_id, result)
    DumpPass         name, version, schema; run(con)

A MessageAnalysis runs in the index's worker processes, once per message that is (re)indexed, with the
message's decoded body and the extracted text of its attachments (MessageText); its result must be
picklable. store() runs in the main process, in the build's transaction, right after the message row is
inserted: it writes the analysis's own rows or columns (tables declared in `schema`, keyed by
messages(id) ON DELETE CASCADE, so a re-indexed or vanished message takes its rows with it).

A DumpPass runs in the main process after every message is inserted (same transaction): it rewrites
what it owns from the whole index, wholesale, in SQL (groups of copies, threads, contradictions
between copies, correspondents). It must be cheap enough to run on every `leaktriage index`.

The analyses of an index are recorded in meta `analyses` ("name:version ..."): an index built with
other analyses or versions is rebuilt from scratch, like one of another SCHEMA_VERSION. The lists are
here (no registration by import): leaktriage.conversations and leaktriage.privacy add theirs to
message_analyses() / dump_passes(); build_index(..., analyses=, passes=) takes others for tests.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Tuple


@dataclass(frozen=True)
class AttachmentText:
    """One attachment (or document inside an attached archive). The index extracts each content once:
    a later copy of the same bytes (same sha256) comes with status "reused" and text None, so an
    analysis of documents keys its results by sha256 (they hold for every copy)."""

    locator: str
    sha256: Optional[str]
    filename: Optional[str]
    type: Optional[str]             # short type from the content (pdf, docx, ...)
    status: Optional[str]           # leaktriage.text status (ok, partial, empty, failed, unsupported), or reused
    text: Optional[str]             # None when no text was extracted (or reused)


@dataclass(frozen=True)
class MessageText:
    """What a per-message analysis sees: the message record's main fields, its body, its attachments."""

    locator: str
    record: dict                    # locator, date, subject, from, sender, to, cc, bcc, custodian, mailbox, ...
    body: str
    attachments: Tuple[AttachmentText, ...]


class MessageAnalysis(Protocol):
    name: str
    version: int
    schema: str

    def analyse(self, msg: MessageText) -> Any: ...

    def store(self, con: sqlite3.Connection, message_id: int, result: Any) -> None: ...


class DumpPass(Protocol):
    name: str
    version: int
    schema: str

    def run(self, con: sqlite3.Connection) -> None: ...


class SameEmail:
    """The copies of each email: the scan's same-email groups (messages that share canonical_sha256).

    Each message row gets its email_id when it is inserted; this pass recomputes, per email, the first
    copy (lowest message id), the number of copies and the custodians and mailboxes holding one, and
    removes emails left without a copy. Only the narrow `emails` table is written."""

    name = "same-email"
    version = 1
    schema = ""

    def run(self, con: sqlite3.Connection) -> None:
        groups: dict = {}
        for eid, mid, cust, box in con.execute("SELECT email_id, id, custodian, mailbox FROM messages "
                                               "ORDER BY email_id, id"):
            g = groups.get(eid)
            if g is None:
                groups[eid] = [mid, 0, set(), set()]
                g = groups[eid]
            g[1] += 1
            if cust:
                g[2].add(cust)
            if box:
                g[3].add(box)
        current = {r[0]: r[1:] for r in con.execute("SELECT id, first_message, copies, custodians, mailboxes "
                                                    "FROM emails")}
        updates = []
        for eid, (first, n, custs, boxes) in groups.items():
            row = (first, n, json.dumps(sorted(custs), ensure_ascii=False),
                   json.dumps(sorted(boxes), ensure_ascii=False))
            if current.get(eid) != row:
                updates.append(row + (eid,))
        con.executemany("UPDATE emails SET first_message = ?, copies = ?, custodians = ?, mailboxes = ? "
                        "WHERE id = ?", updates)
        gone = [(eid,) for eid in current if eid not in groups]
        con.executemany("DELETE FROM emails WHERE id = ?", gone)


def message_analyses() -> Sequence[MessageAnalysis]:
    """The per-message analyses every index runs: privacy (personal data, topics) and the texts of
    attachments that the conversation pass compares."""
    from leaktriage.search.conversation_passes import DocumentTexts
    from leaktriage.search.privacy_analysis import PrivacyAnalysis
    return (PrivacyAnalysis(), DocumentTexts())


def dump_passes() -> Sequence[DumpPass]:
    """The dump-wide passes every index runs, in order."""
    from leaktriage.search.conversation_passes import Conversations
    from leaktriage.search.privacy_analysis import SpherePass
    return (SameEmail(), SpherePass(), Conversations())


def signature(analyses: Sequence[MessageAnalysis], passes: Sequence[DumpPass]) -> str:
    """What meta `analyses` records: every analysis and pass with its version."""
    return " ".join("%s:%d" % (a.name, a.version) for a in list(analyses) + list(passes))
