"""Everything one site's agent remembers between cycles, in one object its context owns.

* :attr:`SiteState.fdd` — chiller references and AHU settings (:class:`tools.fdd.FddState`);
* :attr:`SiteState.policies` — when each policy instance last fired, so cool-downs hold
  across a restart (:class:`tools.policies.state.PolicyState`);
* :attr:`SiteState.model` — the plant model's calibrated parameters in use and the rolling
  refit's schedule (:class:`tools.calibration.ModelState`).

:meth:`SiteState.load` reads them from the site's store (and keeps saving firings
there); :meth:`SiteState.registry` is the derived-value registry of the site's policy
engine: the built-ins plus the detectors bound to this site's references.
(The auto-lock's history is the audit's record of autonomous actions: the context seeds
it from there, see :meth:`agent.audit.Audit.autonomous_action_times`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.store import Store
from tools.calibration import ModelState
from tools.fdd.derived import derived_specs
from tools.fdd.state import FddState
from tools.policies.derived import DerivedRegistry
from tools.policies.state import PolicyState


@dataclass
class SiteState:
    fdd: FddState = field(default_factory=FddState)
    policies: PolicyState = field(default_factory=PolicyState)
    model: ModelState = field(default_factory=ModelState)

    @classmethod
    def load(cls, store: Store) -> SiteState:
        return cls(FddState.load(store), PolicyState.load(store), ModelState.load(store))

    def registry(self) -> DerivedRegistry:
        return DerivedRegistry.builtin(derived_specs(self.fdd))
