"""Text folding for search: case, accents and ligatures, the way French and English readers expect.

fold("Facturé Lecœur ÆTAT ﬁnal Straße") == "facture lecoeur aetat final strasse"

SQLite's FTS5 `remove_diacritics 2` folds accents but not ligatures (œ, æ stay single letters), and
a custom tokenizer cannot be registered from Python's sqlite3. So leaktriage folds the text itself
before indexing and folds every query the same way; the original text is kept for display.

Words written with an apostrophe inside them ("N'Diaye", "aujourd'hui", "l'État") are split there by
FTS5's tokenizer; readers also type them without it ("ndiaye"). index_text() adds the joined spelling
of each such word once, on a line after the text, so both spellings find the message while phrases
keep their word positions; the query side (leaktriage.search.query) searches both spellings too.

FOLD_VERSION changes whenever the folding changes: an index built with another version is rebuilt.
"""
from __future__ import annotations

import re
import unicodedata

FOLD_VERSION = 2

# Letters that NFKD does not decompose but readers treat as their ASCII spelling.
_SPECIAL = {
    "œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o",
    "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th",
    "ı": "i", "ħ": "h", "Ħ": "h", "ŀ": "l", "Ŀ": "l", "ĸ": "k", "ŉ": "n",
    # typographic apostrophes and quotes fold to ASCII so "aujourd'hui" matches either spelling
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
    "\u00a0": " ", "\u202f": " ", "\u2009": " ",
}


def _fold_char(ch: str) -> str:
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    out = []
    for c in unicodedata.normalize("NFKD", ch.casefold()):
        if unicodedata.combining(c):
            continue
        out.append(_SPECIAL.get(c, c))
    res = "".join(out)
    if res != ch and not res.isascii() and res:
        # e.g. a casefold that produced another foldable letter
        res = "".join(_SPECIAL.get(c, c) for c in unicodedata.normalize("NFKD", res)
                      if not unicodedata.combining(c))
    return res


# characters seen so far that fold to nothing or to several characters (their folded offsets
# drift from the original ones); kept up to date by _Table
_IRREGULAR: set = set()


class _Table(dict):
    """str.translate table that computes (and caches) the folding of each character on demand."""

    def __missing__(self, code: int):
        ch = chr(code)
        res = _fold_char(ch)
        value = None if res == "" else (code if res == ch else res)
        if len(res) != 1:
            _IRREGULAR.add(ch)
        self[code] = value
        return value


_TABLE = _Table()


def fold(text: str) -> str:
    """Lower case, accents removed, ligatures expanded (œ -> oe, æ -> ae, ß -> ss, ﬁ -> fi)."""
    if not text:
        return ""
    if text.isascii():
        return text.lower()
    return text.translate(_TABLE)


def fold_with_map(text: str) -> tuple[str, list[int]]:
    """Fold text and return, for every character of the folded text, the index of the original
    character it came from (used to highlight matches in the original text)."""
    folded = text.lower() if text.isascii() else text.translate(_TABLE)
    if len(folded) == len(text) and _IRREGULAR.isdisjoint(text):
        return folded, list(range(len(text)))   # one character for one: the common case
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            f = ch.lower()
        else:
            v = _TABLE[ord(ch)]
            f = "" if v is None else (chr(v) if isinstance(v, int) else v)
        out.append(f)
        where.extend([i] * len(f))
    return "".join(out), where


# a word with an apostrophe inside: "n'diaye", "aujourd'hui" (folded text: every apostrophe is ')
ELIDED_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)+")


def joined_words(folded: str) -> list[str]:
    """The words of folded text that hold an apostrophe, written without it, sorted, each once."""
    if "'" not in folded:
        return []
    return sorted({w.replace("'", "") for w in ELIDED_WORD.findall(folded)})


def index_text(text: str) -> str:
    """What the full-text index holds for a text: fold(text), then a line with the joined spelling of
    every word written with an apostrophe ("n'diaye" -> "ndiaye"), so that both spellings match."""
    f = fold(text)
    extra = joined_words(f)
    return f + "\n" + " ".join(extra) if extra else f
