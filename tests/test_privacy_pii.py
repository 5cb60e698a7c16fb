"""Personal data: real validation (checksums, numbering plans, calendar, postcodes), exact spans,
look-alikes rejected; the generator's own valid values and decoys as a property check."""
import random

import pytest

from leaktriage.privacy import find_pii
from leaktriage.privacy.pii import check_iban, check_nir, rib_key_ok

from test_privacy_common import make_dump_module


def kinds(text, **kw):
    return [(f.kind, f.value) for f in find_pii(text, **kw)]


def one(text, kind, **kw):
    fs = [f for f in find_pii(text, **kw) if f.kind == kind]
    assert len(fs) == 1, (text, fs)
    f = fs[0]
    assert text[f.start:f.end] == f.value
    return f


def _iban(country_bban: str) -> str:
    """An IBAN with correct check digits for country + BBAN (ISO 13616)."""
    cc, bban = country_bban[:2], country_bban[2:]
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return "%s%02d%s" % (cc, 98 - num % 97, bban)


def _rib_key(bank, branch, account):
    return 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97


# ----------------------------------------------------------------------------------------- IBAN

def test_iban_french_grouped_and_compact():
    bban = "30003" + "01234" + "12345678901"
    bban += "%02d" % _rib_key("30003", "01234", "12345678901")
    iban = _iban("FR" + bban)
    grouped = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    for written in (iban, grouped):
        text = "Voici mon RIB : %s (Banque X)." % written
        f = one(text, "iban")
        assert f.value == written and f.normalized == iban and f.validated
        assert f.rule == "iban:mod97+rib-key"


def test_iban_followed_by_bic_ends_at_its_length():
    iban = "FR76 3000 3896 5664 8586 0342 572"
    text = "IBAN : %s BIC BNPAFRPP" % iban
    assert one(text, "iban").value == iban


def test_foreign_ibans():
    for iban in ("DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "BE71 0961 2345 6769"):
        f = one("Please refund to IBAN %s today." % iban, "iban")
        assert f.normalized == iban.replace(" ", "") and f.rule == "iban:mod97+bban-format"


def test_iban_wrong_check_digits_rejected():
    rej = []
    assert kinds("IBAN : FR76 3000 3896 5664 8586 0342 573", rejected=rej) == []
    assert [r.kind for r in rej] == ["iban"] and not rej[0].validated


def test_iban_with_right_mod97_but_wrong_rib_key_rejected():
    bban = "30003" + "01234" + "12345678901"
    good = _rib_key("30003", "01234", "12345678901")
    bad = bban + "%02d" % ((good + 1) % 97)
    iban = _iban("FR" + bad)                      # check digits made to fit: mod 97 passes
    assert check_iban(iban) == (False, "iban:rib-key-mismatch")
    assert rib_key_ok(bban + "%02d" % good)
    rej = []
    assert kinds("Mon IBAN : %s" % iban, rejected=rej) == []
    assert rej[0].rule == "iban:rib-key-mismatch"


def test_no_phone_read_inside_a_rejected_iban():
    # the digits of a decoy IBAN hold "06 75 ..."-like runs; nothing at all must be reported
    assert kinds("Voici le RIB : FR76 1820 6754 4031 7190 0436 265") == []


# ----------------------------------------------------------------------------------------- NIR

def _nir(n13):
    dep = n13[5:7]
    num = n13[:5] + {"2A": "19", "2B": "18"}.get(dep, dep) + n13[7:]
    return n13 + "%02d" % (97 - int(num) % 97)


def test_nir_with_key_spaced_and_compact():
    n = _nir("1840575123456")
    spaced = " ".join((n[0], n[1:3], n[3:5], n[5:7], n[7:10], n[10:13], n[13:]))
    for written in (n, spaced):
        f = one("Mon numéro de sécurité sociale : %s." % written, "nir")
        assert f.value == written and f.normalized == n and f.rule == "nir:key+structure"


@pytest.mark.parametrize("dep", ["2A", "2B"])
def test_nir_corsica(dep):
    n = _nir("2790%s%s004123" % ("5", dep))
    assert check_nir(n) == (True, "nir:key+structure")
    assert one("N° de sécu : %s" % n, "nir").normalized == n
    # the key of a Corsican NIR is computed with 19 / 18 in place of 2A / 2B: the naive key is wrong
    naive = n[:13] + "%02d" % (97 - int(n[:5] + "20" + n[7:13]) % 97)
    if naive != n:
        assert check_nir(naive)[0] is False


def test_nir_wrong_key_rejected_and_13_digits_not_reported():
    n = _nir("1840575123456")
    wrong = n[:13] + "%02d" % ((int(n[13:]) + 1) % 97)
    rej = []
    assert kinds("N° de sécu : %s" % wrong, rejected=rej) == []
    assert rej and rej[0].rule == "nir:InvalidChecksum"
    assert kinds("numéro 1840575123456 sans clé") == []


def test_nir_impossible_month_rejected():
    n = _nir("1841575123456")        # month 15 does not exist (and is not a special value)
    assert check_nir(n) == (False, "nir:bad-month")
    assert kinds("N° : %s" % n) == []


# ----------------------------------------------------------------------------------------- cards

def _luhn_complete(body):
    for c in "0123456789":
        d = body + c
        tot = sum((int(x) * 2 - 9 if int(x) * 2 > 9 else int(x) * 2) if i % 2 else int(x)
                  for i, x in enumerate(reversed(d)))
        if tot % 10 == 0:
            return d


def test_card_luhn_and_issuer():
    visa = _luhn_complete("497010123456789")
    grouped = " ".join(visa[i:i + 4] for i in range(0, 16, 4))
    f = one("Carte bancaire : %s (exp. 12/19)" % grouped, "card")
    assert f.value == grouped and f.normalized == visa and f.rule == "card:luhn+iin(visa)"
    amex = _luhn_complete("37828224631000")
    assert one("card %s" % amex, "card").rule == "card:luhn+iin(amex)"


def test_order_numbers_rejected():
    visa = _luhn_complete("497010123456789")
    bad = visa[:-1] + str((int(visa[-1]) + 1) % 10)        # fails Luhn
    rej = []
    assert kinds("Numéro de commande : %s" % bad, rejected=rej) == []
    assert rej[0].rule == "card:luhn-failed"
    # a 16-digit number that passes Luhn by chance but belongs to no card issuer
    other = _luhn_complete("123456789012345")
    assert kinds("Référence de transaction : %s" % other) == []


# ----------------------------------------------------------------------------------------- phones

@pytest.mark.parametrize("written,e164", [
    ("06 12 34 56 78", "+33612345678"),
    ("+33 6 12 34 56 78", "+33612345678"),
    ("06.12.34.56.78", "+33612345678"),
    ("06-12-34-56-78", "+33612345678"),
    ("0612345678", "+33612345678"),
    ("+33 (0)6 12 34 56 78", "+33612345678"),
    ("0033 6 12 34 56 78", "+33612345678"),
    ("01 45 67 89 10", "+33145678910"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+1 415-555-2671", "+14155552671"),
    ("06 96 12 34 56", "+596696123456"),          # a Martinique mobile, written the French way
    ("+33 6 96 12 34 56", "+596696123456"),       # ... and with +33 instead of +596
])
def test_phone_forms(written, e164):
    f = one("Tu peux me joindre au %s ce soir." % written, "phone")
    assert f.value == written and f.normalized == e164 and f.validated


def test_phone_unallocated_block_reported_not_validated():
    f = one("Mon portable : 07 12 34 56 78", "phone")
    assert not f.validated and f.rule.startswith("phone:fr-written-form")


@pytest.mark.parametrize("text", [
    "Réf. 21480 du 14/03/2016 à 14:03",
    "Total : 1 234 567,89 €",
    "Commande 4970304262239564",
    "Le 12.03.2016, ticket 2016-03-12",
    "RPPS : 10123456789",
])
def test_not_phones(text):
    assert [k for k, _ in kinds(text)] == []


# ----------------------------------------------------------------------------------------- dates of birth

@pytest.mark.parametrize("text,iso", [
    ("Née le 18 mai 1954 à Lyon.", "1954-05-18"),
    ("né le 1er février 1980", "1980-02-01"),
    ("Date de naissance : 26/08/1955", "1955-08-26"),
    ("Pour le formulaire : né(e) le 11.03.1961.", "1961-03-11"),
    ("Born on May 18, 1954 in Leeds", "1954-05-18"),
    ("Date of birth: 18 August 1992", "1992-08-18"),
    ("DOB: 1990-02-28", "1990-02-28"),
    ("Lucas : 12/03/2010 (date de naissance)", "2010-03-12"),
    ("Frédéric Durand, né le\n> 11.03.1961, passeport", "1961-03-11"),
])
def test_dates_of_birth(text, iso):
    assert one(text, "dob").normalized == iso


@pytest.mark.parametrize("text", [
    "Je pars le 12/03/2016 à Lyon.",
    "Je ne pourrai pas venir le 12/03/2016",
    "La naissance du projet date du 31/02/1990",      # not a calendar date
])
def test_not_dates_of_birth(text):
    assert [k for k, _ in kinds(text) if k == "dob"] == []


# ----------------------------------------------------------------------------------------- addresses

@pytest.mark.parametrize("text,value", [
    ("Notre nouvelle adresse : 19 rue de Verdun, 33300 Bordeaux", "19 rue de Verdun, 33300 Bordeaux"),
    ("Je suis au 35 rue Jean Jaurès, 93100 Montreuil, interphone Rousseau.", "35 rue Jean Jaurès, 93100 Montreuil"),
    ("Ma nouvelle adresse : 152 bis rue Émile Zola, 78000 Versailles et voilà", "152 bis rue Émile Zola, 78000 Versailles"),
    ("12 avenue des Champs, 13100 Aix-en-Provence.", "12 avenue des Champs, 13100 Aix-en-Provence"),
    ("3 allée des Cerisiers\n59650 Villeneuve-d'Ascq", "3 allée des Cerisiers\n59650 Villeneuve-d'Ascq"),
    ("4 impasse des Acacias, 20000 Ajaccio CEDEX 2", "4 impasse des Acacias, 20000 Ajaccio CEDEX 2"),
    ("221B Baker Street, London NW1 6XE", "221B Baker Street, London NW1 6XE"),
])
def test_addresses(text, value):
    f = one(text, "address")
    assert f.value == value and f.validated


def test_address_with_impossible_postcode_rejected():
    rej = []
    assert kinds("au 3 rue des Lilas, 00100 Nulleville", rejected=rej) == []
    assert rej[0].rule == "address:bad-postcode"


# ----------------------------------------------------------------------------------------- passports, e-mail

def test_passport():
    f = one("Passeport n° 17LE68356, valable jusqu'en 2027.", "passport")
    assert f.validated and f.rule == "passport:fr-format+context"
    g = one("Référence 12AB34567", "passport")
    assert not g.validated
    assert one("passport no. 533380006", "passport").rule == "passport:format+context"


def test_personal_email_addresses():
    text = "Écris à jeremie.dasilva@gmail.com, pas à j.dasilva@mouvement-enavant.fr ni à x@perso-invente.fr"
    assert kinds(text) == [("email", "jeremie.dasilva@gmail.com")]
    got = find_pii(text, personal_domains=["perso-invente.fr"])
    assert [(f.value, f.rule) for f in got if f.kind == "email"] == [
        ("jeremie.dasilva@gmail.com", "email:provider-list"), ("x@perso-invente.fr", "email:learned-provider")]


def test_message_ids_are_not_addresses_and_hold_no_phone():
    assert kinds("Message-ID: <2d4594e8-156c-4adb-a964-c18fe0603b44@gmail.com>") == []
    assert kinds("<0612345678.1453442565000@gmail.com>") == []


# ----------------------------------------------------------------------------------------- spans

def test_spans_exact_after_ligatures_and_accents():
    text = "Lecœur Æsa ﬁnal, née le 18 mai 1954 ; Straße : 06 12 34 56 78 ; au 2 rue Œillet, 75011 Paris"
    fs = find_pii(text)
    assert {f.kind for f in fs} == {"dob", "phone", "address"}
    for f in fs:
        assert text[f.start:f.end] == f.value
    assert [f.value for f in fs if f.kind == "address"] == ["2 rue Œillet, 75011 Paris"]


def test_hostile_inputs_do_not_break():
    for text in ("", "\x00" * 100, "9" * 10000, "FR76" + " 1" * 5000, "@" * 1000, "né le " * 2000,
                 "06 " * 3000, "\ud800 broken surrogate 06 12 34 56 78"):
        for f in find_pii(text):
            assert text[f.start:f.end] == f.value


# ----------------------------------------------------------------------------------------- the generator's values

def test_generator_values_found_and_decoys_rejected():
    """Every value the generator plants passes, every decoy it makes is rejected (its own rules,
    500 of each, fixed seed)."""
    md = make_dump_module()
    rng = random.Random(17)
    from datetime import date
    for _ in range(500):
        iban = md.make_iban(rng)
        text = "Mon IBAN : %s." % md.fmt_iban(iban, rng.random() < 0.5)
        assert [f.normalized for f in find_pii(text) if f.kind == "iban"] == [iban], text
        decoy = md.make_iban_decoy(rng)
        assert find_pii("IBAN : %s" % md.fmt_iban(decoy, rng.random() < 0.5)) == []
        dob = date(rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28))
        nir = md.make_nir(rng, rng.choice("MF"), dob, rng.choice(md.BIRTH_CITIES)[1])
        written = md.fmt_nir(nir, rng.random() < 0.5)
        assert [f.value for f in find_pii("N° de sécu : %s." % written)] == [written]
        assert find_pii("N° de sécu : %s" % md.fmt_nir(md.make_nir_decoy(rng), rng.random() < 0.5)) == []
        card = md.make_card(rng)
        assert [f.normalized for f in find_pii("Carte : %s." % md.fmt_card(card, rng.random() < 0.5))] == [card]
        assert find_pii("Numéro de commande : %s" % md.make_card_decoy(rng)) == []
        phone = md.fmt_phone(md.make_phone(rng, rng.random() < 0.7, rng.randint(1, 5)),
                             rng.choice(["intl", "dot", "space"]))
        assert [f.value for f in find_pii("Appelle-moi au %s ce soir." % phone)] == [phone]
        addr = md.make_address(rng)
        assert [f.value for f in find_pii("Notre nouvelle adresse : %s" % addr)] == [addr]
