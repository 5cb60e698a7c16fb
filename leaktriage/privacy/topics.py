"""Sensitive topics in text: health, finances, family, intimate life, legal matters, in French and
English, found with lexicons that are data files (leaktriage/privacy/data/lexicons/*.txt).

find_topics(text) -> [TopicHit]: every hit gives the category, the exact span in `text`, the lexicon
term that matched, its language and its weight. Matching is on folded text, folded exactly as
`leaktriage search` folds it (case, accents, ligatures: "Hôpital", "HOPITAL" and "hopital" are one
word), on whole words: "amende" does not match "amendement", "cancer*" matches "cancéreux". E-mail
addresses and URLs are not read ("cabinet-lemaitre-avocats.fr" is no lawyer).

A message belongs to a category when the weights of its distinct terms in that category add up
to the threshold (3): one decisive term ("chimiothérapie"), or a strong and a weak one.

The same lexicons with the categories "private" (the register of private life: greetings between
close people, home, leisure, shopping) and "work" are content signals for the sphere classifier.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from leaktriage.text.fold import fold, fold_with_map
from .data import data_path

SENSITIVE = ("health", "finances", "family", "intimate", "legal")
CUES = ("private", "work")
LANGUAGES = ("fr", "en")
THRESHOLD = 3
DEFAULT_WEIGHT = 2

_TOKEN = re.compile(r"[^\W_]+")
_SKIP = re.compile(r"[\w.%+-]+@[\w.-]+\.[a-z]{2,}|(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:fr|com|org|net|io|eu|uk)\b")


@dataclass(frozen=True)
class TopicHit:
    category: str
    start: int          # offsets into the original text: text[start:end] is what matched
    end: int
    term: str           # the lexicon entry (folded; '*' marks a prefix)
    language: str       # "fr", "en", or "fr+en" when both lexicons hold the term
    weight: int

    def as_dict(self) -> dict:
        return asdict(self)


class Lexicon:
    """Lexicon files indexed for matching on folded tokens.

    Files are NAME.LANG.txt (category NAME, language LANG) in one or more directories; a later
    directory adds terms to the same categories (a newsroom's own list next to the shipped one)."""

    def __init__(self, directories: Sequence[str]):
        self.directories = list(directories)
        # first token -> [(tokens, last_is_prefix, category, weight, language, term)]
        self._first: Dict[str, List[tuple]] = {}
        # single-token prefix -> [(category, weight, language, term)]
        self._prefix: Dict[str, List[tuple]] = {}
        self._prefix_lengths: List[int] = []
        self.categories: List[str] = []
        entries: Dict[Tuple[str, str], Dict[str, object]] = {}
        for d in self.directories:
            for name in sorted(os.listdir(d)):
                m = re.fullmatch(r"([a-z_]+)\.([a-z]{2})\.txt", name)
                if not m:
                    continue
                cat, lang = m.group(1), m.group(2)
                if cat not in self.categories:
                    self.categories.append(cat)
                for term, weight in read_lexicon(os.path.join(d, name)):
                    key = (cat, term)
                    if key in entries:
                        e = entries[key]
                        if lang not in e["langs"]:
                            e["langs"].append(lang)
                        e["weight"] = max(e["weight"], weight)
                    else:
                        entries[key] = {"weight": weight, "langs": [lang]}
        for (cat, term), e in sorted(entries.items()):
            langs = "+".join(sorted(e["langs"], key=lambda x: (x != "fr", x)))
            prefix = term.endswith("*")
            toks = tuple(_TOKEN.findall(term.rstrip("*")))
            if not toks:
                continue
            if prefix and len(toks) == 1:
                self._prefix.setdefault(toks[0], []).append((cat, e["weight"], langs, term))
            else:
                self._first.setdefault(toks[0], []).append((toks, prefix, cat, e["weight"], langs, term))
        self._prefix_lengths = sorted({len(p) for p in self._prefix})

    def scan(self, text: str, categories: Optional[Iterable[str]] = None,
             folded: Optional[Tuple[str, List[int]]] = None) -> List[TopicHit]:
        if not text:
            return []
        want = set(categories) if categories is not None else None
        f, where = folded if folded is not None else fold_with_map(text)
        toks = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(f)]
        if "@" in f or "." in f:
            # tokens inside e-mail addresses, URLs and domain names are not words of the text
            skip = [m.span() for m in _SKIP.finditer(f)]
            if skip:
                kept = []
                k = 0
                for t in toks:
                    while k < len(skip) and skip[k][1] <= t[1]:
                        k += 1
                    if not (k < len(skip) and skip[k][0] <= t[1] < skip[k][1]):
                        kept.append(t)
                toks = kept
        words = [t[0] for t in toks]
        # a term is not matched inside a hyphenated compound ("ma belle" in "ma belle-soeur"); a
        # prefix term may run on into one ("arriere grand*" in "arriere-grand-mere")
        hyph = [toks[k][2] < len(f) and f[toks[k][2]] == "-" and toks[k + 1][1] == toks[k][2] + 1
                for k in range(len(toks) - 1)] + [False]
        raw: List[Tuple[str, int, int, str, str, int]] = []   # category, fstart, fend, term, lang, weight
        n = len(words)
        for i, w in enumerate(words):
            if i and hyph[i - 1]:
                continue
            for toks_, prefix, cat, weight, lang, term in self._first.get(w, ()):
                k = len(toks_)
                if i + k > n:
                    continue
                ok = True
                for j in range(1, k):
                    tw = words[i + j]
                    if j == k - 1 and prefix:
                        if not tw.startswith(toks_[j]):
                            ok = False
                            break
                    elif tw != toks_[j]:
                        ok = False
                        break
                if ok and (prefix or not hyph[i + k - 1]) and (want is None or cat in want):
                    raw.append((cat, toks[i][1], toks[i + k - 1][2], term, lang, weight))
            if self._prefix and not hyph[i]:
                for ln in self._prefix_lengths:
                    if ln > len(w):
                        break
                    for cat, weight, lang, term in self._prefix.get(w[:ln], ()):
                        if want is None or cat in want:
                            raw.append((cat, toks[i][1], toks[i][2], term, lang, weight))
        # within a category, a term inside a longer match is not counted again
        raw.sort(key=lambda h: (h[0], h[1], -(h[2] - h[1]), h[3]))
        out: List[TopicHit] = []
        last: Dict[str, int] = {}
        for cat, fs, fe, term, lang, weight in raw:
            if fs < last.get(cat, -1):
                continue
            last[cat] = fe
            out.append(TopicHit(cat, where[fs], where[fe - 1] + 1, term, lang, weight))
        out.sort(key=lambda h: (h.start, h.end, h.category, h.term))
        return out


def read_lexicon(path: str) -> List[Tuple[str, int]]:
    """(folded term, weight) of a lexicon file: 'term | weight' per line, '#' comments."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            term, _, w = line.partition("|")
            term = " ".join(fold(term).split())
            weight = int(w) if w.strip() else DEFAULT_WEIGHT
            if term and weight > 0:
                out.append((term, weight))
    return out


@lru_cache(maxsize=8)
def _lexicon(extra: Tuple[str, ...] = ()) -> Lexicon:
    return Lexicon([data_path("lexicons")] + list(extra))


def lexicon(extra_dirs: Sequence[str] = ()) -> Lexicon:
    """The shipped lexicons, plus the files of `extra_dirs` (same file names add terms)."""
    return _lexicon(tuple(extra_dirs))


def find_topics(text: str, categories: Iterable[str] = SENSITIVE, *, extra_dirs: Sequence[str] = (),
                folded: Optional[Tuple[str, List[int]]] = None) -> List[TopicHit]:
    """Sensitive-topic hits in `text`, sorted by position. categories: any of SENSITIVE (default),
    or also "private" / "work" (the sphere cues)."""
    return lexicon(extra_dirs).scan(text, categories, folded)


def topic_scores(hits: Iterable[TopicHit]) -> Dict[str, int]:
    """{category: sum of the weights of its distinct terms}."""
    best: Dict[Tuple[str, str], int] = {}
    for h in hits:
        k = (h.category, h.term)
        best[k] = max(best.get(k, 0), h.weight)
    out: Dict[str, int] = {}
    for (cat, _), w in sorted(best.items()):
        out[cat] = out.get(cat, 0) + w
    return out


def sensitive_categories(hits: Iterable[TopicHit], threshold: int = THRESHOLD) -> List[str]:
    """The sensitive categories whose score reaches the threshold, in SENSITIVE order."""
    sc = topic_scores(hits)
    return [c for c in SENSITIVE if sc.get(c, 0) >= threshold]
