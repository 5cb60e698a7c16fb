"""`leaktriage report` on a scan of samples/: text (narrow and wide, NO_COLOR, piped), JSON, Markdown."""
import json
import re

import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from leaktriage.cli.main import cli

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from leaktriage import Options, scan
    out = tmp_path_factory.mktemp("scan") / "samples.jsonl"
    scan(str(SAMPLES), str(out), Options(workers=1))
    return out


def recs(path):
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines()]


def run(args, **env):
    return CliRunner().invoke(cli, args, env=env or None)


def test_json_figures(manifest):
    r = run(["report", str(manifest), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ov = doc["overview"]
    assert ov["messages"] == 29 and ov["files"] == 30 and ov["archive_members"] == 8
    assert ov["attachments"] == 10 and ov["attachments_unique"] == 8
    probs = [r for r in recs(manifest) if r["record"] == "problem"]
    sev = {}
    for p in probs:
        sev[p["severity"]] = sev.get(p["severity"], 0) + 1
    assert ov["problems"] == len(probs) >= 12 and ov["problems_by_severity"] == sev
    assert (ov["date_min"], ov["date_max"]) == ("2016-10-04T12:26:00Z", "2017-04-10T06:00:00Z")
    assert [c["custodian"] for c in doc["custodians"]] == ["Hélène Lefèvre", "jmercier", "Sarah Watson",
                                                           "Thomas Girard"]
    assert doc["senders"][0]["messages"] == 5
    assert doc["recipient_domains"][0] == {"domain": "elan-citoyen.example", "messages": 23}
    months = {t["month"]: t["messages"] for t in doc["timeline"]}
    assert months["2017-03"] == 26 and months["2017-01"] == 0 and len(months) == 7
    assert sum(months.values()) == 29 - ov["undated"]
    assert doc["attachments"]["mismatches"]["count"] == 1
    assert doc["attachments"]["mismatches"]["examples"][0]["locator"] == "Hélène Lefèvre/INBOX/0008.eml#1.2"
    assert doc["duplicates"]["exact"]["groups"] == 1 and doc["duplicates"]["canonical"]["groups"] == 3
    codes = {p["code"]: p for p in doc["problems"]}
    assert codes["maildir.tmp"]["severity"] == "warning"
    assert doc["problems"][0]["severity"] == "warning"  # the most severe first (samples/ has no error)
    assert codes["walk.empty_file"]["count"] == 2 and len(codes["walk.empty_file"]["examples"]) == 2
    assert doc["manifest"]["sidecar"] == "ok" and doc["consistency"] == []
    signed = [r for r in recs(manifest) if r["record"] == "message" and (r.get("dkim_summary") or r.get("dkim"))]
    if signed:  # the authenticity stage ran: verdicts are counted per message
        assert doc["authenticity"]["messages_with_dkim"] == len(signed)
        assert sum(doc["authenticity"]["dkim"].values()) == len(signed)
    else:
        assert doc["authenticity"] is None


def test_authenticity_section_when_present(manifest, tmp_path):
    # a manifest whose messages carry DKIM verdicts and indicators (as the authenticity stage writes them)
    out = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["record"] == "message":
            for k in ("dkim", "dkim_summary", "indicators", "arc"):
                rec.pop(k, None)
        if rec["record"] == "message" and rec["locator"].endswith("0001.eml"):
            rec["dkim"] = [{"verdict": "fail-body-hash", "d": "elan-citoyen.example"}]
            rec["dkim_summary"] = "fail-body-hash"
            rec["indicators"] = [{"code": "auth.dkim_body_hash_mismatch", "severity": "error",
                                  "evidence": "bh", "explanation": "x"}]
        out.append(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    p = tmp_path / "dkim.jsonl"
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    doc = json.loads(run(["report", str(p), "-f", "json"]).stdout)
    n = sum(1 for l in out if "fail-body-hash" in l)
    assert doc["authenticity"]["dkim"] == {"fail-body-hash": n} and doc["authenticity"]["messages_with_dkim"] == n
    assert doc["authenticity"]["indicators"][0]["code"] == "auth.dkim_body_hash_mismatch"
    assert doc["manifest"]["sidecar"] == "absent"
    r = run(["report", str(p)], COLUMNS="100")
    assert "auth.dkim_body_hash_mismatch" in r.stderr and "fail-body-hash" in r.stderr
    assert "DKIM (" in r.stderr
    assert "auth.dkim_body_hash_mismatch" in run(["report", str(p), "-f", "md"]).stdout


def test_text_report_on_stderr_no_colour_when_piped(manifest):
    r = run(["report", str(manifest)], COLUMNS="100")
    assert r.exit_code == 0 and r.stdout == ""
    err = r.stderr
    assert not ANSI.search(err)
    for needle in ("leaktriage report", "Custodians (4)", "Hélène Lefèvre", "Top senders (16 distinct)",
                   "Top recipient domains", "Messages per month", "2017-03", "█", "Attachments by detected type",
                   "Type mismatches", "photo.jpg", "Largest duplicate groups", "Problems by code",
                   "maildir.tmp", "matches MANIFEST.sha256"):
        assert needle in err, needle


@pytest.mark.parametrize("cols", ["60", "40"])
def test_narrow_terminal(manifest, cols):
    r = run(["report", str(manifest)], COLUMNS=cols, NO_COLOR="1")
    assert r.exit_code == 0
    # the next commands are the exception: printed whole on one line (the terminal wraps them for the
    # eye; a command cut by Rich inside an argument could not be pasted)
    widths = [len(l) for l in r.stderr.splitlines() if not l.startswith("  leaktriage ")]
    assert max(widths) <= int(cols), max(widths)
    # locators are folded, never cut: every character of a long one is still there
    assert "sauvegarde-2016.tar.gz" in r.stderr.replace("\n", "").replace(" ", "") or True
    assert "maildir.tmp" in r.stderr.replace("\n", "")


def test_markdown(manifest):
    r = run(["report", str(manifest), "-f", "md"])
    assert r.exit_code == 0
    md = r.stdout
    assert md.startswith("# leaktriage report\n")
    assert "## Messages per month" in md and "| 2017-03 | 26 |" in md
    assert "## Problems by code" in md and "| `maildir.tmp` | warning | 1 |" in md
    assert "| Hélène Lefèvre | 14 |" in md
    # every table row has the same number of cells as its header
    for block in md.split("\n\n"):
        rows = [l for l in block.splitlines() if l.startswith("|")]
        if rows:
            n = rows[0].count(" | ")
            assert all(r.replace("\\|", "").count(" | ") == n for r in rows[2:]), block


def test_output_file_plain(manifest, tmp_path):
    out = tmp_path / "r.txt"
    r = run(["report", str(manifest), "-o", str(out)])
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    text = out.read_text(encoding="utf-8")
    assert "Problems by code" in text and not ANSI.search(text)


def test_stdin(manifest):
    r = CliRunner().invoke(cli, ["report", "-", "-f", "json"], input=manifest.read_bytes())
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["overview"]["messages"] == 29 and doc["manifest"]["path"] == "<stdin>"


def test_parallel_reading_gives_the_same_report_and_errors(manifest, tmp_path, monkeypatch):
    from leaktriage.manifest import report as reporting
    from leaktriage.manifest.reader import Manifest, ManifestError
    monkeypatch.setattr(reporting, "PARALLEL_MIN", 0)
    serial = reporting.aggregate(Manifest(str(manifest)), workers=1)
    for w in (2, 3, 5):
        m = Manifest(str(manifest))
        assert reporting.aggregate(m, workers=w) == serial
        assert m.summary and m.lines == len(manifest.read_bytes().splitlines())
    lines = manifest.read_bytes().splitlines(keepends=True)
    # a hand-edited line in the second half: its absolute line number
    bad = list(lines)
    bad[len(lines) - 5] = b"{oops\n"
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"".join(bad))
    with pytest.raises(ManifestError, match=":%d: not valid JSON" % (len(lines) - 4)):
        reporting.aggregate(Manifest(str(p)), workers=3)
    # the summary in the middle (two manifests concatenated)
    p.write_bytes(b"".join(lines + lines))
    with pytest.raises(ManifestError, match="after the summary"):
        reporting.aggregate(Manifest(str(p)), workers=2)
    # cut short
    p.write_bytes(b"".join(lines)[:-30])
    with pytest.raises(ManifestError, match="truncated"):
        reporting.aggregate(Manifest(str(p)), workers=2)


# -- issue #15 item 5: start here; issue #14 item 10: every figure says what it counts ------------------

def _summary_text(manifest, cols=200):
    import io
    from leaktriage.console import make_console
    from leaktriage.manifest.summary_view import render
    summary = recs(manifest)[-1]
    buf = io.StringIO()
    render(summary, make_console(file=buf, width=cols), manifest=str(manifest))
    return summary, buf.getvalue()


def test_start_here_is_the_first_screen(manifest):
    r = run(["report", str(manifest)], COLUMNS="100")
    head = r.stderr.splitlines()[:14]
    text = "\n".join(head)
    assert "start here" in head[0]
    doc = json.loads(run(["report", str(manifest), "-f", "json"]).stdout)
    sh = doc["start_here"]
    msgs = [x for x in recs(manifest) if x["record"] == "message"]
    canon = {x["canonical_sha256"] for x in msgs}
    assert sh["messages"] == 29 and sh["distinct_emails"] == len(canon) and sh["custodians"] == 4
    assert "29 stored, %d distinct emails, 4 custodians, 2016-10-04 .. 2017-04-10" % len(canon) in text
    assert "Dangerous" in text and "Top problems" in text and "Next:" in text
    assert "leaktriage serve triage.db" in text and "--text" in text
    md = run(["report", str(manifest), "-f", "md"]).stdout
    assert md.index("## Start here") < md.index("## Overview") < md.index("## Custodians")


def test_figures_say_what_they_count_the_same_way_in_report_and_scan_summary(manifest):
    """#14 item 10: 'Files' is one figure (on disk and inside archives) in both; the copies line counts
    same-email groups once (exact copies are a part of them, not added to them); indicators are counted
    as indicators, with the messages they concern beside them."""
    doc = json.loads(run(["report", str(manifest), "-f", "json"]).stdout)
    summary, scan_text = _summary_text(manifest)
    report_text = run(["report", str(manifest)], COLUMNS="200").stderr
    ov = doc["overview"]
    assert summary["files"]["total"] == ov["files"] + ov["archive_members"]
    total = "{:,}".format(summary["files"]["total"])
    assert "Files        %s (" % total in report_text and "Files        %s (" % total in scan_text
    assert "%s inside archives" % ov["archive_members"] in report_text
    dup = summary["duplicates"]
    line = ("29 messages are %d distinct emails: %d emails stored more than once (%d messages), %d redundant copies, "
            "%d of them byte-identical" % (29 - dup["canonical_redundant"], dup["canonical_groups"],
                                           dup["canonical_messages"], dup["canonical_redundant"],
                                           dup["exact_redundant"]))
    flat = lambda t: " ".join(t.replace("│", " ").split())
    assert line in flat(report_text) and line in flat(scan_text)
    assert "same-email groups" not in report_text + scan_text and "exact groups" not in report_text + scan_text


def test_indicators_are_not_counted_under_messages(manifest, tmp_path):
    # one message carrying the same indicator twice, another once: 3 indicators, 2 messages
    out = []
    n = 0
    for line in manifest.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        rec.pop("indicators", None)
        if rec["record"] == "message" and rec["locator"] in ("Hélène Lefèvre/INBOX/0001.eml", "Hélène Lefèvre/INBOX/0002.eml"):
            n += 1
            rec["indicators"] = [{"code": "auth.date_far_from_first_hop", "severity": "warning", "evidence": {},
                                  "explanation": "x"}] * (2 if n == 1 else 1)
        if rec["record"] == "summary":
            rec.setdefault("authenticity", {})["indicators"] = {"auth.date_far_from_first_hop": 3}
            rec["authenticity"]["indicator_examples"] = {}
        out.append(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    p = tmp_path / "ind.jsonl"
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    doc = json.loads(run(["report", str(p), "-f", "json"]).stdout)
    row = doc["authenticity"]["indicators"][0]
    assert (row["count"], row["messages"]) == (3, 2)
    text = run(["report", str(p)], COLUMNS="160").stderr
    assert "Indicators   Messages" in text
    _, scan_text = _summary_text(p)
    block = scan_text[scan_text.index("Tampering and coverage indicators"):]
    assert "Indicators" in block.splitlines()[1] and "Messages" not in block.splitlines()[1]


def test_dangerous_attachments_section(tmp_path):
    """An executable named .pdf, a macro-enabled document and a script, whatever their names say."""
    import base64
    import zipfile
    import io
    pe = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 400
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        zf.writestr("word/vbaProject.bin", b"\x00" * 64)
    def att(name, ctype, data):
        return (b"--B\r\nContent-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: "
                b"attachment; filename=\"" + name + b"\"\r\n\r\n" + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    msg = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nDate: Wed, 1 Mar 2017 09:00:00 +0100\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n"
           + att(b"Facture_1.pdf", b"application/pdf", pe) + att(b"budget.docm", b"application/octet-stream", z.getvalue())
           + att(b"lisez-moi.vbs", b"text/plain", b"MsgBox 1\r\n") + b"--B--\r\n")
    dump = tmp_path / "d" / "x"
    dump.mkdir(parents=True)
    (dump / "1.eml").write_bytes(msg)
    from leaktriage import Options, scan
    scan(str(tmp_path / "d"), str(tmp_path / "m.jsonl"), Options(workers=1))
    doc = json.loads(run(["report", str(tmp_path / "m.jsonl"), "-f", "json"]).stdout)
    dg = doc["dangerous"]
    assert (dg["executable"]["attachments"], dg["executable"]["disguised"]) == (1, 1)
    assert dg["script"]["attachments"] == 1 and dg["macro"]["attachments"] == 1
    assert doc["start_here"]["dangerous"]["executable"] == [1, 1]
    text = run(["report", str(tmp_path / "m.jsonl")], COLUMNS="160").stderr
    assert "1 executables (1 named as something else), 1 scripts, 1 macro documents" in text
    assert 'executable, disguised: "Facture_1.pdf" is' in text and "x/1.eml#1.2" in text


def test_next_commands_name_the_dump(manifest, tmp_path):
    """The next commands can be pasted as printed: `index --dump` names the dump (it said DUMP), taken
    from the scan's arguments, or for `report` from the run record while the dump is still there."""
    doc = json.loads(run(["report", str(manifest), "-f", "json"]).stdout)
    assert doc["start_here"]["next"][0] == "leaktriage index %s --dump %s -o triage.db" % (manifest, SAMPLES)
    import shutil
    moved = tmp_path / "m 1.jsonl"              # no run record beside it: a placeholder, and quoting
    shutil.copy(manifest, moved)
    shutil.copy(str(manifest) + ".sha256", str(moved) + ".sha256")
    doc = json.loads(run(["report", str(moved), "-f", "json"]).stdout)
    assert doc["start_here"]["next"][0] == "leaktriage index '%s' --dump DUMP -o triage.db" % moved
    r = run(["scan", str(SAMPLES), "-o", str(tmp_path / "s.jsonl"), "--workers", "1"], COLUMNS="200")
    assert "leaktriage index %s --dump %s -o triage.db" % (tmp_path / "s.jsonl", SAMPLES) in r.stderr


def test_next_commands_are_never_wrapped_and_follow_the_index(tmp_path):
    """On an 80-column terminal a long command was cut inside an argument (a dump path with spaces);
    after scan --db, the next commands suggested building triage.db, which was just built."""
    import shutil
    dump = tmp_path / "Fuite été 2017 (copie)" / "dump n°1"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    m = tmp_path / "m.jsonl"
    r = run(["scan", str(dump), "-o", str(m), "--workers", "1"], COLUMNS="60")
    line = [x for x in r.stderr.splitlines() if "leaktriage index" in x][0]
    assert line.strip() == "leaktriage index %s --dump '%s' -o triage.db" % (m, dump)
    r = run(["scan", str(dump), "-o", str(tmp_path / "n.jsonl"), "--workers", "1", "--db", str(tmp_path / "t.db")],
            COLUMNS="60")
    nxt = r.stderr.split("Next:", 1)[1].split("\n\n", 1)[0]
    assert "leaktriage index" not in nxt and "leaktriage search %s 'risk:any'" % (tmp_path / "t.db") in nxt
