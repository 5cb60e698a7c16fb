"""Personal data in text, validated: IBAN, French NIR, payment cards, phone numbers, dates of birth,
postal addresses, passport numbers and personal e-mail addresses.

find_pii(text) -> [Finding]: every finding has its kind, the exact span (offsets into `text`, so
text[start:end] == value), a normalised value, whether it passed a validation and the rule that
decided. A number that only looks like personal data (an IBAN with a wrong key, a 15-digit reference
whose NIR key is wrong, a 16-digit order number that fails Luhn) is not reported; its span is still
claimed, so no other rule reads a phone number inside it. Pass `rejected=[]` to see those.

Validation comes from maintained libraries where they exist: python-stdnum (IBAN mod 97 and BBAN
formats, NIR key with Corsica 2A/2B, Luhn) and phonenumbers (numbering plans of every country).
The French RIB key, the NIR structure (sex, month, department, commune, order), card issuer ranges,
calendar dates and postcodes are checked here. Deterministic, no network, no model.
"""
from __future__ import annotations

import bisect
import datetime
import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence, Set, Tuple

import phonenumbers
from stdnum import luhn, numdb
from stdnum import iban as std_iban
from stdnum.exceptions import ValidationError
from stdnum.fr import nir as std_nir

from leaktriage.text.fold import fold, fold_with_map
from .data import data_path, read_list

PII_KINDS = ("iban", "nir", "card", "phone", "dob", "address", "passport", "email")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: text[start:end] == value."""
    kind: str            # iban nir card phone dob address passport email
    start: int
    end: int
    value: str           # the text as written
    normalized: str      # compact / canonical form (IBAN without spaces, E.164 phone, ISO date, ...)
    validated: bool      # passed its check (checksum, numbering plan, calendar, postcode, provider)
    rule: str            # what decided, e.g. "iban:mod97+rib-key", "phone:phonenumbers"

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# Data

@lru_cache(maxsize=1)
def _context() -> dict:
    with open(data_path("pii_context.json"), encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def known_personal_domains() -> frozenset:
    """The shipped list of free-mail and ISP domains (data/freemail_domains.txt)."""
    return frozenset(d.lower() for d in read_list("freemail_domains.txt"))


def _words_rx(words: Iterable[str]) -> str:
    alts = sorted({re.escape(w).replace(r"\ ", r"\s+") for w in words}, key=lambda s: (-len(s), s))
    return "(?:%s)" % "|".join(alts)


# ---------------------------------------------------------------------------------------------------
# Claimed spans (a finding, or a rejected look-alike, owns its characters)

class _Claims:
    """Disjoint claimed spans, sorted by start (bisect: a text with thousands of findings stays
    linear-logarithmic)."""

    def __init__(self):
        self.starts: List[int] = []
        self.ends: List[int] = []

    def free(self, s: int, e: int) -> bool:
        i = bisect.bisect_left(self.starts, e)        # spans starting before e
        return i == 0 or self.ends[i - 1] <= s

    def take(self, s: int, e: int) -> None:
        if not self.free(s, e):
            return
        i = bisect.bisect_left(self.starts, s)
        self.starts.insert(i, s)
        self.ends.insert(i, e)


# ---------------------------------------------------------------------------------------------------
# IBAN

_IBAN_DB = numdb.get("iban")
_IBAN_RX = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ \u00a0\u202f-]?[A-Za-z0-9]){8,32}")
_RIB_LETTERS = {c: str(v) for cs, v in (("AJ", 1), ("BKS", 2), ("CLT", 3), ("DMU", 4), ("ENV", 5),
                                        ("FOW", 6), ("GPX", 7), ("HQY", 8), ("IRZ", 9)) for c in cs}
# IBANs whose BBAN is a French RIB (France and the territories and Monaco that use it)
_RIB_COUNTRIES = {"FR", "MC", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"}


@lru_cache(maxsize=512)
def _iban_length(country: str) -> int:
    info = _IBAN_DB.info(country + "00")
    struct = info[0][1].get("bban") if info and info[0][1] else None
    if not struct:
        return 0
    return 4 + sum(int(n) for n in re.findall(r"(\d+)!", struct))


def rib_key_ok(bban: str) -> bool:
    """French RIB key: 97 - (89 bank + 15 branch + 3 account) mod 97, account letters as digits."""
    bank, branch, account, key = bban[:5], bban[5:10], bban[10:21], bban[21:23]
    acc = "".join(_RIB_LETTERS.get(c, c) for c in account.upper())
    if not (bank.isdigit() and branch.isdigit() and acc.isdigit() and key.isdigit()):
        return False
    return 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acc)) % 97 == int(key)


def check_iban(compact: str) -> Tuple[bool, str]:
    """(valid, rule or reason) for a compact IBAN."""
    try:
        std_iban.validate(compact)
    except ValidationError as exc:
        return False, "iban:" + type(exc).__name__
    if compact[:2] in _RIB_COUNTRIES:
        if not rib_key_ok(compact[4:]):
            return False, "iban:rib-key-mismatch"
        return True, "iban:mod97+rib-key"
    return True, "iban:mod97+bban-format"


def _find_iban(text: str, claims: _Claims, out: list, rejected: Optional[list]) -> None:
    for m in _IBAN_RX.finditer(text):
        s = m.start()
        want = _iban_length(text[s:s + 2])
        if not want:
            continue
        # positions of the characters of the compact form
        pos = [i for i in range(s, m.end()) if text[i].isalnum()]
        if len(pos) < want:
            if len(pos) >= want - 4 and claims.free(s, m.end()):
                _reject(rejected, "iban", text, s, m.end(), "iban:too-short")
                claims.take(s, m.end())
            continue
        e = pos[want - 1] + 1
        if e < len(text) and text[e].isalnum():
            continue                 # the IBAN would end inside a word: not an IBAN
        if not claims.free(s, e):
            continue
        compact = "".join(text[i] for i in pos[:want]).upper()
        ok, rule = check_iban(compact)
        claims.take(s, e)
        if ok:
            out.append(Finding("iban", s, e, text[s:e], compact, True, rule))
        else:
            _reject(rejected, "iban", text, s, e, rule)


# ---------------------------------------------------------------------------------------------------
# NIR (French social security number)

_SEP = r"[ .\u00a0\u202f]?"
_NIR_RX = re.compile(r"(?<![\w.,/-])[1-478]{s}\d\d{s}\d\d{s}(?:\d\d|2[AaBb]){s}\d\d\d{s}\d\d\d{s}\d\d(?![\w]|[.,/-]\d)"
                     .format(s=_SEP))


def check_nir(compact: str) -> Tuple[bool, str]:
    """(valid, rule or reason) for a 15-character NIR (Corsica: 2A / 2B in the department)."""
    if compact[0] not in "123478":
        return False, "nir:bad-sex-digit"
    month = int(compact[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False, "nir:bad-month"
    if compact[5:7] == "00" or compact[7:10] == "000" or compact[10:13] == "000":
        return False, "nir:bad-place-or-order"
    try:
        std_nir.validate(compact)
    except ValidationError as exc:
        return False, "nir:" + type(exc).__name__
    return True, "nir:key+structure"


def _find_nir(text: str, claims: _Claims, out: list, rejected: Optional[list]) -> None:
    for m in _NIR_RX.finditer(text):
        s, e = m.span()
        if not claims.free(s, e):
            continue
        compact = re.sub(r"[ .\u00a0\u202f]", "", m.group(0)).upper()
        ok, rule = check_nir(compact)
        if not ok and compact.isdigit() and check_card(compact)[0]:
            continue                 # a 15-digit card number (American Express): the card rule takes it
        claims.take(s, e)
        if ok:
            out.append(Finding("nir", s, e, m.group(0), compact, True, rule))
        else:
            _reject(rejected, "nir", text, s, e, rule)


# ---------------------------------------------------------------------------------------------------
# Payment cards

_CARD_RX = re.compile(r"(?<![\w.,/-])\d(?:[ \u00a0-]?\d){12,18}(?![\w]|[.,/-]\d)")


def card_brand(d: str) -> Optional[str]:
    """Issuer of a card number from its first digits and length (None: no known issuer)."""
    n = len(d)
    p2, p3, p4, p6 = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if d[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= p3 <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 == 50 or 56 <= p2 <= 69) and 12 <= n <= 19:
        return "maestro"
    return None


def check_card(digits: str) -> Tuple[bool, str]:
    if not luhn.is_valid(digits):
        return False, "card:luhn-failed"
    brand = card_brand(digits)
    if brand is None:
        return False, "card:no-issuer"
    return True, "card:luhn+iin(%s)" % brand


def _find_card(text: str, claims: _Claims, out: list, rejected: Optional[list]) -> None:
    for m in _CARD_RX.finditer(text):
        s, e = m.span()
        raw = m.group(0)
        groups = re.split(r"[ \u00a0-]", raw)
        # separators, when there are any, cut the number into groups of 4 (Amex: 4-6-5)
        if len(groups) > 1 and not (all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4
                                    or [len(g) for g in groups] == [4, 6, 5]):
            continue
        if not claims.free(s, e):
            continue
        digits = "".join(groups)
        ok, rule = check_card(digits)
        claims.take(s, e)
        if ok:
            out.append(Finding("card", s, e, raw, digits, True, rule))
        else:
            _reject(rejected, "card", text, s, e, rule)


# ---------------------------------------------------------------------------------------------------
# Phone numbers

_PSEP = r"[ \u00a0\u202f.\-]?"
_PHONE_RX = re.compile(
    r"(?<![\w+])(?<![\d][.,/:-])(?:"
    r"(?:\+|00)[1-9]\d{0,2}(?:%(s)s\(0\))?(?:%(s)s\(?\d{1,4}\)?){2,6}"     # international
    r"|0[1-9](?:%(s)s\d\d){4}"                                            # French: 0X XX XX XX XX
    r")(?![\w])(?![.,/:-]\d)" % {"s": _PSEP})


# overseas departments and territories that share the French ten-digit national numbering
# (06 96 ... is a Martinique mobile, 05 90 ... a Guadeloupe line, dialled as such from France)
_FR_OVERSEAS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


_FR_WRITTEN = re.compile(r"(?:\+33|0033)[ \u00a0\u202f.\-]?(?:\(0\)[ \u00a0\u202f.\-]?)?[1-9](?:[ \u00a0\u202f.\-]?\d\d){4}"
                         r"|0[1-9](?:[ \u00a0\u202f.\-]?\d\d){4}")


def check_phone(candidate: str) -> Tuple[Optional[str], bool, str]:
    """(E.164, validated, rule) of a phone number, or (None, False, reason).

    Valid per phonenumbers (national forms read as French): validated. An overseas number written
    with +33 instead of its own code (+33 6 96 ... for 06 96 ..., a Martinique mobile) is read as
    the overseas number it is. A number in the French written form (0X XX XX XX XX, +33 X XX XX XX XX)
    that phonenumbers knows as possible but not allocated is still a phone number: reported, not
    validated."""
    try:
        num = phonenumbers.parse(candidate, "FR")
    except phonenumbers.NumberParseException:
        return None, False, "phone:unparsable"
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(num):
        return e164, True, "phone:phonenumbers"
    if num.country_code != 33:
        return None, False, "phone:not-a-valid-number"
    national = "0" + str(num.national_number)
    for region in _FR_OVERSEAS:
        alt = phonenumbers.parse(national, region)
        if phonenumbers.is_valid_number(alt):
            return (phonenumbers.format_number(alt, phonenumbers.PhoneNumberFormat.E164), True,
                    "phone:phonenumbers(overseas number written with +33)")
    if _FR_WRITTEN.fullmatch(candidate) and phonenumbers.is_possible_number(num):
        return e164, False, "phone:fr-written-form(unallocated per phonenumbers)"
    return None, False, "phone:not-a-valid-number"


def _find_phone(text: str, claims: _Claims, out: list, rejected: Optional[list]) -> None:
    for m in _PHONE_RX.finditer(text):
        s, e = m.span()
        if not claims.free(s, e):
            continue
        raw = m.group(0)
        e164, ok, rule = check_phone(raw)
        if e164 is None and (raw[0] == "+" or raw.startswith("00")):
            # an international number followed by other digits: try it shorter, group by group
            cuts = [k.start() for k in re.finditer(r"[ \u00a0\u202f.\-]", raw)]
            for c in reversed(cuts):
                if sum(ch.isdigit() for ch in raw[:c]) < 8:
                    break
                e164, ok, rule = check_phone(raw[:c])
                if e164:
                    e = s + c
                    raw = raw[:c]
                    break
        if e164 is None:
            if sum(ch.isdigit() for ch in raw) >= 9:
                _reject(rejected, "phone", text, s, e, rule)
            continue
        claims.take(s, e)
        out.append(Finding("phone", s, e, raw, e164, ok, rule))


# ---------------------------------------------------------------------------------------------------
# E-mail addresses on personal mail providers

_EMAIL_RX = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
                       r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")


# local parts no person chooses: UUIDs, long hexadecimal or digit runs (Message-IDs, bounce tokens)
_MACHINE_LOCAL = re.compile(r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|[0-9a-fA-F]{16,}@|[\d.$-]{12,}@)")


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower().rstrip(".")


def _find_email(text: str, claims: _Claims, out: list, personal: Set[str], learned: Set[str],
                every: bool = False) -> None:
    if "@" not in text:
        return
    for m in _EMAIL_RX.finditer(text):
        s, e = m.span()
        addr = m.group(0)
        if _MACHINE_LOCAL.match(addr):
            claims.take(s, e)          # a Message-ID or other generated identifier, not a mailbox
            continue
        dom = email_domain(addr)
        claims.take(s, e)              # whoever owns it, no digits are read inside an address
        if dom in personal:
            out.append(Finding("email", s, e, addr, addr.lower(), True, "email:provider-list"))
        elif dom in learned:
            out.append(Finding("email", s, e, addr, addr.lower(), True, "email:learned-provider"))
        elif every:
            out.append(Finding("email", s, e, addr, addr.lower(), False, "email:candidate"))


# ---------------------------------------------------------------------------------------------------
# Dates of birth

_FR_MONTHS = ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
              "octobre", "novembre", "decembre"]
_EN_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
              "october", "november", "december"]
_ABBR = {"janv": 1, "jan": 1, "fevr": 2, "fev": 2, "feb": 2, "mar": 3, "avr": 4, "apr": 4, "juil": 7,
         "jul": 7, "jun": 6, "aug": 8, "sept": 9, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
_MONTH_NUM = dict(_ABBR)
_MONTH_NUM.update({m: i + 1 for i, m in enumerate(_FR_MONTHS)})
_MONTH_NUM.update({m: i + 1 for i, m in enumerate(_EN_MONTHS)})
_MONTH_RX = "(%s)" % "|".join(sorted(_MONTH_NUM, key=lambda k: (-len(k), k)))

_DATE_RX = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<d1>\d{1,2})(?P<sep>[/.-])(?P<m1>\d{1,2})(?P=sep)(?P<y1>\d{4})"
    r"|(?P<y2>\d{4})-(?P<m2>\d\d)-(?P<d2>\d\d)"
    r"|(?P<d3>\d{1,2})(?:er|st|nd|rd|th)?\s+(?:of\s+)?(?P<m3>%(m)s)\.?,?\s+(?P<y3>\d{4})"
    r"|(?P<m4>%(m)s)\.?\s+(?P<d4>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{4})"
    r")(?![\w/-])" % {"m": _MONTH_RX})


@lru_cache(maxsize=1)
def _birth_rx():
    ctx = _context()
    near = _words_rx(ctx["birth_near"]["words"])
    imm = _words_rx(ctx["birth_immediate"]["words"])
    # '>' and line breaks in between: a quoted reply wrapped after "né le"
    return re.compile(r"(?:(?<![\w])%s(?![\w])[^\n.;!?]{0,30}[\s>]*|(?<![\w])%s(?![\w])[\s>]*(?:le|on|in|:)?[\s>]*:?[\s>]*)$"
                      % (near, imm))


@lru_cache(maxsize=1)
def _birth_after_rx():
    """'12/03/2010 (date de naissance)', '12/03/2010 - DOB'."""
    near = _words_rx(_context()["birth_near"]["words"] + ["date de naissance", "date of birth"])
    return re.compile(r"[ \u00a0]*[(\[,:-]?[ \u00a0]*%s(?![\w])" % near)


def _date_value(m: re.Match) -> Optional[datetime.date]:
    g = m.groupdict()
    try:
        if g["y1"]:
            d, mo, y = int(g["d1"]), int(g["m1"]), int(g["y1"])
            if mo > 12 and d <= 12:           # US order (mm/dd/yyyy)
                d, mo = mo, d
        elif g["y2"]:
            d, mo, y = int(g["d2"]), int(g["m2"]), int(g["y2"])
        elif g["y3"]:
            d, mo, y = int(g["d3"]), _MONTH_NUM[g["m3"]], int(g["y3"])
        else:
            d, mo, y = int(g["d4"]), _MONTH_NUM[g["m4"]], int(g["y4"])
        return datetime.date(y, mo, d)
    except (ValueError, KeyError):
        return None


def _find_dob(text: str, folded: str, where: List[int], claims: _Claims, out: list,
              rejected: Optional[list]) -> None:
    birth = _birth_rx()
    after = _birth_after_rx()
    for m in _DATE_RX.finditer(folded):
        fs, fe = m.span()
        if not birth.search(folded, max(0, fs - 60), fs) and not after.match(folded, fe):
            continue
        s, e = where[fs], where[fe - 1] + 1
        if not claims.free(s, e):
            continue
        day = _date_value(m)
        if day is None or not (1890 <= day.year <= 2030):
            _reject(rejected, "dob", text, s, e, "dob:not-a-calendar-date")
            continue
        claims.take(s, e)
        out.append(Finding("dob", s, e, text[s:e], day.isoformat(), True, "dob:birth-context+calendar"))


# ---------------------------------------------------------------------------------------------------
# Postal addresses

def fr_postcode_ok(pc: str) -> bool:
    """A French postcode: department 01-95 (20 for Corsica), overseas 971-976 and 984-989, Monaco 980."""
    if len(pc) != 5 or not pc.isdigit():
        return False
    dep = int(pc[:2])
    if 1 <= dep <= 95:
        return True
    return pc[:3] in ("971", "972", "973", "974", "975", "976", "980", "984", "986", "987", "988", "989")


# a city: capitalised words (hyphenated parts may be lower case: Aix-en-Provence, Villeneuve-d'Ascq)
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0152"
_CITY_TOKEN = r"[%s][^\W\d_]*(?:['\u2019-][^\W\d_]+)*" % _UPPER
_CITY_RX = re.compile(r"(?!CEDEX)(?:%(t)s)(?:[ \u00a0](?!CEDEX)(?:%(t)s)){0,3}" % {"t": _CITY_TOKEN})
_CEDEX_RX = re.compile(r"[ \u00a0]+CEDEX(?:[ \u00a0]+\d{1,2})?(?![\w])")
# capitalised words that start the next sentence rather than continue a city name
_NOT_CITY = frozenset("je j il elle on nous vous ils elles merci bonne bonjour bonsoir cordialement bien "
                      "le la les de des du et a au aux en ce cette mon ma mes ton ta tes son sa ses notre "
                      "votre tel fax mail email portable interphone code digicode batiment bat escalier "
                      "etage appartement apt the i we you he she it they thanks thank please best kind "
                      "regards cheers tel phone mobile".split())


def _city_end(text: str, cs: int) -> Optional[int]:
    """End of the city name that starts at text[cs], or None."""
    m = _CITY_RX.match(text, cs)
    if not m:
        return None
    ends = [t.end() for t in re.finditer(r"\S+", m.group(0))]
    words = m.group(0).split()
    keep = 1
    for i in range(1, len(words)):
        if fold(words[i]).strip("'\u2019") in _NOT_CITY:
            break
        keep = i + 1
    e = cs + ends[keep - 1]
    cedex = _CEDEX_RX.match(text, e)
    return cedex.end() if cedex else e


@lru_cache(maxsize=1)
def _fr_address_rx():
    types = _words_rx(_context()["street_types_fr"])
    return re.compile(
        r"(?<![\w,.])\d{1,4}(?:\s?(?:bis|ter|quater|[abt])(?![\w]))?,?[ \u00a0]+%s\.?[ \u00a0]+"
        r"[^\n,;:()]{1,60}?,?[ \u00a0]*(?:\n[ \t>]*)?"
        r"(?P<pc>\d{5}|\d\d[ \u00a0]\d{3})[ \u00a0]+(?=[^\W\d_])" % types)


_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?[ \u00a0]?\d[A-Z]{2})"
_US_STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
              "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR").split()


@lru_cache(maxsize=1)
def _en_address_rx():
    types = _words_rx(_context()["street_types_en"])
    return re.compile(
        r"(?<![\w,.])(?P<no>\d{1,5}[A-Za-z]?)[ \u00a0]+(?:[A-Z0-9][\w'\u2019.-]*[ \u00a0]+){1,4}(?i:%s)\.?"
        r"(?:[ \u00a0]+(?:NW|NE|SW|SE|N|S|E|W))?,?(?:[ \u00a0]*\n[ \t>]*|[ \u00a0]+)"
        r"(?:(?:Apt|Flat|Suite|Unit)\.?[ \u00a0]*\w+,?[ \u00a0]+)?"
        r"(?P<town>[A-Z][\w'\u2019-]*(?:[ \u00a0][A-Z][\w'\u2019-]*){0,2}),?(?:[ \u00a0]*\n[ \t>]*|[ \u00a0]+)"
        r"(?:(?P<uk>%s)|(?P<st>[A-Z]{2})[ \u00a0]+(?P<zip>\d{5}(?:-\d{4})?))(?![\w])" % (types, _UK_POSTCODE))


def _norm_address(s: str) -> str:
    s = re.sub(r"[ \t\u00a0]*\n[ \t>]*", ", ", s)
    s = re.sub(r",\s*,", ",", s)
    return re.sub(r"[ \u00a0]+", " ", s).strip()


def _find_address(text: str, folded: str, where: List[int], claims: _Claims, out: list,
                  rejected: Optional[list]) -> None:
    if any(ch.isdigit() for ch in text):
        for m in _fr_address_rx().finditer(folded):
            fs = m.start()
            s = where[fs]
            cs = where[m.end()] if m.end() < len(where) else len(text)
            e = _city_end(text, cs)
            if e is None:
                continue
            pc = re.sub(r"\D", "", m.group("pc"))
            if not claims.free(s, e):
                continue
            if not fr_postcode_ok(pc):
                _reject(rejected, "address", text, s, e, "address:bad-postcode")
                continue
            claims.take(s, e)
            out.append(Finding("address", s, e, text[s:e], _norm_address(text[s:e]), True,
                               "address:fr-street+postcode"))
        for m in _en_address_rx().finditer(text):
            s, e = m.span()
            if not claims.free(s, e):
                continue
            if m.group("st") and m.group("st") not in _US_STATES:
                continue
            claims.take(s, e)
            rule = "address:uk-street+postcode" if m.group("uk") else "address:us-street+state+zip"
            out.append(Finding("address", s, e, m.group(0), _norm_address(m.group(0)), True, rule))


# ---------------------------------------------------------------------------------------------------
# Passport numbers

_FR_PASSPORT_RX = re.compile(r"(?<![\w])\d\d[A-Z]{2}\d{5}(?![\w])")
_OTHER_PASSPORT_RX = re.compile(r"(?<![\w])(?=[A-Z0-9]*\d[A-Z0-9]*\d[A-Z0-9]*\d[A-Z0-9]*\d[A-Z0-9]*\d)"
                                r"[A-Z0-9]{6,9}(?![\w])")


@lru_cache(maxsize=1)
def _passport_rx():
    words = _words_rx(_context()["passport"]["words"])
    near = re.compile(r"(?<![\w])%s(?![\w])" % words)
    right_before = re.compile(r"(?<![\w])(?:passeport|passport)s?\s*(?:n\s?°|n°|no\.?|nr\.?|number|numero|num\.?|#)?"
                              r"\s*:?\s*$")
    return near, right_before


def _find_passport(text: str, folded: str, where: List[int], claims: _Claims, out: list,
                   rejected: Optional[list]) -> None:
    near, right_before = _passport_rx()
    identity = len(folded) == len(text)
    back = {}
    if not identity:
        for fi, oi in enumerate(where):
            back.setdefault(oi, fi)

    def fpos(i: int) -> int:
        return i if identity else back.get(i, 0)

    for m in _FR_PASSPORT_RX.finditer(text):
        s, e = m.span()
        if not claims.free(s, e):
            continue
        fs = fpos(s)
        claims.take(s, e)
        if near.search(folded, max(0, fs - 40), fs):
            out.append(Finding("passport", s, e, m.group(0), m.group(0), True, "passport:fr-format+context"))
        else:
            # the format alone (2 digits, 2 letters, 5 digits) is rare outside passports: reported,
            # not validated
            out.append(Finding("passport", s, e, m.group(0), m.group(0), False, "passport:fr-format(no context)"))
    for m in _OTHER_PASSPORT_RX.finditer(text):
        s, e = m.span()
        if not claims.free(s, e):
            continue
        fs = fpos(s)
        if not right_before.search(folded, max(0, fs - 30), fs):
            continue
        claims.take(s, e)
        out.append(Finding("passport", s, e, m.group(0), m.group(0), True, "passport:format+context"))


# ---------------------------------------------------------------------------------------------------

def _reject(rejected: Optional[list], kind: str, text: str, s: int, e: int, reason: str) -> None:
    if rejected is not None:
        rejected.append(Finding(kind, s, e, text[s:e], text[s:e], False, reason))


def find_pii(text: str, *, personal_domains: Optional[Iterable[str]] = None,
             kinds: Sequence[str] = PII_KINDS, rejected: Optional[list] = None,
             folded: Optional[Tuple[str, List[int]]] = None, every_email: bool = False) -> List[Finding]:
    """Personal data in `text`, validated, sorted by position.

    personal_domains: mail-provider domains learned from the dump (SphereModel.personal_domains), on
    top of the shipped list of free-mail and ISP domains; an address on any other domain is not
    personal data here. rejected: a list that receives the look-alikes that failed their check.
    folded: fold_with_map(text) when the caller already has it. every_email: also report the
    addresses on other domains, as validated=False "email:candidate" findings (the caller decides
    later which domains are personal).
    """
    if not text:
        return []
    learned = {d.lower() for d in personal_domains} if personal_domains else set()
    personal = known_personal_domains()
    claims = _Claims()
    out: List[Finding] = []
    want = set(kinds)
    _find_email(text, claims, out if "email" in want else [], personal, learned, every_email)
    has_digit = any(c.isdigit() for c in text)
    if has_digit:
        _find_iban(text, claims, out if "iban" in want else [], rejected)
        _find_nir(text, claims, out if "nir" in want else [], rejected)
        _find_card(text, claims, out if "card" in want else [], rejected)
        _find_phone(text, claims, out if "phone" in want else [], rejected)
        f, where = folded if folded is not None else fold_with_map(text)
        _find_passport(text, f, where, claims, out if "passport" in want else [], rejected)
        _find_dob(text, f, where, claims, out if "dob" in want else [], rejected)
        _find_address(text, f, where, claims, out if "address" in want else [], rejected)
    out.sort(key=lambda x: (x.start, x.end, x.kind))
    return out
