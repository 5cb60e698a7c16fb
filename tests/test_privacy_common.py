"""Shared helpers for the tests of leaktriage.privacy (no tests here): the dump generator, found
beside the shared corpora ($LEAKTRIAGE_CORPORA/../bench, conftest.need_generator), and the evaluation script, whose reading of a dump
(manifest + email package) the tests reuse."""
import importlib.util
import sys
import warnings
from pathlib import Path

from conftest import need_generator

REPO = Path(__file__).resolve().parent.parent


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
    p = need_generator()
    if "lt_make_dump" in sys.modules:
        return sys.modules["lt_make_dump"]
    return _load("lt_make_dump", p)


def privacy_eval():
    if "privacy_eval" in sys.modules:
        return sys.modules["privacy_eval"]
    return _load("privacy_eval", REPO / "benchmarks" / "privacy_eval.py")
