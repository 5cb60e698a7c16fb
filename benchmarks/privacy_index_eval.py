#!/usr/bin/env python3
"""Score the private sphere through the index and the search engine (issue #17 acceptance), and
measure what the privacy analyses cost `leaktriage index`.

    python benchmarks/privacy_index_eval.py --dump DUMP [--manifest M] [--truth T] [--workers N]
                                             [--cost] [--json out.json] [--keep-db DIR]

The dump's manifest (default DUMP.jsonl; scanned into a temporary folder when missing) is indexed
with `build_index` (the code `leaktriage index` runs), then every score is read back through
leaktriage.search.engine, as a user's `leaktriage search DB --all-copies QUERY` would, one stored
copy per line, and compared with the generator's truth (DUMP.truth.jsonl), per message:

- sphere: `sphere:personal` / `sphere:work` against the truth's `sphere` (unknown counts as wrong);
  only the truth items that the manifest holds as messages are scored (a file the generator broke
  beyond recognition as mail is not a message, nor in the index), and the rest are counted;
- personal data: `pii:KIND` against the messages holding planted values of that kind (outside images:
  no OCR); precision over the flagged messages; decoy errors = messages flagged for a kind of which
  they hold only decoys (values that fail their checksum); `email` is reported apart. A forwarded
  message attached to another is indexed as a message of its own: the truth gives its personal data
  to the message that carries it, so a hit on X#1.2 counts for X;
- sensitive topics: `sensitive:CATEGORY` against the truth's `sensitive`.

With --cost the dump is indexed twice more from scratch, with and without the privacy analyses
(PrivacyAnalysis, SpherePass), and the wall-clock and CPU time (this process and its workers) are
reported.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from leaktriage.privacy import PII_KINDS, TOPIC_CATEGORIES  # noqa: E402
from leaktriage.search import analysis  # noqa: E402
from leaktriage.search.build import build_index  # noqa: E402
from leaktriage.search.engine import open_db, search  # noqa: E402


def _eval_module():
    spec = importlib.util.spec_from_file_location("privacy_eval", str(REPO / "benchmarks" / "privacy_eval.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["privacy_eval"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed_build(manifest: Path, dump: Path, db: Path, workers: int, privacy: bool) -> dict:
    if db.exists():
        db.unlink()
    kw = {}
    if not privacy:
        kw = {"analyses": [a for a in analysis.message_analyses() if a.name != "privacy"],
              "passes": [p for p in analysis.dump_passes() if p.name != "sphere"]}
    t0, c0 = time.perf_counter(), _cpu()
    st = build_index(str(manifest), str(dump), str(db), workers=workers, **kw)
    return {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(_cpu() - c0, 2),
            "messages": st.messages, "db_bytes": os.path.getsize(db)}


def located(con, query: str) -> set:
    return {h.locator for h in search(con, query, all_copies=True, limit=None)}


def with_enclosing(locs: set) -> set:
    """The flagged messages and the messages they are attached to: the truth gives the personal data of a
    forwarded message (X#1.2, indexed as a message of its own) to the message that carries it (X)."""
    out = set(locs)
    for loc in locs:
        i = loc.find("#")
        while i >= 0:
            out.add(loc[:i])
            i = loc.find("#", i + 1)
    return out


def score(db: Path, truth_by_loc: dict, unread) -> dict:
    con = open_db(str(db))
    res: dict = {}
    pers, work = located(con, "sphere:personal"), located(con, "sphere:work")
    conf: Counter = Counter()
    errors = []
    for loc, t in truth_by_loc.items():
        want = t.get("sphere")
        if want not in ("work", "personal"):
            continue
        got = "personal" if loc in pers else "work" if loc in work else "unknown"
        conf[(want, got)] += 1
        if got != want:
            errors.append(loc)
    n = sum(conf.values())
    res["sphere"] = {"evaluated": n, "accuracy": (conf[("work", "work")] + conf[("personal", "personal")]) / max(1, n),
                     "confusion": {"%s->%s" % k: v for k, v in sorted(conf.items())}, "errors": errors[:10]}
    pii = {}
    for k in PII_KINDS:
        flagged = with_enclosing(located(con, "pii:" + k))
        tp = fn = fp = decoy = 0
        truth_msgs = 0
        ex = defaultdict(list)
        for loc, t in truth_by_loc.items():
            planted = [p for p in t.get("pii") or [] if p["kind"] == k and not unread(p["where"])]
            decoys = [p for p in t.get("pii_decoys") or [] if p["kind"] == k]
            if planted:
                truth_msgs += 1
                if loc in flagged:
                    tp += 1
                else:
                    fn += 1
                    ex["missed"].append(loc)
            elif loc in flagged:
                fp += 1
                ex["extra"].append(loc)
                if decoys:
                    decoy += 1
        pii[k] = {"messages": truth_msgs, "flagged": len(flagged & set(truth_by_loc)),
                  "recall": tp / max(1, tp + fn), "precision": tp / max(1, tp + fp), "decoy_errors": decoy,
                  "examples": {a: b[:5] for a, b in ex.items()}}
    res["pii"] = pii
    topics = {}
    for c in TOPIC_CATEGORIES:
        flagged = located(con, "sensitive:" + c)
        tp = fp = fn = 0
        for loc, t in truth_by_loc.items():
            if t.get("sphere") is None:
                continue
            want = c in (t.get("sensitive") or [])
            got = loc in flagged
            tp += want and got
            fp += got and not want
            fn += want and not got
        topics[c] = {"messages": tp + fn, "flagged": tp + fp, "precision": tp / max(1, tp + fp),
                     "recall": tp / max(1, tp + fn)}
    res["topics"] = topics
    row = con.execute("SELECT value FROM meta WHERE key = 'privacy_knowledge'").fetchone()
    k = json.loads(row[0]) if row else {}
    res["learned_providers"] = sorted(d for d, how in (k.get("personal_domains") or {}).items() if how == "learned")
    con.close()
    return res


def report(name: str, res: dict) -> str:
    out = ["== %s" % name]
    s = res["sphere"]
    out.append("sphere accuracy %.2f%% over %d messages %s" % (100 * s["accuracy"], s["evaluated"], s["confusion"]))
    for k, v in res["pii"].items():
        out.append("pii:%-9s messages %4d  recall %6.2f%%  precision %6.2f%%  decoy errors %d"
                   % (k, v["messages"], 100 * v["recall"], 100 * v["precision"], v["decoy_errors"]))
    for c, v in res["topics"].items():
        out.append("sensitive:%-9s messages %4d flagged %4d  P %.2f  R %.2f" % (c, v["messages"], v["flagged"],
                                                                           v["precision"], v["recall"]))
    out.append("learned mail providers: %s" % ", ".join(res["learned_providers"]))
    out.append("truth items the scan did not take for messages (not scored): %d"
               % res.get("truth_items_not_messages_in_the_manifest", 0))
    if "cost" in res:
        for k, v in sorted(res["cost"].items(), reverse=True):
            out.append("index %-8s privacy: %s s wall, %s s CPU, %d bytes" % (k, v["wall_s"], v["cpu_s"], v["db_bytes"]))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--truth", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cost", action="store_true", help="also index without the privacy analyses, and time both")
    ap.add_argument("--db", type=Path, help="an index of the dump already built (scored as it is)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    pe = _eval_module()
    tmp = Path(tempfile.mkdtemp(prefix="privacy-index-eval-"))
    manifest = a.manifest or a.dump.parent / (a.dump.name + ".jsonl")
    if not manifest.is_file():
        from leaktriage import Options, scan
        manifest = tmp / (a.dump.name + ".jsonl")
        scan(str(a.dump), str(manifest), Options(workers=a.workers))
    truth = a.truth or a.dump.parent / (a.dump.name + ".truth.jsonl")
    records, _ = pe.read_manifest(manifest)
    by_loc = pe.read_truth(truth, records)
    # what the scan did not take for a message (a malformed file) cannot be in the index: not scored
    messages = {r["locator"] for r in records}
    not_messages = sum(1 for loc in by_loc if loc not in messages)
    by_loc = {loc: t for loc, t in by_loc.items() if loc in messages}
    res: dict = {}
    cost = {}
    if a.cost:
        cost["without"] = timed_build(manifest, a.dump, tmp / "without.db", a.workers, False)
        cost["with"] = timed_build(manifest, a.dump, tmp / "with.db", a.workers, True)
        db = tmp / "with.db"
    elif a.db:
        db = a.db
    else:
        cost["with"] = timed_build(manifest, a.dump, tmp / "with.db", a.workers, True)
        db = tmp / "with.db"
    res = score(db, by_loc, pe._unread)
    res["truth_items_not_messages_in_the_manifest"] = not_messages
    if cost:
        res["cost"] = cost
    res["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count() or 0, "workers": a.workers,
                      "load_average": round(os.getloadavg()[0], 1)}
    if a.json:
        a.json.write_text(json.dumps({str(a.dump): res}, indent=1, sort_keys=True), "utf-8")
    print(report(str(a.dump), res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
