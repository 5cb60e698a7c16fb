import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "dump"


def corpora_root() -> Path:
    return Path(os.environ.get("LEAKTRIAGE_CORPORA") or (REPO.parent / "shared" / "corpora"))


def make_dump_path() -> Path:
    """The shared dump generator, found beside the corpora: $LEAKTRIAGE_CORPORA/../bench/make_dump.py
    (one variable, set by .ci/run, locates everything shared)."""
    return corpora_root().parent / "bench" / "make_dump.py"


def need_generator() -> Path:
    """The generator; missing, it fails the run under CI and skips elsewhere (like the corpora)."""
    p = make_dump_path()
    if not p.is_file():
        msg = "generator %s not found (set LEAKTRIAGE_CORPORA to the shared corpora folder; bench/ is beside it)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def corpus(name: str) -> Path:
    """A corpus folder; missing corpora fail the run under CI and skip elsewhere."""
    p = corpora_root() / name
    if not p.is_dir():
        msg = "corpus %s not found (set LEAKTRIAGE_CORPORA to the shared corpora folder)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def scan_records(root, tmp_path, workers=1, name="m.jsonl", **kw):
    from leaktriage import Options, scan
    out = Path(tmp_path) / name
    res = scan(str(root), str(out), Options(workers=workers, **kw))
    recs = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines()]
    return recs, out, res


def by_kind(recs, kind):
    return [r for r in recs if r["record"] == kind]
