"""Load policy YAML files: schema validation (pydantic) plus errors that name file and line.

Every error is a :class:`~connectors.errors.PolicyConfigError` such as
``chiller.yaml:14: policies[2].when.all[0].op: Input should be '>', '>=', …``.
The YAML node marks are kept (:class:`Locator`) so that later checks against a
site — an unknown point, a read-only target, a derived value the equipment
cannot compute — can name the line too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connectors.config import SafeLoader, yaml_load
from connectors.errors import PolicyConfigError
from tools.policies.model import Policy, PolicyFile

Loc = tuple[int | str, ...]


class Locator:
    """Maps a path inside a YAML document (``("policies", 2, "when")``) to its line."""

    def __init__(self, origin: str, lines: dict[Loc, int]) -> None:
        self.origin = origin
        self._lines = lines

    def line(self, loc: Loc) -> int | None:
        loc = tuple(loc)
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return self._lines.get(())

    def where(self, loc: Loc) -> str:
        line = self.line(loc)
        return f"{self.origin}:{line}" if line is not None else self.origin

    def error(self, loc: Loc, msg: str) -> PolicyConfigError:
        path = format_loc(loc)
        return PolicyConfigError(
            f"{self.where(loc)}: {path}: {msg}" if path else f"{self.where(loc)}: {msg}"
        )


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            out[(*loc, key)] = k.start_mark.line + 1
            _node_lines(v, (*loc, key), out)
            # a value's own line wins for nested nodes, the key's line for scalars
            if isinstance(v, yaml.ScalarNode):
                out[(*loc, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*loc, i), out)


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    index: int
    locator: Locator

    def error(self, sub: Loc, msg: str) -> PolicyConfigError:
        return self.locator.error(("policies", self.index, *sub), msg)


def parse_policies(text: str, origin: str) -> list[LoadedPolicy]:
    """Validate the text of one policy file; errors name ``origin`` and the line."""
    try:
        node = yaml.compose(text, Loader=SafeLoader)
        data = yaml_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise PolicyConfigError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    loc8 = Locator(origin, lines)
    if not isinstance(data, dict):
        raise loc8.error((), "expected a mapping with `policies: [...]`")
    try:
        pf = PolicyFile.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        raise loc8.error(_yaml_loc(loc), msg + more) from None
    return [LoadedPolicy(p, i, loc8) for i, p in enumerate(pf.policies)]


def _yaml_loc(loc: Sequence[int | str]) -> Loc:
    """Pydantic's loc uses field names; map aliases back to the YAML keys."""
    alias = {"for_s": "for", "cooldown_s": "cooldown", "window_s": "window"}
    return tuple(alias.get(p, p) if isinstance(p, str) else p for p in loc)


def load_policy_file(path: str | Path) -> list[LoadedPolicy]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PolicyConfigError(f"{path}: cannot read: {err.strerror}") from None
    return parse_policies(text, origin=path.name)


def load_policies(paths: Iterable[str | Path]) -> list[LoadedPolicy]:
    """Load files (a directory means its ``*.yaml``); policy ids must be unique across them."""
    out: list[LoadedPolicy] = []
    seen: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
        for f in files:
            for lp in load_policy_file(f):
                pid = lp.policy.id
                if pid in seen:
                    raise lp.error(("id",), f"duplicate policy id {pid!r} (also in {seen[pid]})")
                seen[pid] = lp.locator.where(("policies", lp.index))
                out.append(lp)
    return out


def library_dir() -> Path:
    """The shipped library, ``tools/policies/library/``."""
    return Path(str(resources.files("tools.policies") / "library"))


def load_library(names: Sequence[str] | None = None) -> list[LoadedPolicy]:
    """The shipped library (all files, or the named ones: ``["data_hall", "efficiency"]``)."""
    d = library_dir()
    files = sorted(d.glob("*.yaml")) if names is None else [d / f"{n}.yaml" for n in names]
    return load_policies(files)


def policies_from_dicts(
    items: list[dict[str, Any]], origin: str = "<policies>"
) -> list[LoadedPolicy]:
    """Build policies from Python data (benchmarks, tests) through the same validation."""
    return parse_policies(yaml.safe_dump({"policies": items}, sort_keys=False), origin)
