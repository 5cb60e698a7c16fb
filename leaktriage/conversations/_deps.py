"""Everything leaktriage.conversations takes from the rest of leaktriage, in one place.

The package is being restructured; when a module moves, only this file changes.
"""
from __future__ import annotations


def fold(text: str) -> str:
    """Case, accents and ligatures folded (leaktriage.fold.fold)."""
    from ..fold import fold as _fold
    return _fold(text)


def html_to_text(html: str) -> str:
    """HTML -> text the way the search index reads it (leaktriage.index.html_to_text)."""
    from ..index import html_to_text as _h
    return _h(html)


def thread_index_time(value: str):
    """(time, replies) encoded in an Outlook Thread-Index (leaktriage.auth.timestamps)."""
    from ..auth.timestamps import thread_index_time as _t
    return _t(value)


def register_codes(table) -> None:
    """Add indicator codes to the problem-code registry (leaktriage.problems.register)."""
    from ..problems import register
    register(table)


def manifest_records(path: str):
    """Records of a manifest, streamed and checked (leaktriage.manifest.Manifest)."""
    from ..manifest import Manifest
    return Manifest(path).records()


def fetcher(dump_root: str):
    """Bytes of a message through its locator, checked against the manifest's SHA-256
    (leaktriage.index.Fetcher; used by benchmarks/conversations_eval.py only)."""
    from ..index import Fetcher
    return Fetcher(dump_root)
