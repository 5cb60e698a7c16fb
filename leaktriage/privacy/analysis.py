"""One message's text, analysed once: personal data and topic hits per part (subject, body, each
attachment's text), and the content signals the sphere classifier reads.

    a = analyse_message(subject, body, [(name, text), ...], attachment_names=[...])
    a.findings(personal_domains)   -> [(where, Finding)]   personal data, per part
    a.topics                       -> [(where, TopicHit)]  sensitive-topic hits, per part
    a.sensitive()                  -> ["health", ...]      categories of the message
    a.content                      -> ContentSignals       what the sphere classifier reads

Every part is folded once (the folding of leaktriage search) and that folding serves both the
personal-data rules and the lexicons. E-mail addresses are kept as candidates with their spans:
which of them are personal depends on the mail providers learned from the whole dump, so
`findings(personal_domains)` decides that at the end, without reading the text again.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from leaktriage.text.fold import fold_with_map
from .pii import PII_KINDS, Finding, email_domain, find_pii, known_personal_domains
from .topics import CUES, SENSITIVE, THRESHOLD, TopicHit, lexicon, topic_scores

# kinds that only private papers carry (a phone or an e-mail address is in every signature)
PRIVATE_PII = ("iban", "nir", "card", "dob", "passport", "address")
_TU = re.compile(r"(?<![\w'])(?:(?:tu|te|toi|ton|ta|tes)(?![\w'])|t'(?=[a-z]))")


@dataclass
class ContentSignals:
    """Numbers from the text that the sphere classifier weighs, with the evidence behind them."""
    private: float = 0.0          # private-life register (lexicon "private"), distinct-term weights
    sensitive: float = 0.0        # the five sensitive categories together
    work: float = 0.0             # work register (lexicon "work")
    tu: float = 0.0               # French informal second person (tu, te, toi, ton, ta, tes, t')
    private_pii: float = 0.0      # kinds of private papers found (IBAN, NIR, card, birth date, passport, address)
    words: int = 0                # tokens read
    evidence: Dict[str, List[str]] = field(default_factory=dict)   # signal -> terms or kinds

    def vector(self) -> Dict[str, float]:
        """The content features of the sphere model (capped, so that one long text does not
        outweigh everything else)."""
        return {
            "c_private": min(self.private, 12.0) / 4.0,
            "c_sensitive": min(self.sensitive, 15.0) / 5.0,
            "c_work": min(self.work, 15.0) / 5.0,
            "c_tu": math.log1p(min(self.tu, 20.0)),
            "c_private_pii": min(self.private_pii, 3.0),
            "c_empty": 1.0 if self.words < 3 else 0.0,
        }


@dataclass
class PartAnalysis:
    where: str                                  # "subject", "body", "attachment:<name>", "attachment-names"
    text: str
    folded: str
    findings: List[Finding]                     # personal data except e-mail addresses
    emails: List[Finding]                       # every e-mail address (validated=False until decided)
    topics: List[TopicHit]


@dataclass
class MessageAnalysis:
    parts: List[PartAnalysis]
    content: ContentSignals

    @property
    def topics(self) -> List[Tuple[str, TopicHit]]:
        return [(p.where, h) for p in self.parts for h in p.topics if h.category in SENSITIVE]

    def topic_scores(self) -> Dict[str, int]:
        return topic_scores(h for p in self.parts for h in p.topics)

    def sensitive(self, threshold: int = THRESHOLD, personal: Optional[bool] = None,
                  personal_domains: Iterable[str] = ()) -> List[str]:
        """Sensitive categories of the message: those whose distinct-term weights reach the
        threshold. With personal=True (the message is private mail), a bank account or card number
        in it makes it a finances message too."""
        sc = self.topic_scores()
        cats = {c for c in SENSITIVE if sc.get(c, 0) >= threshold}
        if personal and any(f.kind in ("iban", "card") for _, f in self.findings(personal_domains)):
            cats.add("finances")
        return [c for c in SENSITIVE if c in cats]

    def main_topics(self, threshold: int = THRESHOLD, ratio: float = 0.5) -> List[str]:
        """The dominant sensitive categories: at the threshold and at least `ratio` of the top score
        (a health message that mentions the children is not a family message)."""
        sc = self.topic_scores()
        top = max([sc.get(c, 0) for c in SENSITIVE] + [0])
        return [c for c in SENSITIVE if sc.get(c, 0) >= threshold and sc.get(c, 0) >= ratio * top]

    def findings(self, personal_domains: Iterable[str] = ()) -> List[Tuple[str, Finding]]:
        """(where, finding) for every piece of personal data, e-mail addresses included when their
        domain is a personal mail provider (the shipped list, plus `personal_domains`)."""
        learned = {d.lower() for d in personal_domains}
        known = known_personal_domains()
        out: List[Tuple[str, Finding]] = []
        for p in self.parts:
            if p.where == "attachment-names":
                continue
            fs = list(p.findings)
            for e in p.emails:
                dom = email_domain(e.value)
                if dom in learned and dom not in known:
                    fs.append(Finding("email", e.start, e.end, e.value, e.normalized, True, "email:learned-provider"))
                elif dom in known:
                    fs.append(Finding("email", e.start, e.end, e.value, e.normalized, True, "email:provider-list"))
            fs.sort(key=lambda f: (f.start, f.end, f.kind))
            out.extend((p.where, f) for f in fs)
        return out

    def pii_kinds(self, personal_domains: Iterable[str] = ()) -> List[str]:
        got = {f.kind for _, f in self.findings(personal_domains)}
        return [k for k in PII_KINDS if k in got]


def analyse_part(where: str, text: str, *, pii: bool = True) -> PartAnalysis:
    folded = fold_with_map(text) if text else ("", [])
    findings: List[Finding] = []
    emails: List[Finding] = []
    if pii and text:
        # every e-mail address is collected with its span; which ones are personal is decided by
        # MessageAnalysis.findings(personal_domains), once the dump's providers are known
        for f in find_pii(text, folded=folded, every_email=True):
            if f.kind == "email":
                emails.append(Finding("email", f.start, f.end, f.value, f.normalized, False, "email:candidate"))
            else:
                findings.append(f)
    topics = lexicon().scan(text, None, folded) if text else []
    return PartAnalysis(where, text, folded[0], findings, emails, topics)


def analyse_message(subject: str = "", body: str = "", attachments: Sequence[Tuple[str, str]] = (),
                    attachment_names: Sequence[str] = ()) -> MessageAnalysis:
    """Analyse the subject, the body text and the attachments' text of one message."""
    parts = [analyse_part("subject", subject or ""), analyse_part("body", body or "")]
    for name, text in attachments:
        parts.append(analyse_part("attachment:%s" % name, text or ""))
    names = " \n".join(n for n in attachment_names if n)
    if names:
        parts.append(analyse_part("attachment-names", names, pii=False))
    return MessageAnalysis(parts, content_signals(parts))


def content_signals(parts: Sequence[PartAnalysis]) -> ContentSignals:
    hits = [h for p in parts for h in p.topics]
    sc = topic_scores(hits)
    ev: Dict[str, List[str]] = {}
    for cat in CUES + SENSITIVE:
        terms = sorted({h.term for h in hits if h.category == cat})
        if terms:
            ev[cat] = terms
    kinds = sorted({f.kind for p in parts for f in p.findings if f.kind in PRIVATE_PII})
    if kinds:
        ev["private_pii"] = kinds
    tu = 0
    words = 0
    for p in parts:
        if not p.text:
            continue
        f = p.folded
        tu += len(_TU.findall(f))
        words += len(f.split())
    return ContentSignals(private=sc.get("private", 0), sensitive=sum(sc.get(c, 0) for c in SENSITIVE),
                          work=sc.get("work", 0), tu=tu, private_pii=len(kinds), words=words, evidence=ev)
