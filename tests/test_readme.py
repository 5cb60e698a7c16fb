"""The README's Quick start and jq recipes work as written."""
import re
import shutil
import subprocess

import pytest

from conftest import REPO, SAMPLES, scan_records

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    qs = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", qs, re.S)
    cmds = [l for b in blocks for l in b.splitlines() if l.strip() and not l.startswith("#")]
    assert len(cmds) == 2
    assert "leaktriage scan samples/dump" in cmds[0]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert cmds[1].replace(" -q", "") in ci.replace(" -q", "")


def _recipes():
    return [l for l in README.splitlines() if l.startswith("jq ") and "manifest.jsonl" in l]


def test_jq_recipes(tmp_path):
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    _, out, _ = scan_records(SAMPLES, tmp_path, name="manifest.jsonl")
    recipes = _recipes()
    assert len(recipes) >= 5
    for r in recipes:
        line = r
        res = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert res.returncode == 0, (line, res.stderr)
        assert res.stdout.strip(), line
