"""Corroboration: do the copies of one email agree?

    copies = [Copy.from_records(msg, parts, texts) for ...]   # texts: part locator -> decoded text
    result = corroborate(copies, text_of=texts.get)
    result.groups        # one dict per email stored more than once, sorted by group id
    result.indicators    # (message locator, indicator dict), sorted

What is a copy. Messages are copies of one email when they share a Message-ID and are the same
email by identity.same_email (From, Subject, Date: at most one differs), or share a canonical
digest (the scan's same-email digest: transport headers and line endings ignored).

What is compared, part by part:
- body text: the text/plain body parts of both copies (joined), and their text/html body parts
  (rendered to text); a copy with only one kind is compared with the other's other kind on words
  alone. Texts are compared as token sequences (NFKC word runs and punctuation marks), never as
  bytes: line endings, trailing white space, line wrapping, charset and transfer-encoding changes,
  and the difference between a plain part and its HTML rendering do not count.
- attachments, paired by file name (then by order): the SHA-256 of the decoded bytes; text/*
  attachments (.txt, .csv) whose bytes differ are compared as text the same way.
- data hidden in a multipart preamble or epilogue (not shown by mail programs; the scan records it
  with its digest): present in one copy only, or different.
- identity headers: From, To and Cc addresses (as sets; Bcc is never compared: only the sender's
  copy has it), Subject (white space collapsed) and Date. A field absent from one copy is not compared.
Copies with no difference form one variant; an email with two variants or more is a contradiction:
`copy.contradiction` on every copy, naming the copies of the other variants and the parts that
differ, with both locators and the differing passages (when text_of gives the texts).

What is counted. `independent_custodians` is the number of distinct custodians holding a copy of
the variant: copies in one custodian's mailboxes (the Sent copy and an Inbox copy of mail sent to
oneself, a duplicate in an archive folder, a copy attached to a forward) count once, so the Sent copy
and a recipient's Inbox copy count as two only when they are in different custodians' mailboxes.
Messages without a custodian (loose files at the dump root) count as one unknown custodian.
`copy.corroborated` is given when one variant is held by two custodians or more.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from .codes import indicator
from .identity import differences, split_by_identity
from .passages import differing_passages
from .text import addresses, epoch, first_address, html_text, msgid_key, subject_base, text_fingerprints

MAX_LISTED = 20
NO_CUSTODIAN = "(no custodian)"

SENT_NAMES = frozenset("""
sent sentitems sentmail sentmessages sentmail sent-mail envoyes envoyés elementsenvoyes élémentsenvoyés
messagesenvoyes messagesenvoyés courrierenvoye courrierenvoyé gesendet gesendeteobjekte gesendeteelemente
enviados elementosenviados postainviata inviata inviati verzonden verzondenitems skickat sendt lähetetyt
wyslane wysłane odeslane odeslaná enviadas itensenviados
""".split())


def mailbox_role(mailbox: Optional[str], source: Optional[str]) -> str:
    """sent | received | attached: from the mailbox's last folder name (Sent, Sent Items,
    Éléments envoyés, Gesendet, .Sent, Sent.mbox, [Gmail]/Sent Mail ...) and the message source."""
    if source in ("rfc822", "attachment"):
        return "attached"
    if not mailbox:
        return "received"
    last = re.split(r"[/!]|:", mailbox)[-1]
    last = re.sub(r"\.(mbox|mbx|sbd)$", "", last, flags=re.I).lstrip(".")
    squashed = re.sub(r"[\s_\-.\[\]]", "", unicodedata.normalize("NFC", last).lower())
    if squashed in SENT_NAMES or squashed.replace("gmail", "") in SENT_NAMES:
        return "sent"
    return "received"


class Body(NamedTuple):
    kind: str                      # "text/plain" or "text/html"
    locators: Tuple[str, ...]      # its parts
    tokens_fp: str                 # fingerprint of words and punctuation
    words_fp: str                  # fingerprint of words only
    words: int
    exact: bool = False            # no text was given: the fingerprints are of the decoded bytes


class Attachment(NamedTuple):
    name: str                      # file name as written, or "(content type #n)"
    name_key: str                  # for pairing
    locator: str
    sha256: Optional[str]
    content_type: str
    text_fp: Optional[str]         # tokens fingerprint of its text, for text/* attachments


class Copy(NamedTuple):
    locator: str
    key: Optional[str]             # Message-ID key
    canonical: Optional[str]
    custodian: Optional[str]
    mailbox: Optional[str]
    role: str                      # sent | received | attached
    dkim: Optional[str]            # dkim_summary
    reconstructed: bool
    sender: Optional[str]
    recipients_to: Tuple[str, ...]
    recipients_cc: Tuple[str, ...]
    subject: str                   # white space collapsed, NFC
    subj: str                      # subject base (identity)
    date: Optional[float]
    bodies: Tuple[Body, ...]
    attachments: Tuple[Attachment, ...]
    hidden: Tuple[Tuple[str, str, Optional[str]], ...] = ()   # (preamble:PATH / epilogue:PATH, part locator, sha256)
    line_endings: Optional[str] = None

    @classmethod
    def from_records(cls, msg: dict, parts: Sequence[dict], texts: Mapping[str, Optional[str]]) -> "Copy":
        """A copy from a manifest message record, its part records, and the decoded texts of its
        parts (text/plain and text/html body parts: the decoded text, HTML as HTML; attachments:
        the extracted text, when there is one)."""
        loc = msg.get("locator")
        leaves = [p for p in parts if isinstance(p, dict) and p.get("message", loc) == loc
                  and not str(p.get("content_type", "")).startswith("multipart/")]
        bodies: List[Body] = []
        for kind in ("text/plain", "text/html"):
            sel = [p for p in leaves if not p.get("attachment") and p.get("content_type") == kind]
            if not sel:
                continue
            locs = tuple(str(p.get("locator")) for p in sel)
            if all(texts.get(p.get("locator")) is not None for p in sel):
                joined = "\n".join(_render(kind, texts[p["locator"]]) for p in sel)
                tfp, wfp, nw = text_fingerprints(joined)
                bodies.append(Body(kind, locs, tfp, wfp, nw))
            elif all(isinstance(p.get("sha256"), str) for p in sel):
                fp = "sha256:" + ",".join(p["sha256"] for p in sel)
                bodies.append(Body(kind, locs, fp, fp, 0, exact=True))
        atts: List[Attachment] = []
        seen: Dict[str, int] = defaultdict(int)
        for p in leaves:
            if not p.get("attachment"):
                continue
            ct = str(p.get("content_type") or "application/octet-stream")
            fn = p.get("filename") if isinstance(p.get("filename"), str) else None
            base = unicodedata.normalize("NFC", fn).casefold().strip() if fn else "(%s)" % ct
            seen[base] += 1
            name_key = "%s#%d" % (base, seen[base])
            tfp = None
            if ct.startswith("text/"):
                t = texts.get(p.get("locator"))
                if t is not None:
                    tfp = text_fingerprints(_render(ct, t))[0]
            atts.append(Attachment(fn or "(%s #%d)" % (ct, seen[base]), name_key, str(p.get("locator")),
                                   p.get("sha256") if isinstance(p.get("sha256"), str) else None, ct, tfp))
        hidden = []
        for p in parts:
            if not isinstance(p, dict) or p.get("message", loc) != loc:
                continue
            for where in ("preamble", "epilogue"):
                x = p.get(where)
                if isinstance(x, dict) and x.get("data"):
                    hidden.append(("%s:%s" % (where, p.get("path")), str(p.get("locator")),
                                   x.get("sha256") if isinstance(x.get("sha256"), str) else None))
        subject = msg.get("subject") if isinstance(msg.get("subject"), str) else ""
        return cls(
            locator=str(msg.get("locator")),
            key=msgid_key(msg.get("message_id")),
            canonical=msg.get("canonical_sha256") if isinstance(msg.get("canonical_sha256"), str) else None,
            custodian=msg.get("custodian") if isinstance(msg.get("custodian"), str) else None,
            mailbox=msg.get("mailbox") if isinstance(msg.get("mailbox"), str) else None,
            role=mailbox_role(msg.get("mailbox"), msg.get("source")),
            dkim=msg.get("dkim_summary") if isinstance(msg.get("dkim_summary"), str) else None,
            reconstructed=bool(msg.get("reconstructed")),
            sender=first_address(msg.get("from")),
            recipients_to=tuple(sorted(set(addresses(msg.get("to"))))),
            recipients_cc=tuple(sorted(set(addresses(msg.get("cc"))))),
            subject=" ".join(unicodedata.normalize("NFC", subject[:2000]).split()),
            subj=subject_base(subject),
            date=epoch(msg.get("date")),
            bodies=tuple(bodies),
            attachments=tuple(atts),
            hidden=tuple(sorted(hidden)),
            line_endings=msg.get("line_endings") if isinstance(msg.get("line_endings"), str) else None,
        )


def _render(content_type: str, text: str) -> str:
    return html_text(text) if content_type == "text/html" else text


# --------------------------------------------------------------------------------------------
# grouping

def duplicate_candidates(messages: Iterable[dict]) -> Set[str]:
    """Locators of the messages that share a Message-ID or a canonical digest with another message
    (the only ones corroborate() needs): one pass over small keys, for building Copy values only
    for them."""
    first: Dict[str, str] = {}
    out: Set[str] = set()
    for m in messages:
        loc = m.get("locator")
        for k in (msgid_key(m.get("message_id")), m.get("canonical_sha256")):
            if not isinstance(k, str):
                continue
            other = first.setdefault(k, loc)
            if other != loc:
                out.add(other)
                out.add(loc)
    return out


class _UF:
    def __init__(self) -> None:
        self.p: Dict[int, int] = {}

    def find(self, x: int) -> int:
        p = self.p
        p.setdefault(x, x)
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.p[rb] = ra
            else:
                self.p[ra] = rb


# --------------------------------------------------------------------------------------------
# comparison

def _addr_diff(a: Sequence[str], b: Sequence[str]) -> bool:
    return bool(a) and bool(b) and set(a) != set(b)


def _bodies(a: Copy, b: Copy) -> List[Tuple[str, Body, Body, bool]]:
    """[(part name, body of a, body of b, words_only)]: the body texts to compare."""
    ak = {x.kind: x for x in a.bodies}
    bk = {x.kind: x for x in b.bodies}
    common = [k for k in ("text/plain", "text/html") if k in ak and k in bk]
    loose = a.reconstructed or b.reconstructed
    if common:
        return [("body:" + k, ak[k], bk[k], loose) for k in common]
    if ak and bk:                              # one has plain only, the other HTML only
        x, y = a.bodies[0], b.bodies[0]
        return [("body:%s~%s" % (x.kind, y.kind), x, y, True)]
    return []


def _bodies_diff(a: Copy, b: Copy) -> List[Tuple[str, Body, Body, bool]]:
    """The body texts that differ. A body known only by the digest of its bytes (no text was
    given) proves nothing when it differs (a re-encoding changes the bytes): not compared."""
    out = []
    for name, x, y, words_only in _bodies(a, b):
        if x.exact or y.exact:
            continue
        same = x.words_fp == y.words_fp if words_only else x.tokens_fp == y.tokens_fp
        if not same:
            out.append((name, x, y, words_only))
    return out


def not_compared(a: Copy, b: Copy) -> List[str]:
    """Body parts that could not be compared: no text for one copy or both, and not the same bytes."""
    return [name for name, x, y, _ in _bodies(a, b) if (x.exact or y.exact) and x.tokens_fp != y.tokens_fp]


def _attachments_diff(a: Copy, b: Copy) -> List[Tuple[str, Optional[Attachment], Optional[Attachment]]]:
    out = []
    am = {x.name_key: x for x in a.attachments}
    bm = {x.name_key: x for x in b.attachments}
    for k in sorted(set(am) | set(bm)):
        x, y = am.get(k), bm.get(k)
        if x is None or y is None:
            out.append(("attachment:" + (x or y).name, x, y))
            continue
        if x.sha256 == y.sha256:
            continue
        if x.text_fp is not None and x.text_fp == y.text_fp:
            continue       # the same text, re-encoded
        out.append(("attachment:" + x.name, x, y))
    return out


def _hidden_diff(a: Copy, b: Copy) -> List[Tuple[str, Optional[tuple], Optional[tuple]]]:
    """Data in a multipart preamble or epilogue (what mail programs do not show) present in one copy
    only, or different. Both present with different digests but different line endings: not
    compared (the digest is of the raw bytes)."""
    out = []
    am = {x[0]: x for x in a.hidden}
    bm = {x[0]: x for x in b.hidden}
    for k in sorted(set(am) | set(bm)):
        x, y = am.get(k), bm.get(k)
        if x is not None and y is not None and (x[2] == y[2] or a.line_endings != b.line_endings):
            continue
        out.append((k, x, y))
    return out


def _header_diff(a: Copy, b: Copy) -> List[Tuple[str, object, object]]:
    out = []
    if a.sender and b.sender and a.sender != b.sender:
        out.append(("header:from", a.sender, b.sender))
    if _addr_diff(a.recipients_to, b.recipients_to):
        out.append(("header:to", list(a.recipients_to), list(b.recipients_to)))
    if _addr_diff(a.recipients_cc, b.recipients_cc):
        out.append(("header:cc", list(a.recipients_cc), list(b.recipients_cc)))
    if a.subject and b.subject and a.subject != b.subject:
        out.append(("header:subject", a.subject, b.subject))
    if a.date is not None and b.date is not None and a.date != b.date:
        out.append(("header:date", a.date, b.date))
    return out


def differ(a: Copy, b: Copy) -> List[str]:
    """Names of the parts in which two copies differ ([] when they agree)."""
    return ([d[0] for d in _header_diff(a, b)] + [d[0] for d in _bodies_diff(a, b)]
            + [d[0] for d in _attachments_diff(a, b)] + [d[0] for d in _hidden_diff(a, b)])


def _detail(a: Copy, b: Copy, text_of: Optional[Callable[[str], Optional[str]]]) -> List[dict]:
    out: List[dict] = []
    for name, x, y in _header_diff(a, b):
        if name == "header:date":
            x, y = _iso(x), _iso(y)
        out.append({"part": name, "a": a.locator, "b": b.locator, "a_value": x, "b_value": y})
    for name, x, y, words_only in _bodies_diff(a, b):
        d = {"part": name, "a": list(x.locators), "b": list(y.locators)}
        if words_only:
            d["compared"] = "words"
        ta, tb = _joined(x, text_of), _joined(y, text_of)
        if ta is not None and tb is not None:
            d.update(differing_passages(ta, tb))
        out.append(d)
    for name, x, y in _attachments_diff(a, b):
        d = {"part": name, "a": x.locator if x else None, "b": y.locator if y else None,
             "a_sha256": x.sha256 if x else None, "b_sha256": y.sha256 if y else None}
        if x is None or y is None:
            d["change"] = "missing"
        elif text_of is not None:
            ta, tb = text_of(x.locator), text_of(y.locator)
            if ta is not None and tb is not None:
                ta, tb = _render(x.content_type, ta), _render(y.content_type, tb)
                d.update(differing_passages(ta, tb))
                if d.get("change") == "same":
                    d["change"] = "bytes-only"     # same text, different file (metadata, layout...)
        out.append(d)
    for name, x, y in _hidden_diff(a, b):
        out.append({"part": name, "a": x[1] if x else a.locator, "b": y[1] if y else b.locator,
                    "a_sha256": x[2] if x else None, "b_sha256": y[2] if y else None,
                    "change": "added" if x is None else "removed" if y is None else "edited"})
    return out


def _joined(body: Body, text_of) -> Optional[str]:
    if text_of is None:
        return None
    texts = []
    for loc in body.locators:
        t = text_of(loc)
        if t is None:
            return None
        texts.append(_render(body.kind, t))
    return "\n".join(texts)


def _iso(t: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------

@dataclass
class CorroborationResult:
    groups: List[dict]
    indicators: List[Tuple[str, dict]]
    stats: Dict[str, int] = field(default_factory=dict)

    def records(self) -> Iterable[dict]:
        return iter(self.groups)


def _custodian(c: Copy) -> str:
    return c.custodian if c.custodian is not None else NO_CUSTODIAN


COUNTED = ("distinct custodians holding the copy: copies in one custodian's mailboxes (Sent and Inbox, "
           "archive folders, a copy attached to a forward) count once")


def corroborate(copies: Iterable[Copy], *, text_of: Optional[Callable[[str], Optional[str]]] = None) -> CorroborationResult:
    """Compare the copies of every email stored more than once."""
    items = sorted(copies, key=lambda c: (c.date is None, c.date or 0.0, c.locator))
    uf = _UF()
    reused: List[Tuple[str, List[List[int]]]] = []
    by_key: Dict[str, List[int]] = defaultdict(list)
    by_canon: Dict[str, List[int]] = defaultdict(list)
    for i, c in enumerate(items):
        uf.find(i)
        if c.key:
            by_key[c.key].append(i)
        if c.canonical:
            by_canon[c.canonical].append(i)
    ckey: Dict[int, str] = {}
    for key in sorted(by_key):
        idx = by_key[key]
        clusters = split_by_identity(idx, lambda i: (items[i].sender, items[i].subj, items[i].date)) \
            if len(idx) > 1 else [idx]
        for n, cl in enumerate(clusters):
            for i in cl:
                ckey[i] = key if n == 0 else "%s#%d" % (key, n + 1)
            for i in cl[1:]:
                uf.union(cl[0], i)
        if len(clusters) > 1:
            reused.append((key, clusters))
    for idx in by_canon.values():
        for i in idx[1:]:
            uf.union(idx[0], i)
    groups_idx: Dict[int, List[int]] = defaultdict(list)
    for i in range(len(items)):
        groups_idx[uf.find(i)].append(i)

    groups: List[dict] = []
    inds: List[Tuple[str, dict]] = []
    stats: Dict[str, int] = defaultdict(int)
    for members in groups_idx.values():
        if len(members) < 2:
            continue
        cps = [items[i] for i in members]
        keyed = [ckey[i] for i in members if i in ckey]
        gkey = min(keyed) if keyed else "canonical:" + min(c.canonical for c in cps if c.canonical)
        gid = "c" + hashlib.sha256(gkey.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        variants: List[List[Copy]] = []
        for c in cps:
            for v in variants:
                if not differ(v[0], c):
                    v.append(c)
                    break
            else:
                variants.append([c])
        variants.sort(key=lambda v: (-len({_custodian(c) for c in v}), -len(v), min(c.locator for c in v)))
        vinfo = []
        for n, v in enumerate(variants):
            custs = sorted({_custodian(c) for c in v})
            vinfo.append({"variant": n, "copies": sorted(c.locator for c in v), "custodians": custs,
                          "independent_custodians": len(custs),
                          "dkim": dict(sorted((c.locator, c.dkim) for c in v if c.dkim))})
        copies_out = [{"locator": c.locator, "custodian": c.custodian, "mailbox": c.mailbox, "role": c.role,
                       "variant": n} for n, v in enumerate(variants) for c in v]
        copies_out.sort(key=lambda d: d["locator"])
        unchecked = sorted({(n, v[0].locator, c.locator) for v in variants for c in v[1:]
                            for n in not_compared(v[0], c)})
        g = {"record": "copy_group", "group": gid, "message_id": gkey if not gkey.startswith("canonical:") else None,
             "canonical_sha256": sorted({c.canonical for c in cps if c.canonical}),
             "copies": copies_out, "variants": vinfo, "counted": COUNTED,
             "independent_custodians": len({_custodian(c) for c in cps})}
        if g["message_id"] is None:
            del g["message_id"]
        if unchecked:
            g["not_compared"] = [{"part": n, "a": x, "b": y} for n, x, y in unchecked]
        if len(variants) == 1:
            g["verdict"] = "incomplete" if unchecked else \
                "corroborated" if vinfo[0]["independent_custodians"] >= 2 else "single-custodian"
            stats[g["verdict"]] += 1
            if g["verdict"] == "corroborated":
                ev = {"group": gid, "custodians": vinfo[0]["custodians"],
                      "independent_custodians": vinfo[0]["independent_custodians"], "copies": len(cps),
                      "counted": COUNTED}
                for c in cps:
                    inds.append((c.locator, indicator(
                        "copy.corroborated", ev,
                        "%d copies of this email in the mailboxes of %d custodians are identical (body text "
                        "and attachments)." % (len(cps), vinfo[0]["independent_custodians"]))))
        else:
            g["verdict"] = "contradiction"
            stats["contradiction"] += 1
            diffs = []
            base = variants[0][0]
            for n, v in enumerate(variants[1:], 1):
                for d in _detail(base, v[0], text_of):
                    d["variants"] = [0, n]
                    diffs.append(d)
            g["differences"] = diffs
            for n, v in enumerate(variants):
                others = sorted(c.locator for m, w in enumerate(variants) if m != n for c in w)
                parts = sorted({d["part"] for d in diffs if n in d["variants"]})
                ev = {"group": gid, "variant": n, "parts": parts,
                      "other_copies": others[:MAX_LISTED],
                      "other_custodians": sorted({_custodian(c) for m, w in enumerate(variants) if m != n for c in w}),
                      "this_custodians": vinfo[n]["custodians"]}
                if len(others) > MAX_LISTED:
                    ev["more"] = len(others) - MAX_LISTED
                dk = {c.locator: c.dkim for w in variants for c in w if c.dkim}
                if dk:
                    ev["dkim"] = dict(sorted(dk.items()))
                for c in v:
                    inds.append((c.locator, indicator(
                        "copy.contradiction", ev,
                        "Another copy of this email (held by %s) differs in %s: one of the copies was changed "
                        "after it was sent, or on the way." % (", ".join(ev["other_custodians"]), ", ".join(parts)))))
        groups.append(g)
    for key, clusters in reused:
        stats["message_id_reused"] += 1
        locs = [[items[i].locator for i in cl] for cl in clusters]
        for n, cl in enumerate(clusters):
            other = sorted(l for m, ls in enumerate(locs) if m != n for l in ls)
            diff = sorted(set(differences(
                (items[cl[0]].sender, items[cl[0]].subj, items[cl[0]].date),
                (items[clusters[0 if n else 1][0]].sender, items[clusters[0 if n else 1][0]].subj,
                 items[clusters[0 if n else 1][0]].date))))
            ev = {"message_id": key, "other_emails": other[:MAX_LISTED], "differs": diff}
            for i in cl:
                inds.append((items[i].locator, indicator(
                    "copy.message_id_reused", ev,
                    "Another email with different %s carries the same Message-ID %s." % (" and ".join(diff), key))))
    groups.sort(key=lambda g: g["group"])
    inds.sort(key=lambda x: (x[0], x[1]["code"]))
    stats["groups"] = len(groups)
    stats["copies"] = sum(len(g["copies"]) for g in groups)
    return CorroborationResult(groups=groups, indicators=inds, stats=dict(sorted(stats.items())))
