"""Totals of a scan, built from the records as they stream by (mergeable across workers)."""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional

from leaktriage.auth.mailbox import MailboxEvidence
from leaktriage.model.records import is_entity, record

EXAMPLES = 3


class Tally:
    def __init__(self):
        self.files = 0
        self.file_bytes = 0
        self.by_kind: Counter = Counter()
        self.non_mail = 0
        self.messages = 0
        self.by_source: Counter = Counter()
        self.reconstructed = 0
        self.date_min: Optional[str] = None
        self.date_max: Optional[str] = None
        self.undated = 0
        self.custodians: Counter = Counter()
        self.mailboxes: Counter = Counter()
        self.parts = 0
        self.attachments = 0
        self.att_bytes = 0
        self.att_hashes: set = set()
        self.att_types: Counter = Counter()
        self.mismatch: Counter = Counter()
        self.mismatch_examples: Dict[str, List[str]] = {}
        self.problems: Counter = Counter()
        self.severity: Counter = Counter()
        self.problem_examples: Dict[str, List[str]] = {}
        self.msg_keys: List[tuple] = []  # (exact digest, canonical digest, locator, custodian)
        self.signed = 0
        self.dkim_summary: Counter = Counter()
        self.dkim_verdicts: Counter = Counter()
        self.dkim_domains: Dict[str, Counter] = {}
        self.missing_keys: Counter = Counter()
        self.indicators: Counter = Counter()
        self.indicator_examples: Dict[str, List[str]] = {}
        self.mailbox = MailboxEvidence()

    def add(self, rec: dict) -> None:
        kind = rec["record"]
        if kind == "file":
            self.files += 1
            self.file_bytes += rec.get("size", 0) if "parent" not in rec else 0
            k = rec.get("kind") or rec.get("entry")
            self.by_kind[k] += 1
            if k not in ("message", "mbox", "msg", "pst", "emlx") and not k in (
                    "zip", "tar", "gzip", "bzip2", "xz", "7z", "rar", "tnef"):
                self.non_mail += 1
        elif kind == "message":
            self.messages += 1
            self.mailbox.add_message(rec)
            self.by_source[rec.get("source")] += 1
            if rec.get("reconstructed"):
                self.reconstructed += 1
            d = rec.get("date")
            if d:
                if self.date_min is None or d < self.date_min:
                    self.date_min = d
                if self.date_max is None or d > self.date_max:
                    self.date_max = d
            else:
                self.undated += 1
            if rec.get("custodian"):
                self.custodians[rec["custodian"]] += 1
            if rec.get("mailbox"):
                self.mailboxes[rec["mailbox"]] += 1
            self.msg_keys.append((rec.get("unquoted_sha256") or rec["sha256"], rec["canonical_sha256"],
                                  rec["locator"], rec.get("custodian")))
            sigs = rec.get("dkim")
            if sigs:
                self.signed += 1
                self.dkim_summary[rec.get("dkim_summary", "none")] += 1
                for sig in sigs:
                    v = sig.get("verdict") or "?"
                    self.dkim_verdicts[v] += 1
                    dom = (sig.get("d") or "?").lower()
                    self.dkim_domains.setdefault(dom, Counter())[v] += 1
                    if v == "no-key" and sig.get("s") and sig.get("d"):
                        self.missing_keys["%s._domainkey.%s" % (sig["s"], sig["d"].lower())] += 1
            for ind in rec.get("indicators", ()):
                code = ind.get("code", "?")
                self.indicators[code] += 1
                ex = self.indicator_examples.setdefault(code, [])
                if len(ex) < EXAMPLES:
                    ex.append(rec["locator"])
        elif kind == "part":
            if is_entity(rec):
                self.parts += 1
            if rec.get("docmeta"):
                self.mailbox.add_document(rec)
            if rec.get("attachment"):
                self.attachments += 1
                self.att_bytes += rec.get("size", 0)
                if rec.get("sha256"):
                    self.att_hashes.add(rec["sha256"])
                self.att_types[rec.get("magic", "unknown")] += 1
                for m in rec.get("mismatch", ()):
                    self.mismatch[m] += 1
                    ex = self.mismatch_examples.setdefault(m, [])
                    if len(ex) < EXAMPLES:
                        ex.append(rec["locator"])
        elif kind == "problem":
            code = rec["code"]
            self.problems[code] += 1
            self.severity[rec["severity"]] += 1
            ex = self.problem_examples.setdefault(code, [])
            if len(ex) < EXAMPLES:
                ex.append(rec["locator"])

    def merge(self, o: "Tally") -> None:
        self.files += o.files
        self.file_bytes += o.file_bytes
        self.by_kind.update(o.by_kind)
        self.non_mail += o.non_mail
        self.messages += o.messages
        self.by_source.update(o.by_source)
        self.reconstructed += o.reconstructed
        for d in (o.date_min, o.date_max):
            if d:
                self.date_min = d if self.date_min is None or d < self.date_min else self.date_min
                self.date_max = d if self.date_max is None or d > self.date_max else self.date_max
        self.undated += o.undated
        self.custodians.update(o.custodians)
        self.mailboxes.update(o.mailboxes)
        self.parts += o.parts
        self.attachments += o.attachments
        self.att_bytes += o.att_bytes
        self.att_hashes |= o.att_hashes
        self.att_types.update(o.att_types)
        self.mismatch.update(o.mismatch)
        for k, v in o.mismatch_examples.items():
            ex = self.mismatch_examples.setdefault(k, [])
            ex.extend(v[: max(0, EXAMPLES - len(ex))])
        self.problems.update(o.problems)
        self.severity.update(o.severity)
        for k, v in o.problem_examples.items():
            ex = self.problem_examples.setdefault(k, [])
            ex.extend(v[: max(0, EXAMPLES - len(ex))])
        self.msg_keys.extend(o.msg_keys)
        self.signed += o.signed
        self.dkim_summary.update(o.dkim_summary)
        self.dkim_verdicts.update(o.dkim_verdicts)
        for d, c in o.dkim_domains.items():
            self.dkim_domains.setdefault(d, Counter()).update(c)
        self.missing_keys.update(o.missing_keys)
        self.indicators.update(o.indicators)
        for k, v in o.indicator_examples.items():
            ex = self.indicator_examples.setdefault(k, [])
            ex.extend(v[: max(0, EXAMPLES - len(ex))])
        self.mailbox.merge(o.mailbox)

    # -- the end of the manifest ------------------------------------------------------------

    def duplicate_groups(self) -> List[dict]:
        groups = []
        for kind, idx in (("exact", 0), ("canonical", 1)):
            by: Dict[str, list] = {}
            for key in self.msg_keys:
                by.setdefault(key[idx], []).append(key)
            for digest in sorted(by):
                members = by[digest]
                if len(members) < 2:
                    continue
                groups.append(record("duplicate_group", "sha256:" + digest, kind=kind, digest=digest,
                                     count=len(members), members=sorted(m[2] for m in members),
                                     custodians=sorted({m[3] for m in members if m[3]}) or None))
        return groups

    def mailbox_records(self) -> List[dict]:
        """One record per custodian with the mailbox-wide document indicators."""
        return self.mailbox.records()

    def summary(self, options: dict, tool: dict, groups: List[dict], mailboxes: List[dict] = ()) -> dict:
        """The summary record; mailboxes: mailbox_records(), whose indicators are counted beside
        those of messages (examples: the mailbox locator)."""
        indicators, examples = Counter(self.indicators), {k: list(v) for k, v in self.indicator_examples.items()}
        for r in mailboxes:
            for ind in r.get("indicators") or ():
                indicators[ind["code"]] += 1
                ex = examples.setdefault(ind["code"], [])
                if len(ex) < EXAMPLES:
                    ex.append(r["locator"])
        exact = [g for g in groups if g["kind"] == "exact"]
        canon = [g for g in groups if g["kind"] == "canonical"]
        return record(
            "summary", ".",
            files={"total": self.files, "bytes": self.file_bytes, "by_kind": dict(sorted(self.by_kind.items())),
                   "non_mail": self.non_mail},
            messages={"total": self.messages, "by_source": dict(sorted(self.by_source.items())),
                      "reconstructed": self.reconstructed, "date_min": self.date_min, "date_max": self.date_max,
                      "undated": self.undated},
            custodians=dict(sorted(self.custodians.items())),
            mailboxes=dict(sorted(self.mailboxes.items())),
            parts=self.parts,
            attachments={"total": self.attachments, "bytes": self.att_bytes, "unique": len(self.att_hashes),
                         "by_type": dict(sorted(self.att_types.items())),
                         "mismatches": {k: {"count": v, "examples": self.mismatch_examples.get(k, [])}
                                        for k, v in sorted(self.mismatch.items())}},
            duplicates={"exact_groups": len(exact), "exact_messages": sum(g["count"] for g in exact),
                        "exact_redundant": sum(g["count"] - 1 for g in exact),
                        "canonical_groups": len(canon), "canonical_messages": sum(g["count"] for g in canon),
                        "canonical_redundant": sum(g["count"] - 1 for g in canon)},
            problems={"total": sum(self.problems.values()), "by_code": dict(sorted(self.problems.items())),
                      "by_severity": dict(sorted(self.severity.items())),
                      "examples": {k: v for k, v in sorted(self.problem_examples.items())}},
            authenticity={"signed_messages": self.signed,
                          "verified_messages": self.dkim_summary.get("pass", 0),
                          "by_summary": dict(sorted(self.dkim_summary.items())),
                          "signature_verdicts": dict(sorted(self.dkim_verdicts.items())),
                          "by_domain": {d: dict(sorted(c.items())) for d, c in sorted(self.dkim_domains.items())},
                          "missing_keys": dict(sorted(self.missing_keys.items())),
                          "indicators": dict(sorted(indicators.items())),
                          "indicator_examples": {k: v for k, v in sorted(examples.items())}},
            options=options, tool=tool,
        )
