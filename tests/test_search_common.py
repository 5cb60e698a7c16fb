"""Shared helpers for the search tests (no tests here)."""
import json
import subprocess
import sys
from pathlib import Path


from conftest import make_dump_path, need_generator

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "dump"
TRUTH = REPO / "samples" / "truth.json"
MAKE_DUMP = make_dump_path()


def scan_to(dump, manifest):
    from leaktriage import Options, scan
    scan(str(dump), str(manifest), Options(workers=1))
    return manifest


def build(dump, tmp, name="t", **kw):
    from leaktriage.search.build import build_index
    manifest = Path(tmp) / (name + ".jsonl")
    scan_to(dump, manifest)
    db = Path(tmp) / (name + ".db")
    stats = build_index(str(manifest), str(dump), str(db), workers=1, **kw)
    return manifest, db, stats


def locators(db, query, all_copies=True, **kw):
    """Locators of the hits: every stored copy by default (truth files list copies)."""
    from leaktriage.search.engine import open_db, search
    con = open_db(str(db))
    try:
        return {h.locator for h in search(con, query, snippets=False, all_copies=all_copies, **kw)}
    finally:
        con.close()


def count(db, query, copies=True):
    from leaktriage.search.engine import count as c, open_db
    con = open_db(str(db))
    try:
        return c(con, query, copies=copies)
    finally:
        con.close()


def run_cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "leaktriage", *map(str, args)], capture_output=True, text=True,
                          input=input, cwd=str(REPO))


def truth_messages():
    return json.loads(TRUTH.read_text(encoding="utf-8"))["messages"]


def generated_dump(tmp_path_factory, messages=150):
    need_generator()
    base = tmp_path_factory.mktemp("gen")
    out = base / "gd"
    subprocess.run([sys.executable, str(MAKE_DUMP), str(out), "--messages", str(messages),
                    "--attachment-scale", "0.02", "--quiet"], check=True)
    truth = [json.loads(l) for l in (base / "gd.truth.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    return out, truth, base
