"""Search on the bundled sample dump: known answers from samples/truth.json, folding, every operator,
the database layout (tables, FTS, views, foreign keys), findings, and incremental re-indexing."""
import json
import shutil
import sqlite3

import pytest

from test_search_common import SAMPLES, build, count, locators, truth_messages


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samples")
    manifest, db, stats = build(SAMPLES, tmp)
    return manifest, db, stats


@pytest.fixture(scope="module")
def db(sample):
    return sample[1]


@pytest.fixture(scope="module")
def truth():
    return {m["locator"]: m for m in truth_messages()}


def test_every_message_indexed_with_text(sample, truth):
    _, db, stats = sample
    assert stats.messages == len(truth) and stats.added == len(truth)
    con = sqlite3.connect(str(db))
    rows = dict(con.execute("SELECT locator, text_status FROM messages"))
    assert set(rows) == set(truth)
    assert set(rows.values()) == {"ok"}
    assert con.execute("SELECT locator FROM messages WHERE body IS NULL OR body = ''").fetchall() == []
    # no message failed; the one attachment truncated in transit (0007, base64.truncated) is a damaged xlsx
    probs = con.execute("SELECT code, locator FROM problems WHERE origin = 'index' ORDER BY code").fetchall()
    assert probs == [("text.damaged", "Hélène Lefèvre/INBOX/0007.eml#1.2"),
                     ("text.input_truncated", "Hélène Lefèvre/INBOX/0007.eml#1.2")]
    st = dict(con.execute("SELECT locator, text_status FROM attachments"))
    assert st["Hélène Lefèvre/INBOX/0007.eml#1.2"] == "failed"
    assert st["Hélène Lefèvre/INBOX/0005.eml#1.2"] == "unsupported"        # a PNG: needs OCR
    assert st["Hélène Lefèvre/INBOX/0004.eml#1.2.1.2"] == "ok"             # the PDF of the forwarded invoice


def test_schema_tables_fts_views(db):
    con = sqlite3.connect(str(db))
    names = {n: t for n, t in con.execute("SELECT name, type FROM sqlite_master")}
    for t in ("messages", "addresses", "attachments", "problems", "findings", "messages_fts"):
        assert names.get(t) == "table", t
    for v in ("correspondents", "attachments_by_type", "messages_per_month"):
        assert names.get(v) == "view", v
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()[0]
    assert "fts5" in sql.lower() and 'content="messages"' in sql  # what Datasette's detect_fts looks for
    fks = {tuple(r[2:4]) for t in ("addresses", "attachments", "problems", "findings")
           for r in con.execute("PRAGMA foreign_key_list(%s)" % t)}
    assert fks == {("messages", "message_id")}
    # views answer
    months = dict(con.execute("SELECT month, messages FROM messages_per_month"))
    assert sum(months.values()) == 29 and months["2017-03"] > 10
    types = dict(con.execute("SELECT type, attachments FROM attachments_by_type"))
    assert types["pdf"] == 4  # three named .pdf + photo.jpg, which is a PDF (type from content)
    top = con.execute("SELECT address, messages FROM correspondents ORDER BY messages DESC LIMIT 1").fetchone()
    assert top[0] == "h.lefevre@elan-citoyen.example"
    # sqlite-utils / Datasette style full-text query through the FTS table works on its own
    n = con.execute("SELECT count(*) FROM messages WHERE rowid IN "
                    "(SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'facture')").fetchone()[0]
    assert n >= 2


def test_from_matches_truth(db, truth):
    for sender in {m["from"] for m in truth.values() if m["from"]}:
        want = {l for l, m in truth.items() if m["from"] == sender}
        assert locators(db, "from:" + sender) == want, sender


def test_from_name_domain_and_to(db, truth):
    want = {l for l, m in truth.items() if m["from"].endswith("@elan-citoyen.example")}
    assert locators(db, "from:@elan-citoyen.example") == want
    assert locators(db, "from:mercier") >= {l for l, m in truth.items() if m["from"] == "j.mercier@elan-citoyen.example"}
    to = {l for l, m in truth.items() if "sarah.watson@dailyledger.example" in (m["to"] or []) + (m["cc"] or [])}
    assert locators(db, "to:sarah.watson@dailyledger.example") == to


def test_date_ranges_match_truth(db, truth):
    def between(lo, hi):
        return {l for l, m in truth.items() if m["date"] and lo <= m["date"][:10] < hi}
    assert locators(db, "date:2017-03") == between("2017-03-01", "2017-04-01")
    assert locators(db, "date:2017-03..2017-04") == between("2017-03-01", "2017-05-01")
    assert locators(db, "date:2017-03-01..2017-03-09") == between("2017-03-01", "2017-03-10")
    assert locators(db, "date:..2016") == between("0000", "2017-01-01")
    assert locators(db, "date:2017-04..") == between("2017-04-01", "9999")


def test_attachments_match_truth(db, truth):
    has = {l for l, m in truth.items() if m["attachments"] or m.get("uuencoded")}
    assert locators(db, "has:attachment") == has
    pdf = {l for l, m in truth.items() if any(a["true_type"] == "application/pdf" for a in m["attachments"])}
    assert locators(db, "type:pdf") == pdf
    assert locators(db, "type:application/pdf") == pdf
    for l, m in truth.items():
        for a in m["attachments"]:
            if not a.get("sha256"):
                continue  # a damaged attachment the truth gives no digest for
            assert l in locators(db, "sha256:" + a["sha256"]), a["filename"]
    assert locators(db, "sha256:" + truth["Hélène Lefèvre/INBOX/0002.eml"]["sha256"]) == {"Hélène Lefèvre/INBOX/0002.eml"}
    assert locators(db, 'filename:"compte rendu comite"') == {
        l for l, m in truth.items() if any(a["filename"] == "compte-rendu-comité.pdf" for a in m["attachments"])}


def test_folding(db):
    # accents: "facture" finds "Facture"/"facture" and "réunion" finds "reunion" and back
    assert count(db, "reunion") == count(db, "réunion") == count(db, "RÉUNION") > 0
    assert count(db, "facture") >= 2
    assert locators(db, "prevision*") == locators(db, "prévision*")
    assert "Hélène Lefèvre/INBOX/0001.eml" in locators(db, "previsions budgetaires")
    assert locators(db, "lefevre") == locators(db, "Lefèvre") != set()


def test_phrase_prefix_boolean(db, truth):
    assert locators(db, '"cash donations"') >= {"Sarah Watson/Inbox.mbox!mbox:2317"}
    assert count(db, '"donations cash"') < count(db, "donations cash")
    assert count(db, "donat*") >= count(db, "donations")
    a, b = locators(db, "facture"), locators(db, "lyon")
    assert locators(db, "facture OR lyon") == a | b
    assert locators(db, "facture AND lyon") == a & b
    assert locators(db, "facture lyon") == a & b
    assert locators(db, "facture NOT lyon") == a - b
    assert locators(db, "facture -lyon") == a - b
    everything = set(truth)
    assert locators(db, "NOT facture") == everything - a
    assert locators(db, "(facture OR lyon) has:attachment") == (a | b) & locators(db, "has:attachment")
    assert locators(db, "NOT (facture OR lyon)") == everything - (a | b)
    assert locators(db, "type:pdf OR from:@dailyledger.example") == locators(db, "type:pdf") | locators(db, "from:@dailyledger.example")
    assert locators(db, "subject:facture") <= a


def test_mailbox_custodian_problem(db, truth):
    helene = {l for l, m in truth.items() if m["custodian"] == "Hélène Lefèvre"}
    assert locators(db, "custodian:helene") == helene
    assert locators(db, "custodian:Hélène") == helene
    assert locators(db, "mailbox:maildir/.sent") == {l for l in truth if l.startswith("jmercier/Maildir/.Sent/")}
    assert "Hélène Lefèvre/INBOX/0007.eml" in locators(db, "problem:base64.*")
    # prefixes are index ranges: they must find exactly what a prefix match over every code finds
    import sqlite3
    con = sqlite3.connect(str(db))
    try:
        for prefix in ("base64.", "base", "mime.", "b", "sniff.extension"):
            want = {r[0] for r in con.execute("SELECT m.locator FROM problems p JOIN messages m ON m.id = p.message_id "
                                              "WHERE substr(p.code, 1, ?) = ?", (len(prefix), prefix))}
            assert locators(db, "problem:%s*" % prefix) == want, prefix
            assert locators(db, "problem:%s*" % prefix.upper()) == want, prefix
        assert locators(db, "problem:base64.*")
    finally:
        con.close()
    assert locators(db, "has:problem") >= {"Hélène Lefèvre/INBOX/0007.eml"}
    assert locators(db, "id:<2d6c1f0e-8a3b-4c7e-9f21-5b0e7d3a9c41@elan-citoyen.example>") >= {"Hélène Lefèvre/INBOX/0001.eml"}


def test_body_text_from_every_container_and_encoding(db):
    # windows-1252 8bit body, quoted-printable, mbox, nested tar.gz > zip, html-only bodies...
    assert "Sarah Watson/Inbox.mbox!mbox:2317" in locators(db, "accepted")
    assert "jmercier/Maildir/.Sent/cur/1490086050.M90312P21877Q1.mail,S=723:2,S" in locators(db, "declined")
    assert locators(db, "primaire") >= {
        "Thomas Girard.zip!zip:Thomas Girard/archives-2016.zip!zip:primaire-2016/0001.eml"}
    assert "Hélène Lefèvre/INBOX/0004.eml#1.2" in locators(db, "imprimeur OR imprimerie")
    assert "Hélène Lefèvre/INBOX/0005.eml" in locators(db, "epreuve")


def test_findings_dkim_and_indicators(tmp_path, truth):
    """DKIM verdicts and indicators written by a real scan with the sample key store."""
    from leaktriage import Options, scan
    from leaktriage.search.build import build_index
    out = tmp_path / "m.jsonl"
    scan(str(SAMPLES), str(out), Options(workers=1, keystore=str(SAMPLES.parent / "dkim-keys.json")))
    with_indicators = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["record"] == "message" and r.get("indicators"):
            with_indicators.add(r["locator"])
        if r["record"] == "mailbox":  # mailbox-wide indicators count for the messages they name
            for ind in r.get("indicators") or ():
                with_indicators.update(ind["evidence"]["messages"])
    assert len(with_indicators) > 2
    db = tmp_path / "f.db"
    build_index(str(out), str(SAMPLES), str(db), workers=1)
    assert locators(db, "dkim:pass") == {l for l, m in truth.items() if m["dkim"] == "pass"}
    failed = {l for l, m in truth.items() if m["dkim"] == "body-hash-mismatch"}
    assert failed and locators(db, "dkim:fail") == failed
    assert locators(db, "finding:auth.dkim_body_hash_mismatch") == failed
    assert failed <= locators(db, "finding:auth.dkim*")
    assert locators(db, "has:finding") == with_indicators
    assert locators(db, "finding:auth.doc_author_foreign_script") == {
        "Hélène Lefèvre/INBOX/0001.eml", "jmercier/Maildir/.Sent/cur/1488358680.M118733P20311Q1.mail,S=4524:2,S"}
    assert locators(db, "dkim:none") == {l for l, m in truth.items() if m["dkim"] not in ("pass", "body-hash-mismatch")}
    con = sqlite3.connect(str(db))
    assert con.execute("SELECT count(*) FROM findings WHERE kind = 'dkim'").fetchone()[0] == len(
        [m for m in truth.values() if m["dkim"] in ("pass", "body-hash-mismatch")])


def test_incremental_reindex(tmp_path):
    from leaktriage.search.build import build_index
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    manifest, db, stats = build(dump, tmp_path, "inc")
    n = stats.added
    con = sqlite3.connect(str(db))
    before = dict(con.execute("SELECT locator, id FROM messages"))
    con.close()
    # a new message arrives in the dump; one message is removed
    new = dump / "Hélène Lefèvre" / "INBOX" / "0099.eml"
    new.write_bytes("From: Zoé Ærnes <zoe@nouveau.example>\r\nTo: h.lefevre@elan-citoyen.example\r\n"
                    "Subject: Ætat des lieux\r\nDate: Mon, 03 Apr 2017 10:00:00 +0200\r\n"
                    "Message-ID: <new-0099@nouveau.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    "Le cœur du problème : la facturé définitive.\r\n".encode("utf-8"))
    (dump / "Hélène Lefèvre" / "INBOX" / "0002.eml").unlink()
    stats2 = build_index(str(build_manifest(dump, tmp_path / "inc2.jsonl")), str(dump), str(db), workers=1)
    assert stats2.added == 1 and stats2.removed == 1 and stats2.updated == 0
    assert stats2.unchanged == n - 1
    con = sqlite3.connect(str(db))
    after = dict(con.execute("SELECT locator, id FROM messages"))
    # unchanged rows were kept (same ids), not rebuilt
    assert all(after[l] == before[l] for l in after if l in before)
    assert "Hélène Lefèvre/INBOX/0002.eml" not in after
    con.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 0)")  # index vs itself: it holds folded text by design
    con.close()
    loc = "Hélène Lefèvre/INBOX/0099.eml"
    assert locators(db, "aetat") == {loc}
    assert locators(db, "coeur facture definitive") == {loc}
    assert locators(db, "from:zoe@nouveau.example") == {loc}
    assert locators(db, "from:aernes") == {loc}
    assert count(db, "interview") == 0 or "Hélène Lefèvre/INBOX/0002.eml" not in locators(db, "interview")
    # a third run with nothing new changes nothing
    stats3 = build_index(str(tmp_path / "inc2.jsonl"), str(dump), str(db), workers=1)
    assert stats3.added == stats3.updated == stats3.removed == 0
    # a newer scanner adds facts to one record (same bytes, same sha256): that message is updated
    lines = (tmp_path / "inc2.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        r = json.loads(line)
        if r["record"] == "message" and r["locator"] == loc:
            r["dkim"] = [{"index": 1, "verdict": "pass", "d": "nouveau.example", "s": "s1"}]
            r["dkim_summary"] = "pass"
            line = json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        out.append(line)
    (tmp_path / "inc3.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    stats4 = build_index(str(tmp_path / "inc3.jsonl"), str(dump), str(db), workers=1)
    assert (stats4.added, stats4.updated, stats4.removed) == (0, 1, 0)
    assert locators(db, "dkim:pass") == {loc}
    assert locators(db, "aetat") == {loc}


def test_changed_bytes_become_problem_rows(tmp_path):
    """The dump changed after the scan: the message keeps its header fields, the body is a problem."""
    from leaktriage.search.build import build_index
    dump = tmp_path / "dump"
    shutil.copytree(SAMPLES, dump, symlinks=True)
    manifest = build_manifest(dump, tmp_path / "m.jsonl")
    p = dump / "Hélène Lefèvre" / "INBOX" / "0002.eml"
    p.write_bytes(p.read_bytes().replace(b"Daily Ledger", b"Daily Lodger"))
    db = tmp_path / "c.db"
    build_index(str(manifest), str(dump), str(db), workers=1)
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT p.code, m.locator, m.text_status FROM problems p JOIN messages m ON m.id = p.message_id "
                       "WHERE p.origin = 'index' AND p.code LIKE 'index.%'").fetchall()
    assert rows == [("index.bytes_changed", "Hélène Lefèvre/INBOX/0002.eml", "bytes_changed")]
    assert "Hélène Lefèvre/INBOX/0002.eml" in locators(db, "subject:interview")


def test_folded_index_survives_rebuild_by_sqlite_utils_style_command(db, tmp_path):
    """Datasette/sqlite-utils 'rebuild' re-reads the original text: accents still fold (remove_diacritics)."""
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    con = sqlite3.connect(str(copy))
    con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    con.commit()
    n = con.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'reunion'").fetchone()[0]
    assert n == count(db, "reunion")


def build_manifest(dump, path):
    from test_search_common import scan_to
    return scan_to(dump, path)


def test_problem_and_finding_families_and_a_leading_minus(db):
    """`problem:base64` found nothing while `export --problem base64` takes the family; a query that
    starts with -word was read as `-f ord` with a message about --format only."""
    import sqlite3
    from test_search_common import run_cli
    con = sqlite3.connect(str(db))
    fam = con.execute("SELECT count(DISTINCT message_id) FROM problems WHERE code LIKE 'base64.%'").fetchone()[0]
    con.close()
    assert fam >= 1
    r = run_cli("search", db, "--count", "--all-copies", "problem:base64")
    assert r.returncode == 0 and int(r.stdout) == fam, r.stderr
    assert int(run_cli("search", db, "--count", "--all-copies", "problem:base64*").stdout) == fam
    bad = run_cli("search", db, "--count", "-facture")
    assert bad.returncode == 2 and "-- -facture" in bad.stderr
    neg = run_cli("search", db, "--count", "--", "-facture")
    assert neg.returncode == 0 and int(neg.stdout) == int(run_cli("search", db, "--count", "NOT", "facture").stdout)


def test_index_takes_the_dump_from_the_run_record(sample, tmp_path):
    """show, verify, extract and export -t text find the dump in MANIFEST.run.json; index required
    --dump ("Missing option '--dump'")."""
    from test_search_common import run_cli
    manifest = sample[0]
    r = run_cli("index", manifest, "-o", tmp_path / "x.db", "-q")
    assert r.returncode == 0, r.stderr
    assert int(run_cli("search", tmp_path / "x.db", "--count", "--all-copies", "facture").stdout) == \
        int(run_cli("search", sample[1], "--count", "--all-copies", "facture").stdout)


def test_query_and_index_swapped_get_a_hint(db):
    """`search 'risk:any' triage.db` said 'no index at risk:any (build one with ... -o risk:any)'."""
    from test_search_common import run_cli
    r = run_cli("search", "risk:any", db)
    assert r.returncode == 2 and "the index comes first: leaktriage search %s QUERY" % db in r.stderr


def test_a_code_no_row_has_gets_a_note(db):
    """finding:/problem: with a typo gave 0 hits without a word, while every other field says what it
    takes; the note names the closest codes the index has (stderr only: the count stays data)."""
    from test_search_common import run_cli
    r = run_cli("search", db, "--count", "problem:base64.truncate")
    assert r.returncode == 0 and r.stdout.strip() == "0"
    assert "no message of this index has the problem base64.truncate; did you mean base64.truncated?" in r.stderr
    ok = run_cli("search", db, "--count", "problem:base64.truncated OR problem:base64")
    assert ok.returncode == 0 and "note" not in ok.stderr
