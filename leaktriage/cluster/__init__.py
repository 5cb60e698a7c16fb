"""Scanning on a Dask distributed cluster (optional: ``pip install 'leaktriage[cluster]'``).

    leaktriage scan /mnt/leak -o m.jsonl --cluster tcp://HOST:8786   # a running Dask scheduler
    leaktriage scan /mnt/leak -o m.jsonl --cluster local:4           # a LocalCluster on this machine

The client (the `leaktriage scan` process) walks the dump, sends the tasks (lists of paths, a few
hundred bytes each) to the scheduler, receives each task's manifest lines and writes the manifest
itself, in walk order, through the same driver as a local scan (leaktriage.scanner.schedule): the
manifest is byte-identical to a local scan with any number of workers. The workers read the dump
at the same absolute path (a shared mount) and check, before their first task, that they see the
same dump (the digest of the client's walk). See docs/cluster.md.
"""
from leaktriage.cluster.engine import DaskExecutor, parse_address
from leaktriage.cluster.dumpcheck import walk_digest

__all__ = ["DaskExecutor", "parse_address", "walk_digest"]
