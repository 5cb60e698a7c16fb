"""ARC: real Outlook.com set without its key (no-key, not fail), generated sets, dkimpy faults."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dkim  # noqa: E402

from leaktriage.auth import KeyStore, analyse_message, verify_arc  # noqa: E402
from support import dkim_testkit as T  # noqa: E402

CORPORA = Path(os.environ.get("LEAKTRIAGE_CORPORA") or REPO.parent / "shared" / "corpora")


def need_corpus(sub):
    p = CORPORA / sub
    if not p.is_dir():
        msg = "corpus folder %s is missing (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


KEY = T.rsa_key(1024)
ARC_KEY = T.rsa_key(1024, seed=2)
KS = KeyStore.from_dict({"sel._domainkey.example.com": KEY.txt(),
                         "arc._domainkey.relay.example.net": ARC_KEY.txt()})


def sealed():
    return T.arc_seal(T.sign(T.message(received=None), KEY), ARC_KEY)


def no_space(raw):
    for n in (b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results"):
        raw = raw.replace(n + b": i=1", n + b":i=1")
    return raw


def test_real_outlook_arc_without_key_is_no_key():
    base = need_corpus("dkim-real")
    raw = (base / "hamcrest-mail" / "message-outlook.eml").read_bytes()
    r = verify_arc(raw, KeyStore.load(base / "keys"))
    assert r["verdict"] == "no-key"
    assert r["missing_keys"] == ["arcselector9901._domainkey.microsoft.com"]
    assert r["sets"][0]["i"] == 1 and r["sets"][0]["ams"] == "no-key" and r["sets"][0]["as"] == "no-key"
    assert r["sets"][0]["cv"] == "none"
    # dkimpy on its own calls this "fail": the wrapper must not
    cv, _, reason = dkim.ARC(raw).verify(dnsfunc=lambda n, timeout=5: None)
    assert cv == b"fail"


def test_real_gmail_has_no_arc():
    base = need_corpus("dkim-real")
    r = verify_arc((base / "hamcrest-mail" / "message-gmail.eml").read_bytes(), KeyStore.load(base / "keys"))
    assert r["verdict"] == "none" and r["sets"] == []


def test_generated_arc_set_passes():
    r = verify_arc(sealed(), KS)
    assert r["verdict"] == "pass"
    assert r["sets"] == [{"i": 1, "ams": "pass", "as": "pass", "cv": "none", "ams_d": "relay.example.net",
                          "ams_s": "arc", "as_d": "relay.example.net", "as_s": "arc"}]


def test_arc_header_without_space_after_colon():
    raw = no_space(sealed())
    # dkimpy itself crashes on it (the AMS lookup searches for b" i=1;")
    with pytest.raises(IndexError):
        dkim.ARC(raw).verify(dnsfunc=lambda n, timeout=5: KS.lookup(n.decode())[0].encode())
    r = verify_arc(raw, KS)
    assert r["verdict"] == "pass"
    assert any("without a space after the colon" in a for a in r["artefacts"])
    res = analyse_message(raw, [], keystore=KS)
    assert "auth.arc_header_repaired" in [i["code"] for i in res["indicators"]]


def test_arc_body_changed_fails():
    r = verify_arc(sealed().replace(b"figures are attached", b"figures are missing"), KS)
    assert r["verdict"] == "fail"
    assert r["sets"][0]["ams"] == "fail" and r["sets"][0]["as"] == "pass"


def test_arc_seal_changed_fails():
    raw = sealed().replace(b"spf=pass", b"spf=fail")   # the AAR is covered by the seal only
    r = verify_arc(raw, KS)
    assert r["verdict"] == "fail" and r["sets"][0]["as"] == "fail" and r["sets"][0]["ams"] == "pass"


def test_arc_without_keys_is_no_key():
    r = verify_arc(sealed(), KeyStore.from_dict({}))
    assert r["verdict"] == "no-key" and r["missing_keys"] == ["arc._domainkey.relay.example.net"]


def test_arc_incomplete_or_duplicated_is_malformed():
    raw = sealed()
    lines = raw.split(b"\r\n")
    # drop the ARC-Authentication-Results field (one line)
    no_aar = b"\r\n".join(l for l in lines if not l.startswith(b"ARC-Authentication-Results"))
    assert verify_arc(no_aar, KS)["verdict"] == "malformed"
    dup = b"ARC-Authentication-Results: i=1; other.example; spf=none\r\n" + raw
    r = verify_arc(dup, KS)
    assert r["verdict"] == "malformed" and "duplicate" in r["reason"]
    gap = raw.replace(b"i=1;", b"i=2;")
    assert verify_arc(gap, KS)["verdict"] == "malformed"


@pytest.mark.parametrize("raw", [b"", b"ARC-Seal: garbage\r\n\r\n", b"ARC-Seal:\r\n", b"ARC-Seal: i=1; ;;==\xff\r\n\r\n"])
def test_arc_hostile_input_never_raises(raw):
    assert verify_arc(raw, KS)["verdict"] in ("malformed", "none", "fail", "no-key")


LIST_KEY = T.rsa_key(1024, seed=4)
KS2 = KeyStore.from_dict({"sel._domainkey.example.com": KEY.txt(), "arc._domainkey.relay.example.net": ARC_KEY.txt(),
                          "arc2._domainkey.list.example.org": LIST_KEY.txt()})


def two_hops(cv=None):
    first = sealed().replace(b"Subject: Quarterly figures", b"Subject: [list] Quarterly figures")
    return T.arc_seal(first, LIST_KEY, d="list.example.org", s="arc2", srv="list.example.org",
                      results="arc=pass; dkim=fail", cv=cv)


def test_two_hop_chain_passes_although_the_list_changed_the_subject():
    raw = two_hops()
    r = verify_arc(raw, KS2)
    assert r["verdict"] == "pass"
    # only the most recent AMS has to verify: the first hop's AMS no longer matches the changed Subject
    assert [(s["i"], s["ams"], s["as"], s["cv"]) for s in r["sets"]] == [(1, "fail", "pass", "none"), (2, "pass", "pass", "pass")]
    # DKIM of the author breaks on the same change: ARC tells what the list saw, not who wrote it
    from leaktriage.auth import verify_dkim
    assert verify_dkim(raw, KS2)[0]["verdict"] == "signature-mismatch"


def test_two_hop_chain_with_earlier_set_altered_fails():
    raw = two_hops().replace(b"spf=pass smtp.mailfrom=example.com", b"spf=pass smtp.mailfrom=example.net")
    r = verify_arc(raw, KS2)
    assert r["verdict"] == "fail"
    assert [(s["i"], s["as"]) for s in r["sets"]] == [(1, "fail"), (2, "fail")]


def test_chain_sealed_with_cv_fail_is_fail():
    r = verify_arc(two_hops(cv="fail"), KS2)
    assert r["verdict"] == "fail" and "reported failure" in r["reason"]


def test_two_hop_chain_without_first_hop_key_is_no_key():
    ks = KeyStore.from_dict({"arc2._domainkey.list.example.org": LIST_KEY.txt()})
    r = verify_arc(two_hops(), ks)
    assert r["verdict"] == "no-key" and r["missing_keys"] == ["arc._domainkey.relay.example.net"]
