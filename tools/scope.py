"""The quality scope of a write: every point the action rests on (DESIGN.md "Trust rules").

    scope = the policy's condition points
          ∪ every sensor of the equipment being written (its points that are not set points)
          ∪ the what-if's input points (when the decision asks the what-if)

The weakest point of the scope decides the data-quality level, at decision time and
again at the moment of writing. A write to ``chiller_1.chw_supply_setpoint`` thus rests
on ``chiller_1.chw_supply_temp`` even when the policy's condition only names GPU and PUE
points (issue 11, finding 4).

The what-if's inputs are the points :func:`tools.whatif.build_state` reads, found by
letting it read from a mapping that records what it asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from connectors.site import Site
from tools.whatif import build_state

__all__ = ["equipment_sensors", "whatif_inputs", "write_scope"]


class _Asked(Mapping[str, float]):
    """Every status reads "on" and every fault "off" (so every branch of the state build
    reads on); the tags asked for are kept in order."""

    def __init__(self) -> None:
        self.asked: dict[str, None] = {}

    def __getitem__(self, tag: str) -> float:
        self.asked[tag] = None
        return 0.0 if tag.endswith(("fault", "tripped")) else 1.0

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def whatif_inputs(site: Site) -> tuple[str, ...]:
    """The site's points the what-if reads to build the plant's state."""
    asked = _Asked()
    build_state(site, asked)
    return tuple(t for t in asked.asked if t in site.points_by_tag)


def equipment_sensors(site: Site, tag: str) -> tuple[str, ...]:
    """The points of ``tag``'s equipment that are not set points or commands (read-only)."""
    found = site.points_by_tag.get(tag)
    if found is None:
        return ()
    eq = found[0]
    return tuple(f"{eq.id}.{p.name}" for p in eq.points if p.write is None)


def write_scope(
    site: Site, rests_on: Iterable[str], written: Iterable[str], whatif: bool
) -> tuple[str, ...]:
    """The points a decision rests on (ordered, no repeats); see the module docstring.

    ``written``: the tags the action writes (empty: the scope is ``rests_on``);
    ``whatif``: the decision is checked by the what-if (its inputs join the scope)."""
    out: dict[str, None] = dict.fromkeys(rests_on)
    tags = list(written)
    for tag in tags:
        out.update(dict.fromkeys(equipment_sensors(site, tag)))
    if tags and whatif:
        out.update(dict.fromkeys(whatif_inputs(site)))
    return tuple(out)
