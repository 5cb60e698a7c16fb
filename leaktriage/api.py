"""The library API: scan a dump into a manifest. The CLI is a thin layer over this."""
from __future__ import annotations

import dataclasses
import os
import platform
import resource
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from leaktriage.version import __version__
from leaktriage.model import records
from leaktriage.scanner.pipeline import Options, RunStats, executor_for, run_units
from leaktriage.scanner.sinks import (ManifestWriter, UsageError, inside, remove_stale_spills, spill_prefix,
                                      write_sidecars)
from leaktriage.scanner.summary import Tally
from leaktriage.scanner.walk import lstat_in_dump, walk

__all__ = ["Options", "ScanResult", "scan", "UsageError"]


@dataclass
class ScanResult:
    summary: dict
    manifest: str
    manifest_sha256: str
    records: int
    run: dict
    interrupted: bool = False
    units_done: int = 0


class _NullBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _progress_bar(total_bytes: int, files: int, enabled: bool):
    if not enabled:
        return _NullBar()
    from tqdm import tqdm
    return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc="scanning %d files" % files, dynamic_ncols=True, leave=False)


def scan(root: str, output: str, options: Optional[Options] = None, *, progress: bool = False,
         run_record: Optional[str] = None, argv: Optional[list] = None, resume: bool = False) -> ScanResult:
    """Scan the dump at `root` and write the manifest to `output` ("-" for stdout).

    With resume=True, carry on an interrupted scan to the same output (see sinks.py).

    `root` is a folder, or a single regular file scanned as a one-file dump (its one entry is the
    file's name; the manifest may be written beside it, never onto it).

    Raises UsageError for a missing or unreadable dump root or an output inside the dump.
    """
    opts = options or Options()
    if not os.path.exists(root):
        raise UsageError("dump %s does not exist" % root)
    if os.path.isdir(root):
        if not os.access(root, os.R_OK | os.X_OK):
            raise UsageError("dump %s cannot be read" % root)
    elif os.path.isfile(root):
        # a one-file dump (`leaktriage scan Inbox.mbox`): its one entry is the file's name
        if not os.access(root, os.R_OK):
            raise UsageError("dump %s cannot be read" % root)
        _refuse_writing_onto(root, output, run_record)
    else:
        raise UsageError("dump %s is neither a folder nor a regular file" % root)
    for a in opts.algorithms:
        if a not in ("sha256", "md5", "sha1"):
            raise UsageError("unknown digest %r (choose from sha256, md5, sha1)" % a)
    if opts.keystore:
        from leaktriage.auth.keystore import KeyStoreError
        from leaktriage.scanner.pipeline import load_keystore
        try:
            load_keystore(opts.keystore)
        except (KeyStoreError, OSError) as exc:
            raise UsageError("DKIM key store %s: %s" % (opts.keystore, exc))
    if output != "-" and os.path.isdir(output):
        raise UsageError("-o %s is a folder: give the manifest file to write (e.g. -o %s)"
                         % (output, os.path.join(output, "manifest.jsonl")))
    if run_record is not None:
        if os.path.isdir(run_record):
            raise UsageError("--run-record %s is a folder: give the file to write" % run_record)
        if inside(run_record, root):
            raise UsageError("refusing to write the run record %s inside the dump %s: evidence is read-only"
                             % (run_record, root))
    started = time.time()
    t0 = time.monotonic()
    cpu0, children0 = _cpu(), _children_cpu()
    header = {"options": opts.manifest_options(), "leaktriage": __version__, "schema": records.SCHEMA_VERSION}
    writer = ManifestWriter(output, dump_root=root, header=header, resume=resume)
    entries = list(walk(root))
    tally = Tally()
    first = 0
    if resume:
        import base64
        import json
        for u in writer.resumed_units:
            i = u["unit"]
            if i >= len(entries) or base64.b64encode(entries[i].rel).decode("ascii") != u["rel"] \
                    or entries[i].size != u["size"] or u.get("stamp") != file_stamp(root, entries[i].rel):
                writer.close(complete=False)
                raise UsageError("the dump changed since the interrupted scan (at %s); rescan without --resume"
                                 % base64.b64decode(u["rel"]).decode("utf-8", "replace"))
        first = len(writer.resumed_units)
        with open(writer.partial, "rb") as f:
            for line in f:
                tally.add(json.loads(line))
    todo = entries[first:]
    total = sum(e.size for e in todo if e.entry == "file")
    # a private directory for the lines of very large units (pipeline.SPILL_BYTES), beside the
    # manifest (never in the dump: the writer refused that), removed however the scan ends
    spill_parent = os.path.dirname(os.path.abspath(output)) if output != "-" else None
    remove_stale_spills(spill_parent)     # left by a scan killed with kill -9 (its process is gone)
    spill_dir = tempfile.mkdtemp(prefix=spill_prefix(), dir=spill_parent)
    opts = dataclasses.replace(opts, spill_dir=spill_dir)
    cpu_walk = _cpu() - cpu0
    wall_walk = time.monotonic() - t0
    engine = None
    if opts.cluster:
        # the workers read the dump at the same absolute path and check that they see this walk
        from leaktriage.cluster import DaskExecutor
        try:
            engine = DaskExecutor(opts.cluster, os.path.abspath(root), entries, opts.keystore)
        except Exception:
            shutil.rmtree(spill_dir, ignore_errors=True)
            writer.close(complete=False)
            raise
        opts = dataclasses.replace(opts, executor=engine, workers=engine.workers)
        scan_root = os.path.abspath(root)
    else:
        scan_root = root
        opts = dataclasses.replace(opts, executor=executor_for(opts))
    bar = _progress_bar(total, len(todo), progress)
    interrupted = False
    try:
        for res in run_units(scan_root, todo, opts):
            if res.spill:
                writer.write_file(res.spill)
                os.unlink(res.spill)
            writer.write_block(res.data, res.count)
            if res.tally is not None:
                tally.merge(res.tally)
            if res.last:
                # the stamp --resume compares: taken by the worker that read the file (a stat per
                # file in this process is serial work: minutes for millions of files on a network mount)
                writer.unit_done(res.entry.rel, res.entry.size,
                                 res.stamp if res.stamp is not None else file_stamp(root, res.entry.rel))
            bar.update(res.size)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        if engine is not None:
            engine.shutdown()
        raise
    finally:
        bar.close()
        shutil.rmtree(spill_dir, ignore_errors=True)
    cpu_loop = _cpu() - cpu0 - cpu_walk
    wall_loop = time.monotonic() - t0 - wall_walk
    summary = None
    if not interrupted:
        groups = tally.duplicate_groups()
        for g in groups:
            writer.write_line(records.dumps(g))
        boxes = tally.mailbox_records()
        for m in boxes:
            writer.write_line(records.dumps(m))
        summary = tally.summary(opts.manifest_options(),
                                {"name": "leaktriage", "version": __version__,
                                 "schema": records.SCHEMA_VERSION}, groups, boxes)
        writer.write_line(records.dumps(summary))
    digest = writer.close(complete=not interrupted)
    elapsed = time.monotonic() - t0
    stats = opts.executor.stats or RunStats()
    engine_info = opts.executor.info()
    if engine is not None:
        engine.shutdown()
    cpu_main = _cpu()
    children = _children_cpu() - children0
    inline = 0.0
    if engine is not None:
        # the workers are not this process's children: their tasks report their own CPU time
        workers_cpu = stats.task_cpu
    elif opts.workers <= 1:
        # one worker: the tasks ran in this process (but for those isolated in a child)
        inline = max(0.0, stats.task_cpu - children)
        workers_cpu = inline + children
    else:
        workers_cpu = children
    run = {
        "record": "run", "v": records.SCHEMA_VERSION, "locator": ".", "volatile": True,
        "dump_root": os.path.abspath(root), "manifest": output, "manifest_sha256": digest,
        "manifest_records": writer.records, "manifest_bytes": writer.bytes,
        "started": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(elapsed, 3), "workers": engine_info.get("workers", opts.workers),
        "engine": engine_info, "host": socket.gethostname(),
        "python": platform.python_version(), "platform": platform.platform(),
        "leaktriage": __version__, "argv": argv or [], "completed": not interrupted, "resumed": resume,
        "dependencies": _versions(), "dkim_keys_path": opts.keystore,
        "cpu_seconds": _cpu_record(cpu_main - inline, cpu_main - cpu0 - inline, cpu_walk, cpu_loop - inline,
                                   workers_cpu, stats),
        # where the wall time went; worker_idle: worker-seconds of the scan loop not spent on a task's
        # CPU (waiting for a task, for its data, or for a CPU on a busy machine)
        "wall_seconds": {"walk": round(wall_walk, 3), "tasks": round(wall_loop, 3),
                         "end": round(max(0.0, elapsed - wall_walk - wall_loop), 3),
                         "worker_idle": round(max(0.0, engine_info.get("workers", 1) * wall_loop - stats.task_cpu), 3)},
        "tasks": {"count": stats.tasks, "split_files": stats.splits, "ranges": stats.ranges,
                  "ranges_redone": stats.ranges_redone, "resubmitted": stats.resubmitted,
                  "isolated": stats.isolated},
    }
    if not interrupted:
        write_sidecars(output, digest, run, run_record)
    return ScanResult(summary or {}, output, digest, writer.records, run, interrupted, writer.done_units)


def _cpu() -> float:
    """CPU seconds of this process so far (every thread: the pool's and Dask's too)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the local pool's workers, once joined)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cpu_record(process: float, scan: float, walk: float, loop: float, workers: float, stats) -> dict:
    """The main process's CPU seconds beside the workers'. `main` is the whole process (start-up
    and imports included), `main_scan` the part spent in scan(): walking the dump (`main_walk`),
    receiving and writing the results (`main_loop`), then the duplicate groups, mailbox records,
    summary and final files (`main_end`). `workers`: the local pool's processes (rusage of the
    children), or on a cluster the sum of the tasks' own CPU time (`tasks`). With one worker the
    tasks run in the main process: their time is counted as the workers', not the main's."""
    out = {"main": round(process, 3), "main_scan": round(scan, 3), "main_walk": round(walk, 3),
           "main_loop": round(loop, 3), "main_end": round(max(0.0, scan - walk - loop), 3),
           "workers": round(workers, 3), "tasks": round(stats.task_cpu, 3),
           "longest_task": round(stats.longest_task_cpu, 3)}
    total = process + workers
    out["main_share"] = round(process / total, 5) if total > 0 else None
    return out


def file_stamp(root: str, rel: bytes) -> Optional[list]:
    """[size, mtime, ctime (ns), inode] of a dump entry, as --resume compares them: a file edited in
    place at the same size, or replaced, no longer matches (ctime cannot be set back by users)."""
    try:
        st = lstat_in_dump(root, rel)       # past PATH_MAX too; a one-file dump is the root itself
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _refuse_writing_onto(evidence: str, output: str, run_record: Optional[str]) -> None:
    """A one-file dump: no file the scan writes (the manifest, its partial file and journal, its
    sidecars, the run record) may be the evidence file itself (same path, link or hard link)."""
    if output == "-":
        targets = [run_record] if run_record else []
    else:
        targets = [output, output + ".partial", output + ".partial.ckpt", output + ".sha256",
                   run_record or output + ".run.json"]
    ev = os.stat(evidence)
    for t in targets:
        same = os.path.realpath(t) == os.path.realpath(evidence)
        if not same:
            try:
                st = os.stat(t)
                same = (st.st_dev, st.st_ino) == (ev.st_dev, ev.st_ino)
            except OSError:
                pass
        if same:
            raise UsageError("refusing to write %s: it is the dump %s (evidence is read-only)" % (t, evidence))


def _versions() -> dict:
    out = {}
    from importlib import metadata
    for name in ("python-magic", "chardet", "dkimpy", "extract-msg", "libpff-python", "py7zr", "compressed-rtf",
                 "pybase64"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    from leaktriage.content.types import magic_version
    mv = magic_version()
    if mv:
        out["libmagic"] = mv
    return out
