"""Issue #14 ("nothing silently lost"): every stored message of a generated dump has a message record.

The generator's truth file lists every stored item with its location (the file, the zip members
leading to it, or the mbox and the byte offset of the message in it). `account()` maps each one to
the locator leaktriage gives it and checks the manifest for a message record there; items that are
not mail by design (an empty file, random bytes) must have a file record instead.

Run as a script on any generated dump and its manifest:

    python tests/test_trust_mail_dump.py OUT.truth.jsonl MANIFEST.jsonl

It prints the count and, for each item without its record, the locator, the kind the file was
given and the problem codes recorded there.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import pytest

NOT_MAIL = ("empty_file", "binary_junk")


def expected_locator(loc: dict):
    """('loc', locator) for a file or an archive member, ('mbox', (mbox locator, offset)) for an
    mbox message (its locator names the From line, whose length the truth does not give)."""
    from leaktriage.model.locator import child, escape, segment
    base = escape(loc["path"].encode("utf-8"))
    if loc["container"] == "mbox":
        return "mbox", (base, loc["offset"])
    for member in loc.get("members") or ():
        base = child(base, segment("zip", member.encode("utf-8")))
    return "loc", base


def account(truth_lines, records) -> dict:
    """{'items', 'expected', 'found', 'not_mail', 'missing': [(truth, locator, file kind, codes)]}."""
    messages = set()
    mbox_messages = set()
    files = {}
    problems = defaultdict(list)
    for r in records:
        kind = r["record"]
        if kind == "message":
            messages.add(r["locator"])
            if r.get("source") == "mbox":
                mbox_messages.add((r["parent"], r.get("offset")))
        elif kind == "file":
            files[r["locator"]] = r.get("kind")
        elif kind == "problem":
            problems[r["locator"]].append(r["code"])
    out = {"items": 0, "expected": 0, "found": 0, "not_mail": 0, "missing": []}
    for t in truth_lines:
        out["items"] += 1
        how, key = expected_locator(t["location"])
        if t.get("malformed") in NOT_MAIL:
            out["not_mail"] += 1
            if key not in files:
                out["missing"].append((t, key, None, problems.get(key, [])))
            continue
        out["expected"] += 1
        if (key in mbox_messages) if how == "mbox" else (key in messages):
            out["found"] += 1
            continue
        where = key[0] if how == "mbox" else key
        codes = sorted(set(problems.get(where, [])))
        out["missing"].append((t, key, files.get(where), codes))
    return out


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def report(res: dict) -> str:
    lines = ["%d truth items: %d messages expected, %d with a message record; %d not mail by design"
             % (res["items"], res["expected"], res["found"], res["not_mail"])]
    for t, key, kind, codes in res["missing"]:
        lines.append("MISSING %-16s %s  file kind=%s  problems=%s"
                     % (t.get("malformed") or "-", key, kind, ",".join(codes)))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from conftest import need_generator
    make_dump = need_generator()
    base = tmp_path_factory.mktemp("trustdump")
    out = base / "gd"
    # 600 messages hold every kind of damaged item the generator makes (two of each: nul_bytes,
    # header_without_colon, long_line_200k, ...); before issue #14's fixes one of them had no record
    subprocess.run([sys.executable, str(make_dump), str(out), "--messages", "600", "--seed", "1",
                    "--attachment-scale", "0.02", "--quiet"], check=True)
    from leaktriage import Options, scan
    manifest = base / "m.jsonl"
    scan(str(out), str(manifest), Options(workers=1))
    return read_jsonl(base / "gd.truth.jsonl"), read_jsonl(manifest)


def test_every_stored_message_has_a_message_record(generated):
    truth, records = generated
    res = account(truth, records)
    assert {t.get("malformed") for t in truth} >= {"nul_bytes", "header_without_colon"}
    assert not res["missing"], report(res)
    assert res["found"] == res["expected"] > 500


def test_damaged_messages_keep_their_headers(generated):
    """The messages the generator damaged (a junk line in the header block, NUL bytes) keep the
    Date, To and Cc headers the truth gives them, and their defects are recorded."""
    truth, records = generated
    by_loc = {r["locator"]: r for r in records if r["record"] == "message"}
    by_mbox = {(r["parent"], r.get("offset")): r for r in records
               if r["record"] == "message" and r.get("source") == "mbox"}
    seen = defaultdict(int)
    for t in truth:
        kind = t.get("malformed")
        if kind not in ("header_without_colon", "nul_bytes"):
            continue
        how, key = expected_locator(t["location"])
        msg = by_mbox.get(key) if how == "mbox" else by_loc.get(key)
        assert msg is not None, key
        assert msg.get("date"), (key, msg.get("problem_codes"))
        assert msg["date"][:16] == t["date"][:16].replace("+00:00", ""), key
        want = {a.lower() for a in t.get("to") or ()}
        assert want <= {a.get("address", "").lower() for a in msg.get("to", ())}, key
        code = "header.invalid_line" if kind == "header_without_colon" else None
        if code:
            assert code in msg.get("problem_codes", ()), key
        seen[kind] += 1
    assert seen["header_without_colon"] and seen["nul_bytes"]


if __name__ == "__main__":
    res = account(read_jsonl(sys.argv[1]), read_jsonl(sys.argv[2]))
    print(report(res))
    sys.exit(1 if res["missing"] else 0)
