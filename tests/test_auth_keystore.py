"""Key store formats and errors."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leaktriage.auth import KeyStore, KeyStoreError  # noqa: E402

TXT = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"


def test_json_plain_and_object_values(tmp_path):
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({
        "s1._domainkey.Example.COM.": TXT,
        "s2._domainkey.example.com": {"txt": TXT, "provenance": "archive.org capture 2016-03-01"},
        "s3._domainkey.example.com": {"txt": TXT, "provenance": "derived, not anchored", "bits": 1024},
    }))
    ks = KeyStore.load(p)
    assert len(ks) == 3 and ks.source == str(p)
    assert ks.lookup("s1._domainkey.example.com") == (TXT, None)
    assert ks.lookup("S1._domainkey.example.com.") == (TXT, None)
    assert ks.lookup("s2._domainkey.example.com")[1] == "archive.org capture 2016-03-01"
    assert ks.lookup("s3._domainkey.example.com")[1] == "derived, not anchored"
    assert ks.lookup("nope._domainkey.example.com") is None


def test_json_file_reference(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "a.txt").write_text(TXT + "\n")
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"a._domainkey.example.org.": {"file": "k/a.txt", "provenance": "p"}}))
    assert KeyStore.load(p).lookup("a._domainkey.example.org") == (TXT, "p")


def test_folder(tmp_path):
    (tmp_path / "s1._domainkey.example.com").write_text(TXT)
    (tmp_path / "s2._domainkey.example.com.txt").write_text('"v=DKIM1; k=rsa; " "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"\n')
    (tmp_path / "README.md").write_text("notes")
    ks = KeyStore.load(tmp_path)
    assert sorted(ks.names()) == ["s1._domainkey.example.com", "s2._domainkey.example.com"]
    assert ks.lookup("s2._domainkey.example.com") == (TXT, None)


@pytest.mark.parametrize("content,msg", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"example.com": "v=DKIM1; p=x"}', "not a name of the form"),
    ('{"s._domainkey.example.com": 5}', "must be a TXT string"),
    ('{"s._domainkey.example.com": {"provenance": "x"}}', "neither"),
    ('{"s._domainkey.example.com": {"txt": "x", "provenance": 3}}', "provenance"),
    ('{"s._domainkey.example.com": {"file": "missing.txt"}}', "cannot read"),
    ('{"s._domainkey.example.com": "a", "S._domainkey.example.com.": "b"}', "listed twice"),
])
def test_bad_json_key_stores(tmp_path, content, msg):
    p = tmp_path / "keys.json"
    p.write_text(content)
    with pytest.raises(KeyStoreError, match=msg):
        KeyStore.load(p)


def test_missing_and_binary(tmp_path):
    with pytest.raises(KeyStoreError, match="no such"):
        KeyStore.load(tmp_path / "nothing.json")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(KeyStoreError, match="not UTF-8"):
        KeyStore.load(tmp_path / "b.json")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "s._domainkey.e.com").write_bytes(b"\xff\xff")
    with pytest.raises(KeyStoreError, match="not UTF-8"):
        KeyStore.load(d)
