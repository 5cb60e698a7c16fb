"""`leaktriage show` and `leaktriage export` on a scan of samples/."""
import csv
import hashlib
import io
import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.cli.main import cli

MSG = "Hélène Lefèvre/INBOX/0004.eml"
PDF = MSG + "#1.2.1.2"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from leaktriage import Options, scan
    out = tmp_path_factory.mktemp("scan") / "samples.jsonl"
    scan(str(SAMPLES), str(out), Options(workers=1))
    return out


def run(args, **kw):
    return CliRunner().invoke(cli, args, **kw)


# -- show -------------------------------------------------------------------------------------------

def test_show_message(manifest):
    r = run(["show", MSG, "-m", str(manifest)], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    err = r.stdout      # what was asked for goes to stdout (`leaktriage show X | less`)
    for needle in ("leaktriage show: message", "Jean Mercier <j.mercier@elan-citoyen.example>",
                   "Tr: Facture n° 2017-031", "Headers (", "Message-ID", "MIME structure (6 entities)",
                   "1.2  message/rfc822", "1.2.1.2  application/pdf", "facture-2017-031.pdf",
                   "6a3be02ac1279f6d583f0f7508a96ca40a781b5c027bdbd468c7ac9b6dc2e403",
                   "No problems recorded"):
        assert needle in err, needle
    assert r.stderr == ""


def test_show_problems_and_duplicates(manifest):
    r = run(["show", "Hélène Lefèvre/INBOX/0007.eml", "-m", str(manifest), "--no-headers"], env={"COLUMNS": "120"})
    assert "Problems (4)" in r.stdout and "base64.truncated" in r.stdout
    r = run(["show", "Hélène Lefèvre/Archives/Réunions/0003.eml", "-m", str(manifest)], env={"COLUMNS": "200"})
    assert "Exact copy" in r.stdout and "Hélène Lefèvre/INBOX/0003.eml" in r.stdout


def test_show_json(manifest):
    r = run(["show", MSG, "-m", str(manifest), "--json"])
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x["record"] for x in recs[:2]] == ["file", "message"]
    assert {x["locator"] for x in recs if x["record"] == "part"} >= {MSG + "#1", PDF}


def test_show_raw_checked(manifest, tmp_path):
    r = run(["show", PDF, "-m", str(manifest), "--dump", str(SAMPLES), "--raw"])
    assert r.exit_code == 0
    assert r.stdout_bytes.startswith(b"%PDF")
    assert hashlib.sha256(r.stdout_bytes).hexdigest() == "6a3be02ac1279f6d583f0f7508a96ca40a781b5c027bdbd468c7ac9b6dc2e403"
    # mbox message: exact stored bytes
    r = run(["show", "Sarah Watson/Inbox.mbox!mbox:2317", "-m", str(manifest), "--dump", str(SAMPLES), "--raw"])
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"Return-Path") or b"From:" in r.stdout_bytes[:2000]
    # a changed dump: refused, nothing written
    d = tmp_path / "dump"
    shutil.copytree(SAMPLES, d)
    p = d / "Hélène Lefèvre" / "INBOX" / "0004.eml"
    p.write_bytes(p.read_bytes().replace(b"JVBERi0", b"JVBERi1"))
    r = run(["show", PDF, "-m", str(manifest), "--dump", str(d), "--raw"])
    assert r.exit_code == 5 and r.stdout_bytes == b"" and "refusing" in r.stderr
    p.unlink()
    r = run(["show", PDF, "-m", str(manifest), "--dump", str(d), "--raw"])
    assert r.exit_code == 6 and r.stdout_bytes == b""
    r = run(["show", PDF, "-m", str(manifest), "--dump", str(tmp_path / "moved-away"), "--raw"])
    assert r.exit_code == 6 and "moved" in r.stderr
    r = run(["show", MSG + "#1", "-m", str(manifest), "--dump", str(SAMPLES), "--raw"])
    assert r.exit_code == 2 and "no SHA-256" in r.stderr  # a multipart container has no digest


def test_show_errors(manifest):
    r = run(["show", "Sarah Watson/Inbox.mbox!mbox:1", "-m", str(manifest)])
    assert r.exit_code == 7 and "did you mean" in r.stderr
    r = run(["show", MSG, "-m", str(manifest), "--raw", "--json"])
    assert r.exit_code == 2
    r = run(["show", MSG])
    assert r.exit_code == 2  # --manifest is required


# -- export -----------------------------------------------------------------------------------------

def rows_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_export_messages_csv(manifest):
    r = run(["export", str(manifest)])
    assert r.exit_code == 0 and "29 messages exported" in r.stderr
    assert r.stdout_bytes.decode().split("\r\n")[0] == ("locator,custodian,mailbox,date,from,to,cc,subject,message_id,"
                                         "attachments,size,sha256,problem_codes,dkim")
    rows = rows_csv(r.stdout)
    assert len(rows) == 29
    row = next(x for x in rows if x["locator"] == MSG)
    assert row["subject"] == "Tr: Facture n° 2017-031" and row["attachments"] == "1"
    assert row["from"] == "j.mercier@elan-citoyen.example"


def test_export_formats_and_fields(manifest):
    r = run(["export", str(manifest), "-f", "jsonl", "--fields", "subject,locator"])
    first = json.loads(r.stdout.splitlines()[0])
    assert list(first) == ["subject", "locator"]
    r = run(["export", str(manifest), "-f", "json", "-t", "attachments"])
    arr = json.loads(r.stdout)
    assert len(arr) == 10 and arr[0]["locator"].endswith("#1.2")
    r = run(["export", str(manifest), "-t", "problems", "-f", "json"])
    assert len(json.loads(r.stdout)) == manifest.read_text(encoding="utf-8").count('"record":"problem"') >= 12
    r = run(["export", str(manifest), "--fields", "nope"])
    assert r.exit_code == 2 and "unknown field" in r.stderr
    r = run(["export", str(manifest), "-t", "attachments", "--list-fields"])
    assert "filename (default)" in r.stdout


def test_export_filters(manifest):
    def n(*args, table="messages"):
        r = run(["export", str(manifest), "-f", "jsonl", "-t", table, *args])
        assert r.exit_code == 0, r.output
        return [json.loads(l) for l in r.stdout.splitlines()]
    assert len(n("--from", "J.Mercier@elan-citoyen.example")) == 5
    assert len(n("--domain", "dailyledger.example")) >= 3
    assert all(x["date"] >= "2017-03-05" for x in n("--since", "2017-03-05"))
    assert len(n("--until", "2016-12")) == 2
    assert len(n("--has-attachment")) + len(n("--no-attachment")) == 29
    pdfs = n("--type", "application/pdf", table="attachments")
    assert len(pdfs) == 4 and all(x["magic"] == "application/pdf" for x in pdfs)
    assert len(n("--type", "image/*", table="attachments")) == 2  # the png, and the .jpg that is a pdf
    assert [x["locator"] for x in n("--finding", "base64", table="messages")] == ["Hélène Lefèvre/INBOX/0007.eml"]
    assert len(n("--finding", "base64", table="problems")) == 3
    assert {x["custodian"] for x in n("--custodian", "sarah watson")} == {"Sarah Watson"}
    assert {x["custodian"] for x in n("--custodian", "jmercier", table="problems")} == {"jmercier"}
    # message filters select the problems of matching messages only
    assert all(x["locator"].startswith("Hélène Lefèvre/INBOX/0007") for x in
               n("--from", "j.mercier@elan-citoyen.example", table="problems"))


@pytest.mark.parametrize("args,msg", [
    (["--has-attachment", "--no-attachment"], "exclude each other"),
    (["--since", "2017-04", "--until", "2017-03"], "after --until"),
    (["--since", "2017-13"], "bad date"),
    (["--from", "example.org"], "use --domain"),
    (["--domain", "a@example.org"], "use --from"),
    (["--type", "pdf"], "MIME type"),
    (["-t", "problems", "--type", "application/pdf"], "not problems"),
    (["-f", "jsonl", "--bom"], "--bom"),
])
def test_export_conflicts_are_errors(manifest, args, msg):
    r = run(["export", str(manifest), *args])
    assert r.exit_code == 2 and msg in r.stderr, r.output


def test_export_csv_quoting_and_formula_guard(tmp_path):
    from leaktriage import Options, scan
    d = tmp_path / "dump" / "x"
    d.mkdir(parents=True)
    (d / "1.eml").write_bytes(b'From: "Eve, \\"the\\" attacker" <eve@example.org>\r\nTo: a@example.org\r\n'
                              b'Subject: =HYPERLINK("http://evil";"click"), "quoted"\r\n'
                              b'Date: Wed, 1 Mar 2017 10:00:00 +0100\r\n\r\nbody\r\n')
    m = tmp_path / "m.jsonl"
    scan(str(tmp_path / "dump"), str(m), Options(workers=1))
    r = run(["export", str(m), "--fields", "subject,from"])
    row = rows_csv(r.stdout)[0]
    assert row["subject"] == "'=HYPERLINK(\"http://evil\";\"click\"), \"quoted\""
    r = run(["export", str(m), "--fields", "subject", "--no-formula-guard"])
    assert rows_csv(r.stdout)[0]["subject"].startswith("=HYPERLINK")
    r = run(["export", str(m), "--bom"])
    assert r.stdout_bytes.startswith(b"\xef\xbb\xbf")


def test_export_stdin_pipeline(manifest):
    r = CliRunner().invoke(cli, ["export", "-", "-f", "jsonl", "-q"], input=manifest.read_bytes())
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 29 and r.stderr == ""


def test_show_finds_a_locator_pasted_in_another_unicode_form(tmp_path):
    """A locator copied on macOS comes in NFD ('e' + U+0301): it looked identical and was 'not in the
    manifest' (exit 7), with a hint about shell quoting."""
    import unicodedata
    from leaktriage import Options, scan
    m = tmp_path / "m.jsonl"
    scan(str(SAMPLES), str(m), Options(workers=1))
    nfd = unicodedata.normalize("NFD", "Hélène Lefèvre/INBOX/0004.eml")
    r = CliRunner().invoke(cli, ["show", nfd, "-m", str(m), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["locator"] == "Hélène Lefèvre/INBOX/0004.eml"
    assert "Unicode form NFC" in r.stderr
