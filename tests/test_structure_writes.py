"""The trust rule in the code's shape, read from the source with ``ast``:

* only the actuator (:mod:`tools.actuation`) calls a writer's ``write`` method — the
  heartbeat too, since it lives in that module;
* only the gate (:mod:`tools.gate`) constructs an ``Authorization``.

A "writer" is any expression whose dotted name mentions ``writer`` (``self.writer``,
``ctx.writer``, ``writer``), or a local name bound from one (``w = ctx.writer``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "connectors", "evals", "perfmodel", "tools", "twin")
ACTUATOR = Path("tools/actuation.py")
GATE = Path("tools/gate.py")


def sources() -> Iterator[tuple[Path, ast.Module]]:
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            yield f.relative_to(ROOT), ast.parse(f.read_text(), str(f))


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return dotted(node.func) + "()"
    return ""


def writer_aliases(tree: ast.Module) -> set[str]:
    """Names bound from a writer (``w = ctx.writer``, ``for w in writers``, ``with ... as w``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.For | ast.AsyncFor):
            targets, value = [node.target], node.iter
        if value is not None and "writer" in ast.unparse(value).lower():
            out |= {t.id for t in targets if isinstance(t, ast.Name)}
    return out


def writer_write_calls(tree: ast.Module) -> list[str]:
    aliases = writer_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "write":
            continue
        recv = dotted(node.func.value)
        last = recv.split(".")[-1].removesuffix("()")
        if "writer" in recv.lower() or last in aliases:
            found.append(f"{recv}.write (line {node.lineno})")
    return found


def authorization_constructions(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and dotted(node.func).split(".")[-1] == "Authorization":
            found.append(f"{dotted(node.func)}(...) (line {node.lineno})")
    return found


def offenders(find: Callable[[ast.Module], list[str]], allowed: Path) -> dict[str, list[str]]:
    """Per source file other than ``allowed``: what ``find`` finds in it."""
    return {str(p): hits for p, tree in sources() if p != allowed and (hits := find(tree))}


def test_only_the_actuator_calls_a_writers_write() -> None:
    assert offenders(writer_write_calls, ACTUATOR) == {}, "writes outside the actuator"


def test_only_the_gate_constructs_an_authorization() -> None:
    assert offenders(authorization_constructions, GATE) == {}, "Authorization outside the gate"


def test_the_checks_see_what_they_look_for() -> None:
    """The detectors find the shapes they forbid (else the two tests above prove nothing)."""
    act = ast.parse((ROOT / ACTUATOR).read_text())
    assert any("self.writer.write" in c for c in writer_write_calls(act))
    assert any(c.startswith("writer.write") for c in writer_write_calls(act))  # the heartbeat
    assert authorization_constructions(ast.parse((ROOT / GATE).read_text()))
    sneaky = ast.parse(
        "async def f(ctx, auth):\n"
        "    w = ctx.writer\n"
        "    await w.write('gpu.power_cap', 10)\n"
        "    gate.Authorization(object(), decision_id='x', changes=[], level=3, issued=0)\n"
    )
    assert writer_write_calls(sneaky) == ["w.write (line 3)"]
    assert authorization_constructions(sneaky) == ["gate.Authorization(...) (line 4)"]
    harmless = ast.parse("out.write('text')\nsf.write_text('x')\n")
    assert writer_write_calls(harmless) == []
