"""DKIM verdicts: real mail with real keys, and generated signatures altered in each way."""
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dkim  # noqa: E402

from leaktriage.auth import KeyStore, analyse_message, verify_dkim  # noqa: E402
from support import dkim_testkit as T  # noqa: E402
from leaktriage.auth.canonical import ART_CR, ART_FROM_QUOTE, ART_LF  # noqa: E402

CORPORA = Path(os.environ.get("LEAKTRIAGE_CORPORA") or REPO.parent / "shared" / "corpora")


def need_corpus(sub):
    p = CORPORA / sub
    if not p.is_dir():
        msg = "corpus folder %s is missing (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


RCV = datetime(2023, 11, 14, 22, 15, tzinfo=timezone.utc)
NAME = "sel._domainkey.example.com"


def ks_for(key, name=NAME, **more):
    return KeyStore.from_dict({name: key.txt() if isinstance(key, T.RSAKey) else key, **more})


def one(raw, ks, **kw):
    res = verify_dkim(raw, ks, **kw)
    assert len(res) == 1
    return res[0]


def dkimpy_verify(raw, txt):
    return dkim.verify(raw, dnsfunc=lambda name, timeout=5: txt.encode(), minkey=512)


# --- real mail -----------------------------------------------------------------------------------

@pytest.mark.parametrize("keys", ["keys", "keys.json"])
@pytest.mark.parametrize("msg", ["message-gmail.eml", "message-outlook.eml"])
def test_real_messages_pass_with_corpus_keys(msg, keys):
    base = need_corpus("dkim-real")
    expected = json.loads((base / "expected.json").read_text())["hamcrest-mail/" + msg]
    raw = (base / "hamcrest-mail" / msg).read_bytes()
    ks = KeyStore.load(base / keys)
    res = verify_dkim(raw, ks)
    assert len(res) == len(expected["dkim"]) == 1
    r, e = res[0], expected["dkim"][0]
    assert r["verdict"] == "pass", r["reason"]
    assert (r["d"], r["s"], r["a"], r["c"], r["key_bits"]) == (e["d"], e["s"], e["a"], e["c"], e["keybits"])
    assert r["key_source"] == "keystore:sha256:%s" % ks.digest[:16]   # the content, not the path
    moved = KeyStore.load(base / keys)
    moved.source = "/elsewhere/keys.json"
    assert moved.digest == ks.digest        # wherever the key store lies
    assert ART_LF in r["artefacts"]          # the corpus files are LF-only
    if keys == "keys.json":
        assert r["key_provenance"].startswith("devopsix/hamcrest-mail@4826231c")
    else:
        assert r["key_provenance"] is None


def test_real_messages_without_keys_are_no_key_not_fail():
    base = need_corpus("dkim-real")
    for msg in ("message-gmail.eml", "message-outlook.eml"):
        r = one((base / "hamcrest-mail" / msg).read_bytes(), KeyStore.from_dict({}))
        assert r["verdict"] == "no-key"
        assert "live DNS not used" in r["reason"]


def test_real_gmail_body_altered_is_body_hash_mismatch():
    base = need_corpus("dkim-real")
    raw = (base / "hamcrest-mail" / "message-gmail.eml").read_bytes()
    # find a body word after the header block and change it
    head, body = raw.split(b"\n\n", 1)
    assert b"Unicode" in body or b"a" in body
    altered = head + b"\n\n" + body.replace(b"a", b"e", 1)
    r = one(altered, KeyStore.load(base / "keys"))
    assert r["verdict"] == "body-hash-mismatch"
    assert r["header_signature"] == "valid"


# --- generated signatures ------------------------------------------------------------------------

@pytest.mark.parametrize("bits,verdict", [(512, "pass-weak-key"), (1024, "pass"), (2048, "pass")])
@pytest.mark.parametrize("c", ["simple/simple", "relaxed/relaxed", "relaxed/simple", "simple/relaxed"])
def test_generated_signature_passes(bits, verdict, c):
    key = T.rsa_key(bits)
    raw = T.sign(T.message(received=None), key, c=c)
    r = one(raw, ks_for(key))
    assert r["verdict"] == verdict, r["reason"]
    assert r["key_bits"] == bits
    assert r["c"] == c and r["d"] == "example.com" and r["s"] == "sel"
    assert r["h"] == ["from", "to", "subject", "date", "message-id"]
    assert r["t"] == 1700000000 and r["x"] is None and r["l"] is None
    assert r["key_source"] == "keystore:sha256:%s" % ks_for(key).digest[:16]
    # the test signer is checked against dkimpy's own verifier, not only against ours
    assert dkimpy_verify(raw, key.txt()) is True


def test_ed25519_signature_passes():
    priv, txt = T.ed25519_key()
    raw = T.sign(T.message(received=None), priv, a="ed25519-sha256")
    r = one(raw, ks_for(txt))
    assert r["verdict"] == "pass" and r["key_bits"] == 256


@pytest.mark.parametrize("c", ["simple/simple", "relaxed/relaxed"])
def test_body_changed_is_body_hash_mismatch(c):
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, c=c)
    r = one(raw.replace(b"figures are attached", b"figures are not attached"), ks_for(key))
    assert r["verdict"] == "body-hash-mismatch"
    assert r["header_signature"] == "valid"
    assert r["body_hash"] == "mismatch"


@pytest.mark.parametrize("c", ["simple/simple", "relaxed/relaxed"])
def test_signed_header_changed_is_signature_mismatch(c):
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, c=c)
    r = one(raw.replace(b"Subject: Quarterly figures", b"Subject: Quarterly figures (final)"), ks_for(key))
    assert r["verdict"] == "signature-mismatch"
    assert r["body_hash"] == "match"


def test_whitespace_change_in_signed_header_simple_vs_relaxed():
    key = T.rsa_key(1024)
    for c, verdict in (("simple/simple", "signature-mismatch"), ("relaxed/relaxed", "pass")):
        raw = T.sign(T.message(received=None), key, c=c)
        r = one(raw.replace(b"Subject: Quarterly figures", b"Subject:   Quarterly  figures"), ks_for(key))
        assert r["verdict"] == verdict


def test_unsigned_header_added_still_passes():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key)
    raw = raw.replace(b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nX-Added: later\r\n")
    assert one(raw, ks_for(key))["verdict"] == "pass"


def test_wrong_key_is_signature_mismatch():
    raw = T.sign(T.message(received=None), T.rsa_key(1024))
    r = one(raw, ks_for(T.rsa_key(1024, seed=7)))
    assert r["verdict"] == "signature-mismatch"
    assert r["body_hash"] == "match"


def test_missing_key_and_revoked_key_are_no_key():
    raw = T.sign(T.message(received=None), T.rsa_key(1024))
    assert one(raw, KeyStore.from_dict({}))["verdict"] == "no-key"
    assert one(raw, None)["verdict"] == "no-key"
    r = one(raw, ks_for("v=DKIM1; k=rsa; p="))
    assert r["verdict"] == "no-key" and "revoked" in r["reason"]


def test_expiry_is_judged_against_receipt_time_not_today():
    key = T.rsa_key(1024)
    rcv_ts = int(RCV.timestamp())
    expired = T.sign(T.message(received=None), key, t=rcv_ts - 7200, x=rcv_ts - 3600)
    r = one(expired, ks_for(key), received_at=RCV)
    assert r["verdict"] == "expired" and r["expired_at_receipt"] is True
    # x= after receipt but long before today: valid when received, so pass
    valid = T.sign(T.message(received=None), key, t=rcv_ts - 7200, x=rcv_ts + 3600)
    r = one(valid, ks_for(key), received_at=RCV)
    assert r["verdict"] == "pass" and r["expired_at_receipt"] is False
    # dkimpy alone rejects it because it compares x= with today
    assert dkimpy_verify(valid, key.txt()) is False
    # without a receipt time expiry is not judged
    r = one(expired, ks_for(key))
    assert r["verdict"] == "pass" and "expiry was not judged" in r["reason"]


def test_expired_with_received_header_through_analyse():
    key = T.rsa_key(1024)
    rcv_ts = int(RCV.timestamp())
    signed = T.sign(T.message(received=None), key, t=rcv_ts - 7200, x=rcv_ts - 3600)
    raw = (b"Received: from a.example.com by mx.example.org with ESMTP id 1; Tue, 14 Nov 2023 22:15:00 +0000\r\n"
           + signed)
    res = analyse_message(raw, [], keystore=ks_for(key))
    # headers list empty: the Received time comes from `headers`, so expiry is not judged
    assert res["dkim"][0]["verdict"] == "pass"
    import email
    hs = list(email.message_from_bytes(raw).items())
    res = analyse_message(raw, hs, keystore=ks_for(key))
    assert res["dkim"][0]["verdict"] == "expired"
    assert res["dkim_summary"] == "expired"
    assert "auth.dkim_expired" in [i["code"] for i in res["indicators"]]


def test_unknown_algorithm_is_unsupported():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key).replace(b"a=rsa-sha256", b"a=rsa-sha512", 1)
    r = one(raw, ks_for(key))
    assert r["verdict"] == "unsupported-algorithm"
    raw = T.sign(T.message(received=None), key, c="relaxed/nowsp")
    assert one(raw, ks_for(key))["verdict"] == "unsupported-algorithm"


@pytest.mark.parametrize("mangle,reason", [
    (lambda v: v.replace(b"d=example.com;", b"d=example.com; s;", 1), "tag list"),
    (lambda v: v.replace(b"d=example.com;", b"d=example.com; d=example.org;", 1), "tag list"),
    (lambda v: v.replace(b"v=1; ", b"", 1), "missing required"),
    (lambda v: v.replace(b"v=1;", b"v=2;", 1), "v= is not 1"),
    (lambda v: v.replace(b"t=1700000000;", b"t=soon;", 1), "t= is not a decimal"),
    (lambda v: v.replace(b"bh=", b"bh=!!", 1), "bh= is not valid base64"),
])
def test_malformed_tag_lists(mangle, reason):
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key)
    r = one(mangle(raw), ks_for(key))
    assert r["verdict"] == "malformed"
    assert reason in r["reason"]


def test_from_not_signed_is_malformed_and_flagged():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, h=("to", "subject", "date"))
    r = one(raw, ks_for(key))
    assert r["verdict"] == "malformed" and "From" in r["reason"]
    import email
    res = analyse_message(raw, list(email.message_from_bytes(raw).items()), keystore=ks_for(key))
    assert "auth.dkim_from_not_signed" in [i["code"] for i in res["indicators"]]


def test_i_outside_d_is_malformed():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, i="alice@example.org")
    assert one(raw, ks_for(key))["verdict"] == "malformed"
    raw = T.sign(T.message(received=None), key, i="alice@mail.example.com")
    assert one(raw, ks_for(key))["verdict"] == "pass"


@pytest.mark.parametrize("c", ["simple/simple", "relaxed/relaxed"])
def test_lf_only_and_cr_only_files_are_artefacts_not_forgery(c):
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, c=c)
    lf = one(raw.replace(b"\r\n", b"\n"), ks_for(key))
    assert lf["verdict"] == "pass" and ART_LF in lf["artefacts"]
    cr = one(raw.replace(b"\r\n", b"\r"), ks_for(key))
    assert cr["verdict"] == "pass" and ART_CR in cr["artefacts"]
    crlf = one(raw, ks_for(key))
    assert crlf["verdict"] == "pass" and crlf["artefacts"] == []


def test_mbox_from_quoting_is_undone_and_reported():
    key = T.rsa_key(1024)
    body = b"Hello,\r\nFrom the office: all fine.\r\n"
    raw = T.sign(T.message(received=None, body=body), key, c="simple/simple")
    quoted = raw.replace(b"\r\nFrom the office", b"\r\n>From the office")
    r = one(quoted, ks_for(key))
    assert r["verdict"] == "pass" and ART_FROM_QUOTE in r["artefacts"]
    assert one(raw, ks_for(key))["artefacts"] == []


def test_body_length_limit():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key, l=True)
    r = one(raw, ks_for(key))
    assert r["verdict"] == "pass" and r["unsigned_body_bytes"] == 0
    appended = raw + b"\r\nPS: please wire the money to account 1234.\r\n"
    r = one(appended, ks_for(key))
    assert r["verdict"] == "pass" and r["unsigned_body_bytes"] == 46
    import email
    res = analyse_message(appended, list(email.message_from_bytes(appended).items()), keystore=ks_for(key))
    ind = [i for i in res["indicators"] if i["code"] == "auth.dkim_body_length_limit"]
    assert len(ind) == 1 and ind[0]["evidence"]["unsigned_bytes"] == 46 and ind[0]["severity"] == "warning"
    truncated = raw.replace(b"Regards\r\n", b"")
    r = one(truncated, ks_for(key))
    assert r["verdict"] == "body-hash-mismatch" and "longer than the canonical body" in r["reason"]


def test_every_signature_is_verified():
    key = T.rsa_key(1024)
    other = T.rsa_key(1024, seed=3)
    raw = T.sign(T.message(received=None), key)
    raw = T.sign(raw, other, d="esp.example.net", s="s2")
    raw = T.sign(raw, key, s="gone")
    res = verify_dkim(raw, KeyStore.from_dict({NAME: key.txt(), "s2._domainkey.esp.example.net": other.txt()}))
    assert [(r["index"], r["d"], r["s"], r["verdict"]) for r in res] == [
        (0, "example.com", "gone", "no-key"), (1, "esp.example.net", "s2", "pass"), (2, "example.com", "sel", "pass")]


def test_derived_key_source():
    key = T.rsa_key(1024)
    raw = T.sign(T.message(received=None), key)
    ks = KeyStore.from_dict({NAME: {"txt": key.txt(), "provenance": "derived, not anchored"}})
    r = one(raw, ks)
    assert r["verdict"] == "pass" and r["key_source"] == "derived" and r["key_provenance"] == "derived, not anchored"


def test_dns_is_never_used_unless_asked(monkeypatch):
    import dkim.dnsplug
    calls = []
    monkeypatch.setattr(dkim.dnsplug, "get_txt", lambda name, timeout=5: calls.append(name) or None)
    raw = T.sign(T.message(received=None), T.rsa_key(1024))
    assert one(raw, None)["verdict"] == "no-key"
    assert calls == []
    key = T.rsa_key(1024)
    monkeypatch.setattr(dkim.dnsplug, "get_txt", lambda name, timeout=5: calls.append(name) or key.txt().encode())
    r = one(raw, None, dns=True)
    assert calls == [b"sel._domainkey.example.com."]
    assert r["verdict"] == "pass" and r["key_source"] == "dns"


@pytest.mark.parametrize("raw", [
    b"", b"\x00\xff" * 100, b"DKIM-Signature:", b"DKIM-Signature: v=1; b=;\r\n\r\n",
    b"DKIM-Signature: \xff\xfe=\x00;;;==\r\nFrom: x\r\n\r\n", b"From: a\r\n" * 10000,
    b"DKIM-Signature: v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; l=99999999999999999999999\r\nFrom: a\r\n\r\nx",
], ids=["empty", "binary", "bare-name", "empty-b", "garbage-tags", "many-froms", "huge-l"])
def test_hostile_input_never_raises(raw):
    res = verify_dkim(raw, KeyStore.from_dict({"s._domainkey.e.com": T.rsa_key(512).txt()}))
    assert all(r["verdict"] in ("malformed", "no-key", "body-hash-mismatch", "signature-mismatch") for r in res)
    analyse_message(raw, [("From", "a")])


def test_signed_samples_writer(tmp_path):
    expected = T.write_signed_samples(str(tmp_path / "a"))
    T.write_signed_samples(str(tmp_path / "b"))
    ks = KeyStore.load(tmp_path / "a" / "dkim-keys.json")
    for name, verdicts in expected.items():
        raw = (tmp_path / "a" / name).read_bytes()
        assert raw == (tmp_path / "b" / name).read_bytes()          # deterministic
        assert [r["verdict"] for r in verify_dkim(raw, ks)] == verdicts, name


def test_stray_cr_in_an_unsigned_header_above_the_signature():
    key = T.rsa_key(1024)
    raw = b"X-Stray: a\r\r\n" + T.sign(T.message(received=None), key)
    assert one(raw, ks_for(key))["verdict"] == "pass"
    assert verify_dkim(T.message(received=None), ks_for(key)) == []
