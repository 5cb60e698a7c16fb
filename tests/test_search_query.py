"""The query language (parser and SQL compiler), folding, and the command line: errors, formats, exit codes."""
import json
import sqlite3

import pytest

from leaktriage.text.fold import fold, fold_with_map
from leaktriage.search.query import QueryError, compile_query, parse
from test_search_common import SAMPLES, build, run_cli


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(SAMPLES, tmp_path_factory.mktemp("q"))[1]


@pytest.mark.parametrize("text, folded", [
    ("Facturé", "facture"), ("réunion", "reunion"), ("Lecœur", "lecoeur"), ("ætat", "aetat"), ("ÆTAT", "aetat"),
    ("Œuvre", "oeuvre"), ("Straße", "strasse"), ("ﬁnance", "finance"), ("Élan CITOYEN", "elan citoyen"),
    ("aujourd’hui", "aujourd'hui"), ("naïve Noël", "naive noel"), ("plain ascii", "plain ascii"), ("", ""),
])
def test_fold(text, folded):
    assert fold(text) == folded


def test_fold_with_map_points_back_to_original():
    f, where = fold_with_map("Le cœur, Été")
    assert f == "le coeur, ete"
    i = f.index("coeur")
    assert "Le cœur, Été"[where[i]:where[i + 4] + 1] == "cœur"


def test_fold_with_map_shortcut_equals_per_character_mapping():
    """fold_with_map takes a shortcut when every character folds to exactly one; on any text it
    must give what folding character by character gives."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    def slow(text):
        out, where = [], []
        for i, ch in enumerate(text):
            f = fold(ch)
            out.append(f)
            where.extend([i] * len(f))
        return "".join(out), where

    chars = st.sampled_from(list("aZé É œŒæßﬁ’\u0301\u00a0\tx1.") + ["e\u0301", "\u2019", "\u0130", "\u212a"])

    @hypothesis.settings(max_examples=2000, deadline=None)
    @hypothesis.given(st.lists(chars, max_size=30))
    def check(parts):
        text = "".join(parts)
        assert fold_with_map(text) == slow(text)
        assert fold_with_map(text)[0] == fold(text)

    check()


@pytest.mark.parametrize("q, fts", [
    ("facture", '"facture"'),
    ("Facturé", '"facture"'),
    ("lecœur", '"lecoeur"'),
    ('"rally attendance"', '"rally attendance"'),
    ("fact*", '"fact" *'),
    ("subject:facture", 'subject : "facture"'),
    ("filename:budget*", 'attachment_names : "budget" *'),
    ("from:mercier", 'from_text : "mercier"'),
    ("to:watson", '{to_text cc_text} : "watson"'),
    ("cc:watson", 'cc_text : "watson"'),
    ("a OR b", '("a" OR "b")'),
    ("a b", '("a" AND "b")'),
    ("a AND b", '("a" AND "b")'),
    ("a -b", '(("a") NOT "b")'),
    ("a NOT (b OR c)", '(("a") NOT ("b" OR "c"))'),
])
def test_compile_full_text(q, fts):
    c = compile_query(q)
    assert c.params == [fts]
    assert "messages_fts MATCH ?" in c.where


@pytest.mark.parametrize("q, fragment, params", [
    ("from:j.mercier@elan-citoyen.example", "addresses WHERE address = ?", ["j.mercier@elan-citoyen.example"]),
    ("to:@dailyledger.example", "addresses WHERE domain = ?", ["dailyledger.example"]),
    ("date:2017-03..2017-04", "date >= ? AND date < ?", ["2017-03-01", "2017-05-01"]),
    ("date:2017", "date >= ?", ["2017-01-01", "2018-01-01"]),
    ("date:2017-12", "date >= ?", ["2017-12-01", "2018-01-01"]),
    ("date:2017-03-31", "date >= ?", ["2017-03-31", "2017-04-01"]),
    ("date:..2017-02", "date < ?", ["2017-03-01"]),
    ("has:attachment", "attachment_count > 0", []),
    ("type:PDF", "FROM attachments", ["pdf"] * 2),
    ("type:jpg", "FROM attachments", ["jpeg"] * 2),
    ("sha256:" + "A" * 64, "sha256 = ?", ["a" * 64] * 4),
    ("dkim:pass", "dkim = ?", ["pass"]),
    ("dkim:no-key", "code = ?", ["no-key", "no-key"]),
    ("mailbox:Inbox", "fold(v) LIKE ?", ["%inbox%"]),
    ("custodian:hélène", "fold(v) LIKE ?", ["%helene%"]),
    ("finding:auth.dkim_body_hash_mismatch", "FROM findings WHERE code = ?", ["auth.dkim_body_hash_mismatch"]),
    ("finding:auth.*", "code >= ? AND code < ?", ["auth.", "auth/"]),
    ("type:application/PDF", "magic = ?", ["application/pdf"] * 2),
    ("type:app*", "type >= ? AND type < ?", ["app", "apq", "app", "apq"]),
    ("id:abc@x", "header_message_id = ?", ["<abc@x>"]),
])
def test_compile_fields(q, fragment, params):
    c = compile_query(q)
    assert fragment in c.where
    assert c.params == params


def test_mixed_query_keeps_one_fts_expression_and_sql_parts():
    c = compile_query('from:mercier@elan-citoyen.example facture date:2017-03 NOT type:pdf "cash donations"')
    assert c.where.count("messages_fts MATCH") == 1
    assert c.params[0] == '("facture" AND "cash donations")'
    assert "NOT coalesce(" in c.where
    assert ("facture", False) in c.terms and ("cash", False) in c.terms


def test_parse_precedence():
    t = parse("a OR b c")
    assert t.op == "OR" and t.children[1].op == "AND"
    t = parse("NOT a b")
    assert t.op == "AND" and t.children[0].op == "NOT"
    t = parse("(a OR b) c")
    assert t.op == "AND" and t.children[0].op == "OR"
    # a colon that is not a field is text; a URL is text
    assert compile_query("12:30").params == ['"12 30"']
    assert compile_query("https://example.org/x").params == ['"https example org x"']


@pytest.mark.parametrize("q, message, pos", [
    ("", "empty query", 0),
    ("   ", "empty query", 0),
    ("(facture", "unclosed '('", 0),
    ("facture)", "unmatched ')'", 7),
    ('"facture', "unclosed quote", 0),
    ("facture AND", "AND needs something on its right", 8),
    ("OR facture", "OR needs something on its left", 0),
    ("facture OR", "OR needs something on its right", 8),
    ("NOT", "NOT needs something on its right", 0),
    ("()", "empty parentheses", 0),
    ("foo:bar", "unknown field 'foo:'", 0),
    ("a from:", "from: needs a value", 2),
    ("date:2017-13", "bad date", 0),
    ("date:last-week", "bad date", 0),
    ("date:2017-05..2017-03", "ends before it starts", 0),
    ("date:..", "range needs at least one end", 0),
    ("has:wings", "has:wings is not known", 0),
    ("dkim:maybe", "not a verdict", 0),
    ("sha256:abc", "64 hex digits", 0),
    ("sha256:zz", "64 hex digits", 0),
    ("a !!!", "nothing to search for", 2),
])
def test_malformed_queries(q, message, pos):
    with pytest.raises(QueryError) as ei:
        compile_query(q)
    assert message in ei.value.message
    assert ei.value.position == pos
    assert "position %d" % (pos + 1) in str(ei.value)


def test_cli_malformed_query_exit_2_no_traceback(db):
    for q in ("(facture", "foo:bar", "date:2017-13", '"open'):
        r = run_cli("search", db, q)
        assert r.returncode == 2, (q, r.stderr)
        assert "bad query" in r.stderr and "Traceback" not in r.stderr
        assert "^" in r.stderr  # a caret under the error
        assert r.stdout == ""


def test_cli_missing_db_exit_2(tmp_path):
    r = run_cli("search", tmp_path / "nope.db", "facture")
    assert r.returncode == 2 and "no index" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.db"
    sqlite3.connect(str(bad)).execute("CREATE TABLE x (y)")
    r = run_cli("search", bad, "facture")
    assert r.returncode == 2 and "not a leaktriage index" in r.stderr


def test_cli_count_jsonl_locators(db):
    r = run_cli("search", db, "--count", "facture")
    assert r.returncode == 0
    n = int(r.stdout)
    assert n >= 2
    r = run_cli("search", db, "--format", "jsonl", "facture")
    hits = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(hits) == n
    assert all("locator" in h and "snippet" in h for h in hits)
    # snippets carry the original (accented) text around the match
    assert any("factur" in h["snippet"].lower() for h in hits)
    dates = [h.get("date") or "" for h in hits]
    assert dates == sorted(dates, reverse=True)
    r = run_cli("search", db, "--format", "locators", "--sort", "oldest", "-n", "2", "facture")
    assert len(r.stdout.splitlines()) == 2
    # several words as separate arguments are one query
    r1 = run_cli("search", db, "--count", "from:mercier", "facture")
    r2 = run_cli("search", db, "--count", "from:mercier facture")
    assert r1.stdout == r2.stdout
    r = run_cli("search", db, "-f", "jsonl", "--sort", "relevance", "facture OR lyon")
    assert r.returncode == 0 and len(r.stdout.splitlines()) >= n


def test_cli_table(db):
    r = run_cli("search", db, "--format", "table", "-n", "3", "réunion")
    assert r.returncode == 0
    assert "emails for" in r.stdout or "email for" in r.stdout


def test_cli_index_command(tmp_path):
    from test_search_common import scan_to
    m = scan_to(SAMPLES, tmp_path / "m.jsonl")
    r = run_cli("index", m, "--dump", SAMPLES, "-o", tmp_path / "x.db")
    assert r.returncode == 0, r.stderr
    assert "29 messages (29 added" in r.stderr
    r = run_cli("index", m, "--dump", SAMPLES, "-o", tmp_path / "x.db")
    assert "29 unchanged" in r.stderr
    r = run_cli("index", m, "--dump", SAMPLES, "-o", SAMPLES / "x.db")
    assert r.returncode == 2 and "inside the dump" in r.stderr


def test_search_import_path_is_lean(db):
    """`leaktriage search` must not import the email package, rich or libmagic for JSONL/count output."""
    import subprocess
    import sys
    code = ("import sys; sys.argv=['leaktriage','search',%r,'--count','facture']\n"
            "from leaktriage.cli.main import cli\n"
            "try:\n    cli(prog_name='leaktriage')\nexcept SystemExit:\n    pass\n"
            "bad=[m for m in ('rich','magic','leaktriage.search.build','html.parser') if m in sys.modules]\n"
            "print('BAD', bad)" % str(db))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "BAD []" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("q, rng", [
    ("date:2017-03..2017-04", ("2017-03-01", "2017-05-01")),
    ("facture date:2017-03 date:2017", ("2017-03-01", "2017-04-01")),
    ("date:..2017-02 from:x", (None, "2017-03-01")),
    ("(date:2017-03 OR date:2016) facture", (None, None)),   # not ANDed at the top: no bound
    ("NOT date:2017-03", (None, None)),
    ("facture", (None, None)),
])
def test_top_level_date_range(q, rng):
    assert compile_query(q).date_range == rng


def test_date_bounded_page_walk_gives_the_same_hits(db):
    """A page walks only the date range of top-level date: terms; the hits must be those of the
    unbounded walk, in the same order."""
    import leaktriage.search.engine as S
    con = S.open_db(str(db))
    try:
        for q in ("date:2017-03..2017-04", "date:2017-03 has:attachment", "facture date:..2017-03-10",
                  "date:2017 date:2017-03-06", "date:2017-03 date:2016", "(date:2017-03 OR budget) date:2017"):
            for sort in ("newest", "oldest"):
                got = [h.locator for h in S.search(con, q, sort=sort, limit=5, snippets=False, all_copies=True)]
                c = compile_query(q)
                order = "m.date ASC, m.id" if sort == "oldest" else "m.date DESC, m.id"
                rows = con.execute("SELECT m.locator, m.email_id FROM messages m WHERE %s ORDER BY %s"
                                   % (c.where, order), c.params).fetchall()
                assert got == [r[0] for r in rows[:5]], (q, sort)
                # one hit per email: the first copy of each email in that order
                firsts, seen = [], set()
                for loc, eid in rows:
                    if eid not in seen:
                        seen.add(eid)
                        firsts.append(loc)
                got = [h.locator for h in S.search(con, q, sort=sort, limit=5, snippets=False)]
                assert got == firsts[:5], (q, sort)
        assert [h.locator for h in S.search(con, "date:2017-03..2017-04", limit=50, snippets=False)]
    finally:
        con.close()
