"""The conversation analyses through the index and the CLI (issue #16): a small generated dump with
altered copies and edited documents, scanned, indexed with 1 and 2 workers; threads, contradictions,
near-duplicates and correspondents read back through search, show, report and `conversations`, and
checked against the generator's truth by benchmarks/conversations_index_eval.py."""
import importlib.util
import json
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from conftest import REPO, need_generator
from leaktriage.cli.main import cli


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    gen = need_generator()
    tmp = tmp_path_factory.mktemp("convidx")
    dump = tmp / "dump"
    subprocess.run([sys.executable, str(gen), str(dump), "--messages", "240", "--seed", "5", "--personal", "0.25",
                    "--doc-markers", "--contradictions", "0.4", "--forgeries", "0.4", "--attachment-scale", "0.2",
                    "--quiet"], check=True, capture_output=True)
    from leaktriage import Options, scan
    manifest = tmp / "m.jsonl"
    scan(str(dump), str(manifest), Options(workers=2, keystore=str(tmp / "dump.dkim-keys.json")))
    r = CliRunner()
    for w in ("1", "2"):
        res = r.invoke(cli, ["index", str(manifest), "--dump", str(dump), "-o", str(tmp / ("w%s.db" % w)), "-w", w,
                             "-q"])
        assert res.exit_code == 0, res.output
    return {"tmp": tmp, "dump": dump, "manifest": manifest, "db": tmp / "w2.db", "db1": tmp / "w1.db",
            "truth": tmp / "dump.truth.jsonl"}


def _cli(*argv):
    res = CliRunner().invoke(cli, [str(a) for a in argv])
    return res


def _rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _eval(built):
    spec = importlib.util.spec_from_file_location("conversations_index_eval",
                                                  REPO / "benchmarks" / "conversations_index_eval.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    return ev.main([str(built["db"]), str(built["truth"])])


def test_acceptance_figures_through_the_index(built):
    rep = _eval(built)
    t, c, n = rep["threads"], rep["corroboration"], rep["neardup"]
    assert t["reply_links"] >= 40 and t["same_thread"] >= 0.99 * t["reply_links"]
    assert t["mixed"] <= 0.01 * t["threads_with_truth"]
    assert c["altered"] >= 5 and c["found"] >= 0.98 * c["altered"] and c["false_flags"] <= 2
    found, total = n["doc_recall"]
    ok, predicted = n["doc_precision"]
    assert total >= 3 and found >= 0.9 * total and ok >= 0.9 * predicted


def test_same_rows_whatever_the_worker_count(built):
    for sql in ("SELECT locator, thread_id, parent, parent_locator, parent_missing, thread_method, thread_depth, "
                "thread_key FROM messages ORDER BY locator",
                "SELECT * FROM threads ORDER BY id", "SELECT * FROM thread_gaps ORDER BY thread_id, key",
                "SELECT * FROM copy_groups ORDER BY id",
                "SELECT locator, copy_group, variant, role FROM message_copies ORDER BY locator",
                "SELECT m.locator, f.code, f.detail FROM findings f JOIN messages m ON m.id = f.message_id "
                "WHERE f.kind = 'copy' ORDER BY 1, 2",
                "SELECT * FROM near_duplicate_groups ORDER BY id",
                "SELECT locator, near_group, kind, text_key FROM near_duplicates ORDER BY 1, 2",
                "SELECT * FROM persons ORDER BY id", "SELECT * FROM person_edges ORDER BY source, target"):
        a, b = _rows(built["db"], sql), _rows(built["db1"], sql)
        assert a == b, sql
        assert a or "gaps" in sql, sql
    for args in (["threads"], ["copies"], ["near-duplicates"], ["graph", "-f", "gexf"], ["graph", "-f", "graphml"],
                 ["graph", "-f", "csv"]):
        x = _cli("conversations", args[0], built["db"], *args[1:], "-q")
        y = _cli("conversations", args[0], built["db1"], *args[1:], "-q")
        assert x.exit_code == 0 and x.stdout_bytes == y.stdout_bytes and x.stdout_bytes, args


def test_copies_decoded_by_worker_processes_give_the_same_rows(built, tmp_path):
    from leaktriage.search.analysis import SameEmail
    from leaktriage.search.build import build_index
    from leaktriage.search.conversation_passes import Conversations

    class Parallel(Conversations):
        PARALLEL_MIN = 0
    out = tmp_path / "p.db"
    build_index(str(built["manifest"]), str(built["dump"]), str(out), workers=1,
                passes=(SameEmail(), Parallel(workers=2)))
    for sql in ("SELECT * FROM copy_groups ORDER BY id",
                "SELECT m.locator, f.code, f.detail FROM findings f JOIN messages m ON m.id = f.message_id "
                "WHERE f.kind = 'copy' ORDER BY 1, 2"):
        assert _rows(out, sql) == _rows(built["db1"], sql) and _rows(out, sql), sql


def test_contradiction_is_a_finding_naming_both_copies(built):
    truth = [json.loads(line) for line in open(built["truth"], encoding="utf-8")]
    res = _cli("search", built["db"], "finding:copy.contradiction", "-f", "jsonl", "--all-copies")
    assert res.exit_code == 0
    flagged = {json.loads(line)["locator"] for line in res.stdout.splitlines()}
    assert len(flagged) >= 2 * sum(1 for t in truth if t.get("contradicts") is not None) * 0.9
    loc = sorted(flagged)[0]
    (detail,) = _rows(built["db"], "SELECT f.detail FROM findings f JOIN messages m ON m.id = f.message_id WHERE "
                                   "m.locator = '%s' AND f.code = 'copy.contradiction'" % loc.replace("'", "''"))[0]
    ev = json.loads(detail)
    assert ev["parts"] and ev["other_copies"] and set(ev["other_copies"]) <= flagged
    # show --text --db prints it next to the DKIM verdicts
    out = _cli("show", loc, "-m", built["manifest"], "--text", "--no-pager", "--db", built["db"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("Copies: CONTRADICTION"))
    assert any(line.startswith("DKIM") for line in lines[:i]) and ev["other_copies"][0] in lines[i]
    assert lines[-1] == "Locator: " + loc


def test_search_filters(built):
    def count(q):
        res = _cli("search", built["db"], q, "--count", "--all-copies")
        assert res.exit_code == 0, res.output
        return int(res.stdout.split()[0].replace(",", ""))
    total = _rows(built["db"], "SELECT count(*) FROM messages")[0][0]
    yes, no = count("corroborated:yes"), count("corroborated:no")
    assert yes > 0 and yes + no == total
    assert yes == _rows(built["db"], "SELECT count(DISTINCT message_id) FROM findings WHERE code = 'copy.corroborated'")[0][0]
    near = count("near:yes")
    assert near > 0 and near == count("near:body OR near:attachment") and near + count("near:no") == total
    tid, n = _rows(built["db"], "SELECT thread_id, count(*) FROM messages GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")[0]
    assert n >= 3 and count("thread:" + tid) == n
    bad = _cli("search", built["db"], "thread:nope")
    assert bad.exit_code == 2 and "thread id" in bad.output and "Traceback" not in bad.output
    bad = _cli("search", built["db"], "corroborated:maybe")
    assert bad.exit_code == 2 and "corroborated:yes" in bad.output


def test_show_thread_tree_marks_missing_parents(built):
    # a thread with a missing parent if the dump has one, else the largest thread
    rows = _rows(built["db"], "SELECT locator, thread_id FROM messages WHERE parent_missing = 1 ORDER BY locator LIMIT 1") \
        or _rows(built["db"], "SELECT m.locator, m.thread_id FROM messages m JOIN threads t ON t.id = m.thread_id "
                              "WHERE m.parent IS NOT NULL ORDER BY t.messages DESC, m.locator LIMIT 1")
    loc, tid = rows[0]
    res = _cli("show", loc, "-m", built["manifest"], "--thread", "--db", built["db"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert out.startswith("Thread %s: " % tid)
    members = [r[0] for r in _rows(built["db"], "SELECT locator FROM messages WHERE thread_id = '%s'" % tid)]
    for m in members:
        assert m in out
    star = [line for line in out.splitlines() if line.lstrip().startswith("* ")]
    assert len(star) == 1
    child = [line for line in out.splitlines() if line.startswith("  - ") or line.startswith("  * ")]
    assert child, out                       # a reply is indented under its parent
    gaps = _rows(built["db"], "SELECT key FROM thread_gaps WHERE thread_id = '%s'" % tid)
    for (k,) in gaps:
        assert "[missing] %s" % k in out
    assert _cli("show", loc, "-m", built["manifest"], "--thread").exit_code == 2      # --db needed
    res = _cli("show", "no/such.eml", "-m", built["manifest"], "--thread", "--db", built["db"])
    assert res.exit_code == 7 and "Traceback" not in res.output


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("tiny"))


def _tiny(tmp_path):
    """Three messages: a reply whose parent was cut out of the dump, its thread's root, another email."""
    dump = tmp_path / "d"
    dump.mkdir()
    common = "From: A <a@example.org>\nTo: B <b@example.org>\nDate: Mon, 6 Mar 2017 10:00:0%d +0100\n"
    (dump / "2.eml").write_text(common % 2 + "Subject: Re: plan\nMessage-ID: <2@x>\nIn-Reply-To: <1@x>\n"
                                "References: <0@x> <1@x>\n\nreply\n", encoding="utf-8")
    (dump / "0.eml").write_text(common % 0 + "Subject: plan\nMessage-ID: <0@x>\n\nfirst\n", encoding="utf-8")
    (dump / "3.eml").write_text(common % 3 + "Subject: other\nMessage-ID: <3@x>\n\nunrelated\n", encoding="utf-8")
    from leaktriage import Options, scan
    scan(str(dump), str(tmp_path / "m.jsonl"), Options(workers=1))
    assert _cli("index", tmp_path / "m.jsonl", "--dump", dump, "-o", tmp_path / "t.db", "-q").exit_code == 0
    return tmp_path, dump


def test_missing_parent_in_a_thread(tiny):
    """A reply whose parent was cut out of the dump: its thread records the missing parent."""
    tmp_path, dump = tiny
    rows = dict((r[0], r[1:]) for r in _rows(tmp_path / "t.db", "SELECT locator, thread_id, parent, parent_missing, "
                                                                "parent_locator FROM messages"))
    assert rows["2.eml"][0] == rows["0.eml"][0] != rows["3.eml"][0]
    assert rows["2.eml"][1:] == ("<1@x>", 1, None)
    assert _rows(tmp_path / "t.db", "SELECT key, parent FROM thread_gaps") == [("<1@x>", "<0@x>")]
    out = _cli("show", "2.eml", "-m", tmp_path / "m.jsonl", "--thread", "--db", tmp_path / "t.db").stdout
    lines = out.splitlines()
    k0 = next(i for i, line in enumerate(lines) if line.startswith("- ") and "plan" in line)
    assert lines[k0 + 2].startswith("  - [missing] <1@x>")
    assert lines[k0 + 3].startswith("    * ") and "Re: plan" in lines[k0 + 3]
    recs = [json.loads(line) for line in _cli("conversations", "threads", tmp_path / "t.db", "-q").stdout.splitlines()]
    th = [r for r in recs if r["record"] == "thread" and r["messages"] == 2][0]
    assert th["missing"] == 1 and th["missing_ids"] == ["<1@x>"] and th["root_locator"] == "0.eml"
    assert {r["locator"]: r.get("parent_missing") for r in recs if r["record"] == "thread_member"}["2.eml"] is True


def test_report_shows_copies_next_to_dkim(built):
    res = _cli("report", built["manifest"], "--db", built["db"], "-f", "md")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    k = next(i for i, line in enumerate(lines) if "| Corroboration |" in line)
    assert "DKIM" in lines[k - 1] and "contradicting" in lines[k]
    n = _rows(built["db"], "SELECT count(*) FROM copy_groups WHERE verdict = 'contradiction'")[0][0]
    assert n > 0 and ("%d contradicting" % n) in lines[k]
    doc = json.loads(_cli("report", built["manifest"], "--db", built["db"], "-f", "json").stdout)
    assert doc["corroboration"]["contradiction"] == n
    assert "Corroboration" not in _cli("report", built["manifest"], "-f", "md").stdout    # only with --db
    bad = _cli("report", built["manifest"], "--db", built["tmp"] / "none.db")
    assert bad.exit_code == 2 and "no index at" in bad.output


def test_graph_exports(built, tmp_path):
    gexf = tmp_path / "g.gexf"
    assert _cli("conversations", "graph", built["db"], "-f", "gexf", "-o", gexf, "-q").exit_code == 0
    root = ET.parse(gexf).getroot()
    ns = {"g": "http://gexf.net/1.3"}
    nodes = root.findall(".//g:node", ns)
    edges = root.findall(".//g:edge", ns)
    persons = _rows(built["db"], "SELECT count(*) FROM persons")[0][0]
    assert len(nodes) == persons > 10 and len(edges) == _rows(built["db"], "SELECT count(*) FROM person_edges")[0][0]
    gml = _cli("conversations", "graph", built["db"], "-f", "graphml", "-q").stdout
    assert len(ET.fromstring(gml.encode("utf-8")).findall(".//{http://graphml.graphdrawing.org/xmlns}node")) == persons
    csv_lines = _cli("conversations", "graph", built["db"], "-f", "csv", "-q").stdout.splitlines()
    assert csv_lines[0].startswith("Source,Target,Weight") and len(csv_lines) == len(edges) + 1
    contra = _cli("conversations", "copies", built["db"], "--verdict", "contradiction", "-q").stdout.splitlines()
    assert contra and all(json.loads(line)["verdict"] == "contradiction" and json.loads(line)["differences"]
                          for line in contra)
    near = [json.loads(line) for line in _cli("conversations", "near-duplicates", built["db"], "-q").stdout.splitlines()]
    assert near and all(g["similarity_min"] >= g["threshold"] for g in near)
    assert any(link["passages"] for g in near for link in g["links"] if link["similarity"] < 1)
    bad = _cli("conversations", "threads", built["tmp"] / "none.db")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_reindexing_an_unchanged_dump_skips_the_pass(tmp_path):
    tmp_path, dump = _tiny(tmp_path)
    db = tmp_path / "t.db"
    before = _rows(db, "SELECT key, value FROM meta WHERE key LIKE 'conversations%' ORDER BY key")
    assert [k for k, _ in before] == ["conversations_input", "conversations_seconds"]
    assert _cli("index", tmp_path / "m.jsonl", "--dump", dump, "-o", db, "-q").exit_code == 0
    assert _rows(db, "SELECT key, value FROM meta WHERE key LIKE 'conversations%' ORDER BY key") == before
    # another manifest (one message more): threads rebuilt
    (dump / "4.eml").write_text("From: B <b@example.org>\nTo: A <a@example.org>\nDate: Mon, 6 Mar 2017 11:00:00 "
                                "+0100\nSubject: Re: other\nMessage-ID: <4@x>\nIn-Reply-To: <3@x>\n\nyes\n",
                                encoding="utf-8")
    from leaktriage import Options, scan
    scan(str(dump), str(tmp_path / "m2.jsonl"), Options(workers=1))
    assert _cli("index", tmp_path / "m2.jsonl", "--dump", dump, "-o", db, "-q").exit_code == 0
    rows = dict(_rows(db, "SELECT locator, thread_id FROM messages"))
    assert rows["4.eml"] == rows["3.eml"] and _rows(db, "SELECT count(*) FROM threads")[0][0] == 2


def test_report_warns_when_the_index_is_of_another_manifest(built, tiny):
    tmp_path, _ = tiny
    res = _cli("report", built["manifest"], "--db", tmp_path / "t.db", "-f", "json")
    assert res.exit_code == 0 and "built from another manifest" in res.stderr


def test_serve_shows_the_thread_and_the_contradicting_copies(built):
    """The site (leaktriage serve): a message page lists its thread and its copy finding; a canned
    query lists the contradicting copies."""
    import asyncio
    try:
        from leaktriage.site.server import make_datasette
    except ImportError:
        pytest.skip("datasette is not installed")
    ds = make_datasette(str(built["db"]))
    asyncio.run(ds.invoke_startup())

    def get(path):
        async def go():
            return await ds.client.get(path)
        return asyncio.run(go())
    n = _rows(built["db"], "SELECT count(*) FROM message_copies c JOIN copy_groups g ON g.id = c.copy_group "
                           "WHERE g.verdict = 'contradiction'")[0][0]
    name = built["db"].stem
    r = get("/%s/contradicting_copies.json?_shape=objects&_size=max" % name)
    assert r.status_code == 200 and len(r.json()["rows"]) == n > 0
    mid, _subject, tid = _rows(built["db"], "SELECT m.id, m.subject, m.thread_id FROM messages m JOIN findings f ON "
                                           "f.message_id = m.id JOIN threads t ON t.id = m.thread_id WHERE "
                                           "f.code = 'copy.contradiction' ORDER BY t.messages DESC, m.id LIMIT 1")[0]
    page = get("/%s/messages/%d" % (name, mid)).text
    assert "copy.contradiction" in page
    others = _rows(built["db"], "SELECT id FROM messages WHERE thread_id = '%s' AND id != %d" % (tid, mid))
    assert others and all("/%s/messages/%d\"" % (name, o) in page for (o,) in others[:5])


def test_thread_export_is_the_librarys_records(built):
    """`conversations threads` gives, byte for byte, what leaktriage.conversations writes for the
    manifest's messages (write_jsonl of ThreadResult.records())."""
    import io
    from leaktriage.conversations import build_threads, write_jsonl
    from leaktriage.search.conversation_passes import read_messages
    locs = [r[0] for r in _rows(built["db"], "SELECT locator FROM messages")]
    buf = io.StringIO()
    write_jsonl(build_threads(read_messages(str(built["manifest"]), locs)).records(), buf)
    out = _cli("conversations", "threads", built["db"], "-q")
    assert out.exit_code == 0 and out.stdout == buf.getvalue() and buf.getvalue()


def test_exports_never_write_inside_the_dump(built):
    """`conversations ... -o FILE` wrote wherever it was told, the dump included; the index knows its
    dump and refuses it, as every other command that writes does."""
    import sqlite3
    dump = sqlite3.connect(str(built["db"])).execute("SELECT value FROM meta WHERE key = 'dump'").fetchone()[0]
    from pathlib import Path
    target = Path(dump) / "threads.jsonl"
    for args in (["threads"], ["graph", "-f", "gexf"]):
        r = _cli("conversations", args[0], built["db"], *args[1:], "-o", target, "-q")
        assert r.exit_code == 2 and "inside the dump" in r.output, r.output
        assert not target.exists()
