"""The package layout rules of docs/architecture.md: no import cycle (imports inside functions
counted), no package importing a layer it may not, no private name imported from another module,
no test support code in the package."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "tools" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_cycles_no_breaches_no_private_imports():
    g = _graph_tool()
    mods, edges, private, breaches = g.graph()
    assert len(mods) > 50 and sum(len(v) for v in edges.values()) > 100   # it did read the package
    assert g.cycles(edges) == []
    assert breaches == []
    assert private == []


def test_the_checker_finds_a_cycle_and_a_breach(tmp_path):
    g = _graph_tool()
    assert g.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert g.layer("leaktriage.mail.mime") == "mail" and "auth" not in g.ALLOWED["mail"]


def test_every_package_has_a_rule_and_no_test_support_in_the_package():
    g = _graph_tool()
    for name in os.listdir(REPO / "leaktriage"):
        stem = name[:-3] if name.endswith(".py") else name
        if name.startswith("__pycache__") or stem.startswith("."):
            continue
        assert stem in g.ALLOWED, "%s has no rule in tools/import_graph.py ALLOWED" % stem
    for dp, _dn, fn in os.walk(REPO / "leaktriage"):
        for f in fn:
            assert "testkit" not in f and not f.startswith("test_"), os.path.join(dp, f)
