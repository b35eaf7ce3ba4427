"""Policies as data: YAML IF-THEN rules, validated on load, evaluated vectorised.

* :mod:`tools.policies.model`   — the schema (pydantic), documented with an example.
* :mod:`tools.policies.loader`  — files → :class:`LoadedPolicy`, errors naming file and line.
* :mod:`tools.policies.derived` — derived values (ΔT, kW/ton, …) and the registry an engine
  is built with (:class:`DerivedRegistry`, built explicitly: nothing registers on import).
* :mod:`tools.policies.engine`  — compile against a site, evaluate all policies at once.
* :mod:`tools.policies.state`   — when each instance last fired (cool-downs), kept in the store.
* ``library/*.yaml``            — the shipped policies for the twin's data hall.
"""

from tools.policies.derived import DerivedRegistry
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
from tools.policies.state import PolicyState

__all__ = [
    "Change",
    "DerivedRegistry",
    "LoadedPolicy",
    "Observation",
    "Policy",
    "PolicyEngine",
    "PolicyState",
    "ProposedAction",
    "Trigger",
    "compile_policies",
    "library_dir",
    "load_library",
    "load_policies",
    "parse_policies",
    "policies_from_dicts",
]
