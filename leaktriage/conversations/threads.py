"""Threads: Jamie Zawinski's algorithm, completed by Outlook's Thread-Index, subject last.

    result = build_threads(message_records)      # manifest `message` records (or dicts shaped alike)
    for m in result.members:                     # one per message, sorted by locator
        m.locator, m.thread_id, m.parent, m.parent_locator, m.parent_missing, m.method, m.depth
    result.threads                               # ThreadSummary per thread, sorted by thread_id (.record())

1. Containers. Every Message-ID is a container; the copies of one email (same Message-ID, same
   email by identity.same_email) share it. Messages that share an id but are different emails
   get a container of their own (`<id>#2`, ...). A message without a Message-ID is keyed by its
   canonical digest (its own copies join it), or by its locator.
2. References (JWZ). For each message, in (date, locator) order, the ids of References followed by
   In-Reply-To (which names the direct parent) are linked in a chain, each link made only when the
   child has no parent yet and the link makes no loop; the message's own container is then put
   under the last id (replacing a link inferred from another message), unless that makes a loop.
   Ids referenced but absent from the dump stay as empty containers: *missing parents*.
3. Thread-Index. A message with neither References nor In-Reply-To and an Outlook Thread-Index of
   22 + 5n bytes goes under the message whose Thread-Index is its own minus the last 5 bytes; when
   that message is not in the dump, under an empty container for it (key `thread-index:<base64>`),
   and so on up to the 22-byte conversation header. Both Thread-Topics, when present, must agree.
4. Subject (last resort, labelled `subject`). A message still without a parent, with a reply prefix
   (Re:, AW:, RE : ...) and no References, In-Reply-To or Thread-Index link, goes under the latest
   earlier message (at most 90 days earlier) with the same subject base whose participants include
   its sender, or whose sender it wrote to. Two messages without a reply prefix are never merged,
   and nothing is merged on the subject alone.

Thread ids are derived from the key of the root container (`t` + 20 hex digits of its SHA-256):
the same on every run, whatever the order of the input, and unchanged by new mail further down.
Memory: a few small tuples per message; texts are never needed.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from .identity import split_by_identity
from .text import (addresses, epoch, first_address, header_value, is_reply_subject, msgid_key,
                   subject_base)

MAX_REFERENCES = 100          # ids kept from one References field (the last ones)
MAX_WALK = 10000              # steps of one loop check; beyond, the link is refused
SUBJECT_WINDOW = 90 * 86400.0
SUBJECT_CANDIDATES = 200      # earlier messages with the same subject looked at, newest first
MAX_MISSING_LISTED = 20

METHODS = ("references", "in-reply-to", "references-inferred", "thread-index", "subject")


class ThreadInput(NamedTuple):
    locator: str
    key: Optional[str]            # Message-ID key or None
    canonical: Optional[str]
    chain: Tuple[str, ...]        # References then In-Reply-To (ids keys, own id removed)
    has_references: bool
    thread_index: Optional[bytes]
    topic: str                    # Thread-Topic, as a subject base
    subject: str                  # as written (decoded)
    subj: str                     # subject base
    reply: bool                   # subject has a reply prefix
    date: Optional[float]
    date_iso: Optional[str]
    sender: Optional[str]
    recipients: Tuple[str, ...]
    custodian: Optional[str]

    @classmethod
    def from_record(cls, rec: dict) -> "ThreadInput":
        key = msgid_key(rec.get("message_id"))
        refs = [k for k in (msgid_key(x) for x in (rec.get("references") or [])[-MAX_REFERENCES:]
                            if isinstance(x, str)) if k]
        irt = [k for k in (msgid_key(x) for x in (rec.get("in_reply_to") or [])[:1] if isinstance(x, str)) if k]
        chain = [r for r in refs if not irt or r != irt[0]] + irt
        seen = set()
        out: List[str] = []
        for r in reversed(chain):   # a repeated id keeps its last place; the direct parent stays last
            if r not in seen and r != key:
                seen.add(r)
                out.append(r)
        out.reverse()
        headers = rec.get("headers")
        subject = rec.get("subject") if isinstance(rec.get("subject"), str) else ""
        topic = header_value(headers, "thread-topic") or ""
        date_iso = rec.get("date") if isinstance(rec.get("date"), str) else None
        return cls(
            locator=str(rec.get("locator")),
            key=key,
            canonical=rec.get("canonical_sha256") if key is None and isinstance(rec.get("canonical_sha256"), str) else None,
            chain=tuple(out),
            has_references=bool(refs),
            thread_index=decode_thread_index(header_value(headers, "thread-index")),
            topic=subject_base(topic),
            subject=subject[:1000],
            subj=subject_base(subject),
            reply=is_reply_subject(subject),
            date=epoch(date_iso),
            date_iso=date_iso,
            sender=first_address(rec.get("from")),
            recipients=tuple(sorted(set(addresses(rec.get("to")) + addresses(rec.get("cc"))))),
            custodian=sys.intern(rec["custodian"]) if isinstance(rec.get("custodian"), str) else None,
        )


class MessageThread(NamedTuple):
    locator: str
    thread_id: str
    parent: Optional[str]          # key of the parent container (a Message-ID, or thread-index:...)
    parent_locator: Optional[str]  # a copy of the parent in the dump (smallest locator), None if missing
    parent_missing: bool           # the parent is referenced but not in the dump
    method: Optional[str]          # how the parent link was made (METHODS), None for a root
    depth: int

    def record(self) -> dict:
        d = {"record": "thread_member", "locator": self.locator, "thread_id": self.thread_id,
             "depth": self.depth}
        if self.parent is not None:
            d.update(parent=self.parent, parent_missing=self.parent_missing, method=self.method)
            if self.parent_locator is not None:
                d["parent_locator"] = self.parent_locator
        return d


class ThreadSummary(NamedTuple):
    thread_id: str
    root: str                      # key of the root container (a Message-ID, canonical:..., thread-index:...)
    root_locator: Optional[str]    # None when the root is not in the dump
    messages: int                  # message records (copies included)
    emails: int                    # distinct emails (containers holding a message)
    missing_ids: Tuple[str, ...]   # referenced but absent, sorted
    custodians: Tuple[str, ...]
    methods: Tuple[Tuple[str, int], ...]   # parent links by method (messages)
    depth: int
    subject: Optional[str]         # of the top message
    first_date: Optional[str]
    last_date: Optional[str]

    def record(self) -> dict:
        d = {"record": "thread", "thread_id": self.thread_id, "root": self.root,
             "root_missing": self.root_locator is None, "messages": self.messages, "emails": self.emails,
             "missing": len(self.missing_ids), "custodians": list(self.custodians),
             "methods": dict(self.methods), "depth": self.depth}
        if self.root_locator is not None:
            d["root_locator"] = self.root_locator
        if self.missing_ids:
            d["missing_ids"] = list(self.missing_ids[:MAX_MISSING_LISTED])
        if self.subject:
            d["subject"] = self.subject
        if self.first_date:
            d["first_date"], d["last_date"] = self.first_date, self.last_date
        return d


@dataclass
class ThreadResult:
    members: List[MessageThread]
    threads: List[ThreadSummary]
    stats: Dict[str, int] = field(default_factory=dict)
    # the container tree, for displays: locator -> key of its own container; and every container
    # without a message (a missing parent) as (thread id, key, parent key or None), sorted
    keys: Dict[str, str] = field(default_factory=dict)
    gaps: List[Tuple[str, str, Optional[str]]] = field(default_factory=list)

    def records(self) -> Iterable[dict]:
        """JSON Lines records: every thread summary, then every message's place."""
        for t in self.threads:
            yield t.record()
        for m in self.members:
            yield m.record()


# --------------------------------------------------------------------------------------------
# Outlook Thread-Index

_B64 = re.compile(r"\s+")


def decode_thread_index(value: Optional[str]) -> Optional[bytes]:
    """The bytes of an Outlook Thread-Index (base64 of a 22-byte conversation header followed by
    5-byte child blocks), or None when the value is absent or not of that shape."""
    if not value or not isinstance(value, str) or len(value) > 4096:
        return None
    try:
        raw = base64.b64decode(_B64.sub("", value), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5:
        return None
    return raw


def thread_index_parent(raw: bytes) -> Optional[bytes]:
    """The Thread-Index of the message this one replies to (None for a conversation starter)."""
    return raw[:-5] if len(raw) > 22 else None


# --------------------------------------------------------------------------------------------

def _thread_id(root_key: str) -> str:
    return "t" + hashlib.sha256(root_key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def build_threads(messages: Iterable[dict]) -> ThreadResult:
    """Thread every message (manifest `message` records, or ThreadInput values)."""
    items: List[ThreadInput] = [m if isinstance(m, ThreadInput) else ThreadInput.from_record(m) for m in messages]
    items.sort(key=lambda m: (m.date is None, m.date or 0.0, m.locator))
    stats: Counter = Counter()

    keys: List[str] = []
    index: Dict[str, int] = {}
    parent: List[int] = []
    how: List[Optional[str]] = []
    msgs: Dict[int, List[int]] = defaultdict(list)   # container -> indexes into items

    def cid(key: str) -> int:
        c = index.get(key)
        if c is None:
            c = index[key] = len(keys)
            keys.append(key)
            parent.append(-1)
            how.append(None)
        return c

    def is_ancestor(anc: int, node: int) -> Optional[bool]:
        """anc is node or one of its ancestors (None: walk too long, treat as a loop)."""
        n = node
        for _ in range(MAX_WALK):
            if n == anc:
                return True
            n = parent[n]
            if n < 0:
                return False
        return None

    # 1. containers
    by_key: Dict[str, List[int]] = defaultdict(list)
    own: List[int] = [0] * len(items)
    for i, m in enumerate(items):
        if m.key is None:
            own[i] = cid("canonical:" + m.canonical if m.canonical else "locator:" + m.locator)
            stats["without_message_id"] += 1
        else:
            by_key[m.key].append(i)
    for key in sorted(by_key):
        idx = by_key[key]
        clusters = split_by_identity(idx, lambda i: (items[i].sender, items[i].subj, items[i].date)) \
            if len(idx) > 1 else [idx]
        for n, cl in enumerate(clusters):
            c = cid(key if n == 0 else "%s#%d" % (key, n + 1))
            for i in cl:
                own[i] = c
        if len(clusters) > 1:
            stats["message_id_reused"] += len(clusters) - 1
    for i in range(len(items)):
        msgs[own[i]].append(i)

    # 2. References / In-Reply-To
    for i, m in enumerate(items):
        if not m.chain:
            continue
        c = own[i]
        prev = -1
        for ref in m.chain:
            r = cid(ref)
            if prev >= 0 and parent[r] < 0 and r != prev:
                loop = is_ancestor(r, prev)
                if loop is False:
                    parent[r] = prev
                    how[r] = "references-inferred"
                else:
                    stats["loops_refused"] += 1
            prev = r
        if prev == c:
            continue
        loop = is_ancestor(c, prev)
        if loop is False:
            parent[c] = prev
            how[c] = "references" if m.has_references else "in-reply-to"
        else:
            stats["loops_refused"] += 1

    # 3. Thread-Index for messages that carry no reference at all
    ti_map: Dict[bytes, int] = {}
    for i, m in enumerate(items):
        if m.thread_index is not None:
            ti_map.setdefault(m.thread_index, own[i])
    topic_of: Dict[int, str] = {}
    for i, m in enumerate(items):
        if m.topic and own[i] not in topic_of:
            topic_of[own[i]] = m.topic
    for i, m in enumerate(items):
        c = own[i]
        if m.chain or parent[c] >= 0 or m.thread_index is None or len(m.thread_index) <= 22:
            continue
        if msgs[c][0] != i:        # one decision per container: its first message's
            continue
        child = c
        ti = m.thread_index
        k = len(ti) - 5
        while k >= 22:
            pref = ti[:k]
            target = ti_map.get(pref)
            if target is not None and target != c:
                t_topic, c_topic = topic_of.get(target), topic_of.get(c)
                if t_topic and c_topic and t_topic != c_topic:
                    stats["thread_index_topic_mismatch"] += 1
                    break
                if is_ancestor(child, target) is False:
                    parent[child] = target
                    how[child] = "thread-index"
                else:
                    stats["loops_refused"] += 1
                break
            mc = cid("thread-index:" + base64.b64encode(pref).decode("ascii"))
            if is_ancestor(child, mc) is not False:
                stats["loops_refused"] += 1
                break
            parent[child] = mc
            how[child] = "thread-index"
            if parent[mc] >= 0:
                break
            child = mc
            k -= 5

    # 4. Subject, last resort
    by_subject: Dict[str, List[Tuple[float, str, int]]] = defaultdict(list)
    for i, m in enumerate(items):
        if m.subj and m.date is not None:
            by_subject[m.subj].append((m.date, m.locator, i))
    for lst in by_subject.values():
        lst.sort()
    for i, m in enumerate(items):
        c = own[i]
        if parent[c] >= 0 or m.chain or not m.reply or not m.subj or m.date is None:
            continue
        if msgs[c][0] != i:
            continue
        lst = by_subject.get(m.subj, [])
        pos = bisect.bisect_left(lst, (m.date, "", -1))
        found = -1
        for j in range(pos - 1, max(-1, pos - 1 - SUBJECT_CANDIDATES), -1):
            d, _, k = lst[j]
            if m.date - d > SUBJECT_WINDOW:
                break
            cand = items[k]
            if own[k] == c:
                continue
            if (m.sender and (m.sender == cand.sender or m.sender in cand.recipients)) or \
                    (cand.sender and cand.sender in m.recipients):
                found = own[k]
                break
        if found >= 0 and is_ancestor(c, found) is False:
            parent[c] = found
            how[c] = "subject"

    # roots and depths (the links make no loop: every walk ends at a root)
    n = len(keys)
    root = [-1] * n
    depth = [0] * n
    for c0 in range(n):
        path = []
        c = c0
        while c >= 0 and root[c] < 0:
            path.append(c)
            c = parent[c]
        if c < 0:
            r, base = path[-1], -1
        else:
            r, base = root[c], depth[c]
        for k, x in enumerate(path):
            root[x] = r
            depth[x] = base + len(path) - k
    tid = {}

    def thread_of(c: int) -> str:
        r = root[c]
        t = tid.get(r)
        if t is None:
            t = tid[r] = _thread_id(keys[r])
        return t

    first_loc = {c: min(items[i].locator for i in lst) for c, lst in msgs.items()}
    members: List[MessageThread] = []
    for i, m in enumerate(items):
        c = own[i]
        p = parent[c]
        members.append(MessageThread(
            locator=m.locator, thread_id=thread_of(c),
            parent=keys[p] if p >= 0 else None,
            parent_locator=first_loc.get(p) if p >= 0 else None,
            parent_missing=p >= 0 and p not in msgs,
            method=how[c] if p >= 0 else None,
            depth=depth[c]))
        if p >= 0:
            stats["method." + how[c]] += 1
            if p not in msgs:
                stats["parent_missing"] += 1
    members.sort(key=lambda x: x.locator)

    # summaries, one thread at a time (containers sorted by root)
    threads = []
    order = sorted(range(n), key=root.__getitem__)
    k0 = 0
    while k0 < n:
        r = root[order[k0]]
        k1 = k0
        while k1 < n and root[order[k1]] == r:
            k1 += 1
        emails = messages_n = max_depth = 0
        missing: List[str] = []
        custodians = set()
        methods: Counter = Counter()
        first = last = top = None
        for c in order[k0:k1]:
            max_depth = max(max_depth, depth[c])
            lst = msgs.get(c)
            if not lst:
                missing.append(keys[c])
                continue
            emails += 1
            messages_n += len(lst)
            if parent[c] >= 0:
                methods[how[c]] += len(lst)
            for i in lst:
                m = items[i]
                if m.custodian:
                    custodians.add(m.custodian)
                if m.date is not None:
                    if first is None or m.date < first[0]:
                        first = (m.date, m.date_iso)
                    if last is None or m.date > last[0]:
                        last = (m.date, m.date_iso)
                rank = (depth[c], m.date is None, m.date or 0.0, m.locator)
                if top is None or rank < top[0]:
                    top = (rank, m.subject)
        k0 = k1
        threads.append(ThreadSummary(
            thread_id=thread_of(r), root=keys[r], root_locator=first_loc.get(r), messages=messages_n,
            emails=emails, missing_ids=tuple(sorted(missing)), custodians=tuple(sorted(custodians)),
            methods=tuple(sorted(methods.items())), depth=max_depth,
            subject=top[1] if top is not None and top[1] else None,
            first_date=first[1] if first else None, last_date=last[1] if last else None))
    threads.sort(key=lambda t: t.thread_id)
    stats["messages"] = len(items)
    stats["emails"] = len(msgs)
    stats["threads"] = len(threads)
    own_keys = {m.locator: keys[own[i]] for i, m in enumerate(items)}
    gaps = sorted((thread_of(c), keys[c], keys[parent[c]] if parent[c] >= 0 else None)
                  for c in range(n) if c not in msgs)
    return ThreadResult(members=members, threads=threads, stats=dict(sorted(stats.items())), keys=own_keys, gaps=gaps)
