#!/usr/bin/env python3
"""Text extraction benchmark: codeword recall and throughput per format, and the PDF library comparison.

    python benchmarks/text_bench.py                          # generate a 2,000-message dump, then measure
    python benchmarks/text_bench.py --dump D --truth D.truth.jsonl
    python benchmarks/text_bench.py --compare-pdf [DIR ...]  # pypdfium2 (leaktriage.text) vs pdfminer.six
    python benchmarks/text_bench.py --dump D --isolated      # throughput as the index extracts: through an
                                                             # IsolatedExtractor (a child process, one pipe)

Recall: make_dump --doc-markers plants a unique codeword in every PDF, DOCX, XLSX, TXT, CSV and zip it
generates (truth: the attachment's "marker"); a document counts as found when its extracted text holds
it (a zip's members are extracted one by one, as the scan would). Throughput: bytes of input per second
of extract_text, per format, best of --repeat runs, one process (2-core machine: run it with nice on an
otherwise idle machine).

--compare-pdf runs both libraries on the dump's PDFs and on the PDFs of the given folders (public test
PDFs, e.g. pdfminer.six's samples/ and pypdf's resources/). With pdftotext (poppler-utils) installed,
its output is the reference for three scores: characters (F1 of the multiset of non-space characters:
were the right characters found?), words (F1 of word tokens: are words split and joined right?) and
order (of the reference's lines of 8+ characters found in the output, the share of consecutive pairs
that come in the same order). pdfminer.six is needed only for this mode (pip install '.[textbench]').
"""
from __future__ import annotations

import argparse
import collections
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from leaktriage.text import extract_html, extract_text  # noqa: E402
from test_text_common import MAKE_DUMP, documents  # noqa: E402  (the truth-driven document reader)

WORK = REPO / "benchmarks" / ".work"


def kind_of(a) -> str:
    if a["true_type"] == "pdf":
        if not a.get("filename", "").lower().endswith(".pdf"):
            return "pdf (named .jpg)"
        return "pdf FlateDecode" if a.get("pdf_flate") else "pdf plain"
    return a["true_type"]


def generate(messages: int) -> tuple:
    out = WORK / ("text-dump-%d" % messages) / "dump"
    truth = out.parent / "dump.truth.jsonl"
    if not truth.is_file():
        if out.parent.exists():
            shutil.rmtree(out.parent)
        out.parent.mkdir(parents=True)
        print("generating a %d-message dump in %s ..." % (messages, out.parent), file=sys.stderr)
        subprocess.run([sys.executable, str(MAKE_DUMP), "--messages", str(messages), "--seed", "1", "--doc-markers",
                        "--personal", "0.25", "--forgeries", "0.2", "--no-sign", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
    return out, truth


def recall_and_speed(dump: Path, truth: Path, repeat: int, isolated: bool = False) -> None:
    docs = [(a, d) for a, d in documents(dump, truth) if d is not None]
    unreadable = sum(1 for a, d in documents(dump, truth) if d is None and "marker" in a)
    found = collections.Counter()
    total = collections.Counter()
    misses = []
    for a, data in docs:
        if "marker" not in a:
            continue
        k = kind_of(a)
        if k == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                text = "\n".join(extract_text(z.read(n), filename=n).text or "" for n in z.namelist())
        else:
            text = extract_text(data, content_type=a.get("declared_content_type"), filename=a.get("filename")).text or ""
        total[k] += 1
        if a["marker"] in text:
            found[k] += 1
        else:
            misses.append((k, a.get("filename"), a["marker"]))
    print("\nCodeword recall (%s):" % dump)
    print("%-20s %8s %8s %8s" % ("document kind", "found", "total", "recall"))
    for k in sorted(total):
        print("%-20s %8d %8d %7.2f%%" % (k, found[k], total[k], 100.0 * found[k] / total[k]))
    core = [k for k in total if k.startswith("pdf") or k in ("docx", "xlsx")]
    f, t = sum(found[k] for k in core), sum(total[k] for k in core)
    print("%-20s %8d %8d %7.2f%%" % ("PDF+DOCX+XLSX", f, t, 100.0 * f / max(1, t)))
    f, t = sum(found.values()), sum(total.values())
    print("%-20s %8d %8d %7.2f%%" % ("all", f, t, 100.0 * f / max(1, t)))
    if unreadable:
        print("(%d marked attachments could not be decoded from their message: broken MIME planted by the generator)"
              % unreadable)
    for m in misses[:20]:
        print("  missed:", *m)

    by_format = collections.defaultdict(list)
    for a, data in docs:
        by_format[a["true_type"]].append((data, a.get("declared_content_type"), a.get("filename")))
    extract = extract_text
    ex = None
    if isolated:   # what `leaktriage index` does: each document through its worker's IsolatedExtractor
        from leaktriage.text import IsolatedExtractor
        from leaktriage.search.message_text import LIMITS
        ex = IsolatedExtractor(LIMITS, start_method="fork")
        extract = lambda d, content_type=None, filename=None: ex.extract(d, content_type=content_type, filename=filename)
    print("\nThroughput (%s, best of %d):" % ("IsolatedExtractor, one child process" if isolated else
                                            "extract_text, one process", repeat))
    print("%-8s %6s %10s %9s %9s %10s  %s" % ("format", "docs", "MB", "seconds", "MB/s", "docs/s", "statuses"))
    for fmt in sorted(by_format):
        items = by_format[fmt]
        size = sum(len(d) for d, _, _ in items)
        best = None
        statuses = collections.Counter()
        for _ in range(repeat):
            t0 = time.perf_counter()
            results = [extract(d, content_type=ct, filename=fn) for d, ct, fn in items]
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
            statuses = collections.Counter(r.status for r in results)
        print("%-8s %6d %10.2f %9.3f %9.2f %10.1f  %s" % (fmt, len(items), size / 1e6, best, size / 1e6 / best,
                                                           len(items) / best, dict(sorted(statuses.items()))))
    if ex is not None:
        ex.close()
    bodies = html_bodies(dump, truth)
    if bodies:
        size = sum(len(h.encode("utf-8")) for h in bodies)
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            results = [extract_html(h) for h in bodies]
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        statuses = collections.Counter(r.status for r in results)
        print("%-8s %6d %10.2f %9.3f %9.2f %10.1f  %s" % ("html body", len(bodies), size / 1e6, best,
                                                           size / 1e6 / best, len(bodies) / best,
                                                           dict(sorted(statuses.items()))))


def html_bodies(dump: Path, truth: Path) -> list:
    """The decoded text/html parts of the dump's messages (extract_html's input in the index)."""
    import email
    import email.policy
    import json
    from test_text_common import message_bytes
    out = []
    with open(truth, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            try:
                msg = email.message_from_bytes(message_bytes(dump, entry["location"]), policy=email.policy.default)
                for part in msg.walk():
                    if part.get_content_type() == "text/html" and not part.is_attachment():
                        out.append(part.get_content())
            except Exception:  # a broken message planted by the generator: not this benchmark's subject
                continue
    return out


# ------------------------------------------------------------------------------------------------
# pypdfium2 vs pdfminer.six

_WORD = re.compile(r"\w+")


def _norm(t: str) -> str:
    return unicodedata.normalize("NFKC", t or "")


def _f1(a: collections.Counter, b: collections.Counter) -> float:
    if not a and not b:
        return 1.0
    inter = sum((a & b).values())
    p, r = inter / max(1, sum(a.values())), inter / max(1, sum(b.values()))
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def scores(text: str, ref: str) -> tuple:
    t, r = _norm(text), _norm(ref)
    chars = _f1(collections.Counter(c for c in t if not c.isspace()), collections.Counter(c for c in r if not c.isspace()))
    words = _f1(collections.Counter(w.lower() for w in _WORD.findall(t)),
                collections.Counter(w.lower() for w in _WORD.findall(r)))
    flat = re.sub(r"\s+", "", t)
    pos = []
    for line in r.split("\n"):
        key = re.sub(r"\s+", "", line)
        if len(key) >= 8:
            i = flat.find(key)
            if i >= 0:
                pos.append(i)
    order = None
    if len(pos) >= 2:
        order = sum(1 for a, b in zip(pos, pos[1:]) if b > a) / (len(pos) - 1)
    return chars, words, order


def _pdfminer(data: bytes):
    from pdfminer.high_level import extract_text as miner
    try:
        return miner(io.BytesIO(data)), "ok"
    except Exception as e:  # the comparison records failures, it does not stop on them
        name = type(e).__name__
        return None, "encrypted" if "Password" in name or "Encrypt" in name else "failed:" + name


def _pdfium(data: bytes):
    r = extract_text(data, content_type="application/pdf")
    st = r.status if r.status in ("ok", "empty") else ("encrypted" if "text.encrypted" in r.codes else r.status)
    return r.text, st


def _poppler(data: bytes):
    if not shutil.which("pdftotext"):
        return None
    p = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, timeout=120)
    return p.stdout.decode("utf-8", "replace") if p.returncode == 0 else None


def compare_pdf(dump: Path, truth: Path, dirs, verbose: bool = False) -> None:
    try:
        import pdfminer  # noqa: F401
    except ImportError:
        sys.exit("--compare-pdf needs pdfminer.six: pip install '.[textbench]'")
    import logging
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    sets = {"dump": [(a.get("filename"), a.get("marker"), d) for a, d in documents(dump, truth)
                     if d is not None and a["true_type"] == "pdf"]}
    for d in dirs:
        files = sorted(p for p in Path(d).rglob("*") if p.is_file() and p.read_bytes()[:1024].find(b"%PDF-") >= 0)
        sets[str(d)] = [(p.name, None, p.read_bytes()) for p in files]
    libs = (("pypdfium2", _pdfium), ("pdfminer.six", _pdfminer))
    for name, items in sets.items():
        if not items:
            continue
        refs = [_poppler(d) for _, _, d in items]
        print("\n%s: %d PDFs, %.1f MB%s" % (name, len(items), sum(len(d) for _, _, d in items) / 1e6,
                                            "" if any(r is not None for r in refs) else " (no pdftotext: no reference)"))
        print("%-13s %9s %8s %9s %10s %8s %7s %7s %7s" % ("library", "seconds", "MB/s", "median ms", "status", "marker",
                                                        "chars", "words", "order"))
        per_file = collections.defaultdict(dict)
        for lib, fn in libs:
            times, stats, found, marked, cs, ws, os_ = [], collections.Counter(), 0, 0, [], [], []
            for (fname, marker, data), ref in zip(items, refs):
                t0 = time.perf_counter()
                text, st = fn(data)
                times.append(time.perf_counter() - t0)
                stats[st] += 1
                if marker:
                    marked += 1
                    found += marker in (text or "")
                if ref is not None and ref.strip():     # scored on the PDFs whose reference has text
                    c, w, o = scores(text or "", ref)
                    cs.append(c)
                    ws.append(w)
                    if o is not None:
                        os_.append(o)
                    per_file[fname][lib] = (st, c, w, o)
            size = sum(len(d) for _, _, d in items)
            print("%-13s %9.2f %8.2f %9.1f %10s %8s %7s %7s %7s" % (
                lib, sum(times), size / 1e6 / sum(times), 1000 * statistics.median(times),
                "/".join("%s %d" % kv for kv in sorted(stats.items())),
                "%d/%d" % (found, marked) if marked else "-",
                "%.3f" % statistics.mean(cs) if cs else "-", "%.3f" % statistics.mean(ws) if ws else "-",
                "%.3f (%d)" % (statistics.mean(os_), len(os_)) if os_ else "-"))
        print("scored on %d PDFs whose reference has text" % len(per_file))
        if verbose:
            for fname, r in sorted(per_file.items()):
                a, b = r.get("pypdfium2"), r.get("pdfminer.six")
                if a and b and max(abs(a[1] - b[1]), abs(a[2] - b[2])) > 0.05:
                    print("  %-50s pypdfium2 %s chars %.2f words %.2f | pdfminer %s chars %.2f words %.2f"
                          % (fname[:50], a[0], a[1], a[2], b[0], b[1], b[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", type=Path, help="a make_dump --doc-markers dump (default: generate one)")
    ap.add_argument("--truth", type=Path, help="its truth file (default: DUMP.truth.jsonl beside it)")
    ap.add_argument("--messages", type=int, default=2000, help="size of the generated dump (default 2000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare-pdf", nargs="*", metavar="DIR", help="compare pypdfium2 and pdfminer.six")
    ap.add_argument("--verbose", action="store_true", help="with --compare-pdf: the PDFs where they differ")
    ap.add_argument("--isolated", action="store_true", help="measure through an IsolatedExtractor, as the index does")
    args = ap.parse_args()
    if args.dump:
        dump, truth = args.dump, args.truth or args.dump.parent / (args.dump.name + ".truth.jsonl")
    else:
        dump, truth = generate(args.messages)
    if args.compare_pdf is not None:
        compare_pdf(dump, truth, args.compare_pdf, args.verbose)
    else:
        recall_and_speed(dump, truth, args.repeat, args.isolated)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
