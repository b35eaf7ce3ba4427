"""Policies as data: the pydantic models a policy YAML file is validated against.

A file holds ``policies: [...]``; one policy (see ``library/*.yaml`` for real ones)::

    - id: chw_supply_high
      description: Chilled-water supply above 12 °C for 5 minutes
      severity: high                      # info | low | medium | high | critical
      kind: protection                    # fault | alarm | efficiency | protection
      fault_class: null                   # fault rules name their class
      scope: {kind: chiller}              # instantiate once per chiller (optional)
      when:                               # all: [...] or any: [...]
        all:
          - point: chw_supply_temp        # a point name on the scoped equipment, or a full tag
            op: ">"                       # > >= < <= == != outside inside
            value: 12.0                   # a number, or [lo, hi] for outside/inside
            hysteresis: 0.5               # once true, stays true until 11.5
            for: 2m                       # this condition must hold 2 minutes
          - point: running
            op: "=="
            value: 1
      for: 5m                             # the whole condition must hold 5 minutes
      cooldown: 15m                       # no second trigger of this instance within 15 minutes
      clear_after: 5m                     # a fault (kind fault, or a fault_class) clears once its
                                          # condition has been false for 5 minutes (the default)
      then:
        action: write_setpoint            # write_setpoint start stop stage cap_gpu_power
                                          # isolate alarm notify optimise
        target: chw_supply_setpoint
        delta: -1.0                       # or value: 6.5
        min: 5.0                          # bounds of the parameter (always within write limits)
        max: 12.0
      ceiling: 2                          # the policy's own autonomy ceiling
      min_quality: 0.8                    # below: decision support at most
      whatif: required                    # required | optional | none
      verify: {point: chw_supply_temp, expect: decrease, window: 5m, tolerance: 0.1}

A condition reads exactly one of ``point`` (tag or name), ``brick`` (Brick class
of a point on the scoped equipment), ``derived`` (a registered derived value,
:mod:`tools.policies.derived`) or ``quality`` (the data-quality score, 0–1, of a
point). Durations are ``30s``, ``5m``, ``2h`` or a number of seconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.config import Seconds

Op = Literal[">", ">=", "<", "<=", "==", "!=", "outside", "inside"]
Severity = Literal["info", "low", "medium", "high", "critical"]
PolicyKind = Literal["fault", "alarm", "efficiency", "protection"]
ActionKind = Literal[
    "write_setpoint",
    "start",
    "stop",
    "stage",
    "cap_gpu_power",
    "isolate",
    "alarm",
    "notify",
    "optimise",
]
#: Actions that write to equipment (the rest only inform people).
WRITING_ACTIONS = frozenset(
    {"write_setpoint", "start", "stop", "stage", "cap_gpu_power", "isolate", "optimise"}
)


class _Strict(BaseModel):
    # every number in a policy is finite: a NaN threshold never fires, an infinite bound never holds
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class Condition(_Strict):
    point: str | None = None
    brick: str | None = None
    derived: str | None = None
    quality: str | None = None
    args: dict[str, float] = Field(default_factory=dict)
    op: Op
    value: float | tuple[float, float]
    hysteresis: float = Field(0.0, ge=0)
    for_s: Seconds = Field(0.0, alias="for")

    @model_validator(mode="after")
    def _check(self) -> Condition:
        refs = [r for r in (self.point, self.brick, self.derived, self.quality) if r is not None]
        if len(refs) != 1:
            raise ValueError("a condition reads exactly one of point, brick, derived, quality")
        if self.op in ("outside", "inside"):
            if not isinstance(self.value, tuple):
                raise ValueError(f"op {self.op} needs value: [lo, hi]")
            if self.value[0] > self.value[1]:
                raise ValueError(f"value [lo, hi] has lo {self.value[0]} above hi {self.value[1]}")
        elif isinstance(self.value, tuple):
            raise ValueError(f"op {self.op} needs one number, not a range")
        if self.args and self.derived is None:
            raise ValueError("args are only for derived values")
        return self

    @property
    def ref(self) -> str:
        for kind in ("point", "brick", "derived", "quality"):
            v = getattr(self, kind)
            if v is not None:
                return f"{kind}:{v}"
        raise AssertionError("unreachable")


class When(_Strict):
    all: list[Condition] | None = None
    any: list[Condition] | None = None

    @model_validator(mode="after")
    def _one(self) -> When:
        if (self.all is None) == (self.any is None):
            raise ValueError("`when` takes exactly one of all: [...] or any: [...]")
        if not self.conditions:
            raise ValueError("`when` needs at least one condition")
        return self

    @property
    def conditions(self) -> list[Condition]:
        return self.all if self.all is not None else (self.any or [])

    @property
    def mode(self) -> Literal["all", "any"]:
        return "all" if self.all is not None else "any"


class Scope(_Strict):
    kind: str | None = None
    equipment: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> Scope:
        if (self.kind is None) == (self.equipment is None):
            raise ValueError("scope takes exactly one of kind or equipment")
        return self


class Action(_Strict):
    action: ActionKind
    target: str | None = Field(None, description="point name on the scoped equipment, or tag")
    value: float | None = None
    delta: float | None = None
    fraction: float | None = Field(None, gt=0, le=1, description="cap_gpu_power: fraction of now")
    min: float | None = None
    max: float | None = None
    stage_kind: str | None = Field(None, description="stage: equipment kind to start a unit of")
    message: str = ""
    variables: list[str] = Field(
        default_factory=list, description="optimise: which set points the optimiser may move"
    )

    @model_validator(mode="after")
    def _check(self) -> Action:
        a = self.action
        if a in ("write_setpoint", "cap_gpu_power"):
            if self.target is None:
                raise ValueError(f"{a} needs a target")
            given = [x for x in (self.value, self.delta, self.fraction) if x is not None]
            if len(given) != 1:
                raise ValueError(f"{a} needs exactly one of value, delta, fraction")
            relative = self.delta is not None or self.fraction is not None
            if relative and (self.min is None or self.max is None):
                raise ValueError(f"{a} with delta/fraction needs bounds min and max")
        if a in ("start", "stop") and self.target is None:
            raise ValueError(f"{a} needs a target (the enable point)")
        if a == "stage" and self.stage_kind is None:
            raise ValueError("stage needs stage_kind (e.g. chiller)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if a in ("alarm", "notify") and (self.target or self.value is not None):
            raise ValueError(f"{a} writes nothing: no target or value")
        return self

    @property
    def writes(self) -> bool:
        return self.action in WRITING_ACTIONS


class Verify(_Strict):
    point: str
    expect: Literal["decrease", "increase"]
    window_s: Seconds = Field(300.0, alias="window")
    tolerance: float = Field(0.0, ge=0)


class Policy(_Strict):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
    description: str
    severity: Severity = "medium"
    kind: PolicyKind = "protection"
    fault_class: str | None = None
    scope: Scope | None = None
    when: When
    for_s: Seconds = Field(0.0, alias="for")
    cooldown_s: Seconds = Field(900.0, alias="cooldown")
    clear_after_s: Seconds = Field(300.0, ge=0, alias="clear_after")
    then: Action
    ceiling: int = Field(3, ge=0, le=3)
    min_quality: float = Field(0.0, ge=0, le=1)
    whatif: Literal["required", "optional", "none"] = "optional"
    verify: Verify | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> Policy:
        if self.kind == "fault" and not self.fault_class:
            raise ValueError("a fault policy needs a fault_class")
        return self


class PolicyFile(_Strict):
    policies: list[Policy]
