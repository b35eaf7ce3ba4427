"""Policies as data: YAML IF-THEN rules, validated on load, evaluated vectorised.

* :mod:`tools.policies.model`   — the schema (pydantic), documented with an example.
* :mod:`tools.policies.loader`  — files → :class:`LoadedPolicy`, errors naming file and line.
* :mod:`tools.policies.derived` — the registry of derived values (ΔT, kW/ton, detectors).
* :mod:`tools.policies.engine`  — compile against a site, evaluate all policies at once.
* ``library/*.yaml``            — the shipped policies for the twin's data hall.
"""

from tools.policies.engine import (
    Change,
    Observation,
    PolicyEngine,
    ProposedAction,
    Trigger,
    compile_policies,
)
from tools.policies.loader import (
    LoadedPolicy,
    library_dir,
    load_library,
    load_policies,
    parse_policies,
    policies_from_dicts,
)
from tools.policies.model import Policy

__all__ = [
    "Change",
    "LoadedPolicy",
    "Observation",
    "Policy",
    "PolicyEngine",
    "ProposedAction",
    "Trigger",
    "compile_policies",
    "library_dir",
    "load_library",
    "load_policies",
    "parse_policies",
    "policies_from_dicts",
]
