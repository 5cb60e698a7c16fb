"""Redaction: labelled placeholders in French and English, a log that says what was removed
(digest, length, kind), where (both texts' offsets) and why (rule, validated), the input untouched."""
import hashlib

from leaktriage.privacy import Finding, find_pii, placeholders, redact
from leaktriage.privacy.pii import PII_KINDS

TEXT = ("Coucou, appelle-moi au 06 12 34 56 78 ou écris à lea.martin@gmail.com. "
        "Mon IBAN : FR76 3000 3896 5664 8586 0342 572, née le 18 mai 1954, "
        "au 19 rue de Verdun, 33300 Bordeaux. Passeport n° 17LE68356.")


def test_french_placeholders_and_log():
    original = str(TEXT)
    found = find_pii(TEXT)
    assert [f.kind for f in found] == ["phone", "email", "iban", "dob", "address", "passport"]
    out, log = redact(TEXT, found)
    assert TEXT == original
    assert out == ("Coucou, appelle-moi au [TÉLÉPHONE] ou écris à [COURRIEL]. "
                   "Mon IBAN : [IBAN], née le [DATE DE NAISSANCE], "
                   "au [ADRESSE]. Passeport n° [PASSEPORT].")
    assert len(log) == len(found)
    for f, r in zip(found, log):
        assert (r.kind, r.start, r.end, r.rule, r.validated) == (f.kind, f.start, f.end, f.rule, f.validated)
        assert out[r.new_start:r.new_end] == r.placeholder
        assert r.sha256 == hashlib.sha256(TEXT[f.start:f.end].encode()).hexdigest()
        assert r.length == f.end - f.start and r.value is None
        assert "value" not in r.as_dict()


def test_english_labels_and_values_on_request():
    found = find_pii(TEXT)
    out, log = redact(TEXT, found, language="en", keep_values=True, where="body")
    assert "[PHONE]" in out and "[EMAIL]" in out and "[DATE OF BIRTH]" in out and "06 12" not in out
    assert [r.value for r in log] == [f.value for f in found]
    assert {r.where for r in log} == {"body"}


def test_every_kind_has_a_label_in_both_languages():
    labels = placeholders()
    for lang in ("fr", "en"):
        assert set(labels[lang]) == set(PII_KINDS)
        assert all(v.startswith("[") and v.endswith("]") for v in labels[lang].values())
    assert labels["fr"]["iban"] == "[IBAN]" and labels["fr"]["phone"] == "[TÉLÉPHONE]"


def test_overlaps_and_kind_selection():
    text = "0123456789 abc"
    a = Finding("phone", 0, 10, text[:10], "+33123456789", True, "phone:phonenumbers")
    b = Finding("card", 2, 8, text[2:8], "x", True, "test")          # inside a: merged into it
    out, log = redact(text, [b, a])
    assert out == "[TÉLÉPHONE] abc" and [r.kind for r in log] == ["phone"]
    out, log = redact(text, [a], kinds=("iban",))
    assert out == text and log == []


def test_offsets_of_later_findings_shift_with_earlier_labels():
    text = "06 12 34 56 78 / 07 54 86 84 10"
    out, log = redact(text, find_pii(text), language="en")
    assert out == "[PHONE] / [PHONE]"
    assert [(r.new_start, r.new_end) for r in log] == [(0, 7), (10, 17)]
