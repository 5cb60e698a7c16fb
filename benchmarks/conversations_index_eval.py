#!/usr/bin/env python3
"""Check the conversation analyses of a search index against the generator's truth, through the CLI path.

    leaktriage index MANIFEST --dump DUMP -o triage.db
    python3 benchmarks/conversations_index_eval.py triage.db TRUTH.jsonl [--json out.json]

The index (built by `leaktriage index`, whatever its worker count) is read as a user would: the
`thread_id` column of messages, the `copy.contradiction` findings and their evidence, the
`near_duplicate_groups` table. The truth definitions are those of benchmarks/conversations_eval.py
(which runs the library on its own): a reply link is a truth message whose `in_reply_to` is in the
dump, written by a mailer that writes the header (not `bulk`); a mixed thread holds messages of two
truth conversations; an altered copy (truth `contradicts`) is found when its message carries a
`copy.contradiction` finding whose evidence names the copy it contradicts, and the two are in
different variants of one copy group; a false flag is a flagged message whose truth line has
neither `contradicts` nor `contradicted_by`. Near-duplicate pairs are scored as there (documents:
`variant_of` pairs plus the documents replaced in altered copies, both with text in the index;
bodies: altered copies whose own body text differs, right when both share a Message-ID).
"""
from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conversations_eval import _score, map_truth, pct  # noqa: E402
from leaktriage.conversations.text import own_text  # noqa: E402
from leaktriage.manifest.reader import Manifest  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("truth")
    ap.add_argument("--manifest", help="the manifest the index was built from (default: the index's meta)")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    con = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    meta = dict(con.execute("SELECT key, value FROM meta"))
    manifest = a.manifest or meta["manifest"]
    messages = [{k: r.get(k) for k in ("locator", "source", "offset", "message_id")}
                for r in Manifest(manifest, allow_modified=True).records(want=lambda l: b'"record":"message"' in l)
                if r["record"] == "message"]
    truth = [json.loads(l) for l in open(a.truth, encoding="utf-8")]
    t2l = map_truth(truth, messages)
    l2t = {v: k for k, v in t2l.items()}
    tb = {t["item"]: t for t in truth}
    report = {"messages": len(messages), "mapped": len(t2l)}
    print("index %s: %d messages, truth %d items, %d mapped" % (a.db, len(messages), len(truth), len(t2l)))

    # threads
    th = dict(con.execute("SELECT locator, thread_id FROM messages"))
    by_mid = defaultdict(list)
    for t in truth:
        if t.get("message_id") and t["item"] in t2l:
            by_mid[t["message_id"]].append(t["item"])
    links = ok = 0
    for t in truth:
        irt = t.get("in_reply_to")
        if not irt or t["item"] not in t2l or t.get("mailer") == "bulk" or not by_mid.get(irt):
            continue
        links += 1
        if th.get(t2l[t["item"]]) and all(th.get(t2l[p]) == th[t2l[t["item"]]] for p in by_mid[irt]):
            ok += 1
    par = {}

    def find(x):
        par.setdefault(x, x)
        while par[x] != x:
            par[x] = par[par[x]]
            x = par[x]
        return x
    for t in truth:
        if t.get("message_id"):
            find(t["message_id"])
            if t.get("in_reply_to"):
                par[find(t["message_id"])] = find(t["in_reply_to"])
    convs = defaultdict(set)
    for loc, item in l2t.items():
        t = tb[item]
        if t.get("message_id") and "in_reply_to" in t and th.get(loc):
            convs[th[loc]].add(find(t["message_id"]))
    mixed = sum(1 for v in convs.values() if len(v) > 1)
    n_threads = con.execute("SELECT count(*) FROM threads").fetchone()[0]
    print("threads: %d in the index" % n_threads)
    print("  reply links in one thread: %s" % pct(ok, links))
    print("  threads mixing two truth conversations: %s" % pct(mixed, len(convs)))
    report["threads"] = {"threads": n_threads, "reply_links": links, "same_thread": ok, "threads_with_truth": len(convs),
                         "mixed": mixed}

    # corroboration
    flagged = {}
    for loc, detail in con.execute("SELECT m.locator, f.detail FROM findings f JOIN messages m ON m.id = f.message_id "
                                   "WHERE f.kind = 'copy' AND f.code = 'copy.contradiction'"):
        flagged[loc] = json.loads(detail)
    variant = {loc: (g, v, verdict) for loc, g, v, verdict in con.execute(
        "SELECT c.locator, c.copy_group, c.variant, g.verdict FROM message_copies c JOIN copy_groups g ON g.id = c.copy_group")}
    found = {"signed": [0, 0], "unsigned": [0, 0]}
    missed = []
    for t in truth:
        if t.get("contradicts") is None or t["item"] not in t2l:
            continue
        key = "signed" if t.get("dkim", "none") != "none" else "unsigned"
        found[key][1] += 1
        la, lb = t2l[t["item"]], t2l.get(t["contradicts"])
        va, vb = variant.get(la), variant.get(lb)
        if va and vb and va[0] == vb[0] and va[2] == "contradiction" and va[1] != vb[1] \
                and lb in flagged.get(la, {}).get("other_copies", []):
            found[key][0] += 1
        else:
            missed.append((t["item"], t.get("tampered"), la, lb))
    false_flags = [loc for loc in flagged if loc in l2t and tb[l2t[loc]].get("contradicts") is None
                   and not tb[l2t[loc]].get("contradicted_by")]
    n_found = found["signed"][0] + found["unsigned"][0]
    n_all = found["signed"][1] + found["unsigned"][1]
    verdicts = dict(con.execute("SELECT verdict, count(*) FROM copy_groups GROUP BY verdict"))
    print("corroboration: copy groups %s" % verdicts)
    print("  altered copies reported as a contradiction naming both copies: %s (signed %s, unsigned %s)"
          % (pct(n_found, n_all), pct(*found["signed"]), pct(*found["unsigned"])))
    print("  messages flagged that have no altered copy: %d %s" % (len(false_flags), false_flags[:5]))
    for m in missed[:10]:
        print("  missed:", m)
    report["corroboration"] = {"groups": verdicts, "altered": n_all, "found": n_found, "signed": found["signed"],
                               "unsigned": found["unsigned"], "false_flags": len(false_flags)}

    # near-duplicates
    groups = [json.loads(r) for (r,) in con.execute("SELECT record FROM near_duplicate_groups ORDER BY id")]
    with_text = {s for (s,) in con.execute("SELECT DISTINCT sha256 FROM document_texts WHERE sha256 IS NOT NULL")}
    fam_p = {}

    def fam(x):
        fam_p.setdefault(x, x)
        while fam_p[x] != x:
            x = fam_p[x]
        return x

    def union(x, y):
        fx, fy = fam(x), fam(y)
        if fx != fy:
            fam_p[max(fx, fy)] = min(fx, fy)
    doc_pairs = set()
    for t in truth:
        for att in t.get("attachments") or ():
            if att.get("variant_of"):
                doc_pairs.add(tuple(sorted((att["sha256"], att["variant_of"]))))
                union(att["sha256"], att["variant_of"])
        if t.get("tamper_kind") == "copy" and str(t.get("tampered", "")).startswith("attachment:") \
                and t.get("contradicts") is not None:
            name = t["tampered"][len("attachment:"):]
            mine = [x["sha256"] for x in t.get("attachments") or () if x.get("filename") == name]
            theirs = [x["sha256"] for x in tb[t["contradicts"]].get("attachments") or () if x.get("filename") == name]
            if mine and theirs and mine[0] != theirs[0]:
                doc_pairs.add(tuple(sorted((mine[0], theirs[0]))))
                union(mine[0], theirs[0])
    doc_pairs = {p for p in doc_pairs if p[0] in with_text and p[1] in with_text}
    body = dict(con.execute("SELECT locator, body FROM messages"))

    def own_words(loc):
        return re.findall(r"\w+", own_text(body.get(loc) or "").lower())
    body_pairs = set()
    for t in truth:
        if t.get("contradicts") is not None and t["item"] in t2l and t["contradicts"] in t2l \
                and not str(t.get("tampered") or "").startswith("attachment:"):
            pa, pb = t2l[t["item"]], t2l[t["contradicts"]]
            if own_words(pa) != own_words(pb):
                body_pairs.add(tuple(sorted((pa, pb))))
    mid_of = {m["locator"]: m.get("message_id") for m in messages}
    r = _score(groups, doc_pairs, fam, None, body_pairs, mid_of, None)
    thr = {g["kind"]: g["threshold"] for g in groups}
    print("near-duplicates: %d groups (thresholds %s)" % (len(groups), thr))
    print("  documents precision %s recall %s | bodies precision %s recall %s"
          % (pct(*r["doc_precision"]), pct(*r["doc_recall"]), pct(*r["body_precision"]), pct(*r["body_recall"])))
    report["neardup"] = dict(r, groups=len(groups), thresholds=thr)
    report["correspondents"] = {"persons": con.execute("SELECT count(*) FROM persons").fetchone()[0],
                                "edges": con.execute("SELECT count(*) FROM person_edges").fetchone()[0]}
    print("correspondents: %(persons)d persons, %(edges)d edges" % report["correspondents"])
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    return report


if __name__ == "__main__":
    main()
