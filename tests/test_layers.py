"""The layer table of DESIGN.md, enforced on the source: imports point down, no cycles, no hidden imports.

Every module of the six packages is read with ``ast`` — imports at any depth count,
inside functions and under ``if TYPE_CHECKING:`` too (a cycle hidden in a function is
still a cycle). An import ``from a.b import c`` points at ``a.b.c`` when that is a
module, else at ``a.b``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "perfmodel", "twin", "tools", "agent", "evals")

#: package → the project packages it may import (DESIGN.md "Layout"; its own always)
MAY_IMPORT: dict[str, frozenset[str]] = {
    "connectors": frozenset(),
    "perfmodel": frozenset(),
    "twin": frozenset({"perfmodel", "connectors"}),
    "tools": frozenset({"connectors", "perfmodel"}),
    "agent": frozenset({"connectors", "perfmodel", "twin", "tools", "prompts"}),
    "evals": frozenset({"connectors", "perfmodel", "twin", "tools", "agent", "prompts"}),
}

#: Modules that may look modules up by name: registries, not fallbacks.
IMPORT_BY_NAME_ALLOWED = frozenset({"agent.cli", "evals.commands.bench"})


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    by_name: bool = False  # the importlib.import_module / __import__ call itself
    looked_up: bool = False  # a module such a call imports (a registry's, or a fallback's)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            out[module_name(p)] = p
    return out


def _resolve(importer: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _names_looked_up(arg: ast.expr, consts: dict[str, list[str]]) -> list[str]:
    """Module names an ``import_module(arg)`` can mean: a literal, or a module-level
    tuple/list of literals it iterates over (``for m in PLUGINS: import_module(m)``)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name):
        return consts.get(arg.id, [])
    return []


def _string_constants(tree: ast.Module) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Tuple | ast.List):
            out[target.id] = [
                e.value
                for e in value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
    return out


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    consts = _string_constants(tree)
    loops: dict[str, list[str]] = {}  # loop variable → the constant it iterates
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Name)
            and node.iter.id in consts
        ):
            loops[node.target.id] = consts[node.iter.id]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield Import(name, a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, is_pkg, node)
            for a in node.names:
                sub = f"{mod}.{a.name}"
                yield Import(name, sub if sub in known else mod, node.lineno)
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if fname in ("import_module", "__import__"):
                yield Import(name, "importlib.import_module", node.lineno, by_name=True)
                for target in (
                    _names_looked_up(node.args[0], {**consts, **loops}) if node.args else []
                ):
                    yield Import(name, target, node.lineno, looked_up=True)


def project_imports() -> list[Import]:
    mods = project_modules()
    known = set(mods)
    out = []
    for name, path in mods.items():
        for imp in imports_of(name, path, known):
            top = imp.target.split(".")[0]
            if imp.by_name or top in (*PACKAGES, "prompts"):
                out.append(imp)
    return out


def graph(imports: list[Import]) -> dict[str, set[str]]:
    known = set(project_modules())
    g: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        if imp.by_name or imp.target not in known or imp.target == imp.importer:
            continue
        g[imp.importer].add(imp.target)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[set[str]] = []
    counter = 0

    def strong(v: str) -> None:  # recursion depth ≤ number of modules (a few hundred)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(g):
        if v not in index:
            strong(v)
    return [_path_in(g, comp) for comp in comps]


def _path_in(g: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth first)."""
    start = min(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


# ---- the tests ------------------------------------------------------------------------------
def test_imports_point_down_the_layer_table() -> None:
    bad = []
    for imp in project_imports():
        src, dst = imp.importer.split(".")[0], imp.target.split(".")[0]
        if imp.by_name or src == dst:
            continue
        if imp.looked_up and imp.importer in IMPORT_BY_NAME_ALLOWED:
            continue  # the CLI's command registry spans the layers by design
        if dst not in MAY_IMPORT[src]:
            bad.append(f"{imp.importer}:{imp.line} imports {imp.target} ({src} → {dst})")
    assert not bad, "imports that point up the layer table:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    found = cycles(graph(project_imports()))
    assert not found, "import cycles (function-level imports included):\n" + "\n".join(
        " → ".join(c) for c in found
    )


def test_no_import_by_name_outside_the_registries() -> None:
    bad = [
        f"{i.importer}:{i.line}"
        for i in project_imports()
        if i.by_name and i.importer not in IMPORT_BY_NAME_ALLOWED
    ]
    assert not bad, "importlib.import_module outside the allowed registries: " + ", ".join(bad)


# ---- the checker itself ---------------------------------------------------------------------
def test_the_cycle_finder_reports_a_path() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("src", "expect"),
    [
        ("def f():\n    from agent import runtime\n", "agent.runtime"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tools.gate import X\n",
            "tools.gate",
        ),
        ("from . import nodes\n", "agent.nodes"),
        ("import importlib\nimportlib.import_module('x')\n", "importlib.import_module"),
        (
            "import importlib\nP = ('tools.gate',)\nfor m in P:\n    importlib.import_module(m)\n",
            "tools.gate",
        ),
    ],
)
def test_every_kind_of_import_is_seen(tmp_path: Path, src: str, expect: str) -> None:
    p = tmp_path / "m.py"
    p.write_text(src)
    known = {"agent.runtime", "agent.nodes", "tools.gate"}
    assert expect in {i.target for i in imports_of("agent.m", p, known)}
