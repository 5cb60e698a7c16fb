"""The Dask engine: leaktriage.scanner.schedule's Executor on a Dask distributed cluster.

- `local:N` starts a LocalCluster of N worker processes (one thread each) on this machine, for
  tests, CI and a first try; `tcp://HOST:PORT` (or any address Dask's Client takes) connects to a
  running scheduler.
- Each task runs `run_task` on a worker: the dump check (once per worker process), then
  leaktriage.scanner.pipeline.work, then the lines a unit spilled to the worker's own disk are put
  back into the result (the client cannot read the worker's disk).
- A worker that dies: Dask reruns its tasks elsewhere (the scheduler knows which were on it); a
  task that has killed `distributed.scheduler.allowed-failures` workers (3 by default) comes back
  as KilledWorker, and the scan then records its files as failed (internal.worker_died), as a
  local scan does after a second death.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import List, Optional, Sequence

from leaktriage.errors import UsageError
from leaktriage.pool import WorkerDied
from leaktriage.scanner import pipeline
from leaktriage.scanner.schedule import Executor
from leaktriage.scanner.walk import Entry
from leaktriage.cluster.dumpcheck import check, path_digest, walk_digest

CONNECT_TIMEOUT = 30.0      # seconds to reach the scheduler
# For the LocalCluster of local:N, whose scheduler and nannies live in this process (their time is
# the main process's): Dask's defaults poll the event loop every 20 ms, the system every 500 ms,
# each worker's memory every 100 ms, and sample each worker's stack every 10 ms for its profile
# view. A scan of CPU-bound tasks lasting seconds needs none of that so often; measured on a
# 2,000-message dump, the defaults cost this process several times the CPU of a local scan's main
# process. Recommended for the workers of a real deployment too (docs/cluster.md).
QUIET_CONFIG = {
    # local:N's workers are forked from this process, which has imported leaktriage already:
    # measured with 2 workers on the sample dump, start-up 1.7-1.9 s of wall time instead of
    # 6.5-6.8 s, and 0.2-0.4 CPU seconds per worker process instead of 1.2-1.4 (spawn starts a new
    # interpreter that imports Dask and leaktriage again)
    "distributed.worker.multiprocessing-method": "fork",
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.active-memory-manager.start": False,
}
WORKERS_TIMEOUT = 120.0     # seconds to wait for a first worker


class DumpMismatch(RuntimeError):
    """A worker does not see the dump (or the key store) as the client does."""


def parse_address(address: str):
    """("local", N) or ("remote", address); UsageError for anything else."""
    if address.startswith("local:"):
        try:
            n = int(address[6:])
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError("--cluster local:N needs a number of workers N >= 1, not %r" % address)
        return "local", n
    if "://" not in address and ":" not in address:
        raise UsageError("--cluster takes a scheduler address (tcp://HOST:8786) or local:N, not %r" % address)
    return "remote", address


def run_task(root: str, digest: str, keystore: Optional[str], keys_digest: Optional[str],
             task: "pipeline.Task") -> List["pipeline.UnitResult"]:
    """What a Dask worker runs for one task."""
    why = check(root, digest, keystore, keys_digest)
    if why:
        raise DumpMismatch(why)
    task = dataclasses.replace(task, opts=dataclasses.replace(task.opts, spill_dir=None))
    out = pipeline.work(task)
    for r in out:
        if r.spill:
            # the client cannot read this machine's disk: the lines travel with the result
            with open(r.spill, "rb") as f:
                r.data = f.read() + r.data
            os.unlink(r.spill)
            r.spill = None
    return out


class DaskExecutor(Executor):
    retries_itself = True

    def __init__(self, address: str, root: str, entries: Sequence[Entry], keystore: Optional[str] = None):
        try:
            import distributed
        except ImportError:
            raise UsageError("--cluster needs Dask: pip install 'leaktriage[cluster]'")
        self._d = distributed
        kind, arg = parse_address(address)
        self.address = address
        self.cluster = None
        for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                     "distributed.core", "distributed.comm"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import dask
        # for as long as the cluster lives: the nannies read it again when they restart a worker
        self._config = dask.config.set(QUIET_CONFIG if kind == "local" else {})
        try:
            self._connect(kind, arg)
        except (OSError, TimeoutError) as exc:
            self.shutdown()
            raise UsageError("cannot use the Dask cluster %s: %s" % (address, exc))
        self._init_check(root, entries, keystore)

    def _connect(self, kind, arg):
        distributed = self._d
        if kind == "local":
            self.cluster = distributed.LocalCluster(n_workers=arg, threads_per_worker=1, processes=True,
                                                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        else:
            self.client = distributed.Client(arg, timeout=CONNECT_TIMEOUT)
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)

    def _init_check(self, root, entries, keystore):
        self.digest = walk_digest(entries)
        self.keystore = keystore
        self.keys_digest = path_digest(keystore) if keystore else None
        self.task_fn = functools.partial(run_task, root, self.digest, keystore, self.keys_digest)
        self.workers = max(1, sum(self.client.nthreads().values()))
        # every worker there now checks the dump before the scan starts (a worker that joins later
        # checks before its first task)
        addrs = sorted(self.client.nthreads())
        futs = [self.client.submit(check, root, self.digest, keystore, self.keys_digest, workers=[a],
                                   allow_other_workers=False, pure=False) for a in addrs]
        why = [w for w in self.client.gather(futs) if w]
        if why:
            self.shutdown()
            raise UsageError("the Dask workers cannot scan this dump: %s" % why[0])
        self.scheduler = self.client.scheduler.address

    # -- Executor ----------------------------------------------------------------------------------
    def submit(self, fn, task):
        return self.client.submit(fn, task, pure=False)

    def result(self, handle):
        try:
            return handle.result()
        except DumpMismatch as exc:
            raise UsageError("the Dask workers cannot scan this dump: %s" % exc)

    def done(self, handle):
        return handle.done()

    def wait(self, handles):
        self._d.wait(handles, return_when="FIRST_COMPLETED")

    def lost(self, exc):
        from distributed.scheduler import KilledWorker
        return isinstance(exc, KilledWorker)

    def isolated(self, fn, task):
        f = self.client.submit(fn, task, pure=False)
        try:
            return f.result()
        except Exception as exc:
            if self.lost(exc):
                raise WorkerDied(task)
            raise
        finally:
            f.release()

    def forget(self, handle):
        handle.release()

    def close(self):
        pass

    def kill(self):
        pass

    def shutdown(self):
        """Disconnect; a LocalCluster started for the scan is stopped."""
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            try:
                cluster.close()
            except Exception:
                pass
        config, self._config = getattr(self, "_config", None), None
        if config is not None:
            config.__exit__(None, None, None)

    def info(self):
        out = {"engine": "dask", "cluster": self.address, "workers": self.workers,
               "dump_walk_sha256": self.digest, "dask": self._d.__version__}
        try:
            out["scheduler"] = self.scheduler
            if self.client.dashboard_link:
                out["dashboard"] = self.client.dashboard_link
            out["worker_hosts"] = sorted({w.split("://")[-1].rsplit(":", 1)[0] for w in self.client.nthreads()})
        except Exception:
            pass
        return out
