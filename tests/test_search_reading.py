"""Search over what the leak says (issue #15 items 2-3; issue #14 item 18): attachment text and its
failures, dangerous attachments, one hit per email, apostrophes, every DKIM verdict name, deep queries,
the schema version and the analyses that plug into the index."""
import json
import sqlite3
import subprocess
import sys

import pytest

from support.readkit import CODEWORD_DOCX, CODEWORD_PDF, build_reading
from test_search_common import REPO, locators, run_cli


@pytest.fixture(scope="module")
def reading(tmp_path_factory):
    return build_reading(tmp_path_factory.mktemp("sr"))


def hits(db, q, **kw):
    from leaktriage.search.engine import open_db, search
    con = open_db(str(db))
    try:
        return list(search(con, q, snippets=False, **kw))
    finally:
        con.close()


def test_words_inside_attachments_and_attached_archives(reading):
    dump, m, db, locs = reading
    assert locators(db, CODEWORD_PDF) == {locs["cp1252"]}                 # a FlateDecode PDF
    assert locators(db, CODEWORD_DOCX) == {locs["cp1252"]}                # a DOCX inside an attached zip
    assert locators(db, "in:attachment " + CODEWORD_PDF) == {locs["cp1252"]}
    assert locators(db, "attachment:" + CODEWORD_DOCX) == {locs["cp1252"]}
    assert locators(db, "in:body " + CODEWORD_PDF) == set()
    assert locators(db, "in:attachment réunion") == set() and locators(db, "in:body réunion") == {locs["cp1252"]}
    h = hits(db, CODEWORD_PDF)[0]
    from leaktriage.search.engine import open_db, search
    con = open_db(str(db))
    snip = next(search(con, CODEWORD_PDF)).snippet
    assert CODEWORD_PDF in snip          # the snippet comes from the attachment when the body does not match
    assert h.risk and "executable" in h.risk


def test_failures_are_problem_rows_and_text_filters(reading):
    dump, m, db, locs = reading
    loc = locs["cp1252"]
    con = sqlite3.connect(str(db))
    probs = set(con.execute("SELECT code, locator, severity FROM problems WHERE origin = 'index'"))
    assert ("text.no_text_layer", loc + "#1.5", "warning") in probs
    assert ("text.encrypted", loc + "#1.6", "error") in probs
    st = dict(con.execute("SELECT locator, text_status FROM attachments"))
    assert (st[loc + "#1.2"], st[loc + "#1.5"], st[loc + "#1.6"], st[loc + "#1.7!zip:rapport.docx"]) == \
        ("ok", "empty", "failed", "ok")
    assert locators(db, "text:scan") == {loc} and locators(db, "text:ocr") == {loc}
    assert locators(db, "text:encrypted") == {loc} and locators(db, "problem:text.encrypted") == {loc}
    assert loc in locators(db, "text:none") and loc in locators(db, "text:failed")
    assert locators(db, "text:ok") >= {loc}


def test_dangerous_attachments_whatever_their_names(reading):
    dump, m, db, locs = reading
    inner = locs["forward"] + "#1.2.1.2"
    assert locators(db, "risk:executable") == {locs["cp1252"], inner}
    assert locators(db, "risk:disguised") == {locs["cp1252"], inner}
    assert locators(db, "risk:macro") == {locs["cp1252"]}
    assert locators(db, "has:risk") == locators(db, "risk:any") == {locs["cp1252"], inner}
    con = sqlite3.connect(str(db))
    assert dict(con.execute("SELECT filename, risk FROM attachments WHERE risk IS NOT NULL")) == {
        "Facture_6561.pdf": "executable", "budget.docm": "macro", "Facture_6562.pdf": "executable"}


def test_one_hit_per_email_with_its_copies(reading):
    dump, m, db, locs = reading
    h = hits(db, "rendez-vous")
    assert len(h) == 1 and h[0].copies == 2
    assert {s[0] for s in h[0].stored} == {locs["html"], locs["html_copy"]}
    assert len(hits(db, "rendez-vous", all_copies=True)) == 2
    r = run_cli("search", db, "-f", "jsonl", "rendez-vous")
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["copies"] == 2
    assert sorted(x["locator"] for x in lines[0]["stored"]) == sorted([locs["html"], locs["html_copy"]])
    assert {x["custodian"] for x in lines[0]["stored"]} == {"Zoé Martin", "Paul Roux"}
    r = run_cli("search", db, "-f", "jsonl", "--all-copies", "rendez-vous")
    assert sorted(json.loads(l)["locator"] for l in r.stdout.splitlines()) == sorted([locs["html"], locs["html_copy"]])
    assert run_cli("search", db, "--count", "rendez-vous").stdout == "1\n"
    assert run_cli("search", db, "--count", "--all-copies", "rendez-vous").stdout == "2\n"
    assert json.loads(run_cli("search", db, "--count", "-f", "jsonl", "rendez-vous").stdout) == {"emails": 1, "copies": 2}
    # a filter true of one copy only still gives the email once, by that copy
    h = hits(db, "custodian:roux rendez-vous")
    assert [x.locator for x in h] == [locs["html_copy"]] and h[0].copies == 2


@pytest.mark.parametrize("q", ["N'Diaye", "ndiaye", "N’Diaye", "NDIAYE", "n'diaye", "ndiay*", "subject:rendez body:ndiaye"])
def test_apostrophes_do_not_matter(reading, q):
    dump, m, db, locs = reading
    assert locators(db, q) == {locs["html"], locs["html_copy"]}


def test_every_dkim_verdict_name_is_accepted():
    from leaktriage.auth.dkimverify import VERDICTS
    from leaktriage.model.records import FIELDS
    from leaktriage.search.query import DKIM_VALUES, compile_query
    summaries = FIELDS["message"]["dkim_summary"][0]["enum"]
    assert set(VERDICTS) | set(summaries) | {"none"} == set(DKIM_VALUES)
    for v in DKIM_VALUES:
        compile_query("dkim:" + v)
    assert compile_query("dkim:body-hash-mismatch").params == ["body-hash-mismatch", "body-hash-mismatch"]


def test_body_hash_mismatch_finds_the_altered_message(tmp_path):
    """dkim:body-hash-mismatch (the manifest's own verdict name) on a signed message changed after signing."""
    from support.dkim_testkit import message, rsa_key, sign
    from leaktriage import Options, scan
    from leaktriage.search.build import build_index
    key = rsa_key(1024)
    good = sign(message(), key)
    bad = sign(message(subject="Altered"), key).replace(b"the figures are attached", b"the figures are NOT attached")
    dump = tmp_path / "d" / "x"
    dump.mkdir(parents=True)
    (dump / "good.eml").write_bytes(good)
    (dump / "bad.eml").write_bytes(bad)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sel._domainkey.example.com": key.txt()}))
    scan(str(tmp_path / "d"), str(tmp_path / "m.jsonl"), Options(workers=1, keystore=str(keys)))
    build_index(str(tmp_path / "m.jsonl"), str(tmp_path / "d"), str(tmp_path / "t.db"), workers=1)
    assert locators(tmp_path / "t.db", "dkim:body-hash-mismatch") == {"x/bad.eml"}
    assert locators(tmp_path / "t.db", "dkim:fail") == {"x/bad.eml"}
    assert locators(tmp_path / "t.db", "dkim:pass") == {"x/good.eml"}


@pytest.mark.parametrize("q", ["(" * 400 + "facture" + ")" * 400, "NOT " * 1000 + "facture", "x " + "-" * 1000 + "facture",
                               "(" * 150 + "a OR b" + ")" * 150])
def test_deep_queries_are_malformed_not_a_traceback(reading, q):
    r = run_cli("search", reading[2], q)
    assert r.returncode == 2 and "nested too deeply" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("search", reading[2], "--count", q)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_nesting_up_to_the_limit_runs(reading):
    from leaktriage.search.query import MAX_DEPTH
    q = "(" * (MAX_DEPTH - 1) + "NOT rendez-vous" + ")" * (MAX_DEPTH - 1)
    r = run_cli("search", reading[2], "--count", "--all-copies", q)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == sqlite3.connect(str(reading[2])).execute("SELECT count(*) FROM messages").fetchone()[0] - 2


def test_an_index_of_another_schema_version_is_rebuilt(reading, tmp_path):
    import shutil
    from leaktriage.search.build import build_index
    dump, m, db, locs = reading
    old = tmp_path / "old.db"
    shutil.copy(db, old)
    con = sqlite3.connect(str(old))
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    st = build_index(str(m), str(dump), str(old), workers=1)
    assert st.rebuilt and st.added == st.messages
    assert sqlite3.connect(str(old)).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    st = build_index(str(m), str(dump), str(old), workers=1)
    assert not st.rebuilt and st.unchanged == st.messages


class BodyLength:
    """A per-message analysis: in the worker, with the text; stored in its own table."""
    name, version = "test-length", 1
    schema = ("CREATE TABLE IF NOT EXISTS test_length (message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE, "
              "body INTEGER, attachments INTEGER, texts TEXT)")

    def analyse(self, msg):
        import os
        return (len(msg.body), len(msg.attachments), [a.status for a in msg.attachments], os.getpid())

    def store(self, con, mid, result):
        con.execute("INSERT INTO test_length VALUES (?, ?, ?, ?)", (mid, result[0], result[1], json.dumps(result[2:])))


class CountCopies:
    """A dump-wide pass: runs once, after every message is in."""
    name, version = "test-copies", 1
    schema = "CREATE TABLE IF NOT EXISTS test_copies (emails INTEGER, messages INTEGER)"

    def run(self, con):
        con.execute("DELETE FROM test_copies")
        con.execute("INSERT INTO test_copies SELECT count(DISTINCT email_id), count(*) FROM messages")


def test_analyses_plug_into_the_index(reading, tmp_path):
    from leaktriage.search import analysis
    from leaktriage.search.build import build_index
    dump, m, db, locs = reading
    out = tmp_path / "a.db"
    st = build_index(str(m), str(dump), str(out), workers=1, analyses=[BodyLength()],
                     passes=list(analysis.dump_passes()) + [CountCopies()])
    con = sqlite3.connect(str(out))
    rows = {loc: (b, a, json.loads(t)) for loc, b, a, t in con.execute(
        "SELECT m.locator, t.body, t.attachments, t.texts FROM test_length t JOIN messages m ON m.id = t.message_id")}
    assert len(rows) == st.messages
    body, natt, (statuses, pid) = rows[locs["cp1252"]][0], rows[locs["cp1252"]][1], rows[locs["cp1252"]][2]
    assert body > 50 and natt == 7 and statuses.count("failed") == 1
    assert con.execute("SELECT * FROM test_copies").fetchone() == (st.messages - 1, st.messages)
    assert "test-length:1" in con.execute("SELECT value FROM meta WHERE key = 'analyses'").fetchone()[0]
    # the analyses are part of what an index is: another set rebuilds it
    st2 = build_index(str(m), str(dump), str(out), workers=1)
    assert st2.rebuilt and "test_length" not in {r[0] for r in sqlite3.connect(str(out)).execute(
        "SELECT name FROM sqlite_master")}


def test_index_reports_its_text_problems(reading, tmp_path):
    dump, m, db, locs = reading
    r = run_cli("index", m, "--dump", dump, "-o", tmp_path / "x.db")
    assert r.returncode == 0, r.stderr
    assert "with text:" in r.stderr and "text.encrypted 1" in r.stderr and "text.no_text_layer 1" in r.stderr


def test_attachment_text_is_extracted_in_a_separate_process(reading, tmp_path, monkeypatch):
    """Untrusted documents are read by an IsolatedExtractor (a child with hard limits), in the workers too."""
    from leaktriage.search import build
    from leaktriage.text import IsolatedExtractor
    seen = []
    real = IsolatedExtractor.extract

    def spy(self, data, **kw):
        seen.append(kw.get("filename"))
        return real(self, data, **kw)

    monkeypatch.setattr(IsolatedExtractor, "extract", spy)
    dump, m, db, locs = reading
    build.build_index(str(m), str(dump), str(tmp_path / "i.db"), workers=1)
    assert {"facture.pdf", "scan.pdf", "secret.pdf", "rapport.docx"} <= set(seen)
    assert "Facture_6561.pdf" not in seen      # recognised (an executable) without being parsed


def test_an_extractor_does_not_outlive_its_worker():
    """Index workers fork their IsolatedExtractor; a worker that exits without closing it (a pool
    shutting down) must not leave the extractor waiting forever."""
    import os
    import time
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        from leaktriage.text import IsolatedExtractor
        ex = IsolatedExtractor(start_method="fork")
        ok = ex.extract(b"hello", filename="a.txt").status == "ok"
        os.write(w, b"%d %d" % (ex._proc.pid, ok))
        os._exit(0)
    os.close(w)
    child, ok = map(int, os.read(r, 100).split())
    os.close(r)
    os.waitpid(pid, 0)
    assert ok
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open("/proc/%d/stat" % child) as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the extractor outlived its worker")


def test_without_attachment_text_danger_comes_from_the_manifest(reading, tmp_path):
    from leaktriage.search.build import build_index
    dump, m, db, locs = reading
    st = build_index(str(m), str(dump), str(tmp_path / "n.db"), workers=1, attachment_text=False)
    assert st.text_codes == {}            # nothing extracted, nothing reported as not extracted
    assert locators(tmp_path / "n.db", "risk:executable") == {locs["cp1252"], locs["forward"] + "#1.2.1.2"}
    assert locators(tmp_path / "n.db", CODEWORD_PDF) == set()
