"""Shared helpers for the tests of leaktriage.privacy (no tests here): the dump generator, found
through $LEAKTRIAGE_BENCH (its folder), beside the shared corpora ($LEAKTRIAGE_CORPORA/../bench) or
in ../shared/bench next to the repository, and the evaluation script, whose reading of a dump
(manifest + email package) the tests reuse."""
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def bench_dir() -> Path:
    """$LEAKTRIAGE_BENCH, else bench/ beside the shared corpora ($LEAKTRIAGE_CORPORA/..), else
    ../shared/bench next to the repository."""
    if os.environ.get("LEAKTRIAGE_BENCH"):
        return Path(os.environ["LEAKTRIAGE_BENCH"])
    if os.environ.get("LEAKTRIAGE_CORPORA"):
        return Path(os.environ["LEAKTRIAGE_CORPORA"]).parent / "bench"
    return REPO.parent / "shared" / "bench"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # the generator's own regex strings
        spec.loader.exec_module(mod)
    return mod


def make_dump_module():
    """The generator as a module (its PII rules, decoys and provider domains); missing: skipped,
    and a failure under CI."""
    p = bench_dir() / "make_dump.py"
    if not p.is_file():
        msg = "generator %s not found (set LEAKTRIAGE_BENCH to its folder, or LEAKTRIAGE_CORPORA)" % p
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    if "lt_make_dump" in sys.modules:
        return sys.modules["lt_make_dump"]
    return _load("lt_make_dump", p)


def privacy_eval():
    if "privacy_eval" in sys.modules:
        return sys.modules["privacy_eval"]
    return _load("privacy_eval", REPO / "benchmarks" / "privacy_eval.py")
