#!/usr/bin/env python3
"""Search benchmark (issue 7): index build time and size, and the whole-process latency of 20 queries,
beside notmuch on the same mail when it is available.

    python3 benchmarks/search_bench.py                      # 72,000 messages, --attachment-scale 0.02
    python3 benchmarks/search_bench.py --messages 2000      # quick run
    python3 benchmarks/search_bench.py --notmuch            # also apt-get install notmuch if missing
    python3 benchmarks/search_bench.py --write-doc          # replace the figures in docs/search.md
    python3 benchmarks/search_bench.py --acceptance --dump D --truth D.truth.jsonl --manifest M --db DB
                                                            # issue #15's checks on a --doc-markers dump

Steps:
1. generate the dump with ../shared/bench/make_dump.py (cached in the work dir);
2. `leaktriage scan` it (timed: the build-time target is "no slower than the scan");
3. `leaktriage index` into a fresh database (timed; size of the file);
4. run each of the 20 queries as its own process (`leaktriage search DB Q` through the installed
   console script, output to a pipe), REPEAT times, three ways: `--count`, `--format jsonl
   --no-snippets` (every hit, like `notmuch search --output=files`), and `--format jsonl -n 50`
   (snippets for the first page, what a person reads); per query the median of the repeats;
   then the median and the worst over the 20 queries;
5. notmuch: the same messages written one file each (the bytes leaktriage indexed, attached
   messages stay inside their parent) into a notmuch mail root, `notmuch new` timed, its database
   size, and `notmuch count` / `notmuch search --output=files` for the notmuch spelling of each query
   (queries notmuch cannot express are marked n/a). notmuch does not fold accents: its counts for
   the folded queries show it.

Targets (issue 7): every query under 100 ms whole-process at 72,000 messages on the 2-core machine,
median under 60 ms; index build no slower than the scan; database no larger than notmuch's.
Timed targets live here, never in the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAKE_DUMP = (REPO / ".." / "shared" / "bench" / "make_dump.py").resolve()
DOC = REPO / "docs" / "search.md"
DEFAULT_WORK = Path("/tmp/leaktriage-search-bench")

# (leaktriage query, notmuch query or None when notmuch has no equivalent)
QUERIES = [
    ("facture", "facture"),
    ("réunion", "réunion"),
    ("reunion", "reunion"),
    ("lecoeur", "lecoeur"),
    ('"note pour le candidat"', '"note pour le candidat"'),
    ("fact*", "fact*"),
    ("from:sophie.perrin@mouvement-enavant.fr", "from:sophie.perrin@mouvement-enavant.fr"),
    ("from:perrin", "from:perrin"),
    ("to:@journal-quotidien.fr", "to:journal-quotidien.fr"),
    ("date:2017-03..2017-04", "date:2017-03-01..2017-04-30"),
    ("has:attachment", "tag:attachment"),
    ("type:pdf", "mimetype:application/pdf"),
    ("filename:budget", "attachment:budget"),
    ("subject:budget", "subject:budget"),
    ("from:perrin facture date:2017-03..2017-04 type:pdf",
     "from:perrin and facture and date:2017-03-01..2017-04-30 and mimetype:application/pdf"),
    ("facture OR devis", "facture or devis"),
    ("facture NOT devis", "facture and not devis"),
    ("(réunion OR meeting) has:attachment", "(réunion or meeting) and tag:attachment"),
    ("custodian:perrin dkim:pass", None),
    ("finding:auth.* OR problem:base64.*", None),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# leaktriage runs as installed by pip: with byte-compiled modules. PYTHONDONTWRITEBYTECODE (set in
# some sandboxes) would make every process compile every module again; keep the bytecode in the
# work dir rather than in the source tree.
def lt_env(work: Path) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


LT_ENV = None


def timed(cmd, env=None, stdout=subprocess.DEVNULL) -> float:
    if env is None:
        env = LT_ENV
    t = time.perf_counter()
    subprocess.run(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - t


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def leaktriage_bin() -> list:
    exe = shutil.which("leaktriage")
    return [exe] if exe else [sys.executable, "-m", "leaktriage"]


def ensure_dump(work: Path, messages: int, scale: float) -> Path:
    dump = work / ("dump-%d-%s" % (messages, scale))
    if not (work / (dump.name + ".truth.jsonl")).is_file():
        sh([sys.executable, str(MAKE_DUMP), str(dump), "--messages", str(messages), "--attachment-scale", str(scale),
            "--quiet", "--force"])
    return dump


def export_for_notmuch(manifest: Path, dump: Path, root: Path) -> int:
    """One file per top-level message (the bytes leaktriage indexed), under root/<custodian>/cur/."""
    sys.path.insert(0, str(REPO))
    from leaktriage.manifest.reader import Manifest
    from leaktriage.manifest.resolver import ResolveError, Resolver
    from leaktriage.errors import IntegrityError
    if root.exists():
        shutil.rmtree(root)
    resolver = Resolver(str(dump))
    n = 0
    for r in Manifest(str(manifest)).records(want=lambda line: b'"record":"message"' in line):
        if r["record"] != "message" or r.get("source") == "rfc822":
            continue
        try:
            data = resolver.message(r, unquoted=True)
        except (ResolveError, IntegrityError):  # what leaktriage could not read is not exported either
            continue
        d = root / (r.get("custodian") or "_").replace("/", "_") / "cur"
        d.mkdir(parents=True, exist_ok=True)
        (d / ("%06d:2," % n)).write_bytes(data)
        n += 1
    return n


def notmuch_setup(root: Path, install: bool) -> dict:
    exe = shutil.which("notmuch")
    if exe is None and install:
        try:
            sh(["apt-get", "install", "-y", "-q", "notmuch"], stdout=subprocess.DEVNULL)
        except (subprocess.CalledProcessError, FileNotFoundError):
            try:
                sh(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
                sh(["apt-get", "install", "-y", "-q", "notmuch"], stdout=subprocess.DEVNULL)
            except (subprocess.CalledProcessError, FileNotFoundError):
                pass
        exe = shutil.which("notmuch")
    if exe is None:
        return {}
    cfg = root.parent / "notmuch-config"
    cfg.write_text("[database]\npath=%s\n[user]\nname=bench\nprimary_email=bench@example.org\n"
                   "[new]\ntags=\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n" % root)
    env = dict(os.environ, NOTMUCH_CONFIG=str(cfg))
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return {"exe": exe, "env": env, "version": version}


# Start-up probe: the same CLI with the `leaktriage` package __init__ replaced by an empty package
# (what a lazy `leaktriage/__init__.py` would give); shows how much of the latency is package import.
LEAN_LAUNCHER = r"""
import os, sys, types
pkg = types.ModuleType("leaktriage")
pkg.__path__ = [os.path.join(%r, "leaktriage")]
pkg.__version__ = "lean"
sys.modules["leaktriage"] = pkg
from leaktriage.cli.main import main
sys.argv[0] = "leaktriage"
main()
""" % str(REPO)


def lean_probe(db: Path, repeat: int) -> dict:
    out = {}
    for mode, extra in (("count", ["--count"]), ("page", ["--format", "jsonl", "-n", "50"])):
        per = []
        for q, _ in QUERIES:
            ts = [timed([sys.executable, "-c", LEAN_LAUNCHER, "search", str(db)] + extra + [q]) for _ in range(repeat)]
            per.append(statistics.median(ts) * 1000)
        out["lean_%s_median_ms" % mode] = round(statistics.median(per), 1)
        out["lean_%s_worst_ms" % mode] = round(max(per), 1)
    return out


def inprocess(db: Path, repeat: int) -> dict:
    """Query cost without process start-up: compile + SQL (+ snippets for the page), in this process."""
    sys.path.insert(0, str(REPO))
    from leaktriage.search.engine import count, open_db, search
    con = open_db(str(db))
    out = {}
    for mode in ("count", "page", "all"):
        per = []
        for q, _ in QUERIES:
            ts = []
            for _ in range(repeat):
                t = time.perf_counter()
                if mode == "count":
                    count(con, q)
                elif mode == "page":
                    list(search(con, q, limit=50))
                else:
                    list(search(con, q, snippets=False))
                ts.append(time.perf_counter() - t)
            per.append(statistics.median(ts) * 1000)
        out["inproc_%s_median_ms" % mode] = round(statistics.median(per), 1)
        out["inproc_%s_worst_ms" % mode] = round(max(per), 1)
    con.close()
    return out


def run(args) -> dict:
    global LT_ENV
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    lt = leaktriage_bin()
    LT_ENV = lt_env(work)
    subprocess.run(lt + ["--help"], env=LT_ENV, stdout=subprocess.DEVNULL)  # byte-compile once
    res: dict = {"messages_generated": args.messages, "attachment_scale": args.scale, "repeat": args.repeat,
                 "cpus": len(os.sched_getaffinity(0)), "python": sys.version.split()[0]}
    import sqlite3
    res["sqlite"] = sqlite3.sqlite_version
    res["loadavg_start"] = os.getloadavg()[0]
    if args.dump:
        dump = Path(args.dump)
        manifest = Path(args.manifest) if args.manifest else work / "manifest.jsonl"
    else:
        dump = ensure_dump(work, args.messages, args.scale)
        manifest = work / (dump.name + ".manifest.jsonl")
    res["scan_seconds"] = None
    if not args.manifest and not (args.reuse_scan and manifest.is_file()):
        t = time.perf_counter()
        keys = dump.parent / (dump.name + ".dkim-keys.json")  # the generator's key store: real verdicts
        sh(lt + ["scan", str(dump), "-o", str(manifest), "-q"] + (["--dkim-keys", str(keys)] if keys.is_file() else []))
        res["scan_seconds"] = round(time.perf_counter() - t, 1)
    db = Path(args.db) if args.db else work / "triage.db"
    res["index_seconds"] = res["reindex_unchanged_seconds"] = None
    if not args.db:
        if db.exists():
            db.unlink()
        t = time.perf_counter()
        sh(lt + ["index", str(manifest), "--dump", str(dump), "-o", str(db), "-q"])
        res["index_seconds"] = round(time.perf_counter() - t, 1)
        # a no-op incremental update
        t = time.perf_counter()
        sh(lt + ["index", str(manifest), "--dump", str(dump), "-o", str(db), "-q"])
        res["reindex_unchanged_seconds"] = round(time.perf_counter() - t, 1)
    res["db_bytes"] = db.stat().st_size
    con = sqlite3.connect(str(db))
    res["indexed_messages"] = con.execute("SELECT count(*) FROM messages").fetchone()[0]
    con.close()

    nm = notmuch_setup(work / "notmuch-mail", args.notmuch) if not args.no_notmuch else {}
    if nm:
        root = work / "notmuch-mail"
        res["notmuch_version"] = nm["version"]
        res["notmuch_messages_exported"] = export_for_notmuch(manifest, dump, root)
        t = time.perf_counter()
        sh([nm["exe"], "new", "--quiet"], env=nm["env"], stdout=subprocess.DEVNULL)
        res["notmuch_new_seconds"] = round(time.perf_counter() - t, 1)
        res["notmuch_db_bytes"] = du(root / ".notmuch")

    rows = []
    for q, nq in QUERIES:
        row = {"query": q, "notmuch_query": nq}
        out = subprocess.run(lt + ["search", str(db), "--count", q], capture_output=True, text=True, env=LT_ENV)
        row["hits"] = int(out.stdout.strip()) if out.returncode == 0 else None
        for mode, extra in (("count", ["--count"]), ("jsonl", ["--format", "jsonl", "--no-snippets"]),
                            ("page", ["--format", "jsonl", "-n", "50"])):
            ts = [timed(lt + ["search", str(db)] + extra + [q]) for _ in range(args.repeat)]
            row[mode + "_ms"] = round(statistics.median(ts) * 1000, 1)
        if nm and nq:
            out = subprocess.run([nm["exe"], "count", nq], capture_output=True, text=True, env=nm["env"])
            row["notmuch_hits"] = int(out.stdout.strip() or 0) if out.returncode == 0 else None
            ts = [timed([nm["exe"], "count", nq], env=nm["env"]) for _ in range(args.repeat)]
            row["notmuch_count_ms"] = round(statistics.median(ts) * 1000, 1)
            ts = [timed([nm["exe"], "search", "--output=files", nq], env=nm["env"]) for _ in range(args.repeat)]
            row["notmuch_search_ms"] = round(statistics.median(ts) * 1000, 1)
        rows.append(row)
        print("%-55s %7s hits  count %6.1f ms  jsonl %6.1f ms  page %6.1f ms%s" % (
            q[:55], row["hits"], row["count_ms"], row["jsonl_ms"], row["page_ms"],
            ("   notmuch %s hits %.1f/%.1f ms" % (row.get("notmuch_hits"), row["notmuch_count_ms"],
                                                  row["notmuch_search_ms"])) if "notmuch_count_ms" in row else ""),
              flush=True)
    res["queries"] = rows
    for mode in ("count", "jsonl", "page"):
        vals = [r[mode + "_ms"] for r in rows]
        res[mode + "_median_ms"] = round(statistics.median(vals), 1)
        res[mode + "_worst_ms"] = max(vals)
    if nm:
        for mode in ("notmuch_count", "notmuch_search"):
            vals = [r[mode + "_ms"] for r in rows if mode + "_ms" in r]
            if vals:
                res[mode + "_median_ms"] = round(statistics.median(vals), 1)
                res[mode + "_worst_ms"] = max(vals)
    res.update(inprocess(db, args.repeat))
    if args.lean_probe:
        res.update(lean_probe(db, args.repeat))
    # the start-up floor: the same command with an empty query error path is not useful; measure --help
    ts = [timed(lt + ["search", "--help"]) for _ in range(args.repeat)]
    res["startup_ms"] = round(statistics.median(ts) * 1000, 1)
    ts = [timed([sys.executable, "-c", "pass"]) for _ in range(args.repeat)]  # (with the same env)
    res["python_floor_ms"] = round(statistics.median(ts) * 1000, 1)
    res["loadavg_end"] = os.getloadavg()[0]
    return res


def markdown(res: dict) -> str:
    mb = 1e6
    lines = ["Measured by `python3 benchmarks/search_bench.py` (%d generated messages, attachment scale %s; %d CPUs, "
             "Python %s, SQLite %s; each figure the median of %d runs of a whole process; load average %.1f at the "
             "start, %.1f at the end)." % (
                 res["messages_generated"], res["attachment_scale"], res["cpus"], res["python"], res["sqlite"],
                 res["repeat"], res.get("loadavg_start", 0), res.get("loadavg_end", 0)), ""]
    lines.append("| | leaktriage | notmuch |")
    lines.append("|---|---|---|")
    nmv = res.get("notmuch_version")
    lines.append("| messages indexed | %d | %s |" % (res["indexed_messages"], res.get("notmuch_messages_exported", "n/a")))
    scan = res.get("scan_seconds")
    lines.append("| build | %s (scan: %s) | %s |" % ("%.1f s" % res["index_seconds"] if res["index_seconds"] else "not run",
                                                    "%.1f s" % scan if scan else "not run",
                                                        "%.1f s (`notmuch new`)" % res["notmuch_new_seconds"] if nmv else "n/a"))
    if res["reindex_unchanged_seconds"] is not None:
        lines.append("| re-index, nothing changed | %.1f s | |" % res["reindex_unchanged_seconds"])
    lines.append("| database size | %.1f MB | %s |" % (res["db_bytes"] / mb, "%.1f MB" % (res["notmuch_db_bytes"] / mb) if nmv else "n/a"))
    lines.append("| count: median / worst | %.0f / %.0f ms | %s |" % (
        res["count_median_ms"], res["count_worst_ms"],
        "%.0f / %.0f ms" % (res["notmuch_count_median_ms"], res["notmuch_count_worst_ms"]) if nmv else "n/a"))
    lines.append("| every hit (JSONL / `--output=files`): median / worst | %.0f / %.0f ms | %s |" % (
        res["jsonl_median_ms"], res["jsonl_worst_ms"],
        "%.0f / %.0f ms" % (res["notmuch_search_median_ms"], res["notmuch_search_worst_ms"]) if nmv else "n/a"))
    lines.append("| first 50 hits with snippets: median / worst | %.0f / %.0f ms | |" % (
        res["page_median_ms"], res["page_worst_ms"]))
    lines.append("| start-up (`search --help`) / bare Python | %.0f ms / %.0f ms | |" % (
        res["startup_ms"], res["python_floor_ms"]))
    lines.append("| in-process query cost (no start-up): count / page / every hit, median / worst | "
                 "%.0f / %.0f ms; %.0f / %.0f ms; %.0f / %.0f ms | |" % (
                     res["inproc_count_median_ms"], res["inproc_count_worst_ms"], res["inproc_page_median_ms"],
                     res["inproc_page_worst_ms"], res["inproc_all_median_ms"], res["inproc_all_worst_ms"]))
    if "lean_count_median_ms" in res:
        lines.append("| same, `leaktriage/__init__.py` not importing the scanner: count / page, median / worst | "
                     "%.0f / %.0f ms; %.0f / %.0f ms | |" % (res["lean_count_median_ms"], res["lean_count_worst_ms"],
                                                         res["lean_page_median_ms"], res["lean_page_worst_ms"]))
    if nmv:
        lines.append("")
        lines.append("notmuch: %s." % nmv)
    lines += ["", "| query | hits | count | JSONL | page | notmuch hits | notmuch count / search |", "|---|---|---|---|---|---|---|"]
    for r in res["queries"]:
        lines.append("| `%s` | %s | %.0f ms | %.0f ms | %.0f ms | %s | %s |" % (
            r["query"], r["hits"], r["count_ms"], r["jsonl_ms"], r["page_ms"],
            r.get("notmuch_hits", "n/a") if r.get("notmuch_query") else "n/a",
            "%.0f / %.0f ms" % (r["notmuch_count_ms"], r["notmuch_search_ms"]) if "notmuch_count_ms" in r else ""))
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- search-bench:begin -->", "<!-- search-bench:end -->"


def write_doc(md: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    block = BEGIN + "\n" + md + END
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + block + text[b:]
    else:
        text += "\n## Benchmark\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def acceptance(args) -> None:
    """Issue #15's acceptance on a make_dump --doc-markers dump: codeword recall per document kind through
    the index, show --text against an independent decoding, one JSONL line per email / per copy."""
    sys.path.insert(0, str(REPO / "tests"))
    from support.acceptance import marker_recall, one_hit_per_email, show_text
    dump, truth, manifest, db = Path(args.dump), Path(args.truth), Path(args.manifest), Path(args.db)
    if not db.exists():
        t0 = time.monotonic()
        sh(leaktriage_bin() + ["index", str(manifest), "--dump", str(dump), "-o", str(db)])
        print("index built in %.1f s, %.1f MB" % (time.monotonic() - t0, db.stat().st_size / 1e6))
    res = marker_recall(db, truth)
    misses = res.pop("misses")
    print("\n| document kind | found / total | recall |\n|---|---|---|")
    for k in sorted(res):
        print("| %s | %d / %d | %.2f%% |" % (k, res[k][0], res[k][1], 100.0 * res[k][0] / res[k][1]))
    core = [k for k in res if k.startswith("pdf") or k in ("docx", "xlsx")]
    f, n = sum(res[k][0] for k in core), sum(res[k][1] for k in core)
    print("| **PDF + DOCX + XLSX** | **%d / %d** | **%.2f%%** |" % (f, n, 100.0 * f / n))
    print("misses: %d, of which in messages the generator made malformed: %d" % (len(misses), sum(m[4] for m in misses)))
    for m in misses:
        print("  ", m)
    st = show_text(manifest, dump, truth, db, n=args.sample)
    print("\nshow --text on %d sampled messages: %d print the independently decoded text/plain body%s"
          % (st["checked"], st["ok"], "; failures: %s" % st["failures"] if st["failures"] else ""))
    print("\n| query | JSONL lines | emails | --all-copies lines | stored copies |\n|---|---|---|---|---|")
    for q, lines, emails, all_lines, copies, located in one_hit_per_email(db, ["réunion", "has:attachment", "type:pdf",
                                                                              "facture", "dkim:pass"]):
        print("| `%s` | %d | %d | %d | %d |%s" % (q, lines, emails, all_lines, copies, "" if located else " (locator missing!)"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--acceptance", action="store_true", help="issue #15's checks (needs --dump, --truth, "
                                                              "--manifest, --db)")
    ap.add_argument("--truth", help="with --acceptance: the truth file of --dump")
    ap.add_argument("--sample", type=int, default=40, help="with --acceptance: messages checked with show --text")
    ap.add_argument("--messages", type=int, default=72000)
    ap.add_argument("--scale", type=float, default=0.02, help="--attachment-scale of the generator")
    ap.add_argument("--work", default=str(DEFAULT_WORK))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dump", help="use this dump instead of generating one (it is scanned, timed)")
    ap.add_argument("--manifest", help="an existing manifest of --dump (the scan is then not run)")
    ap.add_argument("--reuse-scan", action="store_true", help="reuse the cached manifest (scan not timed)")
    ap.add_argument("--db", help="query this existing database (no build)")
    ap.add_argument("--notmuch", action="store_true", help="apt-get install notmuch when it is missing")
    ap.add_argument("--no-notmuch", action="store_true")
    ap.add_argument("--write-doc", action="store_true", help="replace the figures in docs/search.md")
    ap.add_argument("--lean-probe", action="store_true",
                    help="also time the queries with an empty leaktriage/__init__.py (package import cost)")
    ap.add_argument("--json", help="also write the raw figures to this file")
    args = ap.parse_args()
    if args.acceptance:
        if not (args.dump and args.truth and args.manifest and args.db):
            ap.error("--acceptance needs --dump, --truth, --manifest and --db")
        return acceptance(args)
    res = run(args)
    md = markdown(res)
    print()
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    if args.write_doc:
        write_doc(md)
    ok = res["worst_ok"] = res["page_worst_ms"] < 100 and res["count_worst_ms"] < 100
    print("targets: worst < 100 ms (count, page): %s; median < 60 ms: %s; build <= scan: %s; db <= notmuch: %s" % (
        ok, res["page_median_ms"] < 60 and res["count_median_ms"] < 60,
        "n/a" if not (res.get("scan_seconds") and res["index_seconds"]) else res["index_seconds"] <= res["scan_seconds"],
        "n/a" if "notmuch_db_bytes" not in res else res["db_bytes"] <= res["notmuch_db_bytes"]))


if __name__ == "__main__":
    main()
