"""The one way to read a manifest: streaming, checked line by line, never the whole file in memory.

    m = Manifest("manifest.jsonl")          # or Manifest("-", stream=stdin)
    for rec in m.records():                 # dicts, in file order
        ...
    m.summary, m.sha256, m.lines            # known once records() is exhausted
    m.sidecar()                             # ("ok" | "mismatch" | "absent" | "malformed", expected digest)

Every command that reads a manifest (report, show, export, extract, verify, index, keys recover,
scan --resume) reads it through this class, so every one of them refuses the same things with the
same message and exit code:

- before the first record, a manifest with a MANIFEST.sha256 beside it is hashed and compared with
  it: a manifest changed after the scan raises IntegrityError (exit 5) unless the caller allows it
  (allow_modified=True, the commands' --allow-modified-manifest);
- every line: valid UTF-8 JSON object on one line, at most MAX_LINE bytes, with `record`, `v` and
  `locator`; a schema version this leaktriage can read; a known record kind; every known field of
  the right JSON type (a hand-edited field of the wrong type is a damaged manifest, not a bug);
- nothing after the `summary` record; the file ends with a complete line and a `summary` record.

Anything else raises ManifestError (exit 3) or SchemaVersionError (exit 4) with the line number.
Fast paths keep the checks: `want` skips decoding the lines a command does not need (they are
still hashed and checked for shape), and pieces() splits a file at line boundaries so that
several processes can read it (report), the last piece checking the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple

from leaktriage.errors import IntegrityError, ManifestError, SchemaVersionError, UsageError
from leaktriage.model.records import COMMON, FIELDS, SCHEMA_VERSION

KINDS = ("file", "message", "part", "problem", "duplicate_group", "mailbox", "summary")
MAX_LINE = 64 << 20   # a scan never writes a longer line (header values are capped); longer = not ours
_DECODER = json.JSONDecoder()
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
               "array": (list,), "object": (dict,)}


def _field_types() -> Dict[str, Dict[str, Tuple[type, ...]]]:
    out: Dict[str, Dict[str, Tuple[type, ...]]] = {}
    for kind, fields in FIELDS.items():
        t = {}
        for name, (schema, _desc) in list(COMMON.items()) + list(fields.items()):
            jt = schema.get("type")
            if jt in _JSON_TYPES:
                t[name] = _JSON_TYPES[jt]
            elif "enum" in schema:
                t[name] = (str,)
        out[kind] = t
    return out


FIELD_TYPES = _field_types()
# arrays whose items commands dereference as objects
_OBJECT_ITEMS = {"from", "sender", "reply_to", "to", "cc", "bcc", "headers", "dkim", "received",
                 "hidden_timestamps", "indicators"}


def check_types(rec: dict, path: Optional[str], n: int) -> None:
    """Every known field of the record has its JSON type (bool is not an integer here)."""
    types = FIELD_TYPES.get(rec["record"])
    if not types:
        return
    for k, v in rec.items():
        t = types.get(k)
        if t is None:
            continue
        if not isinstance(v, t) or (isinstance(v, bool) and bool not in t):
            raise ManifestError("field %r of a %s record is %s, not %s: the line was edited or damaged"
                                % (k, rec["record"], type(v).__name__, "/".join(x.__name__ for x in t)), path, n)
        if k in _OBJECT_ITEMS and isinstance(v, list) and any(not isinstance(x, dict) for x in v):
            raise ManifestError("field %r of a %s record holds something that is not an object: the line was "
                                "edited or damaged" % (k, rec["record"]), path, n)


class Manifest:
    """A manifest file (or "-" for standard input), read in one streaming pass per records() call."""

    def __init__(self, path: str, stream: Optional[BinaryIO] = None, *, allow_modified: bool = False):
        self.path = path
        self._stream = stream
        self.allow_modified = allow_modified
        self.summary: Optional[dict] = None
        self.sha256: Optional[str] = None
        self.checked_sha256: Optional[str] = None   # the whole file's digest, hashed before reading
        self.lines = 0
        self.bytes = 0
        if path != "-" and stream is None:
            # a wrong path is a usage error (exit 2), as in every command; exit 3 says a manifest is damaged
            if not os.path.exists(path):
                raise UsageError("%s: no such file" % path)
            if os.path.isdir(path):
                raise UsageError("%s is a folder, not a manifest file" % path)

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

    # -- integrity before the first record -----------------------------------------------------
    def check_digest(self) -> str:
        """Compare the file with its MANIFEST.sha256 (once): ok, absent, malformed; a mismatch raises
        IntegrityError unless allow_modified."""
        if self.path == "-" or self._stream is not None:
            return "absent"
        side = self.sidecar_path()
        expected = read_sidecar(side)
        if expected is None:
            return "malformed" if side and os.path.exists(side) else "absent"
        if self.checked_sha256 is None:
            try:
                self.checked_sha256 = file_sha256(self.path)
            except OSError as exc:
                raise ManifestError("cannot read: %s" % (exc.strerror or exc), self.path)
        if self.checked_sha256 != expected:
            if self.allow_modified:
                return "mismatch"
            raise IntegrityError("%s differs from its MANIFEST.sha256 (SHA-256 %s, recorded %s): it was changed "
                                 "after the scan or damaged in transit, so its figures cannot be trusted. Use the "
                                 "original manifest, or pass --allow-modified-manifest to read it anyway"
                                 % (self.path, self.checked_sha256, expected))
        return "ok"

    # -- records ---------------------------------------------------------------------------------
    def records(self, *, raw: bool = False, want: Optional[Callable[[bytes], bool]] = None,
                partial: bool = False, first_line: int = 0) -> Iterator:
        """Every record, in order. With raw=True yields (line_bytes, record) pairs.

        want: optional predicate on the raw line; lines it rejects are still read, hashed and checked
        for truncation and shape, but not decoded nor yielded (a fast path). It only judges lines in
        the compact form a scan writes; other lines are always decoded, checked and yielded, so a
        caller must still filter the records it gets by their fields.
        partial: the stream is a piece of a manifest (or the partial file of an interrupted scan):
        no summary record is required at its end. first_line: line number before the piece."""
        if not partial:
            self.check_digest()
        fh, close = self._open()
        sha = hashlib.sha256()
        n = first_line
        size = 0
        summary = None
        loads = _DECODER.decode
        path = self.path
        readline = fh.readline
        try:
            while True:
                line = readline(MAX_LINE + 1)
                if not line:
                    break
                n += 1
                size += len(line)
                sha.update(line)
                if summary is not None:
                    raise ManifestError("a record after the summary record (the summary must be the last line; "
                                        "lines were appended or files concatenated)", path, n)
                if not line.endswith(b"\n"):
                    if len(line) > MAX_LINE:
                        raise ManifestError("a line longer than %d MiB: not a line leaktriage writes (the file was "
                                            "changed or is not a manifest)" % (MAX_LINE >> 20), path, n)
                    if readline(1):
                        raise ManifestError("a line without its newline", path, n)
                    raise ManifestError("truncated: the last line is cut short (%d bytes, no newline); the scan "
                                        "was interrupted or the copy is incomplete" % len(line), path, n)
                # the fast path judges only lines in the compact form a scan writes; any other line
                # (hand-edited: spaces, escapes) is decoded, checked and yielded whatever `want` says
                if want is not None and n > 1 and b'"record":"' in line and not want(line) \
                        and b'"record":"summary"' not in line:
                    if not (line.startswith(b"{") and line.endswith(b"}\n")):
                        raise ManifestError("not a JSON object on one line: the line was edited or damaged", path, n)
                    continue
                try:
                    rec = loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ManifestError("line is not UTF-8 (the file was changed or is not a manifest)", path, n)
                except RecursionError:
                    raise ManifestError("JSON nested too deeply: not a line leaktriage writes", path, n)
                except ValueError as exc:
                    if not line.strip():
                        raise ManifestError("empty line (a scan never writes one: the file was edited)", path, n)
                    msg = getattr(exc, "msg", str(exc))
                    col = getattr(exc, "colno", None)
                    raise ManifestError("not valid JSON (%s%s): the line was edited or damaged; rescan the "
                                        "dump or get a fresh copy of the manifest"
                                        % (msg, " at column %d" % col if col else ""), path, n)
                if not isinstance(rec, dict) or not isinstance(rec.get("record"), str) \
                        or not isinstance(rec.get("locator"), str) or "v" not in rec:
                    if n == 1:
                        raise ManifestError("not a leaktriage manifest (the first line is not a record with "
                                            "'record', 'v' and 'locator')", path, n)
                    raise ManifestError("not a manifest record (needs 'record', 'v' and 'locator'): the line "
                                        "was edited", path, n)
                v = rec["v"]
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ManifestError("schema version 'v' is not an integer: %r" % (v,), path, n)
                if v > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        "written with manifest schema version %d; this leaktriage reads versions up to %d: "
                        "upgrade leaktriage (pip install -U leaktriage)" % (v, SCHEMA_VERSION), path, n)
                kind = rec["record"]
                if kind == "summary":
                    summary = rec
                elif kind not in KINDS:
                    if kind == "run":
                        raise ManifestError("a 'run' record: this is the sidecar MANIFEST.run.json, not the "
                                            "manifest", path, n)
                    raise ManifestError("unknown record kind %r" % kind, path, n)
                check_types(rec, path, n)
                yield (line, rec) if raw else rec
        finally:
            if close:
                fh.close()
        self.lines = n - first_line
        self.bytes = size
        self.sha256 = sha.hexdigest()
        self.summary = summary
        if partial:
            return
        if n == 0:
            raise ManifestError("empty file: not a manifest", path)
        if summary is None:
            raise ManifestError("truncated: %d lines and no summary record at the end; the scan was interrupted "
                                "or the copy is incomplete (rescan the dump)" % n, path, n)
        if self.checked_sha256 is not None and self.sha256 != self.checked_sha256:
            raise ManifestError("the file changed while it was being read", path)

    # -- pieces, for several processes --------------------------------------------------------------
    def pieces(self, n: int) -> List[Tuple[int, int, bool]]:
        """(start, end, last) byte ranges cut at line boundaries, for reading in parallel."""
        size = os.path.getsize(self.path)
        bounds = [0]
        with open(self.path, "rb") as f:
            for i in range(1, n):
                f.seek(size * i // n)
                f.readline()
                pos = f.tell()
                if bounds[-1] < pos < size:
                    bounds.append(pos)
        bounds.append(size)
        return [(bounds[i], bounds[i + 1], i == len(bounds) - 2) for i in range(len(bounds) - 1)]

    def piece(self, start: int, end: int) -> "Manifest":
        """The bytes [start, end) of this manifest as a Manifest of its own (read with partial=True
        unless it is the last piece)."""
        return Manifest(self.path, stream=_LinesBetween(self.path, start, end), allow_modified=True)

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
        except (OSError, ValueError, RecursionError):
            return None


class _LinesBetween:
    """A binary stream over the bytes [start, end) of a file (readline only)."""

    def __init__(self, path: str, start: int, end: int):
        self.f = open(path, "rb")
        self.f.seek(start)
        self.left = end - start

    def readline(self, limit: int = -1) -> bytes:
        if self.left <= 0:
            self.f.close()
            return b""
        cap = self.left if limit < 0 else min(limit, self.left)
        line = self.f.readline(cap)
        self.left -= len(line)
        if not line:
            self.f.close()
        return line

    def close(self) -> None:
        self.f.close()


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
        raise UsageError("%s: no such file" % path)
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
