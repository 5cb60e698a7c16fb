"""Reading a leak as conversations: threads, corroboration of copies, near-duplicates, correspondents.

Dump-wide analyses over the manifest's records and the decoded texts the search index extracts
(see docs/conversations.md):

- build_threads(messages) -> ThreadResult: JWZ threading completed by Outlook's Thread-Index, subject
  only as a labelled last resort; per message its thread id, parent, missing parent, method.
- corroborate(copies, text_of=...) -> CorroborationResult: the copies of every email stored more than
  once compared part by part; `copy.contradiction` / `copy.corroborated` indicators.
- near_duplicates(docs, threshold=...) -> NearDupResult: MinHash/LSH (datasketch) near-duplicate
  groups of bodies and attachment texts, with similarity and differing passages.
- correspondents(messages) -> Graph; write_gexf, write_graphml, write_csv, write_sqlite.
- write_jsonl(records, fh): the one serialisation of every record above (keys sorted, compact, UTF-8).

Heavy dependencies (numpy, datasketch) load only when near_duplicates runs.
"""
from __future__ import annotations

import importlib
import json
from typing import Iterable, TextIO

_WHERE = {
    "build_threads": "threads", "ThreadInput": "threads", "ThreadResult": "threads", "MessageThread": "threads", "ThreadSummary": "threads",
    "decode_thread_index": "threads", "thread_index_parent": "threads",
    "corroborate": "copies", "Copy": "copies", "CorroborationResult": "copies",
    "duplicate_candidates": "copies", "mailbox_role": "copies", "differ": "copies",
    "near_duplicates": "neardup", "Doc": "neardup", "NearDupResult": "neardup",
    "correspondents": "people", "Graph": "people", "write_gexf": "people",
    "write_graphml": "people", "write_csv": "people", "write_sqlite": "people",
    "CODES": "codes",
    "differing_passages": "passages",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module("." + _WHERE[name], __name__), name)
    raise AttributeError(name)


def write_jsonl(records: Iterable[dict], fh: TextIO) -> int:
    """One JSON object per line, keys sorted, no spaces, UTF-8 text (as the manifest); returns the count."""
    n = 0
    for r in records:
        fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
        n += 1
    return n


__all__ = sorted(list(_WHERE) + ["write_jsonl"])
