"""Correspondents (leaktriage.conversations.people): counts, the address-book merging rules and the
Gephi/Datasette exports."""
import csv
import io
import json
import random
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from leaktriage.conversations import correspondents, write_csv, write_gexf, write_graphml, write_sqlite
from leaktriage.conversations.people import person_name_key
from leaktriage.conversations.text import is_role_address


def m(loc, frm, to=(), cc=(), bcc=(), mid=None, date="2017-03-01T10:00:00Z"):
    def lst(xs):
        return [{"address": a, "name": n} if n else {"address": a} for a, n in xs]
    r = {"locator": loc, "from": lst([frm]), "to": lst(to), "cc": lst(cc), "bcc": lst(bcc), "date": date}
    if mid:
        r["message_id"] = mid
    return r


HELENE_W = ("h.lefevre@elan-citoyen.example", "Hélène Lefèvre")
HELENE_P = ("helene.lefevre@gmail.example", "LEFEVRE Helene")
HELENE_OTHER = ("helene@autre.example", "Hélène")
HELENE_CHEF = ("helene.martin@elan-citoyen.example", "Hélène")
BOB = ("bob@x.example", "Bob Martin")
INFO = ("info@elan-citoyen.example", "Hélène Lefèvre")
NOREPLY = ("no-reply@elan-citoyen.example", "Élan citoyen")
NAMESAKE = ("zz1990@webmail.example", "Hélène Lefèvre")


@pytest.fixture(scope="module")
def graph():
    msgs = [
        # one email stored twice (Sent and Inbox): counted once; the Bcc shows in the Sent copy only
        m("h/Sent/1", HELENE_W, to=[BOB], bcc=[HELENE_P], mid="<1@x>", date="2017-03-01T10:00:00Z"),
        m("b/Inbox/1", HELENE_W, to=[BOB], mid="<1@x>", date="2017-03-01T10:00:00Z"),
        m("b/Sent/2", BOB, to=[HELENE_P], cc=[HELENE_OTHER], mid="<2@x>", date="2017-04-01T10:00:00Z"),
        m("b/Sent/3", BOB, to=[HELENE_W, HELENE_CHEF], mid="<3@x>", date="2017-02-01T10:00:00Z"),
        m("x/Inbox/4", INFO, to=[BOB], mid="<4@x>"),
        m("x/Inbox/5", NOREPLY, to=[BOB], mid="<5@x>"),
        m("x/Inbox/6", NAMESAKE, to=[BOB], mid="<6@x>"),
        m("x/Inbox/7", ("", "nobody"), to=[BOB], mid="<7@x>"),           # no usable sender
    ]
    return msgs, correspondents(msgs)


def node_of(g, address):
    return next(n for n in g.nodes if address in n["addresses"])


def test_full_names_merge_work_and_personal_addresses(graph):
    _, g = graph
    n = node_of(g, HELENE_W[0])
    assert n["addresses"] == sorted([HELENE_P[0], HELENE_W[0]])
    assert n["label"] == "Hélène Lefèvre" and n["merged_by"] == "full name: Hélène Lefèvre"
    assert n["id"] == HELENE_W[0]             # the most used address


def test_a_first_name_alone_never_merges(graph):
    _, g = graph
    ids = {node_of(g, a[0])["id"] for a in (HELENE_W, HELENE_OTHER, HELENE_CHEF)}
    assert len(ids) == 3
    assert node_of(g, HELENE_OTHER[0])["addresses"] == [HELENE_OTHER[0]]


def test_role_addresses_stay_apart_even_with_a_person_name(graph):
    _, g = graph
    info = node_of(g, INFO[0])
    assert info["addresses"] == [INFO[0]] and info["role"] is True
    assert node_of(g, NOREPLY[0])["role"] is True
    assert node_of(g, HELENE_W[0])["role"] is False


def test_a_namesake_with_nothing_else_in_common_is_not_merged(graph):
    _, g = graph
    assert node_of(g, NAMESAKE[0])["addresses"] == [NAMESAKE[0]]


def test_counts_once_per_email_with_bcc_and_dates(graph):
    _, g = graph
    e = {(x["source"], x["target"]): x for x in g.edges}
    h, b = node_of(g, HELENE_W[0])["id"], node_of(g, BOB[0])["id"]
    assert e[(h, b)]["weight"] == 1 and e[(h, b)]["to"] == 1
    assert e[(h, h)]["bcc"] == 1               # Hélène's Bcc to her personal address: a self-loop after merging
    assert e[(b, h)]["weight"] == 2 and (e[(b, h)]["first_date"], e[(b, h)]["last_date"]) == \
        ("2017-02-01T10:00:00Z", "2017-04-01T10:00:00Z")
    assert node_of(g, HELENE_W[0])["sent"] == 1 and node_of(g, BOB[0])["sent"] == 2
    assert node_of(g, BOB[0])["received"] == 4     # mails 1, 4, 5, 6 (7 has no usable sender)


def test_exports_are_valid_and_byte_identical_whatever_the_input_order(graph):
    msgs, g = graph
    outs = []
    for seed in (1, 2):
        ms = list(msgs)
        random.Random(seed).shuffle(ms)
        gg = correspondents(ms)
        bufs = [io.StringIO() for _ in range(3)]
        write_gexf(gg, bufs[0])
        write_graphml(gg, bufs[1])
        write_csv(gg, bufs[2])
        outs.append([b.getvalue() for b in bufs])
    assert outs[0] == outs[1]
    gexf, graphml, edges = outs[0]
    ns = {"g": "http://gexf.net/1.3"}
    root = ET.fromstring(gexf.encode())
    assert len(root.findall(".//g:node", ns)) == len(g.nodes) and len(root.findall(".//g:edge", ns)) == len(g.edges)
    groot = ET.fromstring(graphml.encode())
    gns = {"m": "http://graphml.graphdrawing.org/xmlns"}
    assert len(groot.findall(".//m:edge", gns)) == len(g.edges)
    rows = list(csv.reader(io.StringIO(edges)))
    assert rows[0][:3] == ["Source", "Target", "Weight"] and len(rows) == len(g.edges) + 1


def test_hostile_names_make_valid_xml_and_guarded_csv():
    g = correspondents([m("1", ("a@x.example", "=cmd Jean Dupont <bb> &\x00\x07"), to=[("b@x.example", "B\x1b")])])
    buf = io.StringIO()
    write_gexf(g, buf)
    ET.fromstring(buf.getvalue().encode())
    buf = io.StringIO()
    write_graphml(g, buf)
    ET.fromstring(buf.getvalue().encode())
    buf = io.StringIO()
    write_csv(g, buf)
    row = list(csv.reader(io.StringIO(buf.getvalue())))[1]
    assert row[3].startswith("'=")


def test_sqlite_tables_for_datasette(graph):
    _, g = graph
    con = sqlite3.connect(":memory:")
    write_sqlite(con, g)
    write_sqlite(con, g)                      # replaced, not appended
    assert con.execute("SELECT count(*) FROM persons").fetchone()[0] == len(g.nodes)
    assert con.execute("SELECT count(*) FROM person_edges").fetchone()[0] == len(g.edges)
    row = con.execute("SELECT person FROM person_addresses WHERE address = ?", (HELENE_P[0],)).fetchone()
    assert row == (HELENE_W[0],)
    assert json.loads(con.execute("SELECT addresses FROM persons WHERE id = ?", (HELENE_W[0],)).fetchone()[0]) == \
        sorted([HELENE_P[0], HELENE_W[0]])


@pytest.mark.parametrize("name,key", [
    ("Hélène Lefèvre", "helene lefevre"), ("LEFEVRE Helene", "helene lefevre"), ("Jean-François Mercier", "francois jean mercier"),
    ("Hélène", None), ("J. Dupont", None), ("h.lefevre@x.example", None), ("Agent 007", None), ("", None),
    ("Jean Dupont via Groupe Presse", "dupont jean")])
def test_person_name_keys(name, key):
    assert person_name_key(name) == key


@pytest.mark.parametrize("address,role", [
    ("info@x.fr", True), ("contact@x.fr", True), ("no-reply@x.fr", True), ("noreply+abc@x.fr", True),
    ("ne-pas-repondre@x.fr", True), ("newsletter@x.fr", True), ("mailer-daemon@x.fr", True),
    ("support2@x.fr", True), ("h.lefevre@x.fr", False), ("info.dupont@x.fr", False), ("bob@x.fr", False)])
def test_role_addresses(address, role):
    assert is_role_address(address) is role
