"""Fault detection and diagnosis: pure detectors (frames in, flags out) and their policy hooks.

* :mod:`tools.fdd.chiller` — the seven RP-1043 chiller faults from physics residuals
  against a reference calibrated on fault-free data;
* :mod:`tools.fdd.synthetic` — each chiller fault's physics imposed on fault-free data;
* :mod:`tools.fdd.ahu` — ASHRAE Guideline 36 style air-handler fault conditions;
* :mod:`tools.fdd.state` — one site's references and AHU settings (:class:`FddState`,
  owned by the site's agent context), stored in the site's DuckDB (:func:`save_reference`);
* :mod:`tools.fdd.derived` — the detectors as derived values for policies
  (``fdd.chiller:<fault>``, ``fdd.ahu:<fc>``), bound to an :class:`FddState` by
  :func:`derived_specs`. Nothing is registered on import.

The chiller reference is calibrated offline (``facility-agent import rp1043 … --reference``
stores it beside the scenario as ``reference.json``) or from the site's own history;
:func:`save_reference` puts it in the site's store, where the agent picks it up.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tools.fdd import ahu, chiller
from tools.fdd.chiller import FAULT_CLASSES, ChillerFddConfig, ChillerReference
from tools.fdd.derived import derived_specs
from tools.fdd.state import FddState, save_ahu_config, save_reference

__all__ = [
    "FAULT_CLASSES",
    "ChillerFddConfig",
    "ChillerReference",
    "FddState",
    "ahu",
    "chiller",
    "derived_specs",
    "policy_file",
    "save_ahu_config",
    "save_reference",
]


def policy_file(name: str) -> Path:
    """The shipped fault policies ``tools/fdd/policies/NAME.yaml`` (``chiller_fdd``, ``ahu_fdd``)."""
    return Path(str(resources.files("tools.fdd") / "policies" / f"{name}.yaml"))
