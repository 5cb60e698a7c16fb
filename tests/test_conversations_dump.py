"""The whole of leaktriage.conversations on a dump made by the shared generator
($LEAKTRIAGE_CORPORA/../bench/make_dump.py), scanned by leaktriage, checked against the
generator's truth by benchmarks/conversations_eval.py: the issue's acceptance figures on a small dump."""
import importlib.util
import subprocess
import sys

import pytest

from conftest import REPO, need_generator


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    gen = need_generator()
    tmp = tmp_path_factory.mktemp("gen")
    dump = tmp / "dump"
    subprocess.run([sys.executable, str(gen), str(dump), "--messages", "300", "--seed", "11", "--personal", "0.25",
                    "--doc-markers", "--contradictions", "0.4", "--forgeries", "0.4", "--attachment-scale", "0.2",
                    "--quiet"], check=True, capture_output=True)
    from leaktriage import Options, scan
    manifest = tmp / "m.jsonl"
    scan(str(dump), str(manifest), Options(workers=2, keystore=str(tmp / "dump.dkim-keys.json")))
    spec = importlib.util.spec_from_file_location("conversations_eval", REPO / "benchmarks" / "conversations_eval.py")
    ev = importlib.util.module_from_spec(spec)
    sys.modules["conversations_eval"] = ev      # its worker function is pickled by name
    spec.loader.exec_module(ev)
    return ev.main([str(dump), str(tmp / "dump.truth.jsonl"), str(manifest), "--workers", "2",
                    "--thresholds", "0.5,0.7", "--check-workers", "--scratch", str(tmp / "scratch")])


def test_reply_links_stay_in_one_thread(report):
    t = report["threads"]
    assert t["reply_links"] >= 50
    assert t["reply_links_same_thread"] >= 0.99 * t["reply_links"]
    assert t["mixed"] <= 0.01 * t["threads_with_truth"]


def test_altered_copies_are_contradictions(report):
    c = report["corroboration"]
    assert c["altered"] >= 5
    assert c["found"] >= 0.98 * c["altered"]
    assert c["false_flags"] <= 2
    assert c["signed"][1] >= 1         # signed altered copies are among them


def test_edited_documents_are_near_duplicates(report):
    n = report["neardup"]["chosen"]
    found, total = n["doc_recall"]
    ok, predicted = n["doc_precision"]
    assert total >= 5 and found >= 0.9 * total and ok >= 0.9 * predicted
    assert n["identical"] is True       # the same records with 1 and 2 workers


def test_correspondents(report):
    c = report["correspondents"]
    assert c["nodes"] > 20 and c["edges"] > c["nodes"] and c["roles"] >= 1
