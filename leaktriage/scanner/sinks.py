"""The only module that writes bytes: the manifest, its checkpoints, its digest and its run record.

A scan to a file writes `MANIFEST.partial` and a checkpoint journal `MANIFEST.partial.ckpt` (one JSON
line per finished unit of work: its index, path, size and the manifest length after it). When the
scan completes, the partial file becomes MANIFEST and the journal is removed. After a crash, Ctrl-C
or `kill -9`, `--resume` truncates the partial file to the last checkpoint, checks that the dump
still starts the same way, and carries on: the final manifest is byte-identical to an uninterrupted
run because every unit's records depend on that unit alone.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
from typing import BinaryIO, List, Optional, Tuple

from leaktriage import leftovers
from leaktriage.errors import UsageError, raise_if_interrupted


def inside(path: str, root: str) -> bool:
    p = os.path.realpath(os.path.abspath(path))
    r = os.path.realpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


SPILL_PREFIX = ".leaktriage-spill-"


def spill_prefix() -> str:
    """Name prefix of this scan's spill directory: host and process, so that a later scan can tell
    a directory left by a killed scan from one in use."""
    return "%s%s-" % (SPILL_PREFIX, leftovers.owner())


def remove_stale_spills(folder: Optional[str]) -> List[str]:
    """Remove the spill directories in folder (system temp when None) left by scans of this host
    whose process no longer runs (kill -9, power loss). Returns what was removed."""
    import tempfile
    return leftovers.remove_left_by_dead(folder or tempfile.gettempdir(), SPILL_PREFIX)


def partial_paths(output: str) -> Tuple[str, str]:
    return output + ".partial", output + ".partial.ckpt"


class ManifestWriter:
    """Writes JSON Lines records and keeps a running SHA-256 of every byte written."""

    FSYNC_EVERY = 5.0  # seconds between fsyncs of the partial manifest and its journal
    FLUSH_EVERY = 0.2  # seconds between hand-overs of both to the system

    def __init__(self, output: str, dump_root: Optional[str] = None, header: Optional[dict] = None,
                 resume: bool = False):
        self.output = output
        self.sha = hashlib.sha256()
        self.records = 0
        self.bytes = 0
        self.done_units = 0
        self._last_sync = self._last_flush = time.monotonic()
        self.ckpt = None
        if output == "-":
            if resume:
                raise UsageError("--resume needs a manifest file (-o FILE), not stdout")
            self.fh: BinaryIO = sys.stdout.buffer
            self._close = False
            return
        if dump_root and inside(output, dump_root):
            raise UsageError("refusing to write %s inside the dump %s: evidence is read-only" % (output, dump_root))
        d = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(d):
            raise UsageError("output folder %s does not exist" % d)
        self.partial, self.ckpt_path = partial_paths(output)
        self._close = True
        self.header = header or {}
        self.resumed_units: List[dict] = []
        try:
            if resume:
                self._open_resume()
            else:
                self.fh = open(self.partial, "wb")
                self.ckpt = open(self.ckpt_path, "w", encoding="utf-8")
                self.ckpt.write(json.dumps({"header": self.header}, sort_keys=True) + "\n")
                self.ckpt.flush()
        except OSError as exc:
            raise UsageError("cannot write %s: %s" % (output, exc.strerror or exc))

    def _open_resume(self) -> None:
        if not (os.path.exists(self.partial) and os.path.exists(self.ckpt_path)):
            raise UsageError("nothing to resume: %s and its checkpoint journal are not there" % self.partial)
        with open(self.ckpt_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        try:
            head = json.loads(lines[0])["header"]
        except (ValueError, KeyError, IndexError):
            raise UsageError("the checkpoint journal %s is damaged; rescan without --resume" % self.ckpt_path)
        if head != self.header:
            raise UsageError("the interrupted scan used other options (%s); rescan without --resume, or "
                             "resume with the same options" % json.dumps(head, sort_keys=True))
        units = []
        for ln in lines[1:]:
            try:
                units.append(json.loads(ln))
            except ValueError:
                break  # a journal line cut by the crash: ignore it and what follows
        size = os.path.getsize(self.partial)
        while units and units[-1]["offset"] > size:
            units.pop()
        keep = units[-1]["offset"] if units else 0
        with open(self.partial, "r+b") as f:
            f.truncate(keep)
        # rebuild the running digest and counts from what is kept
        with open(self.partial, "rb") as f:
            for line in f:
                self.sha.update(line)
                self.records += 1
                self.bytes += len(line)
        self.resumed_units = units
        self.done_units = len(units)
        self.fh = open(self.partial, "ab")
        self.ckpt = open(self.ckpt_path, "w", encoding="utf-8")
        self.ckpt.write(json.dumps({"header": self.header}, sort_keys=True) + "\n")
        for u in units:
            self.ckpt.write(json.dumps(u, sort_keys=True) + "\n")
        self.ckpt.flush()

    def write_line(self, line: str) -> None:
        self.write_block(line.encode("utf-8") + b"\n", 1)

    def write_block(self, data: bytes, count: int) -> None:
        """count whole lines, already encoded, each ending in a line feed."""
        self.sha.update(data)
        self.fh.write(data)
        self.records += count
        self.bytes += len(data)

    def write_file(self, path: str) -> None:
        """Copy whole lines, already encoded, from a file (a unit's spilled lines; their count
        comes with the unit's write_block)."""
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                self.sha.update(chunk)
                self.fh.write(chunk)
                self.bytes += len(chunk)

    def unit_done(self, rel: bytes, size: int, stamp: Optional[List[int]] = None) -> None:
        """Journal that one unit's records are all written. Both files are handed to the system
        together every FLUSH_EVERY seconds (manifest first), not after every file; a journal line
        that got ahead of the manifest is dropped on resume (its offset is past the end), so a
        crash costs at most the units of the last FLUSH_EVERY seconds."""
        self.done_units += 1
        if self.ckpt is None:
            return
        # json.dumps(unit, sort_keys=True), spelt out: one line per file of the dump, written by the
        # main process, whose time is the scan's serial part
        stamp_s = (', "stamp": [%s]' % ", ".join("%d" % x for x in stamp)) if stamp is not None else ""
        self.ckpt.write('{"offset": %d, "rel": "%s", "size": %d%s, "unit": %d}\n'
                        % (self.bytes, base64.b64encode(rel).decode("ascii"), size, stamp_s, self.done_units - 1))
        now = time.monotonic()
        if now - self._last_flush < self.FLUSH_EVERY:
            return
        self._last_flush = now
        self.fh.flush()
        self.ckpt.flush()
        if now - self._last_sync > self.FSYNC_EVERY:
            os.fsync(self.fh.fileno())
            os.fsync(self.ckpt.fileno())
            self._last_sync = now

    def close(self, complete: bool = True) -> str:
        self.fh.flush()
        if self._close:
            os.fsync(self.fh.fileno())
            self.fh.close()
            if self.ckpt is not None:
                self.ckpt.close()
            if complete:
                # a Ctrl-C swallowed by an interpreter callback (os.fork's after-fork hooks) ran the
                # scan to its end: the partial file and its journal stay, for --resume, as they
                # do after any Ctrl-C, and nothing looks complete
                raise_if_interrupted()
                os.replace(self.partial, self.output)
                os.unlink(self.ckpt_path)
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
