"""The only module that writes bytes: the manifest, its digest and its run record."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import BinaryIO, Optional


class UsageError(Exception):
    """A problem with what the user asked for (shown without a traceback)."""


def inside(path: str, root: str) -> bool:
    p = os.path.realpath(os.path.abspath(path))
    r = os.path.realpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


class ManifestWriter:
    """Writes JSON Lines records and keeps a running SHA-256 of every byte written."""

    def __init__(self, output: str, dump_root: Optional[str] = None):
        self.output = output
        self.sha = hashlib.sha256()
        self.records = 0
        self.bytes = 0
        if output == "-":
            self.fh: BinaryIO = sys.stdout.buffer
            self._close = False
        else:
            if dump_root and inside(output, dump_root):
                raise UsageError("refusing to write %s inside the dump %s: evidence is read-only" % (output, dump_root))
            d = os.path.dirname(os.path.abspath(output))
            if not os.path.isdir(d):
                raise UsageError("output folder %s does not exist" % d)
            try:
                self.fh = open(output, "wb")
            except OSError as exc:
                raise UsageError("cannot write %s: %s" % (output, exc.strerror or exc))
            self._close = True

    def write_line(self, line: str) -> None:
        b = line.encode("utf-8") + b"\n"
        self.sha.update(b)
        self.fh.write(b)
        self.records += 1
        self.bytes += len(b)

    def close(self) -> str:
        self.fh.flush()
        if self._close:
            self.fh.close()
        return self.sha.hexdigest()


def sidecar_paths(output: str) -> dict:
    return {"sha256": output + ".sha256", "run": output + ".run.json"}


def write_sidecars(output: str, digest: str, run: dict, run_path: Optional[str] = None) -> None:
    """MANIFEST.sha256 (sha256sum -c format) and the run record (volatile facts) beside the manifest."""
    if output != "-":
        with open(sidecar_paths(output)["sha256"], "w", encoding="utf-8") as f:
            f.write("%s  %s\n" % (digest, os.path.basename(output)))
    path = run_path or (sidecar_paths(output)["run"] if output != "-" else None)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(run, sort_keys=True, ensure_ascii=False, indent=1) + "\n")
