"""Work or personal: the sphere of each message, with a confidence and the reasons that decided.

Two passes, because what an address means depends on the whole dump:

    model = SphereModel.learn(messages)          # pass 1: every message summary (and its content)
    sphere = model.classify(message)             # pass 2: one message -> Sphere(label, confidence, reasons)

A message is a dict shaped like the manifest's `message` record: `custodian`, `mailbox`, `from`,
`to`, `cc`, `bcc` (lists of {name, address}), `subject`, `attachment_names`; its content comes as an
`analysis` (leaktriage.privacy.analyse_message) or as `body` / `attachments` text, analysed here.

What pass 1 learns (all of it inspectable with `model.knowledge()`):
- each custodian's own addresses: the address present in most of the custodian's messages, and the
  other addresses of the same person (same display name or local part) that the mailbox receives
  or sends from;
- personal mail providers: the shipped list of free-mail and ISP domains, plus the domains of the
  dump that host many unrelated people (three or more person addresses with three or more family
  names) and whose mail is markedly more private than the rest of the dump's (measured with the
  content model). The generator of the test dumps invents its providers: no list could know them;
- the custodians' work domains (their own addresses that are not on a provider);
- for every correspondent address and domain: how private its other messages read (a bank, a
  doctor's office, a partner write privately; a press agency does not), smoothed towards the
  dump's mean and leaving out the message being classified.

The decision is a logistic model over a few named signals (content registers from the lexicons,
the custodian's own work / personal address, the kinds of correspondents, the priors above). Its
weights are data (data/sphere_model.json), trained on generated dumps with the generator's own
wording and three private-sphere vocabularies written for the purpose (benchmarks/privacy_vocab/);
two more vocabularies, never trained on, measure how it generalises; docs/privacy.md says how.
Each reason is a signal with its contribution to the log-odds, so the decision can be read and
argued with. Deterministic: no randomness, sorted iteration, priors summed exactly (the order of the
messages does not matter).
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from leaktriage.text.fold import fold
from .analysis import MessageAnalysis, analyse_message
from .data import data_path, read_list
from .pii import known_personal_domains

LABELS = ("work", "personal", "unknown")
CONTENT_FEATURES = ("c_private", "c_sensitive", "c_work", "c_tu", "c_private_pii", "c_empty")
HEADER_FEATURES = ("own_personal", "own_work", "own_sent", "cp_provider", "cp_org", "cp_orgsender",
                   "cp_none", "cp_many", "prior_address", "prior_domain")
FEATURES = CONTENT_FEATURES + HEADER_FEATURES

# what each signal means, for the reasons (positive contribution: personal; negative: work)
_EXPLAIN = {
    "c_private": "private-life wording",
    "c_sensitive": "sensitive topics",
    "c_work": "work wording",
    "c_tu": "informal French (tu)",
    "c_private_pii": "private papers (bank account, card, social security, birth date, passport, address)",
    "c_empty": "almost no text",
    "own_personal": "the custodian's personal address",
    "own_work": "the custodian's work address",
    "own_sent": "sent by the custodian",
    "cp_provider": "correspondents on personal mail providers",
    "cp_org": "correspondents on the custodians' work domains",
    "cp_orgsender": "an organisation's address (service, shop, office)",
    "cp_none": "no correspondent",
    "cp_many": "many correspondents",
    "prior_address": "how private the correspondents' other mail is",
    "prior_domain": "how private the correspondents' domains' other mail is",
}


@dataclass(frozen=True)
class Reason:
    signal: str            # feature name
    contribution: float    # to the log-odds of "personal" (negative: towards "work")
    detail: str            # what was seen

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Sphere:
    label: str                      # work | personal | unknown
    confidence: float               # probability of the label, 0.5 .. 1
    p_personal: float
    reasons: Tuple[Reason, ...]     # strongest first

    def as_dict(self) -> dict:
        return {"label": self.label, "confidence": round(self.confidence, 4),
                "p_personal": round(self.p_personal, 4), "reasons": [r.as_dict() for r in self.reasons]}


# ---------------------------------------------------------------------------------------------------
# Addresses

_SPLIT = re.compile(r"[^a-z]+")


@lru_cache(maxsize=1)
def role_words() -> frozenset:
    return frozenset(read_list("role_localparts.txt"))


def _parties(msg: Mapping, roles: Sequence[str] = ("from", "sender", "to", "cc", "bcc")) -> List[Tuple[str, str, str]]:
    """(role, address, display name) of a message, addresses lower-cased, in header order."""
    out = []
    for role in roles:
        for a in msg.get(role) or ():
            addr = (a.get("address") or "").strip().lower() if isinstance(a, Mapping) else str(a).strip().lower()
            if "@" not in addr:
                continue
            name = (a.get("name") or "") if isinstance(a, Mapping) else ""
            out.append((role, addr, name))
    return out


def domain_of(addr: str) -> str:
    return addr.rsplit("@", 1)[-1].rstrip(".")


def name_tokens(name: str) -> Tuple[str, ...]:
    return tuple(t for t in _SPLIT.split(fold(name or "")) if len(t) >= 2)


def local_tokens(addr: str) -> Tuple[str, ...]:
    return tuple(t for t in _SPLIT.split(fold(addr.split("@", 1)[0])) if t)


def is_organisational(addr: str, name: str) -> bool:
    """An address of an organisation rather than a person: a role local part (contact, noreply,
    secretariat, ...) or a display name that is the domain's own name ("Banque Hexagone" on
    banque-hexagone.fr)."""
    local = addr.split("@", 1)[0].lower()
    words = role_words()
    if local in words or any(t in words for t in re.split(r"[._+-]", local) if t):
        return True
    nt = [t for t in name_tokens(name) if len(t) >= 3]
    if not nt:
        return False
    dom = "".join(_SPLIT.split(fold(domain_of(addr).rsplit(".", 1)[0])))
    inside = sum(1 for t in nt if t in dom)
    return inside >= max(1, (len(nt) + 1) // 2)


# ---------------------------------------------------------------------------------------------------
# Weights

@lru_cache(maxsize=4)
def load_weights(path: Optional[str] = None) -> dict:
    with open(path or data_path("sphere_model.json"), encoding="utf-8") as f:
        return json.load(f)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def content_logit(vec: Mapping[str, float], weights: Mapping) -> float:
    w = weights["content"]
    return w.get("bias", 0.0) + sum(w.get(k, 0.0) * vec.get(k, 0.0) for k in CONTENT_FEATURES)


# ---------------------------------------------------------------------------------------------------
# The model

# content probabilities are summed as integers in units of 1e-9: exact, so the learned priors do
# not depend on the order the messages come in
_Q = 10 ** 9


def _q(p: float) -> int:
    return int(round(p * _Q))


@dataclass
class _Stat:
    n: int = 0
    s: int = 0          # sum of content probabilities, in units of 1e-9


class SphereModel:
    """Dump-wide knowledge + weights. Build with SphereModel.learn(messages)."""

    def __init__(self, weights: Optional[dict] = None):
        self.weights = weights or load_weights()
        self.own: Dict[str, Dict[str, str]] = {}            # custodian -> {address: "work"|"personal"}
        self.providers: Dict[str, str] = {}                 # domain -> "list" | "learned"
        self.work_domains: Dict[str, List[str]] = {}        # domain -> custodians
        self.addr_stats: Dict[str, _Stat] = {}
        self.domain_stats: Dict[str, _Stat] = {}
        self.mean = 0.25
        self.domain_evidence: Dict[str, dict] = {}
        self.messages = 0

    # -- pass 1 ------------------------------------------------------------------------------------
    @classmethod
    def learn(cls, messages: Iterable[Mapping], *, weights: Optional[dict] = None) -> "SphereModel":
        """Learn the dump's addresses, providers and priors from every message (dicts as for
        classify; their content is analysed when no `analysis` is given)."""
        self = cls(weights)
        w = self.weights
        per_cust_msgs: Dict[str, int] = Counter()
        per_cust_addr: Dict[str, Counter] = defaultdict(Counter)
        names: Dict[str, Counter] = defaultdict(Counter)
        orgish: Dict[str, bool] = {}
        rows: List[Tuple[str, List[Tuple[str, str, str]], int]] = []     # custodian, parties, content p (1e-9)
        for msg in messages:
            cust = str(msg.get("custodian") or "")
            parties = _parties(msg)
            p = _q(_sigmoid(content_logit(_analysis(msg).content.vector(), w)))
            rows.append((cust, parties, p))
            per_cust_msgs[cust] += 1
            for addr in sorted({a for _, a, _ in parties}):
                per_cust_addr[cust][addr] += 1
            for _, addr, name in parties:
                if name:
                    names[addr][name] += 1
        self.messages = len(rows)
        # the display name most used for each address (ties: the smallest, whatever the order)
        best_name = {a: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for a, c in sorted(names.items()) if c}
        for a in sorted({a for _, ps, _ in rows for _, a, _ in ps}):
            orgish[a] = is_organisational(a, best_name.get(a, ""))

        # the custodians' own addresses
        own_sets: Dict[str, List[str]] = {}
        for cust in sorted(per_cust_addr):
            own_sets[cust] = _own_addresses(cust, per_cust_addr[cust], per_cust_msgs[cust], best_name, orgish)

        # content rate per address and per domain
        self.mean = (sum(p for _, _, p in rows) / len(rows) / _Q) if rows else 0.25
        for cust, parties, p in rows:
            seen_d = set()
            for addr in sorted({a for _, a, _ in parties}):
                st = self.addr_stats.setdefault(addr, _Stat())
                st.n += 1
                st.s += p
                d = domain_of(addr)
                if d not in seen_d:
                    seen_d.add(d)
                    ds = self.domain_stats.setdefault(d, _Stat())
                    ds.n += 1
                    ds.s += p

        # personal mail providers
        known = known_personal_domains()
        people: Dict[str, set] = defaultdict(set)
        surnames: Dict[str, set] = defaultdict(set)
        for a in sorted(self.addr_stats):
            if orgish.get(a):
                continue
            d = domain_of(a)
            people[d].add(a)
            toks = name_tokens(best_name.get(a, "")) or local_tokens(a)
            if toks:
                surnames[d].add(toks[-1])
        person_domains = sorted(d for d in people if len(people[d]) >= 3)
        rates = {d: self.domain_stats[d].s / _Q / self.domain_stats[d].n for d in person_domains}
        base = _median([rates[d] for d in person_domains]) if person_domains else self.mean
        for d in sorted(self.domain_stats):
            if d in known:
                self.providers[d] = "list"
                continue
            if d not in rates:
                continue
            ev = {"people": len(people[d]), "family_names": len(surnames[d]), "messages": self.domain_stats[d].n,
                  "private_rate": round(rates[d], 3), "dump_median_rate": round(base, 3)}
            self.domain_evidence[d] = ev
            if len(surnames[d]) >= 3 and rates[d] >= max(0.15, 2.0 * base):
                self.providers[d] = "learned"
                ev["provider"] = True

        # roles of the own addresses; work domains
        for cust in sorted(own_sets):
            roles = {}
            for a in own_sets[cust]:
                roles[a] = "personal" if domain_of(a) in self.providers else "work"
                if roles[a] == "work":
                    self.work_domains.setdefault(domain_of(a), []).append(cust)
            self.own[cust] = roles
        return self

    # -- learned knowledge ---------------------------------------------------------------------------
    @property
    def personal_domains(self) -> List[str]:
        """Domains whose addresses are personal (shipped list seen in the dump, and learned)."""
        return sorted(self.providers)

    @property
    def learned_personal_domains(self) -> List[str]:
        return sorted(d for d, how in self.providers.items() if how == "learned")

    def knowledge(self) -> dict:
        """What pass 1 learned, with its evidence (JSON-ready, sorted)."""
        return {
            "messages": self.messages,
            "mean_private_content": round(self.mean, 4),
            "custodians": {c: dict(sorted(v.items())) for c, v in sorted(self.own.items())},
            "personal_domains": {d: self.providers[d] for d in sorted(self.providers)},
            "work_domains": {d: sorted(v) for d, v in sorted(self.work_domains.items())},
            "domains": {d: self.domain_evidence[d] for d in sorted(self.domain_evidence)},
        }

    # -- pass 2 ------------------------------------------------------------------------------------
    def features(self, msg: Mapping, analysis: Optional[MessageAnalysis] = None,
                 in_learning: bool = True) -> Tuple[Dict[str, float], Dict[str, str]]:
        """The model's inputs for one message, and a description of what each one saw."""
        a = analysis or _analysis(msg)
        vec = dict(a.content.vector())
        own_p = _q(_sigmoid(content_logit(vec, self.weights))) if in_learning else None
        detail: Dict[str, str] = {}
        ev = a.content.evidence
        for k, key in (("c_private", "private"), ("c_work", "work")):
            if ev.get(key):
                detail[k] = ", ".join(ev[key][:8])
        sens = [c for c in ("health", "finances", "family", "intimate", "legal") if ev.get(c)]
        if sens:
            detail["c_sensitive"] = "; ".join("%s: %s" % (c, ", ".join(ev[c][:4])) for c in sens)
        if ev.get("private_pii"):
            detail["c_private_pii"] = ", ".join(ev["private_pii"])
        if a.content.tu:
            detail["c_tu"] = "%d forms" % a.content.tu

        cust = str(msg.get("custodian") or "")
        own = self.own.get(cust, {})
        parties = _parties(msg)
        addrs = sorted({x for _, x, _ in parties})
        own_here = [x for x in addrs if x in own]
        vec["own_personal"] = 1.0 if any(own[x] == "personal" for x in own_here) else 0.0
        vec["own_work"] = 1.0 if any(own[x] == "work" for x in own_here) else 0.0
        if own_here:
            detail["own_personal" if vec["own_personal"] else "own_work"] = ", ".join(own_here)
        senders = [x for r, x, _ in parties if r in ("from", "sender")]
        vec["own_sent"] = 1.0 if any(x in own for x in senders) else 0.0
        cps = [x for x in addrs if x not in own]
        names = {x: n for _, x, n in parties}
        n = len(cps)
        vec["cp_none"] = 1.0 if n == 0 else 0.0
        vec["cp_many"] = math.log1p(max(0, n - 1))
        if n:
            prov = [x for x in cps if domain_of(x) in self.providers]
            org = [x for x in cps if domain_of(x) in self.work_domains]
            orgs = [x for x in cps if domain_of(x) not in self.providers and domain_of(x) not in self.work_domains
                    and is_organisational(x, names.get(x, ""))]
            vec["cp_provider"] = len(prov) / n
            vec["cp_org"] = len(org) / n
            vec["cp_orgsender"] = 1.0 if orgs else 0.0
            if prov:
                detail["cp_provider"] = ", ".join(prov[:4])
            if org:
                detail["cp_org"] = ", ".join(org[:4])
            if orgs:
                detail["cp_orgsender"] = ", ".join(orgs[:4])
            pa = [self._prior(self.addr_stats.get(x), own_p) for x in cps]
            vec["prior_address"] = sum(pa) / n
            doms = sorted({domain_of(x) for x in cps if domain_of(x) not in self.providers})
            pd = [self._prior(self.domain_stats.get(d), own_p) for d in doms]
            vec["prior_domain"] = (sum(pd) / len(pd)) if pd else 0.0
            if abs(vec["prior_address"]) >= 0.05:
                detail["prior_address"] = "%+.2f against the dump's mean" % vec["prior_address"]
            if pd and abs(vec["prior_domain"]) >= 0.05:
                detail["prior_domain"] = "%s: %+.2f" % (", ".join(doms[:3]), vec["prior_domain"])
        else:
            vec.update(cp_provider=0.0, cp_org=0.0, cp_orgsender=0.0, prior_address=0.0, prior_domain=0.0)
        return vec, detail

    def _prior(self, st: Optional[_Stat], own_p: Optional[int]) -> float:
        """Smoothed private rate of an address or domain's other messages, minus the dump's mean
        (own_p: the content probability of the message being classified, left out when it was
        part of the learning)."""
        if st is None:
            return 0.0
        n, s = st.n, st.s
        if own_p is not None and n >= 1:
            n -= 1
            s -= own_p
        s = s / _Q
        k = float(self.weights.get("prior_strength", 2.0))
        return (s + k * self.mean) / (n + k) - self.mean if n + k > 0 else 0.0

    def classify(self, msg: Mapping, analysis: Optional[MessageAnalysis] = None, *,
                 in_learning: bool = True) -> Sphere:
        """Sphere of one message. in_learning: the message was part of learn() (its own content is
        then left out of its correspondents' priors)."""
        a = analysis or _analysis(msg)
        vec, detail = self.features(msg, a, in_learning)
        if vec["cp_none"] and a.content.words < 3 and not _parties(msg):
            return Sphere("unknown", 0.5, 0.5, (Reason("no-evidence", 0.0, "no address and no text"),))
        w = self.weights["sphere"]
        contribs = []
        z = w.get("bias", 0.0)
        for k in FEATURES:
            c = w.get(k, 0.0) * vec.get(k, 0.0)
            z += c
            if abs(c) >= 0.05:
                contribs.append(Reason(k, round(c, 3), detail.get(k) or _EXPLAIN[k]))
        p = _sigmoid(z)
        label = "personal" if p >= 0.5 else "work"
        contribs.sort(key=lambda r: (-abs(r.contribution), r.signal))
        return Sphere(label, max(p, 1.0 - p), p, tuple(contribs))

    # -- persistence ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"v": 1, "weights": self.weights, "own": self.own, "providers": self.providers,
                "work_domains": self.work_domains, "mean": self.mean, "messages": self.messages,
                "addr_stats": {k: [v.n, v.s] for k, v in sorted(self.addr_stats.items())},
                "domain_stats": {k: [v.n, v.s] for k, v in sorted(self.domain_stats.items())},
                "domain_evidence": self.domain_evidence}

    @classmethod
    def from_dict(cls, d: Mapping) -> "SphereModel":
        self = cls(dict(d["weights"]))
        self.own = {k: dict(v) for k, v in d["own"].items()}
        self.providers = dict(d["providers"])
        self.work_domains = {k: list(v) for k, v in d["work_domains"].items()}
        self.mean = float(d["mean"])
        self.messages = int(d.get("messages", 0))
        self.addr_stats = {k: _Stat(int(v[0]), int(v[1])) for k, v in d["addr_stats"].items()}
        self.domain_stats = {k: _Stat(int(v[0]), int(v[1])) for k, v in d["domain_stats"].items()}
        self.domain_evidence = dict(d.get("domain_evidence", {}))
        return self


def _median(xs: List[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return 0.0 if not n else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def _analysis(msg: Mapping) -> MessageAnalysis:
    a = msg.get("analysis")
    if isinstance(a, MessageAnalysis):
        return a
    return analyse_message(msg.get("subject") or "", msg.get("body") or "", msg.get("attachments") or (),
                           msg.get("attachment_names") or ())


def _same_person(a: str, b: str, best_name: Mapping[str, str]) -> bool:
    """Two addresses of one person: the same display name (its words, in any order), or the same
    letters in both local parts, or a local part that spells the other's full display name
    ("theo_legoff" for "Théo Le Goff"). A shared family name is not enough: relatives share it."""
    na, nb = name_tokens(best_name.get(a, "")), name_tokens(best_name.get(b, ""))
    if na and nb and set(na) == set(nb):
        return True
    la = "".join(local_tokens(a))
    lb = "".join(local_tokens(b))
    if la and la == lb:
        return True
    for names, loc in ((na, lb), (nb, la)):
        if len(names) >= 2 and loc and all(t in loc for t in names):
            return True
    return False


def _own_addresses(cust: str, counts: Counter, n_msgs: int, best_name: Mapping[str, str],
                   orgish: Mapping[str, bool]) -> List[str]:
    """The custodian's own addresses: the one in most of the mailbox's messages, and the other
    addresses of that person (see _same_person) seen in at least 2% of them (and twice)."""
    if not counts:
        return []
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    first = ranked[0][0]
    label = name_tokens(cust)
    # prefer an address that looks like the custodian's name among the most frequent ones
    for addr, c in ranked[:5]:
        if c < 0.5 * ranked[0][1]:
            break
        toks = set(name_tokens(best_name.get(addr, ""))) | set(local_tokens(addr))
        squashed = "".join(label)
        if label and (set(label) & toks or (squashed and squashed in "".join(local_tokens(addr)))):
            first = addr
            break
    own = [first]
    floor = max(2, 0.02 * n_msgs)
    for addr, c in ranked:
        if addr == first or c < floor or orgish.get(addr):
            continue
        if _same_person(first, addr, best_name):
            own.append(addr)
    return sorted(own)
