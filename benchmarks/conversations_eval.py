#!/usr/bin/env python3
"""Evaluate leaktriage.conversations on a generated dump against the generator's truth.

    python3 benchmarks/conversations_eval.py DUMP TRUTH.jsonl MANIFEST.jsonl [--workers 2] [--json out.json]

DUMP is a dump made by ../shared/bench/make_dump.py (with --contradictions RATE --forgeries RATE),
TRUTH its truth file, MANIFEST a `leaktriage scan` of it. Prints:
- threads: reply-link recall (a truth reply whose parent is in the dump and whose mailer writes
  In-Reply-To/References, i.e. not the 'bulk' mailer: child and parent in one thread), mixed-thread
  rate (threads holding messages of two truth conversations; truth conversations are the components
  of the truth in_reply_to links; malformed items, whose truth lines carry no in_reply_to, are left
  out), time and memory;
- corroboration: recall of altered copies (truth `contradicts`: a contradiction group holding the
  altered copy and the copy it contradicts in different variants), messages flagged that have no
  altered copy (neither `contradicts` nor `contradicted_by`), signed and unsigned apart;
- near-duplicates: precision and recall per threshold for documents (truth `variant_of`, plus the
  documents replaced in altered copies) and for message bodies (truth: the altered copies' bodies),
  time and memory;
- correspondents: nodes, edges, time.
Time and memory of each stage are measured in a forked child: wall time, and the growth of its
peak RSS over its RSS at the start (the inputs already loaded).

Texts: message bodies are decoded here with Python's email package (the search index will supply
them); PDF, DOCX and XLSX text comes from the small stand-in below (`standin_text`), not from
leaktriage.text, which is being written at the same time.
"""
from __future__ import annotations

import argparse
import importlib
import email
import email.policy
import json
import multiprocessing as mp
import os
import re
import resource
import sqlite3
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leaktriage.manifest.reader import Manifest  # noqa: E402
from leaktriage.manifest.resolver import Resolver  # noqa: E402
from leaktriage.text import extract_html  # noqa: E402
from leaktriage.conversations import (Copy, Doc, build_threads, correspondents, corroborate,  # noqa: E402
                                      duplicate_candidates, near_duplicates, write_csv, write_gexf,
                                      write_graphml)

# ------------------------------------------------------------------------------------------------
# stand-in document text (PDF text operators, DOCX paragraphs, XLSX cells row by row)

_PDF_STREAM = re.compile(rb"<<(.{0,400}?)>>\s*stream\r?\n(.*?)\r?\n?endstream", re.S)
_PDF_TEXT = re.compile(rb"(\((?:[^\\()]|\\.)*\)|<[0-9A-Fa-f\s]*>)\s*Tj|\[((?:[^\]\\]|\\.)*)\]\s*TJ", re.S)
_PDF_STR = re.compile(rb"\((?:[^\\()]|\\.)*\)|<[0-9A-Fa-f\s]*>", re.S)


def _pdf_unstr(b: bytes) -> str:
    if b[:1] == b"<":
        h = bytes.fromhex(re.sub(rb"\s", b"", b[1:-1]).decode("ascii"))
        return h[2:].decode("utf-16-be", "replace") if h[:2] == b"\xfe\xff" else h.decode("latin-1")
    out, s, i = bytearray(), b[1:-1], 0
    while i < len(s):
        if s[i] == 0x5C and i + 1 < len(s):
            m = re.match(rb"[0-7]{1,3}", s[i + 1:i + 4])
            if m:
                out.append(int(m.group(0), 8) & 0xFF)
                i += 1 + len(m.group(0))
            else:
                out.append({ord("n"): 10, ord("r"): 13, ord("t"): 9}.get(s[i + 1], s[i + 1]))
                i += 2
        else:
            out.append(s[i])
            i += 1
    return out.decode("latin-1")


def _xml_text(b: bytes) -> str:
    import html
    return html.unescape(b.decode("utf-8", "replace"))


def standin_text(data: bytes, kind: str):
    if kind == "pdf":
        lines = []
        for m in _PDF_STREAM.finditer(data):
            d, body = m.group(1), m.group(2)
            if b"FlateDecode" in d:
                try:
                    body = zlib.decompressobj().decompress(body, 64 << 20)
                except zlib.error:
                    continue
            if b"Tj" not in body and b"TJ" not in body:
                continue
            for t in _PDF_TEXT.finditer(body):
                if t.group(1):
                    lines.append(_pdf_unstr(t.group(1)))
                else:
                    lines.append("".join(_pdf_unstr(x.group(0)) for x in _PDF_STR.finditer(t.group(2))))
        return "\n".join(lines)
    with zipfile.ZipFile(BytesIO(data)) as z:
        def read(name):
            info = z.getinfo(name)
            if info.file_size > 64 << 20:
                raise ValueError("member too large")
            return z.read(name)
        names = set(z.namelist())
        if kind == "docx":
            xml = read("word/document.xml")
            paras = []
            for p in re.finditer(rb"<w:p[ >].*?</w:p>|<w:p/>", xml, re.S):
                paras.append("".join(_xml_text(t) for t in re.findall(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>", p.group(0))))
            return "\n".join(paras)
        if kind == "xlsx":
            shared = []
            if "xl/sharedStrings.xml" in names:
                for si in re.finditer(rb"<si>(.*?)</si>", read("xl/sharedStrings.xml"), re.S):
                    shared.append("".join(_xml_text(t) for t in re.findall(rb"<t(?:\s[^>]*)?>([^<]*)</t>", si.group(1))))
            rows = []
            for name in sorted(n for n in names if n.startswith("xl/worksheets/sheet") and n.endswith(".xml")):
                for row in re.finditer(rb"<row[ >].*?</row>", read(name), re.S):
                    cells = []
                    for c in re.finditer(rb"<c([^>]*)>(.*?)</c>", row.group(0), re.S):
                        attrs, inner = c.group(1), c.group(2)
                        if b'inlineStr' in attrs:
                            cells.append("".join(_xml_text(t) for t in re.findall(rb"<t(?:\s[^>]*)?>([^<]*)</t>", inner)))
                        else:
                            v = re.search(rb"<v>([^<]*)</v>", inner)
                            if v is None:
                                continue
                            if b't="s"' in attrs:
                                k = int(v.group(1))
                                cells.append(shared[k] if 0 <= k < len(shared) else "")
                            else:
                                cells.append(_xml_text(v.group(1)))
                    rows.append(" ".join(cells))
            return "\n".join(rows)
    return None


def doc_kind(filename, content_type):
    fn = (filename or "").lower()
    for ext in ("pdf", "docx", "xlsx"):
        if fn.endswith("." + ext):
            return ext
    ct = content_type or ""
    if ct == "application/pdf":
        return "pdf"
    if "wordprocessingml" in ct:
        return "docx"
    if "spreadsheetml" in ct:
        return "xlsx"
    if ct.startswith("text/") and ct not in ("text/html", "text/calendar") or fn.endswith((".txt", ".csv")):
        return "txt"
    return None


# ------------------------------------------------------------------------------------------------
# texts of one message (runs in worker processes)

_W = {}


def _init(dump):
    _W["f"] = Resolver(dump)


def _walk(part, path):
    yield path, part
    if part.get_content_maintype() == "message":
        return            # an attached message: its parts are its own record's
    if part.is_multipart():
        for k, sub in enumerate(part.get_payload(), 1):
            if isinstance(sub, email.message.Message):
                yield from _walk(sub, "%s.%d" % (path, k))


def _decode(payload: bytes, charset):
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            return payload.decode(cs, "replace")
        except LookupError:
            continue
    return payload.decode("latin-1")


def _texts(job):
    msg, parts = job
    out, problems = {}, Counter()
    try:
        data = _W["f"].message(msg, unquoted=True)
    except Exception:  # noqa: BLE001
        problems["bytes_unavailable"] += 1
        return msg["locator"], out, problems
    root = email.message_from_bytes(data, policy=email.policy.compat32)
    want = {p["path"]: p for p in parts}
    for path, part in _walk(root, "1"):
        p = want.get(path)
        if p is None or part.is_multipart():
            continue
        if p["content_type"] != part.get_content_type():
            problems["path_mismatch"] += 1
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001
            problems["undecodable"] += 1
            continue
        if payload is None:
            continue
        ct = p["content_type"]
        if not p.get("attachment") and ct in ("text/plain", "text/html"):
            out[p["locator"]] = _decode(payload, p.get("charset") or part.get_content_charset())
        elif p.get("attachment"):
            kind = doc_kind(p.get("filename"), ct)
            if kind == "txt":
                out[p["locator"]] = _decode(payload, p.get("charset") or part.get_content_charset())
            elif kind:
                try:
                    t = standin_text(payload, kind)
                except Exception:  # noqa: BLE001
                    problems["doc_text_failed"] += 1
                    continue
                if t:
                    out[p["locator"]] = t
    return msg["locator"], out, problems


# ------------------------------------------------------------------------------------------------
# measuring a stage in a forked child

def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children_hwm(pid, seen):
    """Peak RSS (VmHWM, KiB) of every descendant process, remembered in seen."""
    try:
        kids = []
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        return
    for k in kids:
        try:
            with open("/proc/%d/status" % k) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        seen[k] = max(seen.get(k, 0), int(line.split()[1]))
        except OSError:
            pass
        _children_hwm(k, seen)


def measured(fn, *args, **kw):
    """(result, wall seconds, CPU seconds, peak RSS growth MiB, largest worker peak RSS MiB) of fn
    run in a forked child. CPU: user + system of the child and of its workers (what a busy shared
    machine does not inflate as much as wall time). Workers' peaks are sampled from /proc every
    0.2 s (VmHWM: since their exec)."""
    import threading
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)

    def child():
        start = _rss_kib()
        seen, stop = {}, threading.Event()

        def sample():
            while not stop.wait(0.2):
                _children_hwm(os.getpid(), seen)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        def cpu():
            a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
        c0 = cpu()
        t0 = time.perf_counter()
        res = fn(*args, **kw)
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
        used = cpu() - c0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        w.send((res, dt, used, max(0, peak - start) / 1024, max(seen.values(), default=0) / 1024))
        w.close()

    p = ctx.Process(target=child)
    p.start()
    w.close()
    out = r.recv()
    p.join()
    return out


# ------------------------------------------------------------------------------------------------

def esc(s):
    return "".join("%%%02X" % ord(ch) if ch in "%!#" or ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in s)


def map_truth(truth, messages):
    locs = {m["locator"] for m in messages}
    mbox = {(m["locator"].rsplit("!mbox:", 1)[0], m.get("offset")): m["locator"]
            for m in messages if m.get("source") == "mbox"}
    t2l = {}
    for t in truth:
        L = t["location"]
        if L["container"] == "mbox":
            loc = mbox.get((esc(L["path"]), L["offset"]))
        elif L["container"] == "zip":
            loc = esc(L["path"]) + "".join("!zip:" + esc(x) for x in L["members"])
        else:
            loc = esc(L["path"])
        if loc in locs:
            t2l[t["item"]] = loc
    return t2l


def scale_test(a, messages, parts):
    """Threads and near-duplicates on the dump replicated a.replicate times (texts from --scratch,
    made by an earlier run on the same manifest)."""
    reps = a.replicate
    n_msgs = int(len(messages) * reps)
    report = {"replicate": reps, "messages": n_msgs}

    def suffix_id(v, r):
        return v if r == 0 or not isinstance(v, str) else v.rstrip(">") + "~%d>" % r

    def replicated_messages():
        for k in range(n_msgs):
            r, m = divmod(k, len(messages))
            m = messages[m]
            if r == 0:
                yield m
                continue
            d = dict(m, locator="%s~%d" % (m["locator"], r), message_id=suffix_id(m.get("message_id"), r),
                     canonical_sha256="%s~%d" % (m.get("canonical_sha256"), r))
            if m.get("in_reply_to"):
                d["in_reply_to"] = [suffix_id(x, r) for x in m["in_reply_to"]]
            if m.get("references"):
                d["references"] = [suffix_id(x, r) for x in m["references"]]
            yield d
    stages = set(a.stages.split(","))
    if "threads" in stages:
        res, dt, cpu, mem, _ = measured(lambda: build_threads(replicated_messages()).stats)
        print("scale x%.1f: threads for %d messages: %.2f s (CPU %.2f s), peak memory +%.1f MiB (the input streamed); %s"
              % (reps, n_msgs, dt, cpu, mem, {k: res[k] for k in ("threads", "emails")}))
        report["threads"] = {"seconds": round(dt, 3), "cpu": round(cpu, 3), "peak_mib": round(mem, 1),
                             "threads": res["threads"]}

    dbp = os.path.join(a.scratch, "texts.db")
    word = re.compile(r"\w+")

    def replicated_docs():
        con = sqlite3.connect(dbp)
        order = sorted(messages, key=lambda m: m["locator"])
        count = 0
        for r in range(int(reps) + 1):
            for m in order:
                if count >= n_msgs:
                    return
                count += 1
                ps = parts.get(m["locator"], [])
                tag = "q%d" % r

                def tr(t):
                    return t if r == 0 else word.sub(lambda x: x.group(0) + tag, t)
                body = [row[0] for row in (con.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
                                           for p in ps if not p.get("attachment") and p["content_type"] == "text/plain") if row]
                if body:
                    yield Doc("%s~%d" % (m["locator"], r), "body", tr("\n".join(body)))
                for p in ps:
                    if p.get("attachment") and doc_kind(p.get("filename"), p["content_type"]):
                        row = con.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
                        if row and row[0]:
                            yield Doc("%s~%d" % (p["locator"], r), "attachment", tr(row[0]),
                                      key="%s~%d" % (p.get("sha256"), r))
    if "neardup" not in stages:
        return report
    _, bdt, bcpu, _, _ = measured(lambda: sum(1 for _ in replicated_docs()))
    print("scale x%.1f: reading and replicating the texts alone: %.2f s (CPU %.2f s)" % (reps, bdt, bcpu))
    report["reading_texts"] = {"seconds": round(bdt, 3), "cpu": round(bcpu, 3)}
    importlib.import_module("datasketch")
    res, dt, cpu, mem, kids = measured(lambda: near_duplicates(replicated_docs(), workers=a.workers).stats)
    print("scale x%.1f: near-duplicates of %d texts (%d unique) for %d messages: %.2f s (CPU %.2f s, reading the "
          "texts included) with %d workers, peak memory +%.1f MiB (workers %.1f MiB); %d groups"
          % (reps, res["docs"], res["unique"], n_msgs, dt, cpu, a.workers, mem, kids, res["groups"]))
    report["neardup"] = {"seconds": round(dt, 3), "cpu": round(cpu, 3), "peak_mib": round(mem, 1), "workers_peak_mib": round(kids, 1),
                         "docs": res["docs"], "unique": res["unique"], "groups": res["groups"]}
    return report


def _deps_sha(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pct(a, b):
    return "%d/%d = %.2f%%" % (a, b, 100.0 * a / b) if b else "%d/0" % a


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump")
    ap.add_argument("truth")
    ap.add_argument("manifest")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--thresholds", default="0.4,0.5,0.6,0.7,0.8")
    ap.add_argument("--threshold", default="default",
                    help="the chosen near-duplicate thresholds: 'default' (the library's), a number, or "
                         "body=0.7,attachment=0.5; 'none' skips the run")
    ap.add_argument("--check-workers", action="store_true",
                    help="also run the chosen near-duplicate thresholds with 1 worker and compare the records")
    ap.add_argument("--json", help="write the figures as JSON here")
    ap.add_argument("--scratch", help="folder for the texts database (default: a temporary folder)")
    ap.add_argument("--stages", default="threads,copies,neardup,correspondents")
    ap.add_argument("--replicate", type=float, default=None, metavar="F",
                    help="scale test: measure time and memory of threads and near-duplicates on the input "
                         "replicated F times (ids suffixed per copy, every word of a copy's texts suffixed "
                         "too, so copies share no shingle); no truth figures")
    a = ap.parse_args(argv)
    stages = set(a.stages.split(","))
    report = {}

    t0 = time.perf_counter()
    messages, parts = [], defaultdict(list)
    slim_keys = ("locator", "message_id", "in_reply_to", "references", "subject", "date", "custodian", "mailbox",
                 "source", "from", "to", "cc", "bcc", "canonical_sha256", "dkim_summary", "reconstructed",
                 "offset", "length", "sha256", "unquoted_sha256", "mbox", "parent", "line_endings")
    for rec in Manifest(a.manifest).records():
        if rec["record"] == "message":
            d = {k: rec[k] for k in slim_keys if k in rec}
            d["headers"] = [h for h in rec.get("headers", ()) if h.get("name", "").lower() in ("thread-index", "thread-topic")]
            messages.append(d)
        elif rec["record"] == "part":
            parts[rec["message"]].append({k: rec[k] for k in ("locator", "message", "path", "content_type", "attachment",
                                                                "filename", "sha256", "charset", "body_offset",
                                                                "body_length", "cte", "children", "preamble", "epilogue") if k in rec})
    truth = [json.loads(l) for l in open(a.truth, encoding="utf-8")]
    t2l = map_truth(truth, messages)
    l2t = {v: k for k, v in t2l.items()}
    tb = {t["item"]: t for t in truth}
    print("manifest: %d messages, truth: %d items, %d mapped to a message (read in %.1f s)"
          % (len(messages), len(truth), len(t2l), time.perf_counter() - t0))
    report["messages"] = len(messages)
    if a.replicate:
        report = scale_test(a, messages, parts)
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, sort_keys=True)
        return report

    # ---------------------------------------------------------------- threads
    if "threads" in stages:
        res, dt, cpu, mem, _ = measured(build_threads, messages)
        th = {m.locator: m.thread_id for m in res.members}
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
            if all(th[t2l[p]] == th[t2l[t["item"]]] for p in by_mid[irt]):
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
            if t.get("message_id") and "in_reply_to" in t:
                convs[th[loc]].add(find(t["message_id"]))
        mixed = sum(1 for v in convs.values() if len(v) > 1)
        methods = {k[7:]: v for k, v in res.stats.items() if k.startswith("method.")}
        print("threads: %d threads for %d messages (%d emails); build %.2f s (CPU %.2f s), peak memory +%.1f MiB"
              % (res.stats["threads"], res.stats["messages"], res.stats["emails"], dt, cpu, mem))
        print("  reply links (parent in dump, mailer writes the header) in one thread: %s" % pct(ok, links))
        print("  threads mixing two truth conversations: %s" % pct(mixed, len(convs)))
        print("  parent links by method: %s; missing parents: %d; loops refused: %d"
              % (methods, res.stats.get("parent_missing", 0), res.stats.get("loops_refused", 0)))
        report["threads"] = {"threads": res.stats["threads"], "seconds": round(dt, 3), "cpu": round(cpu, 3), "peak_mib": round(mem, 1),
                             "reply_links": links, "reply_links_same_thread": ok, "threads_with_truth": len(convs),
                             "mixed": mixed, "methods": methods, "parent_missing": res.stats.get("parent_missing", 0)}

    if not stages & {"copies", "neardup"} and "correspondents" not in stages:
        return report

    # ---------------------------------------------------------------- texts
    scratch = a.scratch or tempfile.mkdtemp(prefix="conv-eval-")
    os.makedirs(scratch, exist_ok=True)
    dbp = os.path.join(scratch, "texts.db")
    reuse = False
    if os.path.exists(dbp):
        try:
            reuse = sqlite3.connect(dbp).execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone() == \
                (_deps_sha(a.manifest),)
        except sqlite3.Error:
            reuse = False
        if not reuse:
            os.unlink(dbp)
    db = sqlite3.connect(dbp)
    db.execute("CREATE TABLE IF NOT EXISTS texts (locator TEXT PRIMARY KEY, text TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    t0 = time.perf_counter()
    jobs = [(m, parts.get(m["locator"], [])) for m in sorted(messages, key=lambda m: m["locator"])]
    problems = Counter()
    if reuse:
        print("texts: reused from %s (made for this manifest)" % dbp)
    elif stages & {"copies", "neardup"}:
        with mp.get_context("fork").Pool(a.workers, initializer=_init, initargs=(a.dump,)) as pool:
            for loc, out, prob in pool.imap(_texts, jobs, chunksize=16):
                problems.update(prob)
                db.executemany("INSERT OR REPLACE INTO texts VALUES (?, ?)", sorted(out.items()))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (_deps_sha(a.manifest),))
        db.commit()
        n_texts = db.execute("SELECT count(*) FROM texts").fetchone()[0]
        print("texts: %d parts decoded in %.1f s (email package; documents: stand-in extractor) %s"
              % (n_texts, time.perf_counter() - t0, dict(problems)))

    def text_of(loc):
        row = db.execute("SELECT text FROM texts WHERE locator = ?", (loc,)).fetchone()
        return row[0] if row else None

    # ---------------------------------------------------------------- corroboration
    if "copies" in stages:
        cand = duplicate_candidates(messages)

        def copies():
            for m in messages:
                if m["locator"] in cand:
                    ps = parts.get(m["locator"], [])
                    texts = {p["locator"]: text_of(p["locator"]) for p in ps}
                    yield Copy.from_records(m, ps, texts)

        def run_copies():
            con = sqlite3.connect(dbp)

            def tof(loc):
                row = con.execute("SELECT text FROM texts WHERE locator = ?", (loc,)).fetchone()
                return row[0] if row else None
            return corroborate(copies(), text_of=tof)
        res, dt, cpu, mem, _ = measured(run_copies)
        flagged = {}
        for loc, ind in res.indicators:
            if ind["code"] == "copy.contradiction":
                flagged[loc] = ind
        variant_of_loc = {}
        for g in res.groups:
            for c in g["copies"]:
                variant_of_loc[c["locator"]] = (g["group"], c["variant"], g["verdict"])
        altered = [t for t in truth if t.get("contradicts") is not None and t["item"] in t2l]
        found = {"signed": [0, 0], "unsigned": [0, 0]}
        missed = []
        for t in altered:
            key = "signed" if t.get("dkim", "none") != "none" else "unsigned"
            found[key][1] += 1
            a_loc, b_loc = t2l[t["item"]], t2l.get(t["contradicts"])
            va, vb = variant_of_loc.get(a_loc), variant_of_loc.get(b_loc)
            if va and vb and va[0] == vb[0] and va[2] == "contradiction" and va[1] != vb[1] \
                    and b_loc in flagged.get(a_loc, {}).get("evidence", {}).get("other_copies", []):
                found[key][0] += 1
            else:
                missed.append((t["item"], t.get("tamper_kind"), t.get("tampered"), a_loc, b_loc, va, vb))
        false_flags = []
        for loc in flagged:
            item = l2t.get(loc)
            if item is None:
                continue           # an attached copy (no truth line of its own)
            t = tb[item]
            if t.get("contradicts") is None and not t.get("contradicted_by"):
                false_flags.append(loc)
        attached_flagged = sum(1 for loc in flagged if loc not in l2t)
        rec_all = found["signed"][0] + found["unsigned"][0]
        n_all = found["signed"][1] + found["unsigned"][1]
        print("corroboration: %d groups %s; %.2f s (CPU %.2f s, reading texts from the scratch database included), "
              "peak memory +%.1f MiB" % (len(res.groups), {k: v for k, v in res.stats.items() if k not in ("groups",)},
                                          dt, cpu, mem))
        print("  altered copies reported as a contradiction naming both copies: %s (signed %s, unsigned %s)"
              % (pct(rec_all, n_all), pct(*found["signed"]), pct(*found["unsigned"])))
        print("  messages flagged that have no altered copy: %d%s; flagged attached copies (no truth line): %d"
              % (len(false_flags), (" " + str(false_flags[:5])) if false_flags else "", attached_flagged))
        for m in missed[:10]:
            print("  missed:", m)
        parts_count = Counter(d["part"].split(":")[0] + ":" + (d["part"].split(":")[1] if d["part"].startswith("body") else "*")
                              for g in res.groups for d in g.get("differences", ()))
        print("  differing parts: %s" % dict(parts_count))
        report["corroboration"] = {"groups": len(res.groups), "stats": res.stats, "seconds": round(dt, 3),
                                   "cpu": round(cpu, 3), "peak_mib": round(mem, 1), "altered": n_all, "found": rec_all,
                                   "signed": found["signed"], "unsigned": found["unsigned"],
                                   "false_flags": len(false_flags), "attached_flagged": attached_flagged}

    # ---------------------------------------------------------------- near-duplicates
    if "neardup" in stages:
        thresholds = [float(x) for x in a.thresholds.split(",")]
        msg_parts = parts

        def docs():
            con = sqlite3.connect(dbp)
            for m in sorted(messages, key=lambda m: m["locator"]):
                ps = msg_parts.get(m["locator"], [])
                body = []
                for p in ps:
                    if not p.get("attachment") and p["content_type"] == "text/plain":
                        row = con.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
                        if row:
                            body.append(row[0])
                if not body:
                    for p in ps:
                        if not p.get("attachment") and p["content_type"] == "text/html":
                            row = con.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
                            if row:
                                body.append(extract_html(row[0]).text or "")
                if body:
                    yield Doc(m["locator"], "body", "\n".join(body))
                for p in ps:
                    if p.get("attachment") and doc_kind(p.get("filename"), p["content_type"]):
                        row = con.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
                        if row and row[0]:
                            yield Doc(p["locator"], "attachment", row[0], key=p.get("sha256"))

        lo = min(thresholds)
        rss0 = _rss_kib()
        importlib.import_module("datasketch")     # numpy, scipy: a fixed cost, measured apart
        print("  importing datasketch (numpy, scipy): +%.1f MiB" % ((_rss_kib() - rss0) / 1024))
        res, dt, cpu, mem, kids = measured(near_duplicates, docs(), threshold=lo, workers=a.workers)
        print("near-duplicates at %.2f: %d groups from %d documents (%d unique texts, %d too short); "
              "%.2f s (CPU %.2f s), peak memory +%.1f MiB (workers %.1f MiB)"
              % (lo, len(res.groups), res.stats.get("docs", 0), res.stats.get("unique", 0),
                 res.stats.get("too_short", 0), dt, cpu, mem, kids))
        report["neardup"] = {"seconds": round(dt, 3), "cpu": round(cpu, 3), "peak_mib": round(mem, 1), "workers_peak_mib": round(kids, 1),
                             "stats": res.stats, "by_threshold": {}}
        # truth: documents
        part_sha = {p["locator"]: p.get("sha256") for ps in parts.values() for p in ps}
        doc_family = {}

        def fam_union(x, y):
            fx, fy = doc_family.setdefault(x, x), doc_family.setdefault(y, y)
            while doc_family[fx] != fx:
                fx = doc_family[fx]
            while doc_family[fy] != fy:
                fy = doc_family[fy]
            if fx != fy:
                doc_family[max(fx, fy)] = min(fx, fy)

        def fam(x):
            doc_family.setdefault(x, x)
            while doc_family[x] != x:
                x = doc_family[x]
            return x
        truth_doc_pairs = set()
        for t in truth:
            for att in t.get("attachments") or ():
                if att.get("variant_of"):
                    truth_doc_pairs.add(tuple(sorted((att["sha256"], att["variant_of"]))))
                    fam_union(att["sha256"], att["variant_of"])
            if t.get("tamper_kind") == "copy" and str(t.get("tampered", "")).startswith("attachment:") \
                    and t.get("contradicts") is not None:
                name = t["tampered"][len("attachment:"):]
                mine = [x["sha256"] for x in t.get("attachments") or () if x.get("filename") == name]
                theirs = [x["sha256"] for x in tb[t["contradicts"]].get("attachments") or () if x.get("filename") == name]
                if mine and theirs and mine[0] != theirs[0]:
                    truth_doc_pairs.add(tuple(sorted((mine[0], theirs[0]))))
                    fam_union(mine[0], theirs[0])
        present = {part_sha.get(loc) for (loc,) in db.execute("SELECT locator FROM texts")} - {None}
        absent = {p for p in truth_doc_pairs if not (p[0] in present and p[1] in present)}
        truth_doc_pairs -= absent
        print("  truth document pairs: %d with both texts extracted (%d left out: a document not attached "
              "or without text)" % (len(truth_doc_pairs), len(absent)))
        truth_body_pairs = set()
        same_text = 0
        for t in truth:
            if t.get("contradicts") is not None and t["item"] in t2l and t["contradicts"] in t2l \
                    and not str(t.get("tampered") or "").startswith("attachment:"):
                pa, pb = t2l[t["item"]], t2l[t["contradicts"]]
                if _own_words(db, parts, pa) == _own_words(db, parts, pb):
                    same_text += 1      # altered outside the body text (data after the closing boundary)
                    continue
                truth_body_pairs.add(tuple(sorted((pa, pb))))
        print("  truth body pairs: %d altered copies whose body text differs (%d altered elsewhere left out)"
              % (len(truth_body_pairs), same_text))
        mid_of = {m["locator"]: m.get("message_id") for m in messages}
        for thr in thresholds:
            groups = [g for g in res.groups_at(thr)]
            report["neardup"]["by_threshold"][thr] = _score(groups, truth_doc_pairs, fam, part_sha,
                                                            truth_body_pairs, mid_of, res)
            r = report["neardup"]["by_threshold"][thr]
            print("  threshold %.2f: documents precision %s recall %s | bodies precision %s recall %s"
                  % (thr, pct(*r["doc_precision"]), pct(*r["doc_recall"]), pct(*r["body_precision"]),
                     pct(*r["body_recall"])))
        if a.threshold != "none":
            if a.threshold == "default":
                chosen = None
            elif "=" in a.threshold:
                chosen = {k: float(v) for k, v in (x.split("=") for x in a.threshold.split(","))}
            else:
                chosen = float(a.threshold)
            res2, dt2, cpu2, mem2, kids2 = measured(near_duplicates, docs(), threshold=chosen, workers=a.workers)
            r = _score(res2.groups, truth_doc_pairs, fam, part_sha, truth_body_pairs, mid_of, res2)
            thr_used = {g["kind"]: g["threshold"] for g in res2.groups}
            print("  chosen thresholds %s, run alone (%d workers): %.2f s (CPU %.2f s), +%.1f MiB (workers %.1f MiB): "
                  "documents precision %s recall %s | bodies precision %s recall %s"
                  % (thr_used, a.workers, dt2, cpu2, mem2, kids2, pct(*r["doc_precision"]), pct(*r["doc_recall"]),
                     pct(*r["body_precision"]), pct(*r["body_recall"])))
            report["neardup"]["chosen"] = dict(r, thresholds=thr_used, seconds=round(dt2, 3), cpu=round(cpu2, 3), peak_mib=round(mem2, 1),
                                               workers_peak_mib=round(kids2, 1))
            if a.check_workers:
                import io
                from leaktriage.conversations import write_jsonl
                res1, dt1, cpu1, mem1, _ = measured(near_duplicates, docs(), threshold=chosen, workers=1)
                b1, b2 = io.StringIO(), io.StringIO()
                write_jsonl(res1.records(), b1)
                write_jsonl(res2.records(), b2)
                same = b1.getvalue() == b2.getvalue()
                print("  1 worker: %.2f s (CPU %.2f s), +%.1f MiB; records byte-identical with %d workers: %s"
                      % (dt1, cpu1, mem1, a.workers, same))
                report["neardup"]["chosen"].update(one_worker_seconds=round(dt1, 3), one_worker_cpu=round(cpu1, 3),
                                                   identical=same)

    # ---------------------------------------------------------------- correspondents
    if "correspondents" in stages:
        def run_corr():
            g = correspondents(messages)
            outd = os.path.join(scratch, "graph")
            os.makedirs(outd, exist_ok=True)
            with open(os.path.join(outd, "g.gexf"), "w", encoding="utf-8", newline="") as f:
                write_gexf(g, f)
            with open(os.path.join(outd, "g.graphml"), "w", encoding="utf-8", newline="") as f:
                write_graphml(g, f)
            with open(os.path.join(outd, "edges.csv"), "w", encoding="utf-8", newline="") as f:
                write_csv(g, f)
            return len(g.nodes), len(g.edges), sum(1 for n in g.nodes if len(n["addresses"]) > 1), \
                sum(1 for n in g.nodes if n["role"]), outd
        (nn, ne, merged, roles, outd), dt, cpu, mem, _ = measured(run_corr)
        print("correspondents: %d nodes (%d merged from several addresses, %d role addresses), %d edges; "
              "%.2f s (CPU %.2f s) with GEXF, GraphML and CSV, peak memory +%.1f MiB (%s)"
              % (nn, merged, roles, ne, dt, cpu, mem, outd))
        report["correspondents"] = {"nodes": nn, "edges": ne, "merged": merged, "roles": roles,
                                    "seconds": round(dt, 3), "cpu": round(cpu, 3), "peak_mib": round(mem, 1)}
    db.close()
    if not a.scratch:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    return report


def _own_words(db, parts, loc):
    from leaktriage.conversations.text import own_text
    texts = []
    for p in parts.get(loc, []):
        if not p.get("attachment") and p["content_type"] == "text/plain":
            row = db.execute("SELECT text FROM texts WHERE locator = ?", (p["locator"],)).fetchone()
            if row:
                texts.append(row[0])
    return re.findall(r"\w+", own_text("\n".join(texts)).lower())


def _score(groups, truth_doc_pairs, fam, part_sha, truth_body_pairs, mid_of, res):
    """Pairs inside predicted groups against the truth pairs."""
    doc_pred = doc_ok = 0
    doc_found = set()
    body_pred = body_ok = 0
    body_found = set()
    for g in groups:
        if g["kind"] == "attachment":
            shas = sorted({m["key"] for m in g["members"]})
            for i in range(len(shas)):
                for j in range(i + 1, len(shas)):
                    doc_pred += 1
                    if fam(shas[i]) == fam(shas[j]):
                        doc_ok += 1
                    doc_found.add((shas[i], shas[j]))
        else:
            locs = [m["ids"] for m in g["members"]]
            for i in range(len(locs)):
                for j in range(i + 1, len(locs)):
                    body_pred += 1
                    if any(mid_of.get(x) and mid_of.get(x) == mid_of.get(y) for x in locs[i] for y in locs[j]):
                        body_ok += 1
                    for x in locs[i]:
                        for y in locs[j]:
                            body_found.add(tuple(sorted((x, y))))
    doc_recall = sum(1 for p in truth_doc_pairs if p in doc_found)
    body_recall = sum(1 for p in truth_body_pairs if p in body_found)
    return {"doc_precision": [doc_ok, doc_pred], "doc_recall": [doc_recall, len(truth_doc_pairs)],
            "body_precision": [body_ok, body_pred], "body_recall": [body_recall, len(truth_body_pairs)]}


if __name__ == "__main__":
    main()
