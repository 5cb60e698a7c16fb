"""Mailbox-wide document indicators: facts gathered from every message and attachment of a
custodian's mailbox as the records stream by, judged once the whole dump has been read.

A scan writes each message record once, while reading one file at a time, so a check that needs
the whole mailbox ("this author's name is in a script used nowhere else in the mailbox", "these old
documents, attached to different messages, were all modified within minutes") cannot go into the
message record. It goes into one `mailbox` record per custodian, written after the duplicate groups;
each indicator names the documents and the messages that carry them, so `leaktriage index` files it
under each of those messages.

The collector is mergeable (workers build one per top-level file, the main process merges them in
walk order) and small: a few counters per custodian and one short tuple per attached document.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Tuple

from leaktriage.model import records
from leaktriage.auth.codes import indicator
from leaktriage.auth.documents import BATCH_MIN_DOCS, BATCH_WINDOW, OLD_AGE, parse_utc, script_of
from leaktriage.auth.received import iso

NAME_FIELDS = ("from", "sender", "reply_to", "to", "cc", "bcc")

# (message locator, part locator, sha256, filename, format, author, last_modified_by, created, modified, message date)
Doc = Tuple[str, str, Optional[str], Optional[str], Optional[str], Optional[str], Optional[str],
            Optional[str], Optional[str], Optional[str]]

CONTEXT_MAX = 1024   # messages whose (custodian, date) a document part can look up


class MailboxEvidence:
    """What the mailbox-wide checks need, gathered from message and part records."""

    def __init__(self) -> None:
        self.messages: Counter = Counter()              # custodian -> messages
        self.scripts: Dict[Optional[str], Counter] = {}  # custodian -> script -> names in it
        self.docs: Dict[Optional[str], List[Doc]] = {}  # custodian -> attached documents with metadata
        self._ctx: Dict[str, Tuple[Optional[str], Optional[str]]] = {}  # message locator -> (custodian, date)

    def __getstate__(self):  # the per-message context stays in the worker
        state = dict(self.__dict__)
        state["_ctx"] = {}
        return state

    def add_message(self, rec: dict) -> None:
        cust = rec.get("custodian")
        self.messages[cust] += 1
        # a message's parts are tallied right after it, so only recent messages are looked up:
        # bounded, the context does not grow with the number of messages in one big mbox
        if len(self._ctx) >= CONTEXT_MAX:
            self._ctx.clear()
        self._ctx[rec["locator"]] = (cust, rec.get("date"))
        sc = self.scripts.get(cust)
        if sc is None:
            sc = self.scripts[cust] = Counter()
        names = [cust, rec.get("subject")]
        for key in NAME_FIELDS:
            for a in rec.get(key) or ():
                names.append(a.get("name"))
                names.append((a.get("address") or "").split("@")[0])
        for n in names:
            s = script_of(n)
            if s:
                sc[s] += 1

    def add_document(self, rec: dict) -> None:
        dm = rec.get("docmeta") or {}
        msg = rec.get("message") or ""
        cust, date = self._ctx.get(msg, (None, None))
        self.docs.setdefault(cust, []).append(
            (msg, rec["locator"], rec.get("sha256"), rec.get("filename"), dm.get("format"), dm.get("author"),
             dm.get("last_modified_by"), dm.get("created"), dm.get("modified"), date))

    def merge(self, o: "MailboxEvidence") -> None:
        self.messages.update(o.messages)
        for c, sc in o.scripts.items():
            self.scripts.setdefault(c, Counter()).update(sc)
        for c, docs in o.docs.items():
            self.docs.setdefault(c, []).extend(docs)

    # -- judged at the end ------------------------------------------------------------------

    def records(self) -> List[dict]:
        """One `mailbox` record per custodian (the dump root's loose files as custodian null),
        sorted by custodian."""
        out = []
        for cust in sorted(self.messages, key=lambda c: (c is not None, c or "")):
            docs = sorted(self.docs.get(cust, ()), key=lambda d: (d[1], d[0]))
            scripts = self.scripts.get(cust, Counter())
            inds = foreign_script(docs, scripts) + batch_modified(docs)
            loc = records_locator(cust)
            rec = records.record("mailbox", loc, custodian=cust, messages=self.messages[cust],
                                 documents=len(docs), distinct_documents=len({d[2] or d[1] for d in docs}),
                                 scripts=dict(sorted(scripts.items())), indicators=inds or None)
            out.append(rec)
        return out


def records_locator(cust: Optional[str]) -> str:
    if cust is None:
        return "."
    from leaktriage.model import locator as L
    return L.escape(cust.encode("utf-8", "surrogateescape"))


def foreign_script(docs: List[Doc], scripts: Counter) -> List[dict]:
    """A document author or editor whose name is written in a script that no name of the mailbox
    (custodian, subjects, correspondents' names and addresses) uses."""
    known = {s for s, c in scripts.items() if c}
    if not known:
        return []
    hits: Dict[Tuple[str, str, str], List[Doc]] = {}
    for d in docs:
        for field, name in (("author", d[5]), ("last_modified_by", d[6])):
            s = script_of(name)
            if s and s not in known:
                hits.setdefault((s, field, name), []).append(d)
    out = []
    for (s, field, name), ds in sorted(hits.items()):
        out.append(indicator(
            "auth.doc_author_foreign_script",
            {"field": field, "name": name, "script": s, "mailbox_scripts": sorted(known),
             "mailbox_script_counts": dict(sorted(scripts.items())),
             "docs": [d[1] for d in ds], "messages": sorted({d[0] for d in ds}),
             "filenames": sorted({d[3] for d in ds if d[3]})},
            "The %s name %r on %d document%s is written in %s script, which no name of this mailbox "
            "(custodian, subjects, correspondents) uses." % (field.replace("_", " "), name, len(ds),
                                                               "" if len(ds) == 1 else "s", s.title())))
    return out


def batch_modified(docs: List[Doc]) -> List[dict]:
    """Old documents (created OLD_AGE or more before the message carrying them) attached to
    different messages of the mailbox but all modified within BATCH_WINDOW of each other. A
    document attached several times (same SHA-256) counts once; a batch within a single message is
    already reported in that message's record."""
    seen = set()
    olds = []
    for d in docs:
        key = d[2] or d[1]
        if key in seen:
            continue
        cr, mod = parse_utc(d[7]), parse_utc(d[8])
        if cr is None or mod is None:
            continue
        ref = parse_utc(d[9]) or mod
        if ref - cr < OLD_AGE:
            continue
        seen.add(key)
        olds.append((mod, d))
    olds.sort(key=lambda x: (x[0], x[1][1]))
    out = []
    i = 0
    while i < len(olds):
        # the largest run starting at i within the window; runs do not overlap
        j = i
        while j + 1 < len(olds) and olds[j + 1][0] - olds[i][0] <= BATCH_WINDOW:
            j += 1
        run = olds[i:j + 1]
        msgs = sorted({d[0] for _, d in run})
        if len(run) >= BATCH_MIN_DOCS and len(msgs) >= 2:
            out.append(indicator(
                "auth.mailbox_docs_batch_modified",
                {"docs": [d[1] for _, d in run], "messages": msgs,
                 "modified": [iso(m) for m, _ in run], "created": [d[7] for _, d in run],
                 "window_seconds": int(BATCH_WINDOW.total_seconds())},
                "%d documents created long before, attached to %d different messages of this mailbox, were "
                "all modified within %d minutes of each other." % (len(run), len(msgs),
                                                                   BATCH_WINDOW.total_seconds() // 60)))
            i = j + 1
        else:
            i += 1
    return out
