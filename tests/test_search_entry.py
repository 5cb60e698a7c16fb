"""`leaktriage search` runs without Click in its plain forms (start-up is most of a query's time);
the hand parser must agree with Click wherever it answers, and leave everything else to Click."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from leaktriage.cli.fast_search import parse_plain
from test_search_common import REPO, SAMPLES, build


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(SAMPLES, tmp_path_factory.mktemp("entry"))[1]


def click_params(args):
    from leaktriage.cli.search_cmds import search
    ctx = search.make_context("search", list(args))
    p = ctx.params
    return {"db": p["db"], "query": " ".join(p["query"]), "fmt": p["fmt"], "count_only": p["count_only"],
            "limit": p["limit"], "sort": p["sort"], "no_snippets": p["no_snippets"], "all_copies": p["all_copies"]}


PLAIN = [
    ["t.db", "facture"],
    ["t.db", "from:mercier", "to:@example.fr", "date:2017-03"],
    ["t.db", "--count", "réunion OR meeting"],
    ["-c", "t.db", "x"],
    ["t.db", "x", "-f", "jsonl", "-n", "5", "--sort", "oldest", "--no-snippets"],
    ["t.db", "--format=locators", "--limit=0", "--sort=relevance", "(a OR b)"],
    ["t.db", "x", "--format", "table", "y"],
    ["t.db", "-", "x"],
    ["t.db", "--all-copies", "-c", "x"],
]

NOT_PLAIN = [
    ["t.db"],                                  # no query: Click says so
    ["--help"], ["t.db", "x", "--help"],
    ["t.db", "-word"],                         # an unknown option to Click, too
    ["t.db", "--", "-word"],
    ["t.db", "x", "-f", "xml"], ["t.db", "x", "--sort", "size"],
    ["t.db", "x", "-n", "-1"], ["t.db", "x", "-n", "five"], ["t.db", "x", "-n"],
    ["t.db", "x", "-n5"], ["t.db", "x", "-cf", "jsonl"], ["t.db", "x", "-f=jsonl"],
    ["t.db", "x", "--count=yes"], ["t.db", "x", "--counts"], ["t.db", "x", "--all-copies=1"],
    [".", "x"],                                # a directory: Click's error message
]


@pytest.mark.parametrize("args", PLAIN)
def test_plain_forms_parse_as_click_does(args):
    assert parse_plain(args) == click_params(args)


@pytest.mark.parametrize("args", NOT_PLAIN)
def test_anything_else_is_left_to_click(args):
    assert parse_plain(args) is None


PROBE = ("import atexit, sys\n"
         "atexit.register(lambda: sys.stderr.write('CLICK=%s\\n' % ('click' in sys.modules)))\n"
         "sys.argv = ['leaktriage'] + sys.argv[1:]\n"
         "from leaktriage.cli.entry import main\nmain()\n")


def run_entry(*args):
    return subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True,
                          cwd=str(REPO))


@pytest.mark.parametrize("args", [["--count", "facture OR réunion"], ["-f", "jsonl", "has:attachment"],
                                  ["-f", "locators", "--sort", "oldest", "from:mercier"],
                                  ["-f", "jsonl", "--no-snippets", "-n", "3", "facture OR budget"]])
def test_fast_path_output_equals_click_output(db, args):
    from leaktriage.cli.main import cli
    fast = run_entry("search", db, *args)
    assert fast.returncode == 0, fast.stderr
    assert "CLICK=False" in fast.stderr          # the plain form never imported Click
    assert fast.stdout.strip()
    slow = CliRunner().invoke(cli, ["search", str(db), *args])
    assert slow.exit_code == 0, slow.output
    assert fast.stdout == slow.stdout


def test_errors_and_help_go_through_click(db, tmp_path):
    bad = run_entry("search", db, "from:")                # malformed query: the fast path reports it
    assert bad.returncode == 2 and "bad query" in bad.stderr and "CLICK=False" in bad.stderr
    missing = run_entry("search", tmp_path / "none.db", "x")
    assert missing.returncode == 2 and "no index at" in missing.stderr
    usage = run_entry("search", db, "x", "-f", "xml")     # usage errors: Click's message and exit code
    assert usage.returncode == 2 and "Invalid value for '-f'" in usage.stderr and "CLICK=True" in usage.stderr
    helped = run_entry("search", "--help")
    assert helped.returncode == 0 and "QUERY is free text" in helped.stdout
    other = run_entry("--version")
    assert other.returncode == 0 and "leaktriage" in other.stdout
