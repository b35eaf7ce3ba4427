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
it from there, see :meth:`agent.audit.Audit.autonomous_actions`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from connectors.store import Store
from tools.calibration import ModelState
from tools.fdd.derived import derived_specs
from tools.fdd.state import FddState
from tools.policies.derived import BUILTINS, DerivedInput, DerivedRegistry, DerivedSpec
from tools.policies.state import PolicyState
from tools.whatif import check as whatif_check


@dataclass
class SiteState:
    fdd: FddState = field(default_factory=FddState)
    policies: PolicyState = field(default_factory=PolicyState)
    model: ModelState = field(default_factory=ModelState)

    @classmethod
    def load(cls, store: Store) -> SiteState:
        return cls(FddState.load(store), PolicyState.load(store), ModelState.load(store))

    def registry(self) -> DerivedRegistry:
        return DerivedRegistry.builtin(derived_specs(self.fdd), model_specs(self.model))


def model_specs(model: ModelState) -> list[DerivedSpec]:
    """The model residuals (``model.pue_residual``, ``model.cooling_power_residual``) on the
    site's calibration in use rather than the catalogue: a plant that merely differs from
    the catalogue is not a degraded one; one drifting away from its own learnt model is."""

    def now(x: DerivedInput) -> Any:
        if "model.now.calibrated" not in x.memo:
            x.memo["model.now.calibrated"] = whatif_check(x.site, x.values, [], model.params)
        return x.memo["model.now.calibrated"]

    def pue(x: DerivedInput) -> float:
        return x.v("plant.pue") - float(now(x).pue)

    def cooling(x: DerivedInput) -> float:
        return x.v("plant.cooling_power") - float(now(x).cooling_kw)

    out = []
    for fn, name in ((pue, "model.pue_residual"), (cooling, "model.cooling_power_residual")):
        b = next(s for s in BUILTINS if s.name == name)
        out.append(replace(b, fn=fn))
    return out
