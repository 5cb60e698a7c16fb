"""A scan on a Dask cluster gives the manifest of a local scan, byte for byte (issue #18).

Needs the `cluster` extra (pip install '.[cluster]'); without Dask these tests fail under CI and
are skipped elsewhere, never passed. The clusters are Dask LocalClusters on this machine (worker
processes, one thread each), reached through `--cluster local:N` or through their tcp:// address,
the way a real scheduler is.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, SAMPLES, need_generator
from leaktriage import Options, api
from leaktriage.cli.main import cli
from leaktriage.errors import UsageError


def _need(what: str, ok: bool):
    if not ok:
        msg = "%s is missing" % what
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


try:
    import distributed
except ImportError:  # pragma: no cover - the extra is not installed
    distributed = None


@pytest.fixture(autouse=True)
def _dask():
    _need("Dask (pip install '.[cluster]')", distributed is not None)


@pytest.fixture(scope="module")
def cluster():
    """A running two-worker cluster, reached by its tcp:// address like a remote scheduler."""
    _need("Dask (pip install '.[cluster]')", distributed is not None)
    import logging
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                 silence_logs=logging.ERROR)
    client = distributed.Client(c)
    yield c, client
    client.close()
    c.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The 1,500-message dump of the acceptance test, and its 1-worker manifest."""
    make_dump = need_generator()
    d = tmp_path_factory.mktemp("gen") / "dump"
    subprocess.run([sys.executable, str(make_dump), "--messages", "1500", "--seed", "18", "--quiet", str(d)],
                   check=True)
    ref = d.parent / "w1.jsonl"
    api.scan(str(d), str(ref), Options(workers=1))
    return d, ref.read_bytes()


def _cli_scan(dump, out, *args):
    r = CliRunner().invoke(cli, ["scan", str(dump), "-o", str(out), *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


def _run(out):
    return json.loads(Path(str(out) + ".run.json").read_text())


def test_local_cluster_gives_the_local_manifest_on_samples(tmp_path):
    keys = REPO / "samples" / "dkim-keys.json"
    _cli_scan(SAMPLES, tmp_path / "w1.jsonl", "-q", "--workers", "1", "--dkim-keys", keys)
    _cli_scan(SAMPLES, tmp_path / "w2.jsonl", "-q", "--workers", "2", "--dkim-keys", keys)
    r = _cli_scan(SAMPLES, tmp_path / "c2.jsonl", "--cluster", "local:2", "--dkim-keys", keys)
    w1 = (tmp_path / "w1.jsonl").read_bytes()
    assert (tmp_path / "w2.jsonl").read_bytes() == w1
    assert (tmp_path / "c2.jsonl").read_bytes() == w1
    assert "verified" in r.output                      # the report, as after a local scan
    run = _run(tmp_path / "c2.jsonl")
    assert run["engine"]["engine"] == "dask" and run["engine"]["cluster"] == "local:2"
    assert run["workers"] == 2 and run["engine"]["scheduler"].startswith("tcp://")
    assert run["cpu_seconds"]["workers"] > 0 and run["cpu_seconds"]["tasks"] == run["cpu_seconds"]["workers"]
    assert (tmp_path / "c2.jsonl.sha256").read_text() == (tmp_path / "w1.jsonl.sha256").read_text().replace(
        "w1.jsonl", "c2.jsonl")


def test_local_cluster_gives_the_local_manifest_on_a_generated_dump(generated, tmp_path):
    dump, w1 = generated
    api.scan(str(dump), str(tmp_path / "w2.jsonl"), Options(workers=2))
    assert (tmp_path / "w2.jsonl").read_bytes() == w1
    _cli_scan(dump, tmp_path / "c2.jsonl", "-q", "--cluster", "local:2")
    assert (tmp_path / "c2.jsonl").read_bytes() == w1


def test_a_big_mbox_is_split_across_the_cluster(tmp_path, cluster):
    from test_scale import big_mbox
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "archive.mbox").write_bytes(big_mbox(300))
    api.scan(str(dump), str(tmp_path / "w1.jsonl"), Options(workers=1, split_bytes=0))
    opts = Options(cluster=cluster[0].scheduler_address, split_bytes=1 << 20, split_range_bytes=200_000)
    res = api.scan(str(dump), str(tmp_path / "c.jsonl"), opts)
    assert res.run["tasks"]["ranges"] > 3
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "w1.jsonl").read_bytes()
    # the same mbox as a one-file dump (`leaktriage scan archive.mbox`): the workers see the file
    api.scan(str(dump / "archive.mbox"), str(tmp_path / "f1.jsonl"), Options(workers=1, split_bytes=0))
    res = api.scan(str(dump / "archive.mbox"), str(tmp_path / "fc.jsonl"), opts)
    assert res.run["tasks"]["ranges"] > 3
    assert (tmp_path / "fc.jsonl").read_bytes() == (tmp_path / "f1.jsonl").read_bytes()


def test_a_worker_killed_in_the_middle_of_a_scan_loses_nothing(generated, tmp_path, cluster):
    dump, w1 = generated
    c, client = cluster
    pids = client.run(os.getpid)
    victim_addr, victim = sorted(pids.items())[0]
    out = tmp_path / "m.jsonl"
    ckpt = tmp_path / "m.jsonl.partial.ckpt"
    result = {}

    def scan():
        try:
            result["res"] = api.scan(str(dump), str(out), Options(cluster=c.scheduler_address))
        except BaseException as exc:  # noqa: B902 - reported by the test below
            result["error"] = exc

    t = threading.Thread(target=scan)
    t.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and t.is_alive():
        if ckpt.exists():
            if ckpt.read_text().count("\n") - 1 >= 40:
                break
        time.sleep(0.02)
    assert t.is_alive() and not out.exists(), "the scan ended before a worker could be killed"
    os.kill(victim, signal.SIGKILL)
    t.join(600)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert out.read_bytes() == w1
    # the worker really died (its nanny started another process in its place)
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    assert victim not in client.run(os.getpid).values()


def test_resume_on_the_cluster_after_a_local_interruption(tmp_path, monkeypatch, cluster):
    full = tmp_path / "full.jsonl"
    api.scan(str(SAMPLES), str(full), Options(workers=1))
    real = api.run_units

    def interrupted(root, entries, opts):
        for i, res in enumerate(real(root, entries, opts)):
            if i == 9:
                raise KeyboardInterrupt
            yield res

    out = tmp_path / "m.jsonl"
    monkeypatch.setattr(api, "run_units", interrupted)
    assert api.scan(str(SAMPLES), str(out), Options(workers=1)).interrupted
    monkeypatch.undo()
    res = api.scan(str(SAMPLES), str(out), Options(cluster=cluster[0].scheduler_address), resume=True)
    assert not res.interrupted and res.run["resumed"]
    assert out.read_bytes() == full.read_bytes()


def test_workers_that_see_another_dump_refuse(tmp_path, cluster):
    """The client's walk and the workers' differ (here: the client is told of a file the workers
    do not have): the scan stops before writing anything, with a usage error."""
    from leaktriage.scanner.walk import Entry, walk
    from leaktriage.cluster import DaskExecutor
    entries = list(walk(str(SAMPLES))) + [Entry(b"zzz-not-there.eml", "file", 10)]
    with pytest.raises(UsageError, match="another dump"):
        DaskExecutor(cluster[0].scheduler_address, str(SAMPLES), entries)
    with pytest.raises(UsageError, match="is not there"):
        DaskExecutor(cluster[0].scheduler_address, str(tmp_path / "nowhere"), entries)


def test_cli_checks_the_cluster_option(tmp_path):
    r = CliRunner().invoke(cli, ["scan", str(SAMPLES), "-o", str(tmp_path / "m.jsonl"), "--cluster", "local:0"])
    assert r.exit_code == 2 and "local:N" in r.output
    r = CliRunner().invoke(cli, ["scan", str(SAMPLES), "-o", str(tmp_path / "m.jsonl"), "--cluster", "local:2",
                                 "--workers", "2"])
    assert r.exit_code == 2 and "--workers" in r.output
    assert not (tmp_path / "m.jsonl").exists()


def test_a_file_that_kills_every_worker_is_recorded_as_failed(tmp_path, monkeypatch):
    """A file whose reading kills the worker each time (SIGBUS on a file truncated while mapped):
    Dask gives up on its task after `allowed-failures` deaths, each file of that task is then run
    alone, and the one that kills its worker again is a failed file record with internal.worker_died;
    the other files are scanned. (local:N forks its workers from this process, so they inherit the
    patched reader.)"""
    import dask
    from leaktriage.scanner import pipeline
    dump = tmp_path / "dump"
    (dump / "box").mkdir(parents=True)
    for i in range(6):
        (dump / "box" / ("%d.eml" % i)).write_bytes(b"From: a@example.org\r\nSubject: %d\r\n\r\nhi\r\n" % i)
    real = pipeline.Unit._disk_file

    def crash_on_3(self, entry, loc, base):
        if entry.rel.endswith(b"3.eml"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, entry, loc, base)

    monkeypatch.setattr(pipeline.Unit, "_disk_file", crash_on_3)
    out = tmp_path / "m.jsonl"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        res = api.scan(str(dump), str(out), Options(cluster="local:2"))
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    files = {r["locator"]: r for r in recs if r["record"] == "file"}
    assert files["box/3.eml"]["status"] == "failed"
    assert any(r["record"] == "problem" and r["code"] == "internal.worker_died" and r["locator"] == "box/3.eml"
               for r in recs)
    assert sorted(r["locator"] for r in recs if r["record"] == "message") == \
        ["box/%d.eml" % i for i in (0, 1, 2, 4, 5)]
    assert res.run["tasks"]["isolated"] >= 1
