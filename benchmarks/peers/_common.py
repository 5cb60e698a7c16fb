"""Shared loop for the peer scripts: read a NUL-separated list of message files, parse each one.

Each peer script is run by ``benchmarks/run.py`` as its own process (so its wall time and peak RSS
are measured alone) and prints one JSON object on stdout: what it parsed, how many files failed,
and a small digest of what it extracted, so a run that silently did nothing is visible.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable


def read_file_list(path: str) -> list[bytes]:
    """The file list written by run.py: raw path bytes separated by NUL (any file name survives)."""
    with open(path, "rb") as f:
        return [p for p in f.read().split(b"\0") if p]


def main(tool: str, version: str, parse_one: Callable[[bytes], int], argv: list[str] | None = None) -> int:
    """Run ``parse_one(raw_bytes) -> units`` on every listed file; print the JSON summary.

    ``units`` is a tool-specific count (parts walked, attachments found...) added up and reported.
    An exception in one file is counted and the loop goes on, as a triage tool would have to.
    """
    ap = argparse.ArgumentParser(description=f"benchmark peer: {tool}")
    ap.add_argument("file_list", help="NUL-separated list of message files")
    args = ap.parse_args(argv)
    paths = read_file_list(args.file_list)
    files = nbytes = errors = units = 0
    first_errors: list[str] = []
    t0 = time.perf_counter()
    for p in paths:
        with open(p, "rb") as f:
            raw = f.read()
        files += 1
        nbytes += len(raw)
        try:
            units += parse_one(raw)
        except Exception as exc:  # a peer failing on one hostile file must not stop the benchmark
            errors += 1
            if len(first_errors) < 5:
                first_errors.append(f"{os.fsdecode(p)}: {type(exc).__name__}: {exc}"[:300])
    elapsed = time.perf_counter() - t0
    json.dump({"tool": tool, "version": version, "files": files, "bytes": nbytes, "errors": errors,
               "units": units, "first_errors": first_errors, "loop_seconds": round(elapsed, 3),
               "python": sys.version.split()[0]}, sys.stdout)
    sys.stdout.write("\n")
    return 0
