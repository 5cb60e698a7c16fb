"""Reading the conversation analyses back from a search index (leaktriage.search.conversation_passes):
what `leaktriage conversations ...`, `show --thread`, `show --text --db` and `report --db` print.

    open_index(path)                     read-only connection; one-line errors when it is not an index
    thread_of(con, locator)              (thread row, messages, gaps) of a message's thread
    thread_tree(con, locator) -> str     the thread as an indented tree, missing parents marked
    thread_records(con)                  JSON Lines records: every thread, then every message's place
    copy_records(con), near_records(con) copy groups / near-duplicate groups as the library writes them
    graph(con) -> Graph                  correspondents, for write_gexf / write_graphml / write_csv
    copy_lines(con, locator)             the corroboration of one message, one line each (show --text)
    corroboration_counts(con)            the figures of the report
Everything is ordered by stable keys: the same index gives the same bytes.
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Dict, Iterator, List, Optional

from leaktriage.errors import NotFoundError, UsageError

NEEDED = ("threads", "copy_groups", "near_duplicate_groups", "persons")


def open_index(path: str) -> sqlite3.Connection:
    """The index at path, read-only; UsageError when it is not one, or was built without the
    conversation analyses."""
    if not os.path.isfile(path):
        raise UsageError("--db: no index at %s (build one with: leaktriage index MANIFEST --dump DIR -o %s)"
                         % (path, path))
    try:
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise UsageError("%s is not a leaktriage index (%s)" % (path, exc))
    if "messages" not in tables:
        raise UsageError("%s is not a leaktriage index (no messages table)" % path)
    missing = [t for t in NEEDED if t not in tables]
    if missing:
        raise UsageError("%s has no conversation tables (%s): it was built by an older leaktriage; run "
                         "leaktriage index again to rebuild it" % (path, ", ".join(missing)))
    return con


def _message_row(con, locator: str) -> tuple:
    row = con.execute("SELECT id, thread_id FROM messages WHERE locator = ?", (locator,)).fetchone()
    if row is None:
        raise NotFoundError("%s is not a message of the index" % locator)
    return row


# --------------------------------------------------------------------------------------------
# threads

def thread_of(con, locator: str):
    """(thread dict, [message dicts ordered by date, locator], [gap dicts]) of the thread holding the message."""
    _, tid = _message_row(con, locator)
    if tid is None:
        raise NotFoundError("%s has no thread in the index (not threaded)" % locator)
    cols = [d[0] for d in con.execute("SELECT * FROM threads LIMIT 0").description]
    t = dict(zip(cols, con.execute("SELECT * FROM threads WHERE id = ?", (tid,)).fetchone()))
    msgs = [dict(zip(("locator", "date", "from_text", "subject", "custodian", "mailbox", "parent", "parent_missing",
                      "method", "key"), r)) for r in con.execute(
        "SELECT locator, date, from_text, subject, custodian, mailbox, parent, parent_missing, thread_method, "
        "thread_key FROM messages WHERE thread_id = ? ORDER BY date IS NULL, date, locator", (tid,))]
    gaps = [{"key": k, "parent": p} for k, p in con.execute(
        "SELECT key, parent FROM thread_gaps WHERE thread_id = ? ORDER BY key", (tid,))]
    return t, msgs, gaps


def thread_tree(con, locator: str) -> str:
    """The thread of a message as an indented tree: one line per email (its copies listed under
    it), missing parents (referenced, not in the dump) marked, the shown message marked with *."""
    t, msgs, gaps = thread_of(con, locator)
    nodes: Dict[str, dict] = {}
    for m in msgs:
        key = m["key"] or ("locator:" + m["locator"])
        n = nodes.setdefault(key, {"key": key, "copies": [], "parent": m["parent"], "method": m["method"],
                                   "missing": False})
        n["copies"].append(m)
    for g in gaps:
        nodes.setdefault(g["key"], {"key": g["key"], "copies": [], "parent": g["parent"], "method": None,
                                    "missing": True})
    children: Dict[Optional[str], List[str]] = {}
    for k, n in nodes.items():
        p = n["parent"] if n["parent"] in nodes else None
        children.setdefault(p, []).append(k)

    def order(k):
        c = nodes[k]["copies"]
        first = c[0] if c else None
        return (first is None, (first or {}).get("date") or "", (first or {}).get("locator") or "", k)

    out = ["Thread %s: %s" % (t["id"], t["subject"] or "(no subject)"),
           "  %d messages, %d emails, %d missing (referenced but not in the dump), %s .. %s; custodians: %s"
           % (t["messages"], t["emails"], t["missing"], t["first_date"] or "?", t["last_date"] or "?",
              ", ".join(json.loads(t["custodians"] or "[]")) or "-"), ""]
    seen = set()
    flagged = {loc for (loc,) in con.execute(
        "SELECT m.locator FROM messages m JOIN findings f ON f.message_id = m.id WHERE m.thread_id = ? AND "
        "f.kind = 'copy' AND f.code = 'copy.contradiction'", (t["id"],))}

    def walk(k, depth):
        if k in seen:
            return
        seen.add(k)
        n = nodes[k]
        pad = "  " * depth
        if n["missing"]:
            out.append("%s- [missing] %s  (referenced, not in the dump)" % (pad, k))
        else:
            m = n["copies"][0]
            mark = "*" if any(c["locator"] == locator for c in n["copies"]) else "-"
            how = "" if not n["method"] or n["method"] == "references" else "  [linked by %s]" % n["method"]
            out.append("%s%s %s  %s  %s%s" % (pad, mark, (m["date"] or "(no date)")[:16].replace("T", " "),
                                             _short(m["from_text"], 40), _short(m["subject"], 70), how))
            for c in n["copies"]:
                out.append("%s    %s  (%s)%s" % (pad, c["locator"], c["custodian"] or "no custodian",
                                                 "  [copies differ: copy.contradiction]" if c["locator"] in flagged
                                                 else ""))
        for ch in sorted(children.get(k, ()), key=order):
            walk(ch, depth + 1)
    for k in sorted(children.get(None, ()), key=order):
        walk(k, 0)
    return "\n".join(out) + "\n"


def _short(s: Optional[str], n: int) -> str:
    s = " ".join((s or "").split()) or "-"
    return s if len(s) <= n else s[:n - 1] + "…"


def thread_records(con) -> Iterator[dict]:
    """The records of leaktriage.conversations (ThreadResult.records()): every thread sorted by id,
    then every message's place sorted by locator."""
    for (tid, root, root_locator, root_missing, messages, emails, missing, custodians, methods, depth, missing_ids,
         subject, first, last) in con.execute(
            "SELECT id, root, root_locator, root_missing, messages, emails, missing, custodians, methods, depth, "
            "missing_ids, subject, first_date, last_date FROM threads ORDER BY id"):
        d = {"record": "thread", "thread_id": tid, "root": root, "root_missing": bool(root_missing),
             "messages": messages, "emails": emails, "missing": missing, "custodians": json.loads(custodians),
             "methods": json.loads(methods), "depth": depth}
        if root_locator is not None:
            d["root_locator"] = root_locator
        ids = json.loads(missing_ids or "[]")
        if ids:
            d["missing_ids"] = ids
        if subject:
            d["subject"] = subject
        if first:
            d["first_date"], d["last_date"] = first, last
        yield d
    for loc, tid, depth, parent, missing, method, ploc in con.execute(
            "SELECT locator, thread_id, thread_depth, parent, parent_missing, thread_method, parent_locator "
            "FROM messages WHERE thread_id IS NOT NULL ORDER BY locator"):
        d = {"record": "thread_member", "locator": loc, "thread_id": tid, "depth": depth}
        if parent is not None:
            d.update(parent=parent, parent_missing=bool(missing), method=method)
            if ploc is not None:
                d["parent_locator"] = ploc
        yield d


def copy_records(con) -> Iterator[dict]:
    for (r,) in con.execute("SELECT record FROM copy_groups ORDER BY id"):
        yield json.loads(r)


def near_records(con) -> Iterator[dict]:
    for (r,) in con.execute("SELECT record FROM near_duplicate_groups ORDER BY id"):
        yield json.loads(r)


def graph(con):
    from leaktriage.conversations.people import Graph
    nodes = []
    for pid, label, role, sent, received, first, last, addrs, merged in con.execute(
            "SELECT id, label, role, sent, received, first_date, last_date, addresses, merged_by FROM persons "
            "ORDER BY id"):
        n = {"id": pid, "label": label, "addresses": json.loads(addrs), "role": bool(role), "sent": sent,
             "received": received}
        if merged:
            n["merged_by"] = merged
        if first:
            n["first_date"], n["last_date"] = first, last
        nodes.append(n)
    edges = []
    for s, t, w, to, cc, bcc, first, last in con.execute(
            "SELECT source, target, weight, to_count, cc_count, bcc_count, first_date, last_date FROM person_edges "
            "ORDER BY source, target"):
        e = {"source": s, "target": t, "weight": w, "to": to, "cc": cc, "bcc": bcc}
        if first:
            e["first_date"], e["last_date"] = first, last
        edges.append(e)
    addresses = [{"address": a, "node": p, "name": nm, "role": bool(r), "sent": s, "received": rc}
                 for a, p, nm, r, s, rc in con.execute(
                     "SELECT address, person, name, role, sent, received FROM person_addresses ORDER BY address")]
    return Graph(nodes=nodes, edges=edges, addresses=addresses)


# --------------------------------------------------------------------------------------------
# corroboration, for show and report

def copy_lines(con, locator: str) -> List[str]:
    """The corroboration of one message: its copy group's verdict, the other copies, what differs."""
    mid, _ = _message_row(con, locator)
    out = []
    for code, detail in con.execute("SELECT code, detail FROM findings WHERE message_id = ? AND kind = 'copy' "
                                    "ORDER BY code, id", (mid,)):
        ev = json.loads(detail or "{}")
        if code == "copy.contradiction":
            out.append("Copies: CONTRADICTION (%s): this copy (held by %s) differs from %s in %s"
                       % (ev.get("group"), ", ".join(ev.get("this_custodians") or []) or "?",
                          "; ".join(ev.get("other_copies") or []), ", ".join(ev.get("parts") or [])))
            dk = ev.get("dkim") or {}
            if dk:
                out.append("  DKIM of the copies: %s" % "; ".join("%s %s" % (k, v) for k, v in sorted(dk.items())))
        elif code == "copy.corroborated":
            out.append("Copies: corroborated (%s): %d identical copies held by %d independent custodians (%s)"
                       % (ev.get("group"), ev.get("copies", 0), ev.get("independent_custodians", 0),
                          ", ".join(ev.get("custodians") or [])))
        elif code == "copy.message_id_reused":
            out.append("Copies: Message-ID %s also carried by other emails (%s differ): %s"
                       % (ev.get("message_id"), ", ".join(ev.get("differs") or []),
                          "; ".join(ev.get("other_emails") or [])))
    if not out:
        row = con.execute("SELECT g.verdict, g.copies, g.independent_custodians, g.id FROM message_copies c JOIN "
                          "copy_groups g ON g.id = c.copy_group WHERE c.message_id = ?", (mid,)).fetchone()
        if row:
            out.append("Copies: %s (%s): %d copies, %d custodian%s" % (row[0], row[3], row[1], row[2],
                                                                       "" if row[2] == 1 else "s"))
    return out


def with_copy_lines(text: str, con, locator: str) -> str:
    """show --text: the corroboration lines after the DKIM verdicts and indicators (before the
    closing `Locator:` line)."""
    lines = copy_lines(con, locator) if con.execute("SELECT 1 FROM messages WHERE locator = ?",
                                                    (locator,)).fetchone() else []
    if not lines:
        return text
    head, sep, tail = text.rpartition("\nLocator: ")
    if not sep:
        return text + "\n".join(lines) + "\n"
    return head + "\n" + "\n".join(lines) + sep + tail


def manifest_sha256(con) -> Optional[str]:
    row = con.execute("SELECT value FROM meta WHERE key = 'manifest_sha256'").fetchone()
    return row[0] if row else None


def corroboration_counts(con) -> Dict[str, int]:
    """Emails stored more than once by verdict, and messages flagged, for the report."""
    d = {"copy_groups": 0, "corroborated": 0, "contradiction": 0, "single-custodian": 0, "incomplete": 0}
    for verdict, n in con.execute("SELECT verdict, count(*) FROM copy_groups GROUP BY verdict"):
        d[verdict] = n
        d["copy_groups"] += n
    d["messages_contradicted"] = con.execute("SELECT count(DISTINCT message_id) FROM findings WHERE kind = 'copy' "
                                             "AND code = 'copy.contradiction'").fetchone()[0]
    d["messages_corroborated"] = con.execute("SELECT count(DISTINCT message_id) FROM findings WHERE kind = 'copy' "
                                             "AND code = 'copy.corroborated'").fetchone()[0]
    d["threads"] = con.execute("SELECT count(*) FROM threads").fetchone()[0]
    d["near_duplicate_groups"] = con.execute("SELECT count(*) FROM near_duplicate_groups").fetchone()[0]
    return d

