"""Normalisation shared by threading, corroboration, near-duplicates and correspondents.

- Message-IDs: `msgid_key` (angle brackets and white space normalised, never case-folded).
- Subjects: `subject_base` (reply/forward prefixes of the usual languages and list tags removed,
  white space collapsed, folded), `is_reply_subject`.
- Text: `tokens` (runs of word characters, and single punctuation characters, NFKC), `fingerprint`
  (SHA-256 of the token sequence: line endings, trailing white space, line wrapping, charset and
  transfer re-encodings do not change it), `words` (word tokens only: what plain and HTML renderings
  of one text have in common), `own_text` (a reply without the message it quotes).
- Addresses: `addr_key`, `is_role_address`.
- Dates: `epoch` (manifest UTC ISO-8601 -> seconds).
Pure functions; none raises on hostile input.
"""
from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from datetime import datetime
from typing import Iterable, List, Optional, Sequence, Tuple

from leaktriage.text.fold import fold
from leaktriage.text import extract_html

# --------------------------------------------------------------------------------------------
# Message-IDs

_WS = re.compile(r"\s+")


def msgid_key(value: Optional[str]) -> Optional[str]:
    """'<local@domain>' with white space removed and exactly one pair of angle brackets; None for
    an empty or absent id. Case is kept: RFC 5322 ids are compared as written."""
    if not value or not isinstance(value, str):
        return None
    v = _WS.sub("", value)
    v = v.strip("<>")
    if not v:
        return None
    return sys.intern("<" + v + ">")


# --------------------------------------------------------------------------------------------
# Subjects

# Reply prefixes: English/Latin Re, German AW, Nordic SV/VS, Dutch Antw, Italian R/RIF, French
# REF/RÉF, Spanish RV is a forward; with an optional counter (Re[2]:, Re^2:) and the French space
# before the colon ("RE : "); full-width colon too.
_REPLY = r"(?:re|aw|sv|vs|antw|antwort|r|rif|ref|réf|odp|vá|ynt)"
_FORWARD = r"(?:fwd?|fw|tr|wg|i|rv|enc|doorst|fs|vl|pd|továbbítás)"
_COUNTER = r"(?:\s*(?:\[\d{1,4}\]|\^\d{1,4}|\(\d{1,4}\)))?"
_COLON = r"\s*[:：]"
_PREFIX = re.compile(r"^\s*(?:\[[^\]\n]{1,40}\]\s*)?(%s|%s)%s%s\s*" % (_REPLY, _FORWARD, _COUNTER, _COLON),
                     re.IGNORECASE)
_REPLY_ONLY = re.compile(r"^\s*(?:\[[^\]\n]{1,40}\]\s*)?%s%s%s" % (_REPLY, _COUNTER, _COLON), re.IGNORECASE)
_LIST_TAG = re.compile(r"^\s*\[[^\]\n]{1,40}\]\s*")


def _strip_prefixes(subject: str) -> str:
    s = subject or ""
    for _ in range(32):  # "Re: Re: TR: Re:" - bounded
        m = _PREFIX.match(s)
        if not m:
            break
        s = s[m.end():]
    m = _LIST_TAG.match(s)
    if m and s[m.end():].strip():
        s = s[m.end():]
    return s


def subject_base(subject: Optional[str]) -> str:
    """The subject without reply/forward prefixes and list tags, white space collapsed, folded
    (case, accents, ligatures): what two messages of one conversation have in common."""
    if not subject:
        return ""
    return fold(_WS.sub(" ", _strip_prefixes(subject[:2000])).strip())


def is_reply_subject(subject: Optional[str]) -> bool:
    """True when the subject starts with a reply prefix (Re:, AW:, SV:, RE :, R: ...)."""
    return bool(subject) and bool(_REPLY_ONLY.match(subject[:200]))


# --------------------------------------------------------------------------------------------
# Text

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def tokens(text: str) -> List[str]:
    """Word runs and single punctuation characters of the NFKC text: white space, line endings and
    line wrapping are not tokens."""
    return _TOKEN.findall(_nfkc(text or ""))


def token_spans(text: str) -> List[Tuple[str, int, int]]:
    """(token, start, end) in the NFKC form of text (for quoting passages)."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def words(text: str) -> List[str]:
    """Word runs only (case kept): what a plain part and the HTML rendering of the same text share."""
    return _WORD.findall(_nfkc(text or ""))


def fingerprint(toks: Sequence[str]) -> str:
    """SHA-256 (hex) of a token sequence."""
    return hashlib.sha256("\x00".join(toks).encode("utf-8", "surrogatepass")).hexdigest()


def text_fingerprints(text: str) -> Tuple[str, str, int]:
    """(fingerprint of the tokens, fingerprint of the words, number of words)."""
    toks = tokens(text)
    w = [t for t in toks if t[0].isalnum() or t[0] == "_"]
    return fingerprint(toks), fingerprint(w), len(w)


# Quoted replies and forwarded blocks: the lines from which the rest of a body is someone else's text.
_CUT = re.compile(
    r"^(?:"
    r"-{2,}\s*(?:original message|message d'origine|ursprüngliche nachricht|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|forwarded message|message transféré|"
    r"weitergeleitete nachricht)\s*-{2,}"
    r"|_{10,}\s*"
    r"|(?:de|from|von|da|van|od)\s*:.*\n(?:.*\n){0,2}?\s*(?:envoyé|sent|gesendet|inviato|verzonden|enviado|date)\s*:.*"
    r"|begin forwarded message:|début du message réexpédié\s*:"
    r"|(?:on|le|am|el|il|op)\s.{4,200}(?:wrote|a écrit|schrieb|escribió|ha scritto|schreef)\s*:"
    r"|-- "
    r")\s*$",
    re.IGNORECASE | re.MULTILINE)


def own_text(text: str) -> str:
    """The part of a body its author wrote: cut at the first quoted-reply or forward marker
    (attribution line, 'Original Message', Outlook's De:/Envoyé: block, signature separator '-- '),
    and without '>'-quoted lines."""
    if not text:
        return ""
    t = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _CUT.search(t)
    if m:
        t = t[:m.start()]
    return "\n".join(line for line in t.split("\n") if not line.lstrip().startswith(">"))


def html_text(html: str) -> str:
    """Text of an HTML part (the search index's own conversion)."""
    try:
        return extract_html(html or "").text or ""
    except Exception:  # noqa: BLE001 - html.parser is lenient; a failure leaves the markup as text
        return html or ""


# --------------------------------------------------------------------------------------------
# Addresses

# Local parts that name a function, not a person (compared after removing +tags, dots, dashes and
# underscores, and trailing digits).
ROLE_LOCALS = frozenset("""
info infos information informations contact contacts hello hi bonjour office admin administrator
administration webmaster postmaster hostmaster abuse security noreply donotreply nepasrepondre
nereplypas nepasreponder noresponse mailerdaemon daemon bounce bounces newsletter newsletters news
lettre lettreinfo notification notifications notify alert alerts alertes support help helpdesk
assistance service services serviceclient clientservice customerservice customercare care sales
ventes vente commercial marketing billing facturation factures invoice invoices compta comptabilite
accounting accounts finance rh hr jobs recrutement recruitment careers emploi presse press media
communication comm secretariat secretariat accueil reception team equipe staff mail email courrier
mailer list lists listserv majordomo owner root system sysadmin it web www feedback enquiries enquiry
inquiries orders order commande commandes shop boutique store membership adhesion adherents
donation dons benevoles volunteers events evenements agenda direction cabinet standard
""".split())
_ROLE_PATTERNS = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|ne[-_.]?pas[-_.]?repondre|"
                            r"mailer[-_.]?daemon|bounces?[-+_.].*|notifications?[-_.].*|.*[-_.]noreply)$")


_SPACE = re.compile(r"\s")


def addr_key(address: Optional[str]) -> Optional[str]:
    """Lower-cased address with surrounding white space and angle brackets removed; None unless it
    has a local part and a domain."""
    if not address or not isinstance(address, str):
        return None
    a = address.strip().strip("<>").strip().lower()
    local, sep, domain = a.rpartition("@")
    if not sep or not local or not domain or _SPACE.search(a):
        return None
    return sys.intern(a)


def is_role_address(address: str) -> bool:
    """info@, contact@, no-reply@, newsletter@, ...: an address of a function, not of a person."""
    local = address.rpartition("@")[0].lower().split("+", 1)[0]
    if _ROLE_PATTERNS.match(local):
        return True
    squashed = re.sub(r"[-_.]", "", local)
    squashed = re.sub(r"\d+$", "", squashed)
    return squashed in ROLE_LOCALS


# --------------------------------------------------------------------------------------------
# Dates

def epoch(iso: Optional[str]) -> Optional[float]:
    """Seconds since 1970 for a manifest UTC time ('2017-03-14T06:58:29Z'); None if absent/bad."""
    if not iso or not isinstance(iso, str):
        return None
    try:
        d = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        return None
    return d.timestamp()


def first_address(lst: Optional[Iterable[dict]]) -> Optional[str]:
    """The first usable address of a manifest address list."""
    for a in lst or ():
        if isinstance(a, dict):
            k = addr_key(a.get("address"))
            if k:
                return k
    return None


def addresses(lst: Optional[Iterable[dict]]) -> List[str]:
    out = []
    for a in lst or ():
        if isinstance(a, dict):
            k = addr_key(a.get("address"))
            if k:
                out.append(k)
    return out


def header_value(headers: Optional[Iterable[dict]], name: str) -> Optional[str]:
    """Decoded value of the first header field `name` (manifest `headers`: name, raw, value)."""
    n = name.lower()
    for h in headers or ():
        if isinstance(h, dict) and str(h.get("name", "")).lower() == n:
            v = h.get("value", h.get("raw"))
            return v if isinstance(v, str) else None
    return None
