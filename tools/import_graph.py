#!/usr/bin/env python3
"""The import graph of the leaktriage package, every import counted (those made inside functions too).

    python3 tools/import_graph.py            # cycles, layer breaches, private names; exit 1 if any
    python3 tools/import_graph.py --edges    # every module -> module edge

Layers (docs/architecture.md): a package may import only the packages listed for it in ALLOWED.
tests/test_layout.py runs the same checks.
"""
from __future__ import annotations

import ast
import os
import sys
from typing import Dict, List, Set, Tuple

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "leaktriage")
PKG = "leaktriage"

# package (first level under leaktriage) -> packages it may import. "" is a top-level module
# (api, errors, ...): named by module instead.
ALLOWED: Dict[str, Set[str]] = {
    "version": set(),
    "errors": set(),
    "model": {"version"},
    "console": set(),
    "pool": {"errors"},
    "leftovers": set(),
    "content": {"model"},
    "mail": {"model", "content"},
    "containers": {"model", "content", "mail"},
    "auth": {"model", "content", "mail"},
    "text": {"model", "content", "mail"},
    "scanner": {"model", "content", "mail", "containers", "auth", "errors", "pool", "version", "leftovers"},
    "manifest": {"model", "content", "mail", "containers", "auth", "errors", "pool", "console", "version",
                 "scanner", "text"},
    "privacy": {"model", "content", "mail", "text", "search"},
    "conversations": {"model", "content", "mail", "text", "search"},
    "search": {"model", "content", "mail", "text", "manifest", "errors", "pool", "console", "version", "leftovers",
               "privacy", "conversations"},
    "site": {"model", "manifest", "search", "errors", "text", "version"},
    "api": {"model", "content", "mail", "containers", "auth", "scanner", "manifest", "search", "errors", "pool",
            "version", "cluster", "text", "privacy", "conversations"},
    "cluster": {"model", "scanner", "errors", "pool", "version", "containers"},
    "cli": {"*"},
    "__init__": {"version", "api"},
    "__main__": {"cli"},
}


def modules() -> Dict[str, str]:
    out = {}
    for dp, dn, fn in os.walk(ROOT):
        dn[:] = sorted(d for d in dn if d != "__pycache__")
        for f in sorted(fn):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dp, f), ROOT)[:-3].replace(os.sep, ".")
                name = PKG if rel == "__init__" else PKG + "." + (rel[:-9] if rel.endswith(".__init__") else rel)
                out[name] = os.path.join(dp, f)
    return out


def imports(path: str, name: str, mods: Dict[str, str]) -> List[Tuple[str, List[str], int]]:
    """(imported module, names imported from it, line) for every import statement of a module."""
    is_pkg = path.endswith("__init__.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    res = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for al in node.names:
                if al.name.split(".")[0] == PKG:
                    res.append((al.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PKG:
                continue
            plain = []
            for al in node.names:
                if mod + "." + al.name in mods:
                    res.append((mod + "." + al.name, [], node.lineno))
                else:
                    plain.append(al.name)
            if plain:
                res.append((mod, plain, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and node.args[0].value.startswith(PKG):
                res.append((node.args[0].value, [], node.lineno))
    return res


def layer(mod: str) -> str:
    parts = mod.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def graph():
    mods = modules()
    edges: Dict[str, Set[str]] = {m: set() for m in mods}
    private: List[str] = []
    breaches: List[str] = []
    for m, path in mods.items():
        for tgt, names, line in imports(path, m, mods):
            if tgt not in mods:
                # a package attribute (from leaktriage import x): the package's __init__
                while tgt not in mods and "." in tgt:
                    tgt = tgt.rsplit(".", 1)[0]
            if tgt == m:
                continue
            edges[m].add(tgt)
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    private.append("%s:%d imports private name %s from %s" % (os.path.relpath(path), line, n, tgt))
            last = tgt.rsplit(".", 1)[-1]
            if last.startswith("_") and not last.startswith("__"):
                private.append("%s:%d imports private module %s" % (os.path.relpath(path), line, tgt))
            a, b = layer(m), layer(tgt)
            if a != b and "*" not in ALLOWED.get(a, set()) and b not in ALLOWED.get(a, set()):
                breaches.append("%s -> %s (%s may not import %s)" % (m, tgt, a, b))
    return mods, edges, private, breaches


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def main() -> int:
    mods, edges, private, breaches = graph()
    if "--edges" in sys.argv:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print("%s -> %s" % (m, t))
        return 0
    cyc = cycles(edges)
    # package-level cycles, ignoring the CLI (which may import anything) and the package root
    pedges: Dict[str, Set[str]] = {}
    for m, ts in edges.items():
        for t in ts:
            a, b = layer(m), layer(t)
            if a != b:
                pedges.setdefault(a, set()).add(b)
    pcyc = cycles(pedges)
    print("%d modules, %d import edges" % (len(mods), sum(len(v) for v in edges.values())))
    print("module cycles: %d" % len(cyc))
    for c in cyc:
        print("  " + " <-> ".join(c))
    print("package cycles: %d" % len(pcyc))
    for c in pcyc:
        print("  " + " <-> ".join(c))
    print("layer breaches: %d" % len(breaches))
    for b in breaches:
        print("  " + b)
    print("private names imported across modules: %d" % len(private))
    for p in private:
        print("  " + p)
    return 1 if (cyc or pcyc or breaches or private) else 0


if __name__ == "__main__":
    sys.exit(main())
