#!/usr/bin/env python3
"""leaktriage speed and memory benchmark: one command, one session, the same files for every tool.

    python3 benchmarks/run.py                    # 10,000 messages (~1.2 GB), writes docs/benchmarks.md
    python3 benchmarks/run.py --messages 300     # quick smoke run
    python3 benchmarks/run.py --memory           # peak RSS on a ~2 GiB mbox and a 500 MiB attachment
    python3 benchmarks/run.py --profile          # cProfile of a 1-worker scan, top functions
    python3 benchmarks/run.py --scale --workers 2 --repeat 3   # main-process CPU share, Dask LocalCluster

What it does (see benchmarks/README.md for the method and how to read the table):
1. generates a dump with ../shared/bench/make_dump.py, cached in the work dir under a key made of its
   arguments and the generator's own digest (re-runs reuse it);
2. installs the peers (eml_parser, mail-parser) in a virtualenv of their own in the work dir;
3. runs each tool as its own process, measuring wall time (perf_counter around the process), CPU
   time and peak RSS (``os.wait4`` rusage of that child, plus the summed RSS of its process tree
   sampled from /proc, which counts leaktriage's worker processes);
4. writes a Markdown table to docs/benchmarks.md (its "speed" or "memory" section is replaced, one
   line is appended to its "history") and prints it.

Peers parse only loose message files (.eml files and Maildir files), never the mbox/zip containers,
so the comparison runs on a mirror of hard links of exactly those files; leaktriage also scans the
whole dump, reported separately. Only the standard library is used here; the working tree's
leaktriage is run with this interpreter (its dependencies must be installed, e.g. ``pip install -e .``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(__file__).resolve().parent / "peers"
MAKE_DUMP = (REPO / ".." / "shared" / "bench" / "make_dump.py").resolve()
DOC = REPO / "docs" / "benchmarks.md"
DEFAULT_WORK_DIR = Path("/tmp/leaktriage-bench")

# Peers, pinned so that figures from different days compare; bump deliberately.
PEER_PACKAGES = ["eml_parser==4.4.0", "mail-parser==4.8.0"]

# The targets of issue 6, as ratios measured in one run.
TARGET_EML_PARSER = 3.0      # leaktriage 1 worker at least 3x faster than eml_parser
TARGET_MAIL_PARSER = 1.5     # ... and at least 1.5x faster than mail-parser
TARGET_SCALING = 1.7         # 2 workers at least 1.7x the 1-worker speed
TARGET_FLOOR = 8.0           # no more than 8x the read+SHA-256 floor
TARGET_MEMORY_MIB = 512      # "a few hundred MB of RAM": our reading, see benchmarks/README.md

MIB = 1024 * 1024
MB = 1000 * 1000


# --------------------------------------------------------------------------------------------------
# measuring one process
# --------------------------------------------------------------------------------------------------

@dataclass
class Measure:
    """One process run: wall and CPU seconds, peak memory, exit code, captured output."""
    label: str
    wall: float = 0.0
    cpu: float = 0.0
    maxrss_mib: float = 0.0       # largest single process (rusage of the child and its reaped children)
    tree_rss_mib: float = 0.0     # largest sampled sum of RSS over the child's process tree
    tree_anon_mib: float = 0.0    # same, anonymous memory only (excludes mapped file pages)
    returncode: int = 0
    others: float = 0.0           # average CPUs kept busy by *other* processes during the run
    busiest_cpu: float = 0.0      # CPU seconds of the busiest single process of the tree (last sample)
    stdout_path: Optional[Path] = None
    stderr_tail: str = ""
    info: dict = field(default_factory=dict)

    @property
    def peak_mib(self) -> float:
        return max(self.maxrss_mib, self.tree_rss_mib)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


_PAGE = os.sysconf("SC_PAGE_SIZE")
_HZ = os.sysconf("SC_CLK_TCK")


def _busy_cpu_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (all CPUs, /proc/stat), 0 if unknown."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)          # idle + iowait
        guest = sum(v[8:10]) if len(v) > 9 else 0            # already counted in user/nice
        return (sum(v) - idle - guest) / _HZ
    except (OSError, ValueError):
        return 0.0


def _tree_rss_bytes(root_pid: int, cpu_by_pid: Optional[dict] = None) -> tuple[int, int]:
    """(RSS, anonymous RSS) summed over root_pid and all its descendants (Linux /proc); (0, 0) if gone.

    Anonymous = resident minus file-backed/shared pages (statm): what a process really holds, as
    opposed to pages of files it has mapped (leaktriage mmaps large files), which the kernel can drop."""
    total = anon = 0
    todo, seen = [root_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                fields = f.read().split()
            total += int(fields[1]) * _PAGE
            anon += (int(fields[1]) - int(fields[2])) * _PAGE
            if cpu_by_pid is not None:           # utime + stime, fields 14 and 15 of /proc/PID/stat
                with open(f"/proc/{pid}/stat", "rb") as f:
                    st = f.read().rsplit(b")", 1)[1].split()
                cpu_by_pid[pid] = (int(st[11]) + int(st[12])) / _HZ
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return total, anon


NICE = 0   # set by main() from --nice: niceness increment of the measured children (negative needs root)
AS_LIMIT = 0   # memory mode: address-space cap (bytes) of the measured children, so a runaway scan fails
               # with MemoryError instead of taking the machine's memory from everyone else


def _child_setup() -> None:
    if NICE:
        os.nice(NICE)
    if AS_LIMIT:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def measure(label: str, cmd: list[str], *, stdout_path: Path, env: Optional[dict] = None,
            cwd: Optional[Path] = None, sample_every: float = 0.05) -> Measure:
    """Run cmd as one child process; wall time around it, rusage from wait4, RSS of its tree sampled."""
    m = Measure(label, stdout_path=stdout_path)
    stderr_path = stdout_path.with_suffix(stdout_path.suffix + ".stderr")
    peak = [0, 0]
    cpu_by_pid: dict = {}
    done = threading.Event()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        busy0 = _busy_cpu_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                cwd=str(cwd) if cwd else None, preexec_fn=_child_setup if (NICE or AS_LIMIT) else None)

        def sample() -> None:
            while not done.is_set():
                rss, anon = _tree_rss_bytes(proc.pid, cpu_by_pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)
                done.wait(sample_every)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, ru = os.wait4(proc.pid, 0)
        m.wall = time.perf_counter() - t0
        busy = _busy_cpu_seconds() - busy0
        done.set()
        sampler.join()
    proc.returncode = m.returncode = os.waitstatus_to_exitcode(status)
    m.cpu = ru.ru_utime + ru.ru_stime
    m.maxrss_mib = ru.ru_maxrss * 1024 / MIB          # Linux: KiB
    m.tree_rss_mib = peak[0] / MIB
    m.tree_anon_mib = peak[1] / MIB
    m.busiest_cpu = max(cpu_by_pid.values(), default=0.0)
    m.others = max(0.0, busy - m.cpu) / m.wall if m.wall > 0 else 0.0
    m.stderr_tail = stderr_path.read_text(errors="replace")[-2000:]
    return m


# --------------------------------------------------------------------------------------------------
# work dir: dump cache, loose-file mirror, peers virtualenv
# --------------------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def file_sha256(path: Path, n: Optional[int] = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n] if n else h.hexdigest()


def can_sign() -> bool:
    """make_dump.py signs with dkimpy when it can import it (with the interpreter we run it with)."""
    r = subprocess.run([sys.executable, "-c", "import dkim"], capture_output=True)
    return r.returncode == 0


def dump_key(args) -> str:
    sign = "signed" if (not args.no_sign and can_sign()) else "unsigned"
    return (f"m{args.messages}-seed{args.seed}-scale{args.attachment_scale:g}-{sign}"
            f"-gen{file_sha256(MAKE_DUMP, 12)}")


def ensure_dump(work: Path, args) -> Path:
    """The cached dump directory for these arguments (generated on first use). Returns its folder."""
    key = dump_key(args)
    final = work / "dumps" / key
    if (final / "dump").is_dir() and (final / "dump.truth.jsonl").is_file():
        log(f"dump: cached {final}")
        return final
    partial = work / "dumps" / (key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [sys.executable, str(MAKE_DUMP), str(partial / "dump"), "--messages", str(args.messages),
           "--seed", str(args.seed), "--attachment-scale", str(args.attachment_scale), "--quiet"]
    if args.no_sign:
        cmd.append("--no-sign")
    log(f"dump: generating {args.messages} messages -> {final} (one-off)")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    log(f"dump: generated in {time.perf_counter() - t0:.1f} s")
    partial.rename(final)
    return final


def loose_message_paths(dump_dir: Path) -> list[str]:
    """Dump-relative paths of the loose message files (.eml and Maildir files), from the truth file."""
    rels = []
    with open(dump_dir / "dump.truth.jsonl", encoding="utf-8") as f:
        for line in f:
            loc = json.loads(line)["location"]
            if loc["container"] == "file":
                rels.append(loc["path"])
    return sorted(set(rels))


def ensure_mirror(dump_dir: Path) -> tuple[Path, Path, int, int]:
    """A folder of hard links to the loose message files only, and a NUL-separated list of them.

    Returns (mirror dir, file list, number of files, total bytes). Cached beside the dump.
    """
    mirror = dump_dir / "loose"
    listing = dump_dir / "loose.list"
    stamp = dump_dir / "loose.done"
    rels = loose_message_paths(dump_dir)
    if not stamp.is_file():
        shutil.rmtree(mirror, ignore_errors=True)
        for rel in rels:
            src, dst = dump_dir / "dump" / rel, mirror / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.parent.name in ("cur", "new", "tmp"):       # keep a Maildir recognisable as one
                for sub in ("cur", "new", "tmp"):
                    (dst.parent.parent / sub).mkdir(exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        listing.write_bytes(b"\0".join(os.fsencode(mirror / rel) for rel in rels))
        warm = dump_dir / "warmup"
        shutil.rmtree(warm, ignore_errors=True)
        for rel in rels[:20]:
            (warm / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(mirror / rel, warm / rel)
        (dump_dir / "warmup.list").write_bytes(b"\0".join(os.fsencode(warm / rel) for rel in rels[:20]))
        stamp.write_text(f"{len(rels)}\n")
        log(f"mirror: {len(rels)} loose message files linked into {mirror}")
    total = sum((mirror / rel).stat().st_size for rel in rels)
    return mirror, listing, len(rels), total


def tree_size(root: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                n += 1
                size += os.path.getsize(p)
    return n, size


def warm_page_cache(root: Path) -> None:
    """Read every file once so that no tool pays for the first (cold) read of the dump."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    while f.read(1 << 22):
                        pass


def ensure_peers_venv(work: Path) -> Optional[Path]:
    """Virtualenv (same interpreter) with the pinned peers. Returns its python, None if it cannot be made."""
    venv = work / "peers-venv"
    py = venv / "bin" / "python"
    stamp = venv / "peers.installed"
    want = "\n".join(PEER_PACKAGES) + "\n"
    if py.exists() and stamp.is_file() and stamp.read_text() == want:
        return py
    log(f"peers: installing {', '.join(PEER_PACKAGES)} into {venv}")
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
                       check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"peers: could not install them ({exc}); eml_parser and mail-parser are left out of this run")
        return None
    stamp.write_text(want)
    return py


PYCACHE: Optional[Path] = None   # set by main(): bytecode cache in the work dir, never in the repo


def base_env() -> dict:
    """Children's environment: byte-code caching on (as on a normal install) but kept in the work dir."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


SRC_ROOT: Path = REPO   # folder holding the leaktriage package that is measured (see snapshot_source)


def source_digest(pkg: Path) -> str:
    """SHA-256 over the relative paths and contents of a package's files (byte-code left out)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(pkg):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            p = Path(dirpath) / name
            h.update(str(p.relative_to(pkg)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def snapshot_source(work: Path) -> str:
    """Copy the working tree's leaktriage/ into the work dir and measure that copy.

    The package is edited while benchmarks run; without a snapshot, one session could time two
    versions (and compare manifests of different code). Content-addressed: an unchanged tree is
    copied once. Returns the digest."""
    global SRC_ROOT
    pkg = REPO / "leaktriage"
    digest = source_digest(pkg)
    root = work / "src" / digest[:16]
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(pkg, root / "leaktriage", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if source_digest(root / "leaktriage") != digest:     # edited while we copied: try once more
            shutil.rmtree(root)
            return snapshot_source(work)
        (root / "done").write_text(digest + "\n")
    SRC_ROOT = root
    return digest


def leaktriage_env() -> dict:
    """Environment running the snapshot of the working tree's leaktriage (not whatever copy is installed)."""
    env = base_env()
    env["PYTHONPATH"] = str(SRC_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("CI", None)
    return env


def check_leaktriage() -> None:
    r = subprocess.run([sys.executable, "-c", "import leaktriage.cli.main, leaktriage; print(leaktriage.__file__)"],
                       capture_output=True, text=True, env=leaktriage_env(), cwd=str(SRC_ROOT))
    if r.returncode != 0:
        sys.exit("benchmarks/run.py: cannot import the working tree's leaktriage with "
                 f"{sys.executable} (install its dependencies, e.g. `pip install -e .`):\n{r.stderr[-1500:]}")
    if Path(r.stdout.strip()).resolve().parent != (SRC_ROOT / "leaktriage").resolve():
        sys.exit(f"benchmarks/run.py: leaktriage imported from {r.stdout.strip()}, not from the snapshot "
                 f"{SRC_ROOT}: an installed copy shadows it")


# --------------------------------------------------------------------------------------------------
# running the tools
# --------------------------------------------------------------------------------------------------

def run_leaktriage(label: str, target: Path, out_dir: Path, workers: int, cluster: Optional[str] = None) -> Measure:
    """One scan; with `cluster` (local:N or an address) on Dask instead of `workers` local processes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.jsonl"
    for p in (manifest, out_dir / "manifest.jsonl.run.json", out_dir / "manifest.jsonl.sha256"):
        p.unlink(missing_ok=True)
    how = ["--cluster", cluster] if cluster else ["--workers", str(workers)]
    cmd = [sys.executable, "-m", "leaktriage", "scan", str(target), "-o", str(manifest), "--quiet", *how]
    m = measure(label, cmd, stdout_path=out_dir / "stdout.txt", env=leaktriage_env(), cwd=SRC_ROOT)
    m.info["cmd"] = "leaktriage scan DIR -o OUT --quiet " + " ".join(how)
    run_json = out_dir / "manifest.jsonl.run.json"
    if m.ok and run_json.is_file():
        # the scan's own account: CPU seconds of the main process and of the workers, phases, tasks
        run = json.loads(run_json.read_text(encoding="utf-8"))
        for k in ("cpu_seconds", "wall_seconds", "tasks", "engine"):
            if k in run:
                m.info[k] = run[k]
    if m.ok and manifest.is_file():
        m.info["manifest_sha256"] = file_sha256(manifest)
        m.info["manifest_bytes"] = manifest.stat().st_size
        summary = last_json_line(manifest)
        if summary.get("record") == "summary":
            msgs = summary.get("messages", {})
            m.info["messages"] = msgs.get("total") if isinstance(msgs, dict) else msgs
            by_source = msgs.get("by_source", {}) if isinstance(msgs, dict) else {}
            m.info["messages_by_source"] = by_source
            m.info["loose_messages"] = by_source.get("file", 0) + by_source.get("maildir", 0)
            m.info["problems"] = summary.get("problems", {}).get("total") \
                if isinstance(summary.get("problems"), dict) else None
    return m


def last_json_line(path: Path) -> dict:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (1 << 20)))
        tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        return json.loads(tail)
    except ValueError:
        return {}


def run_peer(label: str, python: Path, script: str, extra: list[str], listing: Path, out_dir: Path) -> Measure:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = base_env()
    env.pop("PYTHONPATH", None)
    cmd = [str(python), str(PEERS_DIR / script), *extra, str(listing)]
    m = measure(label, cmd, stdout_path=out_dir / "stdout.json", env=env, cwd=PEERS_DIR)
    m.info["cmd"] = " ".join(["peers/" + script, *extra])
    if m.ok:
        try:
            m.info.update(json.loads(m.stdout_path.read_text()))
        except ValueError:
            m.returncode, m.stderr_tail = -1, "peer printed no JSON summary\n" + m.stderr_tail
    return m


def best_of(runs: list[Measure]) -> Measure:
    """Fastest successful run, with the highest peak memory seen over all the runs."""
    good = [r for r in runs if r.ok] or runs
    best = min(good, key=lambda r: r.wall)
    best.maxrss_mib = max(r.maxrss_mib for r in runs)
    best.tree_rss_mib = max(r.tree_rss_mib for r in runs)
    best.tree_anon_mib = max(r.tree_anon_mib for r in runs)
    best.info["runs"] = len(runs)
    best.info["walls"] = [round(r.wall, 3) for r in runs]
    return best


# --------------------------------------------------------------------------------------------------
# context: machine, code version, load
# --------------------------------------------------------------------------------------------------

def machine_info() -> dict:
    cpu_model = ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": cpu_model,
            "memory": mem, "python": platform.python_version(), "implementation": platform.python_implementation(),
            "system": f"{platform.system()} {platform.release()}"}


def code_version() -> str:
    """Commit of the working tree, and '+dirty' when leaktriage/ has uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "leaktriage"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

def fmt(x: Optional[float], nd: int = 2) -> str:
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def met(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


SECTION_RE = r"<!-- {name}:start -->\n.*?<!-- {name}:end -->\n"


def doc_skeleton() -> str:
    return (
        "# Benchmarks\n\n"
        "Generated by `python3 benchmarks/run.py` (speed) and `python3 benchmarks/run.py --memory` "
        "(memory): each run replaces its own section below and appends one line to the history. "
        "Do not edit the sections by hand. How the figures are measured and how to read them: "
        "[benchmarks/README.md](../benchmarks/README.md).\n\n"
        "<!-- speed:start -->\n## Speed\n\nNot run yet.\n<!-- speed:end -->\n\n"
        "<!-- memory:start -->\n## Memory\n\nNot run yet.\n<!-- memory:end -->\n\n"
        "## History\n\nOne line per run, newest last (appended by run.py).\n\n"
        "| date | commit | mode | dump | figures |\n|---|---|---|---|---|\n"
    )


def update_doc(path: Path, section: str, body: str, history_row: str) -> None:
    text = path.read_text(encoding="utf-8") if path.is_file() else doc_skeleton()
    block = f"<!-- {section}:start -->\n{body.rstrip()}\n<!-- {section}:end -->\n"
    pattern = re.compile(SECTION_RE.format(name=section), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    if "## History" not in text:
        text = text.rstrip("\n") + "\n\n## History\n\n| date | commit | mode | dump | figures |\n|---|---|---|---|---|\n"
    text = text.rstrip("\n") + "\n" + history_row.rstrip("\n") + "\n"
    path.write_text(text, encoding="utf-8")


def context_lines(ctx: dict) -> list[str]:
    mi = ctx["machine"]
    return [
        f"- **Date**: {ctx['date']}; leaktriage commit `{ctx['commit']}` (source snapshot "
        f"`{ctx['source'][:12]}`, the tree as it was when the run began); load average before/after "
        f"{ctx['load_before']} / {ctx['load_after']}"
        + (f"; measured processes run at nice {NICE:+d}." if NICE else "."),
        f"- **Machine**: {mi['cpus']} CPUs ({mi['cpus_usable']} usable) {mi['cpu_model']}, {mi['memory']} RAM, "
        f"{mi['system']}, {mi['implementation']} {mi['python']}.",
    ]


def speed_markdown(ctx: dict, rows: list[Measure], whole: list[Measure], args, n_files: int, n_bytes: int,
                   dump_files: int, dump_bytes: int) -> tuple[str, str]:
    by = {m.label: m for m in rows}
    lt1 = by.get("leaktriage, 1 worker")
    ltn = by.get(f"leaktriage, {args.workers} workers")
    floor = by.get("read + SHA-256 (floor)")
    eml = by.get("eml_parser")
    mp = by.get("mail-parser")

    def wall(m):
        return m.wall if m and m.ok else None

    L = ["## Speed", ""]
    L += context_lines(ctx)
    L += [
        f"- **Dump**: `make_dump.py --messages {args.messages} --seed {args.seed} --attachment-scale "
        f"{args.attachment_scale:g}{' --no-sign' if args.no_sign else ''}` ({ctx['dump_key']}): "
        f"{dump_files:,} files, {dump_bytes / MB:,.0f} MB in all.",
        f"- **Same files for every tool**: the {n_files:,} loose message files (.eml and Maildir files; "
        f"{n_bytes / MB:,.0f} MB) that the peers can parse, as a mirror of hard links; mbox and zip containers "
        "are left to the whole-dump runs below. Page cache warm; each tool a separate process; "
        f"best wall time of {args.repeat} run(s); MB = 10^6 bytes, MiB = 2^20.",
        "",
        "| tool | wall s | messages/s | MB/s | CPU s | peak RSS MiB | x floor | eml_parser ÷ this | "
        "mail-parser ÷ this | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        if not m.ok:
            L.append(f"| {m.label} | failed (exit {m.returncode}) | | | | | | | | |")
            continue
        L.append(
            f"| {m.label} | {fmt(m.wall)} | {fmt(n_files / m.wall, 0)} | {fmt(n_bytes / MB / m.wall, 1)} | "
            f"{fmt(m.cpu)} | {fmt(m.peak_mib, 0)} | {fmt(ratio(m.wall, wall(floor)), 1)} | "
            f"{fmt(ratio(wall(eml), m.wall))} | {fmt(ratio(wall(mp), m.wall))} | {m.others:.2f} |")
    L += ["", "x floor = wall time ÷ the read+SHA-256 floor's (lower is better); \"X ÷ this\" = X's wall time ÷ "
          "this row's (above 1: this row is faster than X). CPU s = user + system time of the process and its "
          "children. Peak RSS: the larger of the biggest single process (rusage) and the sampled sum over the "
          "process tree (leaktriage's workers). Other load = average number of CPUs kept busy by other "
          "processes during that run (0 on an idle machine)."]
    busiest = max((m.others for m in rows + whole if m.ok), default=0.0)
    if busiest >= 0.2:
        L += ["", f"**The machine was not idle**: other processes kept up to {busiest:.1f} of its "
              f"{ctx['machine']['cpus_usable']} CPUs busy during some runs, which inflates wall times (the "
              "parallel run most of all). The CPU-time ratios in the targets table are less affected; rerun "
              "on an idle machine (and with `--repeat 3`) for publishable wall-time figures."]

    # leaktriage against the peers
    peers = [m for m in rows if not m.label.startswith("leaktriage")]
    if lt1 and lt1.ok:
        L += ["", "### leaktriage against each peer (speed-up = peer wall time ÷ leaktriage wall time)", "",
              "| peer or floor | " + " | ".join(m.label for m in (lt1, ltn) if m and m.ok) + " |",
              "|---|" + "---:|" * len([m for m in (lt1, ltn) if m and m.ok])]
        for p in peers:
            if not p.ok:
                continue
            cells = [f"{fmt(ratio(p.wall, m.wall))}x" for m in (lt1, ltn) if m and m.ok]
            L.append(f"| {p.label} | " + " | ".join(cells) + " |")

    # targets
    r_eml = ratio(wall(eml), wall(lt1))
    r_mp = ratio(wall(mp), wall(lt1))
    r_scale = ratio(wall(lt1), wall(ltn))
    r_floor = ratio(wall(lt1), wall(floor))
    scale_note = "" if args.workers == 2 else f" (measured with {args.workers} workers)"
    def cpu(m):
        return m.cpu if m and m.ok else None

    c_eml, c_mp, c_floor = ratio(cpu(eml), cpu(lt1)), ratio(cpu(mp), cpu(lt1)), ratio(cpu(lt1), cpu(floor))
    # Parallel speed-up cannot be read from CPU time; its bound on idle CPUs is the 1-worker CPU time over
    # the CPU time of the busiest process of the N-worker run (no run can be shorter than that process).
    c_scale = ratio(cpu(lt1), ltn.busiest_cpu if ltn and ltn.ok else None)
    L += ["", "### Targets (issue 6, ratios from this run)", "",
          "The verdict uses wall time, as the issue does; the same ratio on CPU time is given for "
          "comparison: it is less disturbed by other processes. For the parallel run it is an upper bound: "
          "1-worker CPU time ÷ CPU time of the busiest process of the N-worker run (parent or worker), "
          "the speed-up that idle CPUs could give at best.", "",
          "| target | measured (wall) | verdict | same on CPU time |", "|---|---:|---|---:|",
          f"| leaktriage 1 worker ≥ {TARGET_EML_PARSER:g}x faster than eml_parser | {fmt(r_eml)}x | "
          f"{met(None if r_eml is None else r_eml >= TARGET_EML_PARSER)} | {fmt(c_eml)}x |",
          f"| leaktriage 1 worker ≥ {TARGET_MAIL_PARSER:g}x faster than mail-parser | {fmt(r_mp)}x | "
          f"{met(None if r_mp is None else r_mp >= TARGET_MAIL_PARSER)} | {fmt(c_mp)}x |",
          f"| leaktriage 2 workers ≥ {TARGET_SCALING:g}x its own 1-worker speed{scale_note} | {fmt(r_scale)}x | "
          f"{met(None if r_scale is None else r_scale >= TARGET_SCALING)} | "
          + (f"≤ {fmt(c_scale)}x (bound) |" if c_scale else "n/a |"),
          f"| leaktriage 1 worker ≤ {TARGET_FLOOR:g}x the read+SHA-256 floor | {fmt(r_floor, 1)}x | "
          f"{met(None if r_floor is None else r_floor <= TARGET_FLOOR)} | {fmt(c_floor, 1)}x |"]

    # whole dump
    L += ["", f"### leaktriage on the whole dump ({dump_files:,} files, {dump_bytes / MB:,.0f} MB: loose files, "
          "Maildir, mbox, zip archives, attachments, strays)", "",
          "| run | wall s | messages | messages/s | MB/s | CPU s | peak RSS MiB | peak anonymous MiB | other load |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in whole:
        if not m.ok:
            L.append(f"| {m.label} | failed (exit {m.returncode}) | | | | | | | |")
            continue
        msgs = m.info.get("messages")
        L.append(f"| {m.label} | {fmt(m.wall)} | {msgs if msgs is not None else 'n/a'} | "
                 f"{fmt(msgs / m.wall, 0) if msgs else 'n/a'} | {fmt(dump_bytes / MB / m.wall, 1)} | {fmt(m.cpu)} | "
                 f"{fmt(m.peak_mib, 0)} | {fmt(m.tree_anon_mib, 0)} | {m.others:.2f} |")
    L += ["", "Peak anonymous: RSS less the file-backed pages (leaktriage memory-maps large files and the "
          "pages it touches count in its RSS); see the memory section."]

    # checks
    checks = []
    if lt1 and lt1.ok:
        src = lt1.info.get("messages_by_source", {})
        checks.append(f"in the {n_files:,} loose files leaktriage decoded {lt1.info.get('loose_messages')} "
                      f"messages (file {src.get('file', 0)}, Maildir {src.get('maildir', 0)}; files it did not take "
                      f"for messages have problem records) plus {src.get('rfc822', 0)} attached message/rfc822")
    pairs = [(lt1, ltn, "mirror"), (whole[0] if whole else None, whole[1] if len(whole) > 1 else None, "whole dump")]
    for a, b, what in pairs:
        if a and b and a.ok and b.ok and "manifest_sha256" in a.info:
            same = a.info["manifest_sha256"] == b.info.get("manifest_sha256")
            checks.append(f"{what}: the 1-worker and {args.workers}-worker manifests are "
                          + ("byte-identical" if same else "**different**")
                          + f" (SHA-256 {a.info['manifest_sha256'][:16]}…)")
    for m in peers:
        if m.ok:
            checks.append(f"{m.label} {m.info.get('version', '')}: {m.info.get('files')} files, "
                          f"{m.info.get('errors')} raised an exception")
    for m in rows + whole:
        if not m.ok:
            checks.append(f"{m.label} **failed** (exit {m.returncode}): "
                          f"`{m.stderr_tail.strip().splitlines()[-1][:200] if m.stderr_tail.strip() else ''}`")
    if checks:
        L += ["", "Checks: " + "; ".join(checks) + "."]

    hist = (f"| {ctx['date']} | `{ctx['commit']}` | speed | {args.messages} msgs, {n_files} loose files | "
            f"1w {fmt(wall(lt1))} s, {args.workers}w {fmt(wall(ltn))} s, floor {fmt(wall(floor))} s, "
            f"eml_parser {fmt(wall(eml))} s, mail-parser {fmt(wall(mp))} s; vs eml_parser {fmt(r_eml)}x, "
            f"vs mail-parser {fmt(r_mp)}x, scaling {fmt(r_scale)}x, x floor {fmt(r_floor, 1)}; "
            f"whole dump 1w {fmt(whole[0].wall if whole and whole[0].ok else None)} s, "
            f"{args.workers}w {fmt(whole[1].wall if len(whole) > 1 and whole[1].ok else None)} s, "
            f"peak RSS {fmt(max((m.peak_mib for m in whole if m.ok), default=None), 0)} MiB |")
    return "\n".join(L) + "\n", hist


# --------------------------------------------------------------------------------------------------
# speed mode
# --------------------------------------------------------------------------------------------------

def speed(args, work: Path) -> int:
    ctx = {"machine": machine_info(), "commit": code_version(), "date": now_utc(),
           "source": snapshot_source(work)}
    check_leaktriage()
    dump_dir = ensure_dump(work, args)
    ctx["dump_key"] = dump_dir.name
    mirror, listing, n_files, n_bytes = ensure_mirror(dump_dir)
    dump_files, dump_bytes = tree_size(dump_dir / "dump")
    peers_py = ensure_peers_venv(work)

    run_dir = work / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    log(f"run: outputs in {run_dir}; warming the page cache")
    warm_page_cache(dump_dir / "dump")
    ctx["load_before"] = loadavg()

    py = Path(sys.executable)
    # (label, runner(target_dir, listing, out_dir)) on the loose files; peers as (python, script, args).
    peer_specs = [
        ("read + SHA-256 (floor)", py, "floor_sha256.py", []),
        ("eml_parser", peers_py, "eml_parser_peer.py", []),
        ("mail-parser", peers_py, "mailparser_peer.py", []),
        ("email stdlib (compat32)", py, "stdlib_email.py", ["--policy", "compat32"]),
        ("email stdlib (default)", py, "stdlib_email.py", ["--policy", "default"]),
    ]

    def lt(label, workers):
        return label, lambda target, _lst, d: run_leaktriage(label, target, d, workers)

    def peer(label, python, script, extra):
        return label, lambda _target, lst, d: run_peer(label, python, script, extra, lst, d)

    if peers_py is None:
        peer_specs = [spec for spec in peer_specs if spec[1] is not None]

    plan = [peer(*peer_specs[0]), lt("leaktriage, 1 worker", 1), lt(f"leaktriage, {args.workers} workers", args.workers),
            *(peer(*spec) for spec in peer_specs[1:])]
    whole_plan = [lt("leaktriage, 1 worker, whole dump", 1),
                  lt(f"leaktriage, {args.workers} workers, whole dump", args.workers)]
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",")]
        plan = [p for p in plan if any(w in p[0].lower() for w in wanted)]
        whole_plan = [p for p in whole_plan if any(w in p[0].lower() for w in wanted)]

    # Untimed warm-up: every tool once on 20 files, so byte-code caches exist and imports are warm.
    log("run: warm-up of every tool on 20 files (untimed)")
    for label, fn in plan:
        fn(dump_dir / "warmup", dump_dir / "warmup.list", run_dir / "warmup" / slug(label))

    results: dict[str, list[Measure]] = {}
    for rep in range(args.repeat):
        for label, fn in plan + whole_plan:
            d = run_dir / f"{slug(label)}-{rep + 1}"
            m = fn(mirror if (label, fn) in plan else dump_dir / "dump", listing, d)
            results.setdefault(label, []).append(m)
            status = "ok" if m.ok else f"FAILED exit {m.returncode}: {m.stderr_tail.strip()[-300:]}"
            log(f"{label}: {m.wall:.2f} s, peak {m.peak_mib:.0f} MiB, cpu {m.cpu:.1f} s, "
                f"other load {m.others:.2f} ({status})")
    ctx["load_after"] = loadavg()
    rows = [best_of(results[label]) for label, _ in plan]
    whole = [best_of(results[label]) for label, _ in whole_plan]
    body, hist = speed_markdown(ctx, rows, whole, args, n_files, n_bytes, dump_files, dump_bytes)
    print(body)
    (run_dir / "results.json").write_text(json.dumps(
        {"context": ctx, "args": vars(args), "loose_files": n_files, "loose_bytes": n_bytes,
         "dump_files": dump_files, "dump_bytes": dump_bytes,
         "results": {label: [measure_dict(m) for m in ms] for label, ms in results.items()}}, indent=1))
    if args.doc != "-" and not args.only:
        update_doc(Path(args.doc), "speed", body, hist)
        log(f"wrote {args.doc}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        log(f"kept outputs in {run_dir}")
    return 0 if all(m.ok for m in rows + whole) else 1


# --------------------------------------------------------------------------------------------------
# scale mode (issue 18): the main process's share of the CPU time, local processes and a Dask cluster
# --------------------------------------------------------------------------------------------------

TARGET_MAIN_SHARE = 0.03     # the main process at most 3% of the CPU seconds of a 2-worker scan
TARGET_CLUSTER_WALL = 1.10   # --cluster local:N within 10% of --workers N (wall time)


def predicted_speedup(main: float, workers: float, longest: float, cores: int) -> tuple[float, float]:
    """Two predictions of the speed-up on `cores` cores (over one core doing all the work), from
    the CPU seconds of one run: Amdahl's, the main process's time counted as wholly serial; and the
    same bounded by the longest task (no scan is shorter than its longest task)."""
    total = main + workers
    amdahl = total / (main + workers / cores)
    bounded = total / max(main + workers / cores, longest)
    return amdahl, bounded


def scale_markdown(ctx: dict, runs: dict, args, dump_files: int, dump_bytes: int) -> tuple[str, str]:
    n = args.workers
    lw1, lwn, lcl = "1 worker", f"{n} workers", f"cluster local:{n}"
    L = ["## Scale", ""]
    L += context_lines(ctx)
    L += [f"- **Dump**: the whole generated dump (`make_dump.py --messages {args.messages} --seed {args.seed} "
          f"--attachment-scale {args.attachment_scale:g}`, {ctx['dump_key']}): {dump_files:,} files, "
          f"{dump_bytes / MB:,.0f} MB, loose files, Maildir, mbox and zip archives.",
          f"- **Runs**: {args.repeat} round(s), each round 1 worker, {n} workers and a Dask LocalCluster of "
          f"{n} workers one after the other; every run listed. CPU seconds from the scan's own run record "
          "(MANIFEST.run.json `cpu_seconds`): `main` is the whole main process (start-up, imports, walk, "
          "receiving and writing, duplicate groups, summary; with --cluster local:N also the Dask "
          "scheduler and nannies that live in it), `workers` the worker processes (getrusage of the "
          "children; on Dask the tasks' own thread CPU time).", "",
          "| run | round | wall s | CPU s (all processes) | main CPU s | workers CPU s | main share | "
          "main: walk / loop / end s | longest task s | other load |",
          "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for label in (lw1, lwn, lcl):
        for i, m in enumerate(runs.get(label, [])):
            if not m.ok:
                L.append(f"| {label} | {i + 1} | failed (exit {m.returncode}) | | | | | | | |")
                continue
            c = m.info.get("cpu_seconds", {})
            share = c.get("main_share")
            L.append(f"| {label} | {i + 1} | {fmt(m.wall)} | {fmt(m.cpu)} | {fmt(c.get('main'))} | "
                     f"{fmt(c.get('workers'))} | {fmt(share * 100 if share is not None else None)}% | "
                     f"{fmt(c.get('main_walk'))} / {fmt(c.get('main_loop'))} / {fmt(c.get('main_end'))} | "
                     f"{fmt(c.get('longest_task'))} | {m.others:.2f} |")

    def shares(label):
        return [m.info["cpu_seconds"]["main_share"] for m in runs.get(label, []) if m.ok and "cpu_seconds" in m.info]

    sh = shares(lwn)
    L += ["", "### Targets (issue 18)", "", "| target | measured | verdict |", "|---|---|---|"]
    if sh:
        L.append(f"| main process ≤ {TARGET_MAIN_SHARE:.0%} of the CPU seconds of a {n}-worker scan | "
                 f"{min(sh) * 100:.2f}–{max(sh) * 100:.2f}% over {len(sh)} run(s) | "
                 f"{met(max(sh) <= TARGET_MAIN_SHARE)} |")
    both = [(a, b) for a, b in zip(runs.get(lwn, []), runs.get(lcl, [])) if a.ok and b.ok]
    if both:
        rs = [b.wall / a.wall for a, b in both]
        cs = [b.cpu / a.cpu for a, b in both]
        L.append(f"| --cluster local:{n} within {TARGET_CLUSTER_WALL - 1:.0%} of --workers {n} (wall) | "
                 f"{min(rs):.2f}–{max(rs):.2f}x the local wall time, same round | "
                 f"{met(max(rs) <= TARGET_CLUSTER_WALL)} |")
        L.append(f"| the same on CPU seconds (all processes; what the cluster costs on a machine with no "
                 f"idle core) | {min(cs):.2f}–{max(cs):.2f}x | "
                 f"{met(max(cs) <= TARGET_CLUSTER_WALL)} |")
        noisy = max(m.others for pair in both for m in pair)
        if noisy >= 0.2:
            L += ["", f"**The wall-time verdict is not reliable here**: other processes kept up to {noisy:.1f} "
                  f"CPUs busy (and the disk: wall times of the same run moved by several times between rounds). "
                  "The CPU-seconds ratio is the steadier figure; rerun on an idle machine for the wall time."]
    ok_n = [m for m in runs.get(lwn, []) if m.ok and "cpu_seconds" in m.info]
    if ok_n:
        L += ["", f"### Predicted speed-up on more cores (from the {n}-worker runs)", "",
              "Amdahl: the main process's CPU seconds counted as serial, the workers' divided among the cores. "
              "With the longest task: no scan is shorter than its longest task (one file, or one batch of "
              "small files), so the same prediction bounded by it; the longest task is what a bigger "
              "machine meets first on this dump (its largest zip archive; mboxes are split, archives are "
              "not yet).", "",
              "| run | main share | 16 cores (Amdahl) | 16 cores (longest task) | 64 cores (Amdahl) | "
              "64 cores (longest task) |", "|---|---:|---:|---:|---:|---:|"]
        for i, m in enumerate(ok_n):
            c = m.info["cpu_seconds"]
            p16 = predicted_speedup(c["main"], c["workers"], c.get("longest_task", 0.0), 16)
            p64 = predicted_speedup(c["main"], c["workers"], c.get("longest_task", 0.0), 64)
            L.append(f"| {lwn}, round {i + 1} | {c['main_share'] * 100:.2f}% | {p16[0]:.1f}x | {p16[1]:.1f}x | "
                     f"{p64[0]:.1f}x | {p64[1]:.1f}x |")
    digests = {m.info.get("manifest_sha256") for ms in runs.values() for m in ms if m.ok}
    L += ["", "Checks: " + ("every manifest byte-identical" if len(digests) == 1 else
                            f"**{len(digests)} different manifests**")
          + (f" (SHA-256 {next(iter(digests))[:16]}…)" if len(digests) == 1 else "") + "."]
    hist = (f"| {ctx['date']} | `{ctx['commit']}` | scale | {args.messages} msgs, whole dump | "
            f"main share {n}w " + (f"{min(sh) * 100:.2f}–{max(sh) * 100:.2f}%" if sh else "n/a")
            + "; " + ", ".join(f"{label} {'/'.join(fmt(m.wall) for m in runs.get(label, []) if m.ok)} s"
                               for label in (lw1, lwn, lcl)) + " |")
    return "\n".join(L) + "\n", hist


def scale(args, work: Path) -> int:
    ctx = {"machine": machine_info(), "commit": code_version(), "date": now_utc(),
           "source": snapshot_source(work)}
    check_leaktriage()
    dump_dir = ensure_dump(work, args)
    ctx["dump_key"] = dump_dir.name
    dump_files, dump_bytes = tree_size(dump_dir / "dump")
    run_dir = work / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    warm_page_cache(dump_dir / "dump")
    ctx["load_before"] = loadavg()
    n = args.workers
    try:
        import distributed  # noqa: F401 - the cluster case needs the extra
        cluster = True
    except ImportError:
        log("scale: Dask is not installed (pip install '.[cluster]'): no cluster runs")
        cluster = False
    plan = [("1 worker", 1, None), (f"{n} workers", n, None)]
    if cluster:
        plan.append((f"cluster local:{n}", n, f"local:{n}"))
    runs: dict = {}
    for rep in range(args.repeat):
        for label, workers, where in plan:
            d = run_dir / f"{slug(label)}-{rep + 1}"
            m = run_leaktriage(label, dump_dir / "dump", d, workers, where)
            runs.setdefault(label, []).append(m)
            c = m.info.get("cpu_seconds", {})
            log(f"{label} round {rep + 1}: {m.wall:.2f} s, cpu {m.cpu:.1f} s, main {c.get('main')} s, "
                f"share {c.get('main_share')}, other load {m.others:.2f} ({'ok' if m.ok else 'FAILED'})")
    ctx["load_after"] = loadavg()
    body, hist = scale_markdown(ctx, runs, args, dump_files, dump_bytes)
    print(body)
    (run_dir / "results.json").write_text(json.dumps(
        {"context": ctx, "args": vars(args),
         "results": {label: [measure_dict(m) for m in ms] for label, ms in runs.items()}}, indent=1))
    if args.doc != "-":
        update_doc(Path(args.doc), "scale", body, hist)
        log(f"wrote {args.doc}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if all(m.ok for ms in runs.values() for m in ms) else 1


def measure_dict(m: Measure) -> dict:
    return {"label": m.label, "wall": m.wall, "cpu": m.cpu, "others": m.others, "maxrss_mib": m.maxrss_mib, "tree_anon_mib": m.tree_anon_mib,
            "busiest_process_cpu": m.busiest_cpu,
            "tree_rss_mib": m.tree_rss_mib, "returncode": m.returncode, "info": m.info}


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


# --------------------------------------------------------------------------------------------------
# memory mode
# --------------------------------------------------------------------------------------------------

FROM_LINE = b"From bench@leaktriage.invalid Thu Jan  1 00:00:00 2015\n"
_FROM_QUOTE = re.compile(rb"^(>*From )", re.M)


def ensure_big_mbox(work: Path, dump_dir: Path, target_bytes: int) -> tuple[Path, int]:
    """One mbox (mboxrd quoting) of at least target_bytes: the dump's loose messages, cycled.

    Every copy gets an ``X-Bench-Copy`` header first, so no two stored messages are the same bytes.
    Returns (folder to scan, number of messages)."""
    folder = work / "memory" / f"mbox-{target_bytes // MIB}MiB-{dump_dir.name}"
    mbox = folder / "dump" / "big.mbox"
    stamp = folder / "done.json"
    if stamp.is_file():
        return folder / "dump", json.loads(stamp.read_text())["messages"]
    shutil.rmtree(folder, ignore_errors=True)
    mbox.parent.mkdir(parents=True)
    sources = [dump_dir / "dump" / r for r in loose_message_paths(dump_dir)]
    log(f"memory: writing a {target_bytes / MIB:,.0f} MiB mbox from {len(sources)} messages")
    n = written = 0
    with open(mbox, "wb") as out:
        while written < target_bytes:
            raw = sources[n % len(sources)].read_bytes()
            eol = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
            body = b"X-Bench-Copy: %d" % n + eol + _FROM_QUOTE.sub(rb">\1", raw)
            if not body.endswith(b"\n"):
                body += b"\n"
            chunk = FROM_LINE + body + b"\n"
            out.write(chunk)
            written += len(chunk)
            n += 1
    stamp.write_text(json.dumps({"messages": n, "bytes": written}))
    return folder / "dump", n


def ensure_big_attachment(work: Path, size_mib: int) -> tuple[Path, str]:
    """A message with one base64 attachment of size_mib MiB (deterministic pseudo-random bytes).

    Returns (folder to scan, SHA-256 of the decoded attachment)."""
    import base64
    import random
    folder = work / "memory" / f"attachment-{size_mib}MiB"
    eml = folder / "dump" / "big-attachment.eml"
    stamp = folder / "done.json"
    if stamp.is_file():
        return folder / "dump", json.loads(stamp.read_text())["sha256"]
    shutil.rmtree(folder, ignore_errors=True)
    eml.parent.mkdir(parents=True)
    log(f"memory: writing a message with a {size_mib} MiB attachment")
    rng = random.Random(2017)
    h = hashlib.sha256()
    remaining = size_mib * MIB
    with open(eml, "wb") as out:
        out.write(b"From: Bench <bench@leaktriage.invalid>\r\nTo: Triage <triage@leaktriage.invalid>\r\n"
                  b"Subject: one very large attachment\r\nDate: Thu, 01 Jan 2015 00:00:00 +0000\r\n"
                  b"Message-ID: <big-attachment@leaktriage.invalid>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/mixed; boundary=\"=-bench-boundary-=\"\r\n\r\n"
                  b"--=-bench-boundary-=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  b"See the attached archive.\r\n\r\n"
                  b"--=-bench-boundary-=\r\nContent-Type: application/octet-stream; name=\"backup.bin\"\r\n"
                  b"Content-Disposition: attachment; filename=\"backup.bin\"\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n")
        block = 57 * 16384  # whole 76-character lines
        while remaining:
            data = rng.randbytes(min(block, remaining))
            remaining -= len(data)
            h.update(data)
            enc = base64.encodebytes(data).replace(b"\n", b"\r\n")
            out.write(enc)
        out.write(b"\r\n--=-bench-boundary-=--\r\n")
    digest = h.hexdigest()
    stamp.write_text(json.dumps({"sha256": digest}))
    return folder / "dump", digest


def ensure_big_7z(work: Path, att_dump: Path, size_mib: int) -> Path:
    """A 7z archive (LZMA2) holding the big-attachment message: the member is larger than the
    archive reader's in-memory threshold, so it must spill to a temporary file, not to RAM."""
    import py7zr
    folder = work / "memory" / f"7z-{size_mib}MiB"
    arc = folder / "dump" / "mailbox.7z"
    stamp = folder / "done.json"
    if stamp.is_file():
        return folder / "dump"
    shutil.rmtree(folder, ignore_errors=True)
    arc.parent.mkdir(parents=True)
    log(f"memory: writing a 7z archive holding the message with a {size_mib} MiB attachment")
    with py7zr.SevenZipFile(arc, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as z:
        z.write(att_dump / "big-attachment.eml", "mailbox/big-attachment.eml")
    stamp.write_text("{}")
    return folder / "dump"


def memory(args, work: Path) -> int:
    global AS_LIMIT
    AS_LIMIT = int(args.as_limit_gib * 1024 * MIB)
    ctx = {"machine": machine_info(), "commit": code_version(), "date": now_utc(),
           "source": snapshot_source(work)}
    check_leaktriage()
    dump_dir = ensure_dump(work, args)
    mbox_dir, mbox_msgs = ensure_big_mbox(work, dump_dir, int(args.mbox_gib * 1024 * MIB))
    att_dir, att_sha = ensure_big_attachment(work, args.attachment_mib)
    run_dir = work / "runs" / ("memory-" + time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True)
    ctx["load_before"] = loadavg()
    cases = [(f"one mbox of {args.mbox_gib:g} GiB ({mbox_msgs:,} messages)", mbox_dir, mbox_msgs, None),
             (f"one message with a {args.attachment_mib} MiB attachment", att_dir, 1, att_sha),
             (f"the same message inside a 7z archive", ensure_big_7z(work, att_dir, args.attachment_mib), 1, att_sha)]
    rows = []
    for title, folder, msgs, sha in cases:
        _n, size = tree_size(folder)
        warm_page_cache(folder)
        for w in sorted({1, args.workers}):
            label = f"{title}, {w} worker{'s' if w > 1 else ''}"
            m = run_leaktriage(label, folder, run_dir / slug(label), w)
            note = ""
            if m.ok and sha:
                found = sha in (run_dir / slug(label) / "manifest.jsonl").read_text(errors="replace")
                note = "attachment SHA-256 in the manifest" if found else "**attachment SHA-256 not found in the manifest**"
            elif m.ok:
                src = m.info.get("messages_by_source", {})
                got = src.get("mbox")
                note = (f"{got:,} mbox messages found" if got is not None else "no summary") + \
                    ("" if got == msgs else f" (**{msgs:,} written**)")
                if src.get("rfc822"):
                    note += f", plus {src['rfc822']:,} attached message/rfc822"
            else:
                note = f"**failed** (exit {m.returncode}): {m.stderr_tail.strip()[-200:]}"
            log(f"{label}: {m.wall:.1f} s, peak {m.peak_mib:.0f} MiB, anonymous {m.tree_anon_mib:.0f} MiB, "
                f"other load {m.others:.2f} ({note})")
            rows.append((label, size, m, note))
    ctx["load_after"] = loadavg()

    L = ["## Memory", ""] + context_lines(ctx) + [
        f"- **Target**: a single 2 GB mbox or a 500 MB attachment scans within \"a few hundred MB of RAM\", "
        f"read here as a peak RSS ≤ {TARGET_MEMORY_MIB} MiB (summed over leaktriage's processes). Each scan "
        f"runs under a {args.as_limit_gib:g} GiB address-space cap (RLIMIT_AS) so a runaway fails instead of "
        "exhausting the shared machine.",
        f"- **Inputs** (built in the work dir): an mbox made by cycling the {dump_dir.name} loose messages "
        "(each copy with an `X-Bench-Copy` header, `>From ` quoted), and one message whose single base64 "
        "attachment is pseudo-random bytes.",
        "", "| input | size MB | wall s | MB/s | CPU s | peak RSS MiB | peak anonymous MiB | largest process MiB "
        "| target on RSS | target on anonymous | check | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|"]
    for label, size, m, note in rows:
        if m.ok:
            L.append(f"| {label} | {size / MB:,.0f} | {fmt(m.wall)} | {fmt(size / MB / m.wall, 1)} | {fmt(m.cpu)} | "
                     f"{fmt(m.peak_mib, 0)} | {fmt(m.tree_anon_mib, 0)} | {fmt(m.maxrss_mib, 0)} | "
                     f"{met(m.peak_mib <= TARGET_MEMORY_MIB)} | {met(m.tree_anon_mib <= TARGET_MEMORY_MIB)} | {note} | "
                     f"{m.others:.2f} |")
        else:
            L.append(f"| {label} | {size / MB:,.0f} | failed | | | {fmt(m.peak_mib, 0)} | {fmt(m.tree_anon_mib, 0)} | "
                     f"| {met(False)} | {met(False)} | {note} | {m.others:.2f} |")
    L += ["", "Peak RSS counts every resident page of leaktriage's processes, including the pages of the input "
          "that it maps (mmap) and touches; \"anonymous\" leaves those out (they are page cache the kernel "
          "can drop under pressure) and is the memory the scan itself holds: heap, decoded payloads, records. "
          "Both are sampled every 50 ms from /proc (so a short spike can be missed); \"largest process\" is the "
          "exact high-water mark of the biggest single process (rusage). Which of the two the issue's "
          "\"few hundred MB of RAM\" means is for the reader to judge: both verdicts are given."]
    body = "\n".join(L) + "\n"
    print(body)
    hist = (f"| {ctx['date']} | `{ctx['commit']}` | memory | {args.mbox_gib:g} GiB mbox, {args.attachment_mib} MiB "
            "attachment, 7z | " + "; ".join(f"{label.rsplit(', ', 1)[0].split(' (')[0]}, {label.rsplit(', ', 1)[-1]}: "
                                        f"{fmt(m.wall)} s, {fmt(m.peak_mib, 0)} MiB "
                                        f"({fmt(m.tree_anon_mib, 0)} anon)" for label, _s, m, _n in rows) + " |")
    (run_dir / "results.json").write_text(json.dumps(
        {"context": ctx, "args": vars(args),
         "results": [dict(measure_dict(m), input_bytes=size, check=note) for _l, size, m, note in rows]}, indent=1))
    if args.doc != "-":
        update_doc(Path(args.doc), "memory", body, hist)
        log(f"wrote {args.doc}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if all(m.ok for _l, _s, m, _n in rows) else 1


# --------------------------------------------------------------------------------------------------
# profile mode
# --------------------------------------------------------------------------------------------------

_PROFILE_DRIVER = """
import cProfile, runpy, sys
out, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["leaktriage"] + argv
prof = cProfile.Profile()   # perf_counter: cheap; a CPU-time clock costs a system call per event and
                            # would inflate the functions called most often
prof.enable()
try:
    runpy.run_module("leaktriage", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
finally:
    prof.disable()
    prof.dump_stats(out)
sys.exit(code)
"""


def profile(args, work: Path) -> int:
    """cProfile of a 1-worker scan of the whole dump; prints the top functions.

    Times are wall-clock: on a busy machine they are all inflated alike, so read the proportions."""
    import pstats
    snapshot_source(work)
    check_leaktriage()
    dump_dir = ensure_dump(work, args)
    run_dir = work / "runs" / ("profile-" + time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True)
    warm_page_cache(dump_dir / "dump")
    prof = run_dir / "leaktriage.prof"
    cmd = [sys.executable, "-c", _PROFILE_DRIVER, str(prof), "scan", str(dump_dir / "dump"),
           "-o", str(run_dir / "manifest.jsonl"), "--quiet", "--workers", "1"]
    m = measure("profile", cmd, stdout_path=run_dir / "stdout.txt", env=leaktriage_env(), cwd=SRC_ROOT)
    if not m.ok or not prof.is_file():
        sys.exit(f"profiled scan failed (exit {m.returncode}):\n{m.stderr_tail}")
    pkg = str(SRC_ROOT / "leaktriage") + os.sep
    for key, restrict, what in (("cumulative", [], "all functions"),
                                ("cumulative", [re.escape(pkg)], "leaktriage's own functions"),
                                ("tottime", [], "all functions")):
        print(f"\n=== top {args.top} by {key}, {what} (whole dump, {args.messages} messages, 1 worker; "
              f"{m.wall:.1f} s wall, {m.cpu:.1f} s CPU under cProfile; times are wall-clock, read the "
              "proportions) ===")
        st = pstats.Stats(str(prof), stream=sys.stdout)
        st.sort_stats(key).print_stats(*restrict, args.top)
    log(f"profile kept in {prof} (python3 -m pstats {prof})")
    return 0


# --------------------------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000, help="messages in the generated dump (default 10000)")
    ap.add_argument("--seed", type=int, default=2017, help="make_dump.py seed (default 2017)")
    ap.add_argument("--attachment-scale", type=float, default=1.0, help="make_dump.py attachment scale (default 1)")
    ap.add_argument("--no-sign", action="store_true", help="generate without DKIM signatures")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="workers for the parallel leaktriage run (default: CPU count)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the fastest is reported (default 1)")
    ap.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR),
                    help=f"dump cache, peers virtualenv and run outputs (default {DEFAULT_WORK_DIR}; never inside the repo)")
    ap.add_argument("--keep", action="store_true",
                    help="keep this run's manifests and peer outputs (work-dir/runs/...); the cached dump, "
                         "mirror and virtualenv are always kept")
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness increment for the measured processes; e.g. -10 (root) so that other "
                         "processes on a shared machine disturb the wall times less (default 0)")
    ap.add_argument("--doc", default=str(DOC), help="Markdown file to update ('-': print only)")
    ap.add_argument("--only", help="comma-separated substrings of tool labels to run (development; "
                                   "docs/benchmarks.md is then not written)")
    ap.add_argument("--memory", action="store_true", help="memory check: a big mbox and a big attachment")
    ap.add_argument("--mbox-gib", type=float, default=2.0, help="size of the --memory mbox in GiB (default 2)")
    ap.add_argument("--attachment-mib", type=int, default=500, help="--memory attachment size in MiB (default 500)")
    ap.add_argument("--as-limit-gib", type=float, default=12.0,
                    help="--memory: address-space cap of each scan, so a runaway fails rather than "
                         "exhausting the machine (default 12 GiB)")
    ap.add_argument("--profile", action="store_true", help="cProfile a 1-worker scan of the whole dump")
    ap.add_argument("--scale", action="store_true",
                    help="the main process's share of the CPU seconds and the Dask LocalCluster against local "
                         "workers, on the whole dump (issue 18); --repeat rounds, every run reported")
    ap.add_argument("--top", type=int, default=25, help="--profile: functions to print (default 25)")
    args = ap.parse_args(argv)

    work = Path(args.work_dir).expanduser().resolve()
    if work == REPO or REPO in work.parents:
        ap.error(f"--work-dir {work} is inside the repository; use a folder outside it")
    if not MAKE_DUMP.is_file():
        ap.error(f"generator not found: {MAKE_DUMP}")
    if args.workers < 1 or args.repeat < 1 or args.messages < 1:
        ap.error("--workers, --repeat and --messages must be at least 1")
    work.mkdir(parents=True, exist_ok=True)
    global PYCACHE, NICE
    PYCACHE = work / "pycache"
    NICE = args.nice
    if NICE < 0:
        try:   # fail now, clearly, rather than in every child
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0))
            if os.geteuid() != 0:
                raise PermissionError
        except (PermissionError, OSError):
            ap.error("--nice below 0 needs root")
    if args.memory:
        return memory(args, work)
    if args.profile:
        return profile(args, work)
    if args.scale:
        return scale(args, work)
    return speed(args, work)


if __name__ == "__main__":
    sys.exit(main())
