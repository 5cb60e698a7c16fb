"""Correspondents: who wrote to whom, how often, when; an address book that merges carefully.

    graph = correspondents(message_records)       # manifest `message` records
    graph.nodes, graph.edges, graph.addresses     # lists of dicts, sorted
    write_gexf(graph, fh); write_graphml(graph, fh); write_csv(graph, fh); write_sqlite(con, graph)

Counting. Each email counts once however many copies the dump holds (key: its Message-ID, else its
canonical digest, else its locator); a recipient counts once per email, and a Bcc recipient is
taken from whichever copy shows it (only the sender's copy does). An edge sender -> recipient has
the number of emails (weight), how many had the recipient in To, Cc or Bcc, and the first and last
date.

Merging addresses into people. Two addresses are one person only when
- both carry the same full name (the display name each address is most often written with, if it
  has at least two words of two letters or more: case, accents, word order and hyphens ignored), and
- they are on the same domain, or both local parts contain one of the name's words (3 letters or
  more): `h.lefevre@work.example` and `helene.lefevre@gmail.example` named "Hélène Lefèvre" merge,
  two different "Hélène"s never do (a first name alone is never enough), nor do two addresses
  that share a name but nothing else;
- neither is a role address (info@, contact@, no-reply@, newsletter@ ... text.is_role_address): a
  role address is a node of its own, whatever name it is written with.
A node's id is its most used address; its label the full name, or the address.
Memory: per address and per address pair, small counters; 8 bytes per (email, recipient).
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set, TextIO, Tuple
from xml.sax.saxutils import escape, quoteattr

from leaktriage.text.fold import fold
from .text import addr_key, is_role_address, msgid_key

_NAME_WORD = re.compile(r"[^\W\d_]+")
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass
class Graph:
    nodes: List[dict]
    edges: List[dict]
    addresses: List[dict]


def person_name_key(name: Optional[str]) -> Optional[str]:
    """The folded, sorted words of a full name; None unless it has two words of two letters or more
    (a first name alone, initials, an address, a name with digits do not qualify)."""
    if not name or not isinstance(name, str) or "@" in name or len(name) > 200:
        return None
    if any(ch.isdigit() for ch in name):
        return None
    name = re.sub(r"\s+via\s+.*$", "", name, flags=re.I)      # "Jean Dupont via Groupe"
    words = [w for w in _NAME_WORD.findall(fold(name))]
    if len(words) < 2 or any(len(w) < 2 for w in words):
        return None
    return " ".join(sorted(words))


def _local_letters(address: str) -> str:
    return re.sub(r"[^a-z]", "", fold(address.rpartition("@")[0]))


def correspondents(messages: Iterable[dict]) -> Graph:
    names: Dict[str, Counter] = defaultdict(Counter)
    sent: Counter = Counter()
    received: Counter = Counter()
    seen_email: Set[int] = set()
    seen_rcpt: Set[int] = set()
    edges: Dict[Tuple[str, str], list] = {}
    dates: Dict[str, list] = {}

    def h8(*parts: str) -> int:
        return int.from_bytes(hashlib.blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"),
                                              digest_size=8).digest(), "big")

    for m in messages:
        key = msgid_key(m.get("message_id")) or m.get("canonical_sha256") or str(m.get("locator"))
        frm = [a for a in (m.get("from") or ()) if isinstance(a, dict)]
        sender = addr_key(frm[0].get("address")) if frm else None
        for field in ("from", "to", "cc", "bcc"):
            for a in m.get(field) or ():
                if isinstance(a, dict):
                    k = addr_key(a.get("address"))
                    if k and isinstance(a.get("name"), str) and a["name"].strip():
                        names[k][" ".join(a["name"].split())[:200]] += 1
                    elif k:
                        names[k]
        if sender is None:
            continue
        date = m.get("date") if isinstance(m.get("date"), str) else None
        ek = h8("email", key)
        if ek not in seen_email:
            seen_email.add(ek)
            sent[sender] += 1
            _span(dates, sender, date)
        for field in ("to", "cc", "bcc"):
            for a in m.get(field) or ():
                r = addr_key(a.get("address")) if isinstance(a, dict) else None
                if r is None:
                    continue
                rk = h8(key, r)
                if rk in seen_rcpt:
                    continue
                seen_rcpt.add(rk)
                received[r] += 1
                _span(dates, r, date)
                e = edges.get((sender, r))
                if e is None:
                    e = edges[(sender, r)] = [0, 0, 0, 0, None, None]
                e[0] += 1
                e[{"to": 1, "cc": 2, "bcc": 3}[field]] += 1
                if date:
                    e[4] = date if e[4] is None or date < e[4] else e[4]
                    e[5] = date if e[5] is None or date > e[5] else e[5]

    # the address book
    addrs = sorted(names)
    canon: Dict[str, Optional[str]] = {}
    for a in addrs:
        best = None
        for name, n in sorted(names[a].items(), key=lambda x: (-x[1], x[0])):
            if person_name_key(name):
                best = name
                break
        canon[a] = best
    parent = {a: a for a in addrs}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    by_name: Dict[str, List[str]] = defaultdict(list)
    for a in addrs:
        if canon[a] and not is_role_address(a):
            by_name[person_name_key(canon[a])].append(a)
    for nk, lst in by_name.items():
        words = [w for w in nk.split() if len(w) >= 3]
        for i in range(len(lst)):
            for j in range(i + 1, len(lst)):
                x, y = lst[i], lst[j]
                same_domain = x.rpartition("@")[2] == y.rpartition("@")[2]
                lx, ly = _local_letters(x), _local_letters(y)
                if same_domain or (any(w in lx for w in words) and any(w in ly for w in words)):
                    rx, ry = find(x), find(y)
                    if rx != ry:
                        parent[max(rx, ry)] = min(rx, ry)
    groups: Dict[str, List[str]] = defaultdict(list)
    for a in addrs:
        groups[find(a)].append(a)
    node_of: Dict[str, str] = {}
    nodes = []
    for members in groups.values():
        members.sort()
        primary = min(members, key=lambda a: (-(sent[a] + received[a]), a))
        for a in members:
            node_of[a] = primary
        label_name = canon[primary] or next((canon[a] for a in members if canon[a]), None)
        first = min((dates[a][0] for a in members if a in dates), default=None)
        last = max((dates[a][1] for a in members if a in dates), default=None)
        node = {"id": primary, "label": label_name or primary, "addresses": members,
                "role": any(is_role_address(a) for a in members),
                "sent": sum(sent[a] for a in members), "received": sum(received[a] for a in members)}
        if len(members) > 1:
            node["merged_by"] = "full name: " + (label_name or "")
        if first:
            node["first_date"], node["last_date"] = first, last
        nodes.append(node)
    nodes.sort(key=lambda n: n["id"])
    agg: Dict[Tuple[str, str], list] = {}
    for (s, r), e in edges.items():
        k = (node_of[s], node_of[r])
        g = agg.get(k)
        if g is None:
            agg[k] = list(e)
            continue
        for i in range(4):
            g[i] += e[i]
        if e[4] and (g[4] is None or e[4] < g[4]):
            g[4] = e[4]
        if e[5] and (g[5] is None or e[5] > g[5]):
            g[5] = e[5]
    out_edges = []
    for (s, r), e in sorted(agg.items()):
        d = {"source": s, "target": r, "weight": e[0], "to": e[1], "cc": e[2], "bcc": e[3]}
        if e[4]:
            d["first_date"], d["last_date"] = e[4], e[5]
        out_edges.append(d)
    address_rows = [{"address": a, "node": node_of[a], "name": canon[a] or (names[a].most_common(1)[0][0]
                                                                          if names[a] else None),
                     "role": is_role_address(a), "sent": sent[a], "received": received[a]} for a in addrs]
    return Graph(nodes=nodes, edges=out_edges, addresses=address_rows)


def _span(dates: Dict[str, list], a: str, date: Optional[str]) -> None:
    if not date:
        return
    d = dates.get(a)
    if d is None:
        dates[a] = [date, date]
    else:
        if date < d[0]:
            d[0] = date
        if date > d[1]:
            d[1] = date


# --------------------------------------------------------------------------------------------
# exports (deterministic: sorted, no time stamps, LF line ends, UTF-8)

def _x(value) -> str:
    return _INVALID_XML.sub("\ufffd", str(value))


_NODE_ATTRS = (("addresses", "string"), ("role", "boolean"), ("sent", "integer"), ("received", "integer"),
               ("first_date", "string"), ("last_date", "string"))
_EDGE_ATTRS = (("to", "integer"), ("cc", "integer"), ("bcc", "integer"), ("first_date", "string"),
               ("last_date", "string"))


def _val(d: dict, k: str) -> Optional[str]:
    v = d.get(k)
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return " ".join(v)
    return str(v)


def write_gexf(graph: Graph, fh: TextIO) -> None:
    """GEXF 1.3 (Gephi): directed, weighted; node and edge attributes."""
    w = fh.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n')
    w('<gexf xmlns="http://gexf.net/1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:schemaLocation="http://gexf.net/1.3 http://gexf.net/1.3/gexf.xsd" version="1.3">\n')
    w('  <meta>\n    <creator>leaktriage</creator>\n    <description>Correspondents: who wrote to whom'
      '</description>\n  </meta>\n')
    w('  <graph defaultedgetype="directed" mode="static">\n')
    w('    <attributes class="node">\n')
    for i, (k, t) in enumerate(_NODE_ATTRS):
        w('      <attribute id="n%d" title="%s" type="%s"/>\n' % (i, k, t))
    w('    </attributes>\n    <attributes class="edge">\n')
    for i, (k, t) in enumerate(_EDGE_ATTRS):
        w('      <attribute id="e%d" title="%s" type="%s"/>\n' % (i, k, t))
    w('    </attributes>\n    <nodes>\n')
    for n in graph.nodes:
        w('      <node id=%s label=%s>\n        <attvalues>\n' % (quoteattr(_x(n["id"])), quoteattr(_x(n["label"]))))
        for i, (k, _) in enumerate(_NODE_ATTRS):
            v = _val(n, k)
            if v is not None:
                w('          <attvalue for="n%d" value=%s/>\n' % (i, quoteattr(_x(v))))
        w('        </attvalues>\n      </node>\n')
    w('    </nodes>\n    <edges>\n')
    for j, e in enumerate(graph.edges):
        w('      <edge id="%d" source=%s target=%s weight="%d">\n        <attvalues>\n'
          % (j, quoteattr(_x(e["source"])), quoteattr(_x(e["target"])), e["weight"]))
        for i, (k, _) in enumerate(_EDGE_ATTRS):
            v = _val(e, k)
            if v is not None:
                w('          <attvalue for="e%d" value=%s/>\n' % (i, quoteattr(_x(v))))
        w('        </attvalues>\n      </edge>\n')
    w('    </edges>\n  </graph>\n</gexf>\n')


def write_graphml(graph: Graph, fh: TextIO) -> None:
    """GraphML (Gephi, yEd, networkx, igraph): directed; weight and the attributes as keys."""
    types = {"string": "string", "boolean": "boolean", "integer": "int"}
    w = fh.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n')
    w('<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
      'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
    w('  <key id="label" for="node" attr.name="label" attr.type="string"/>\n')
    for k, t in _NODE_ATTRS:
        w('  <key id="n_%s" for="node" attr.name="%s" attr.type="%s"/>\n' % (k, k, types[t]))
    w('  <key id="weight" for="edge" attr.name="weight" attr.type="int"/>\n')
    for k, t in _EDGE_ATTRS:
        w('  <key id="e_%s" for="edge" attr.name="%s" attr.type="%s"/>\n' % (k, k, types[t]))
    w('  <graph id="correspondents" edgedefault="directed">\n')
    for n in graph.nodes:
        w('    <node id=%s>\n      <data key="label">%s</data>\n' % (quoteattr(_x(n["id"])), escape(_x(n["label"]))))
        for k, _ in _NODE_ATTRS:
            v = _val(n, k)
            if v is not None:
                w('      <data key="n_%s">%s</data>\n' % (k, escape(_x(v))))
        w('    </node>\n')
    for j, e in enumerate(graph.edges):
        w('    <edge id="e%d" source=%s target=%s>\n      <data key="weight">%d</data>\n'
          % (j, quoteattr(_x(e["source"])), quoteattr(_x(e["target"])), e["weight"]))
        for k, _ in _EDGE_ATTRS:
            v = _val(e, k)
            if v is not None:
                w('      <data key="e_%s">%s</data>\n' % (k, escape(_x(v))))
        w('    </edge>\n')
    w('  </graph>\n</graphml>\n')


def _cell(v, guard: bool) -> str:
    s = "" if v is None else str(v)
    if guard and s[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + s
    return s


def write_csv(graph: Graph, fh: TextIO, *, formula_guard: bool = True) -> None:
    """Edges as CSV (Gephi's spreadsheet import reads Source, Target, Weight). Cells starting with
    = + - @ get a leading ' so that a spreadsheet does not run a hostile display name as a formula."""
    label = {n["id"]: n["label"] for n in graph.nodes}
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["Source", "Target", "Weight", "Source label", "Target label", "To", "Cc", "Bcc",
                "First date", "Last date"])
    for e in graph.edges:
        w.writerow([_cell(x, formula_guard) for x in (e["source"], e["target"], e["weight"], label.get(e["source"]),
                                                     label.get(e["target"]), e["to"], e["cc"], e["bcc"],
                                                     e.get("first_date"), e.get("last_date"))])


SQL = """
CREATE TABLE IF NOT EXISTS persons (
    id TEXT PRIMARY KEY, label TEXT, role INTEGER, sent INTEGER, received INTEGER,
    first_date TEXT, last_date TEXT, addresses TEXT, merged_by TEXT);
CREATE TABLE IF NOT EXISTS person_addresses (
    address TEXT PRIMARY KEY, person TEXT REFERENCES persons(id), name TEXT, role INTEGER,
    sent INTEGER, received INTEGER);
CREATE TABLE IF NOT EXISTS person_edges (
    source TEXT REFERENCES persons(id), target TEXT REFERENCES persons(id), weight INTEGER,
    to_count INTEGER, cc_count INTEGER, bcc_count INTEGER, first_date TEXT, last_date TEXT,
    PRIMARY KEY (source, target));
"""


def write_sqlite(con, graph: Graph) -> None:
    """Tables persons, person_addresses, person_edges (replaced), with foreign keys for Datasette."""
    con.executescript("DROP TABLE IF EXISTS person_edges; DROP TABLE IF EXISTS person_addresses; "
                      "DROP TABLE IF EXISTS persons;" + SQL)
    con.executemany("INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(n["id"], n["label"], int(n["role"]), n["sent"], n["received"], n.get("first_date"),
                      n.get("last_date"), json.dumps(n["addresses"], ensure_ascii=False), n.get("merged_by"))
                     for n in graph.nodes])
    con.executemany("INSERT INTO person_addresses VALUES (?, ?, ?, ?, ?, ?)",
                    [(a["address"], a["node"], a["name"], int(a["role"]), a["sent"], a["received"])
                     for a in graph.addresses])
    con.executemany("INSERT INTO person_edges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(e["source"], e["target"], e["weight"], e["to"], e["cc"], e["bcc"], e.get("first_date"),
                      e.get("last_date")) for e in graph.edges])
    con.commit()
