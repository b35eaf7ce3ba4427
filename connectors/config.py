"""Reading the YAML files people write, and saying exactly where they are wrong.

Every configuration loader (sites, fault scenarios, eval scenarios) reads its
file with :func:`read_yaml_mapping` and turns a pydantic ``ValidationError``
into one line with :func:`describe_validation_error`, so every bad file is
reported the same way: ``site.yaml: equipment[3].points[7].address: …``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ValidationError

from connectors.errors import ConfigError

#: Discriminated-union branch names pydantic puts in locations; noise for a reader.
_BRANCH_PREFIX = "function-"


def format_loc(loc: Iterable[int | str], skip: Iterable[str] = ()) -> str:
    """``("equipment", 3, "points", 7, "address")`` → ``equipment[3].points[7].address``."""
    skipped = set(skip)
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in skipped or part.startswith(_BRANCH_PREFIX):
            continue
        else:
            out += ("." if out else "") + part
    return out


def describe_validation_error(
    err: ValidationError, origin: str, skip: Iterable[str] = (), extra_loc: tuple[str, ...] = ()
) -> str:
    """One line for the first error: ``origin: field.path: message (and N more)``."""
    errors = err.errors()
    e = errors[0]
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] in ("enum", "literal_error"):
        msg = f"unknown value {e.get('input')!r}: {msg}"
    where = format_loc((*e["loc"], *extra_loc), skip)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{origin}: {where}: {msg}{more}" if where else f"{origin}: {msg}{more}"


def read_yaml_mapping(
    path: str | Path, error: type[ConfigError], origin: str | None = None
) -> tuple[dict[str, Any], str]:
    """Read a YAML file whose top level is a mapping. Returns (data, origin name).

    A missing file, invalid YAML (with its line) or a non-mapping raise ``error``
    naming the file.
    """
    path = Path(path)
    name = origin or path.name
    try:
        text = path.read_text()
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise error(f"{name}:{where} invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise error(f"{name}: expected a mapping at the top level")
    return data, name


# libyaml's parser when PyYAML was built with it (about 10× faster on a site file), else
# the pure-Python one; both safe
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with the fastest safe loader available."""
    return yaml.load(text, Loader=SafeLoader)


_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(v: Any) -> float:
    """``"5m"`` → 300.0 seconds; a number is seconds (``ms s m min h d`` understood)."""
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a duration (e.g. 30s, 5m, 2h)")
    if isinstance(v, int | float):
        if v < 0:
            raise ValueError("a duration must not be negative")
        return float(v)
    if isinstance(v, str):
        m = _DUR.match(v)
        if m:
            return float(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"{v!r} is not a duration (e.g. 30s, 5m, 2h)")


#: A pydantic field type for durations written as ``30s`` / ``5m`` / ``2h`` or seconds.
Seconds = Annotated[float, BeforeValidator(parse_duration)]
