"""`leaktriage keys recover`: keys derived from the dump's own signatures, then used by a scan."""
import json

from click.testing import CliRunner

from support import dkim_testkit as tk
from leaktriage.cli.main import cli


def test_recover_then_rescan(tmp_path):
    key = tk.rsa_key(512, seed=7)  # small key: the recovery itself is tested at 1024 bits in test_auth_*
    dump = tmp_path / "dump" / "inbox"
    dump.mkdir(parents=True)
    for i in range(3):
        m = tk.message(subject="Figures %d" % i, body=b"Hello %d\r\n" % i)
        (dump / ("%d.eml" % i)).write_bytes(tk.sign(m, key, d="campaign.example", s="k1"))
    runner = CliRunner()
    m1 = tmp_path / "m1.jsonl"
    r = runner.invoke(cli, ["scan", str(tmp_path / "dump"), "-o", str(m1), "-q", "-w", "1"])
    assert r.exit_code == 0, r.output
    msgs = [json.loads(l) for l in m1.read_text().splitlines() if '"record":"message"' in l]
    assert [m["dkim_summary"] for m in msgs] == ["no-key"] * 3
    summary = json.loads(m1.read_text().splitlines()[-1])
    assert summary["authenticity"]["missing_keys"] == {"k1._domainkey.campaign.example": 3}
    ks = tmp_path / "derived.json"
    r = runner.invoke(cli, ["keys", "recover", str(m1), "--dump", str(tmp_path / "dump"), "-o", str(ks)])
    assert r.exit_code == 0, r.output
    assert "expect 30 s or more" in r.output     # 1 key: the whole run announced, not only a pair's cost
    store = json.loads(ks.read_text())
    assert list(store) == ["k1._domainkey.campaign.example"]
    assert store["k1._domainkey.campaign.example"]["provenance"] == "derived, not anchored"
    m2 = tmp_path / "m2.jsonl"
    r = runner.invoke(cli, ["scan", str(tmp_path / "dump"), "-o", str(m2), "-q", "-w", "1", "--dkim-keys", str(ks)])
    assert r.exit_code == 0, r.output
    msgs = [json.loads(l) for l in m2.read_text().splitlines() if '"record":"message"' in l]
    for m in msgs:
        assert m["dkim"][0]["verdict"] == "pass-weak-key"
        assert m["dkim"][0]["key_source"] == "derived"
        assert "auth.dkim_derived_key" in {i["code"] for i in m["indicators"]}


def test_bad_key_store_is_a_usage_error(tmp_path):
    (tmp_path / "d").mkdir()
    bad = tmp_path / "ks.json"
    bad.write_text("{not json")
    r = CliRunner().invoke(cli, ["scan", str(tmp_path / "d"), "-o", "-", "-q", "--dkim-keys", str(bad)])
    assert r.exit_code == 2 and "DKIM key store" in r.output


def test_recover_in_parallel(tmp_path):
    """Keys are recovered in worker processes, one key per task (Ctrl-C is answered at once, see
    test_trust_interrupts): two keys on two workers, each found and checked against its signatures."""
    from leaktriage.auth import KeyStore
    dump = tmp_path / "dump" / "inbox"
    dump.mkdir(parents=True)
    names = []
    for n, (d, s) in enumerate([("b.example", "k2"), ("a.example", "k1")]):
        key = tk.rsa_key(512, seed=20 + n)
        names.append("%s._domainkey.%s" % (s, d))
        for i in range(2):
            m = tk.message(subject="%s %d" % (d, i), body=b"Hello %d %d\r\n" % (n, i))
            (dump / ("%d-%d.eml" % (n, i))).write_bytes(tk.sign(m, key, d=d, s=s))
    lone = tk.message(subject="alone", body=b"Only one\r\n")       # one signature: nothing to pair it with
    (dump / "lone.eml").write_bytes(tk.sign(lone, tk.rsa_key(512, seed=30), d="c.example", s="k3"))
    runner = CliRunner()
    m1 = tmp_path / "m1.jsonl"
    assert runner.invoke(cli, ["scan", str(tmp_path / "dump"), "-o", str(m1), "-q", "-w", "1"]).exit_code == 0
    ks = tmp_path / "k.json"
    r = runner.invoke(cli, ["keys", "recover", str(m1), "-o", str(ks), "-w", "2"])
    assert r.exit_code == 0, r.output
    assert "with 2 workers" in r.output and "Wrote %s (2 keys" % ks in r.output
    # each key is said as it is done (a run takes minutes), in order; the lone one was never tried
    lines = [l.strip() for l in r.output.splitlines()]
    progress = [l for l in lines if l.startswith("[")]
    assert [l.split(",")[0] for l in progress] == ["[1/2", "[2/2"]
    assert [l.split("] ")[1].split(":")[0] for l in progress] == ["k1._domainkey.a.example", "k2._domainkey.b.example"]
    assert all("512-bit key, verified 2 signatures" in l for l in progress)
    assert "k3._domainkey.c.example: not recovered (fewer than two usable signatures)" in lines
    store = json.loads(ks.read_text())
    assert sorted(store) == sorted(names)
    assert all(v["signatures_verified"] == 2 and v["bits"] == 512 for v in store.values())
    assert len(KeyStore.load(str(ks))) == 2
