"""`leaktriage serve` (issue #15 item 4), in process through Datasette's own client: the pages answer, the
emails come first with readable columns, the search box takes leaktriage's query language, a message
page reads like an email, downloads are checked, canned queries list the findings.
The same site in a real browser: tests/test_read_serve_browser.py."""
import asyncio
import hashlib
import html
import os
import re
import shutil
import sqlite3

import pytest

from support.readkit import CODEWORD_PDF, PE, build_reading
from test_search_common import run_cli


def need_datasette():
    try:
        import datasette  # noqa: F401
    except ImportError:
        msg = "datasette is not installed (pip install '.[serve]')"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_datasette()
    tmp = tmp_path_factory.mktemp("serve")
    dump, m, db, locs = build_reading(tmp)
    from leaktriage.site.server import make_datasette
    ds = make_datasette(str(db))
    asyncio.run(ds.invoke_startup())
    return ds, dump, db, locs


def get(ds, path):
    async def go():
        return await ds.client.get(path)
    return asyncio.run(go())


def text(r) -> str:
    t = re.sub(r"<(script|style)\b.*?</\1>", "", r.text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", t)))


def mid(db, loc):
    return sqlite3.connect(str(db)).execute("SELECT id FROM messages WHERE locator = ?", (loc,)).fetchone()[0]


def test_home_opens_on_the_emails_with_readable_columns(site):
    ds, dump, db, locs = site
    r = get(ds, "/")
    assert r.status_code == 302 and r.headers["location"] == "/triage/inbox"
    r = get(ds, "/triage/inbox.json?_shape=objects")
    assert r.status_code == 200
    data = r.json()
    cols = data["columns"]
    assert cols[:7] == ["id", "date", "subject", "from_text", "to_text", "custodians", "copies"]
    assert not any("sha256" in c for c in cols) and "body" not in cols
    rows = data["rows"]
    n_emails = sqlite3.connect(str(db)).execute("SELECT count(*) FROM emails").fetchone()[0]
    assert len(rows) == n_emails == 5                    # 6 messages, one email held twice
    assert [r["date"] for r in rows] == sorted((r["date"] for r in rows), reverse=True)
    both = [r for r in rows if r["copies"] == 2]
    assert len(both) == 1 and both[0]["custodians"] == '["Paul Roux", "Zoé Martin"]'
    page = text(get(ds, "/triage/inbox"))
    assert "Emails" in page and "leaktriage's query language" in page
    for facet in ("month", "dkim", "custodians (array)", "attachment_types (array)"):
        assert facet in page, facet


def test_search_box_speaks_leaktriage(site):
    ds, dump, db, locs = site
    r = get(ds, "/triage/inbox.json?_shape=objects&_q=" + CODEWORD_PDF)
    assert [x["locator"] for x in r.json()["rows"]] == [locs["cp1252"]]
    r = get(ds, "/triage/inbox.json?_shape=objects&_q=from:roux")
    assert len(r.json()["rows"]) == 1
    r = get(ds, "/triage/inbox.json?_shape=objects&_q=custodian:roux")   # a copy that is not the first one
    assert [x["copies"] for x in r.json()["rows"]] == [2]
    r = get(ds, "/triage/messages.json?_shape=objects&_q=ndiaye")      # every copy on the messages table
    assert sorted(x["locator"] for x in r.json()["rows"]) == sorted([locs["html"], locs["html_copy"]])
    r = get(ds, "/triage/inbox?_q=(oops")
    assert r.status_code == 200
    page = text(r)
    assert "Not a valid query" in page and "unclosed '('" in page and "0 rows" in page
    r = get(ds, "/triage/inbox.json?_shape=objects&_q=risk:disguised")
    assert {x["locator"] for x in r.json()["rows"]} == {locs["cp1252"], locs["forward"] + "#1.2.1.2"}


def test_message_page_reads_like_an_email(site):
    ds, dump, db, locs = site
    r = get(ds, "/triage/messages/%d" % mid(db, locs["cp1252"]))
    assert r.status_code == 200
    page = text(r)
    assert "Réunion à l'Élysée" in page and "From Loïc Durand <l.durand@example.org>" in page
    assert "La réunion à l'Élysée coûte 1 200 €" in page
    assert "Attachments (7)" in page and "Facture_6561.pdf" in page and "executable" in page
    assert "text.encrypted" in page and "rapport.docx" in page
    assert '/-/leaktriage/download/triage/' in r.text
    r = get(ds, "/triage/messages/%d" % mid(db, locs["html"]))
    page = text(r)
    assert "Other copies (1)" in page and "Paul Roux" in page and "Rendez-vous avec Mme N’Diaye" in page


def test_downloads_go_through_the_verified_resolver(site, tmp_path):
    ds, dump, db, locs = site
    con = sqlite3.connect(str(db))
    aid, sha = con.execute("SELECT id, sha256 FROM attachments WHERE filename = 'Facture_6561.pdf'").fetchone()
    r = get(ds, "/-/leaktriage/download/triage/%d" % aid)
    assert r.status_code == 200 and r.content == PE and hashlib.sha256(r.content).hexdigest() == sha
    assert r.headers["content-type"] == "application/octet-stream"
    assert 'filename="Facture_6561.pdf.exe_"' in r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    # the dump changed since the scan: refused, nothing sent
    from leaktriage.site.server import make_datasette
    copy = tmp_path / "d"
    shutil.copytree(dump, copy)
    p = copy / locs["cp1252"]
    raw = p.read_bytes()
    assert raw.count(b"TVqQ") == 1                       # the executable's base64 (MZ...): one byte changed
    p.write_bytes(raw.replace(b"TVqQ", b"TVqR"))
    ds2 = make_datasette(str(db), dump=str(copy))
    asyncio.run(ds2.invoke_startup())
    r = get(ds2, "/-/leaktriage/download/triage/%d" % aid)
    assert r.status_code == 409 and "refused" in r.text
    assert get(ds, "/-/leaktriage/download/triage/999999").status_code == 404


def test_canned_queries_for_the_findings(site):
    ds, dump, db, locs = site
    r = get(ds, "/triage/disguised_executables.json?_shape=objects")
    assert r.status_code == 200
    assert sorted(x["filename"] for x in r.json()["rows"]) == ["Facture_6561.pdf", "Facture_6562.pdf"]
    r = get(ds, "/triage/scans_needing_ocr.json?_shape=objects")
    assert [x["filename"] for x in r.json()["rows"]] == ["scan.pdf"]
    r = get(ds, "/triage/text_extraction_problems.json?_shape=objects")
    assert {x["code"] for x in r.json()["rows"]} >= {"text.encrypted", "text.no_text_layer"}
    for q in ("body_hash_mismatches", "documents_modified_after_sending", "dangerous_attachments"):
        assert get(ds, "/triage/%s" % q).status_code == 200, q
    page = text(get(ds, "/triage"))
    assert "Disguised executables" in page and "DKIM body-hash mismatches" in page


def test_serve_refuses_what_is_not_a_current_index(tmp_path, site):
    ds, dump, db, locs = site
    r = run_cli("serve", tmp_path / "none.db")
    assert r.returncode == 7 and "no index" in r.stderr
    bad = tmp_path / "bad.db"
    sqlite3.connect(str(bad)).execute("CREATE TABLE x (y)")
    r = run_cli("serve", bad)
    assert r.returncode == 2 and "not a leaktriage index" in r.stderr
    old = tmp_path / "old.db"
    shutil.copy(db, old)
    con = sqlite3.connect(str(old))
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    r = run_cli("serve", old)
    assert r.returncode == 2 and "rebuild it with leaktriage index" in r.stderr
