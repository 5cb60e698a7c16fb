"""Reading a manifest: streaming, checked line by line, never the whole file in memory.

    m = Manifest("manifest.jsonl")          # or Manifest("-") for stdin
    for rec in m.records():                 # dicts, in file order
        ...
    m.summary, m.sha256, m.lines            # known once records() is exhausted
    m.sidecar()                             # ("ok" | "mismatch" | "absent" | "malformed", expected digest)

Every line is checked as it streams by: valid UTF-8 JSON object, with `record`, `v` and `locator`; a
schema version this leaktriage can read; nothing after the `summary` record; the file ends with a
complete line and a `summary` record (a scan that was interrupted or a copy cut short has none).
Anything else raises ManifestError with the line number and what to do about it; the CLI turns it
into a one-line message and a documented exit code, never a traceback.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import BinaryIO, Iterator, Optional, Tuple

from leaktriage.errors import ManifestError, SchemaVersionError
from leaktriage.model.records import SCHEMA_VERSION

KINDS = ("file", "message", "part", "problem", "duplicate_group", "mailbox", "summary")
_DECODER = json.JSONDecoder()
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Manifest:
    """A manifest file (or "-" for standard input), read in one streaming pass per records() call."""

    def __init__(self, path: str, stream: Optional[BinaryIO] = None):
        self.path = path
        self._stream = stream
        self.summary: Optional[dict] = None
        self.sha256: Optional[str] = None
        self.lines = 0
        self.bytes = 0
        if path != "-" and stream is None:
            if not os.path.exists(path):
                raise ManifestError("no such file", path)
            if os.path.isdir(path):
                raise ManifestError("is a folder, not a manifest file", path)

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def _open(self) -> Tuple[BinaryIO, bool]:
        if self._stream is not None:
            return self._stream, False
        if self.path == "-":
            return sys.stdin.buffer, False
        try:
            return open(self.path, "rb"), True
        except OSError as exc:
            raise ManifestError("cannot read: %s" % (exc.strerror or exc), self.path)

    def records(self, *, raw: bool = False, want=None, _piece: bool = False) -> Iterator[dict]:
        """Every record, in order. With raw=True yields (line_bytes, record) pairs.

        want: optional predicate on the raw line; lines it rejects are still read, hashed and checked
        for truncation and shape, but not decoded nor yielded (a fast path for `show`)."""
        fh, close = self._open()
        sha = hashlib.sha256()
        n = 0
        size = 0
        summary = None
        last_ok_newline = True
        loads = _DECODER.decode
        try:
            for line in fh:
                n += 1
                size += len(line)
                sha.update(line)
                if summary is not None:
                    raise ManifestError("a record after the summary record (the summary must be the last line; "
                                        "lines were appended or files concatenated)", self.path, n)
                if not line.endswith(b"\n"):
                    last_ok_newline = False
                if want is not None and n > 1 and not want(line) and b'"record":"summary"' not in line:
                    if not last_ok_newline:
                        raise ManifestError("truncated: the last line has no newline; the scan was interrupted "
                                            "or the copy is incomplete", self.path, n)
                    if not (line.startswith(b"{") and line.endswith(b"}\n")):
                        raise ManifestError("not a JSON object on one line: the line was edited or damaged",
                                            self.path, n)
                    continue
                try:
                    rec = loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ManifestError("line is not UTF-8 (the file was changed or is not a manifest)",
                                        self.path, n)
                except ValueError as exc:
                    if not last_ok_newline:
                        raise ManifestError("truncated: the last line is cut short (%d bytes, no newline); "
                                            "the scan was interrupted or the copy is incomplete" % len(line),
                                            self.path, n)
                    if not line.strip():
                        raise ManifestError("empty line (a scan never writes one: the file was edited)",
                                            self.path, n)
                    msg = getattr(exc, "msg", str(exc))
                    col = getattr(exc, "colno", None)
                    raise ManifestError("not valid JSON (%s%s): the line was edited or damaged; rescan the "
                                        "dump or get a fresh copy of the manifest"
                                        % (msg, " at column %d" % col if col else ""), self.path, n)
                if not isinstance(rec, dict) or not isinstance(rec.get("record"), str) \
                        or "locator" not in rec or "v" not in rec:
                    if n == 1:
                        raise ManifestError("not a leaktriage manifest (the first line is not a record with "
                                            "'record', 'v' and 'locator')", self.path, n)
                    raise ManifestError("not a manifest record (needs 'record', 'v' and 'locator'): the line "
                                        "was edited", self.path, n)
                v = rec["v"]
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ManifestError("schema version 'v' is not an integer: %r" % (v,), self.path, n)
                if v > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        "written with manifest schema version %d; this leaktriage reads versions up to %d: "
                        "upgrade leaktriage (pip install -U leaktriage)" % (v, SCHEMA_VERSION), self.path, n)
                if not last_ok_newline:
                    raise ManifestError("truncated: the last line has no newline; the scan was interrupted "
                                        "or the copy is incomplete", self.path, n)
                kind = rec["record"]
                if kind == "summary":
                    summary = rec
                elif kind not in KINDS:
                    if kind == "run":
                        raise ManifestError("a 'run' record: this is the sidecar MANIFEST.run.json, not the "
                                            "manifest", self.path, n)
                    raise ManifestError("unknown record kind %r" % kind, self.path, n)
                yield (line, rec) if raw else rec
        finally:
            if close:
                fh.close()
        self.lines = n
        self.bytes = size
        self.sha256 = sha.hexdigest()
        if _piece:  # a piece of a manifest read in parallel: the caller checks the end
            self.summary = summary
            return
        if n == 0:
            raise ManifestError("empty file: not a manifest", self.path)
        if summary is None:
            raise ManifestError("truncated: %d lines and no summary record at the end; the scan was interrupted "
                                "or the copy is incomplete (rescan the dump)" % n, self.path, n)
        self.summary = summary

    # -- sidecars ---------------------------------------------------------------------------------
    def sidecar_path(self) -> Optional[str]:
        return None if self.path == "-" else self.path + ".sha256"

    def sidecar(self) -> Tuple[str, Optional[str]]:
        """Compare the digest of what was read with MANIFEST.sha256. Call after records() is exhausted."""
        expected = read_sidecar(self.sidecar_path()) if self.sidecar_path() else None
        if expected is None:
            p = self.sidecar_path()
            if p and os.path.exists(p):
                return "malformed", None
            return "absent", None
        if self.sha256 is None:
            return "unknown", expected
        return ("ok" if self.sha256 == expected else "mismatch"), expected

    def run_record(self) -> Optional[dict]:
        """The volatile run record written beside the manifest (MANIFEST.run.json), if any."""
        if self.path == "-":
            return None
        try:
            with open(self.path + ".run.json", encoding="utf-8") as f:
                rec = json.load(f)
            return rec if isinstance(rec, dict) else None
        except (OSError, ValueError):
            return None


def read_sidecar(path: Optional[str]) -> Optional[str]:
    """The digest in a `sha256sum` line ("<hex>  <name>"), or None when absent or malformed."""
    if not path:
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return None
    first = text.strip().split("\n", 1)[0].strip()
    hexd = first.split()[0].lower() if first else ""
    return hexd if _HEX64.match(hexd) else None


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def check_manifest_digest(path: str, expected: Optional[str] = None) -> Tuple[str, str, Optional[str]]:
    """(status, actual, expected): status is ok, mismatch or absent (no sidecar and no expected digest)."""
    if not os.path.isfile(path):
        raise ManifestError("no such file", path)
    actual = file_sha256(path)
    if expected is None:
        side = path + ".sha256"
        expected = read_sidecar(side)
        if expected is None:
            return ("malformed" if os.path.exists(side) else "absent"), actual, None
    expected = expected.strip().lower()
    return ("ok" if actual == expected else "mismatch"), actual, expected


def top_path(locator: str) -> str:
    """The on-disk file a locator starts from (its path step, still escaped)."""
    for i, c in enumerate(locator):
        if c == "!" or c == "#":
            return locator[:i]
    return locator
