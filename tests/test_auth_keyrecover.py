"""Key recovery from generated signatures (1024 bits here; 2048 is timed by hand, see docs)."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leaktriage.auth import KeyStore, analyse_message, recover_keys, verify_dkim, write_keystore  # noqa: E402
from support import dkim_testkit as T  # noqa: E402
from leaktriage.auth.dkimverify import parse_key_record  # noqa: E402


def signed(key, n, **kw):
    return [T.sign(T.message(subject="Report %d" % k, received=None,
                             body=b"Part %d of the report.\r\n" % k), key, **kw) for k in range(n)]


def test_recover_1024_bit_key_and_verify_with_it(tmp_path):
    key = T.rsa_key(1024, seed=11)
    msgs = signed(key, 2)
    keys = recover_keys(msgs)
    assert len(keys) == 1
    k = keys[0]
    assert k["name"] == "sel._domainkey.example.com"
    assert k["bits"] == 1024 and k["e"] == 65537
    assert k["provenance"] == "derived, not anchored"
    assert k["messages_used"] == 2 and k["signatures_verified"] == 2
    assert parse_key_record(k["txt"])["key"] == (key.n, key.e)
    path = tmp_path / "derived.json"
    write_keystore(str(path), keys)
    ks = KeyStore.load(path)
    assert ks.lookup(k["name"])[1] == "derived, not anchored"
    # a third message, not used for recovery, verifies with the derived key
    third = signed(key, 3)[2]
    r = verify_dkim(third, ks)[0]
    assert r["verdict"] == "pass" and r["key_source"] == "derived"
    res = analyse_message(third, [], keystore=ks)
    assert "auth.dkim_derived_key" in [i["code"] for i in res["indicators"]]
    # a body altered after signing still gives its key (only headers are needed) and is caught
    altered = msgs[0].replace(b"Part 0", b"Part 9")
    assert verify_dkim(altered, ks)[0]["verdict"] == "body-hash-mismatch"


def test_recovery_skips_a_pair_with_altered_headers_and_duplicates():
    key = T.rsa_key(512, seed=5)
    msgs = signed(key, 3, c="simple/simple")
    bad = msgs[0].replace(b"Subject: Report 0", b"Subject: Report zero")
    keys = recover_keys([bad, bad, msgs[1], msgs[2]])
    assert len(keys) == 1
    assert parse_key_record(keys[0]["txt"])["key"] == (key.n, key.e)
    assert keys[0]["signatures"] == 3 and keys[0]["signatures_verified"] == 2


def test_e3_and_groups():
    key3 = T.rsa_key(512, seed=6, e=3)
    other = T.rsa_key(512, seed=8)
    msgs = signed(key3, 2, d="three.example") + signed(other, 1, d="single.example")
    keys = recover_keys(msgs)
    assert [(k["name"], k["e"]) for k in keys] == [("sel._domainkey.three.example", 3)]


def test_nothing_to_recover():
    assert recover_keys([]) == []
    assert recover_keys([b"", b"From: a\r\n\r\n", b"\xff" * 50]) == []


def test_crafted_huge_signatures_are_not_exponentiated():
    """A crafted DKIM-Signature whose b= is 256 KiB would make s^65537 a 16 GiB integer (the issue
    saw keys recover grow past 10 GB): only signatures of a plausible RSA size are used, so this
    set gives nothing, at once and in little memory."""
    import base64
    import resource
    from leaktriage.auth.keyrecover import collect_signatures
    big = base64.b64encode(b"\x7f" + b"\x01" * (256 << 10)).decode()
    msgs = []
    for k in range(3):
        msgs.append(("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; c=relaxed/relaxed; "
                     "h=from:subject; bh=AAAA; b=%s\r\nFrom: a@example.com\r\nSubject: %d\r\n\r\nbody\r\n"
                     % (big, k)).encode())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert collect_signatures(msgs) == {}      # before the limit: a group of three 2-Mbit "signatures"
    assert recover_keys(msgs) == []
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10   # KiB: under 200 MiB more
