"""The stored form of a what-if prediction: what a decision keeps, the gate judges and the audit shows.

:class:`PredictionRecord` is built once from perfmodel's :class:`~perfmodel.whatif.Prediction`
(:meth:`PredictionRecord.of`) and read back from a checkpoint or an audit row
(:meth:`PredictionRecord.from_json`, which also reads the older ``Prediction.to_dict`` shape).
Non-finite numbers are stored as ``None`` (JSON has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass

from perfmodel.whatif import KEY_OUTPUTS, Prediction, model_departures


def finite(x: float | None, digits: int = 4) -> float | None:
    """``x`` rounded, or None when it is missing or not finite."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


@dataclass(frozen=True)
class ConstraintRecord:
    """One checked limit after the change: ``margin`` > 0 inside; ``margin_before`` before it."""

    name: str
    ok: bool
    value: float | None = None
    limit: float | None = None
    margin: float | None = None
    unit: str = ""
    margin_before: float | None = None


@dataclass(frozen=True)
class PredictionRecord:
    """Constraints, key outputs before/after, validity and its reasons, what got worse."""

    constraints: tuple[ConstraintRecord, ...] = ()
    before: dict[str, float | None] | None = None
    after: dict[str, float | None] | None = None
    valid: bool = True
    invalid_reasons: tuple[str, ...] = ()
    worsened: tuple[str, ...] = ()
    model: dict[str, float | str] | None = None  # calibrated parameters in use (None: catalogue)

    @classmethod
    def of(cls, pred: Prediction) -> PredictionRecord:
        return cls(
            constraints=tuple(
                ConstraintRecord(
                    name=c.name,
                    ok=c.ok,
                    value=finite(c.value),
                    limit=finite(c.limit),
                    margin=finite(c.margin),
                    unit=c.unit,
                    margin_before=finite(c.margin_before),
                )
                for c in pred.constraints
            ),
            before={k: finite(pred.before[k]) for k in KEY_OUTPUTS if k in pred.before},
            after={k: finite(pred.after[k]) for k in KEY_OUTPUTS if k in pred.after},
            valid=pred.valid,
            invalid_reasons=tuple(pred.invalid_reasons),
            worsened=tuple(c.name for c in pred.worsened),
            model=model_departures(pred.state) or None,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PredictionRecord:
        """A stored prediction (this record's JSON, or the older ``Prediction.to_dict``)."""
        return _ADAPTER.validate_python(dict(data))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        out["delta_kw"] = self.delta_kw  # the summary the console and the evals read
        return out

    def output(self, key: str, *, before: bool = False) -> float | None:
        """A model output (``facility_kw``, ``gpu_die_c`` …) after the change (or before it)."""
        v = (self.before if before else self.after or {}) or {}
        return v.get(key)

    @property
    def delta_kw(self) -> float | None:
        a, b = self.output("facility_kw"), self.output("facility_kw", before=True)
        return None if a is None or b is None else round(a - b, 4)


_ADAPTER: TypeAdapter[PredictionRecord] = TypeAdapter(PredictionRecord)
