"""Coalesce the points of one Modbus device into block reads (pure, no I/O).

A poll of one register at a time wastes a round trip per point; a real
connector reads contiguous spans. :func:`plan_blocks` sorts the points of one
device and table by address and merges neighbours into one read while

* the span stays within the protocol limit — 125 registers for function codes
  3/4, 2000 bits for 1/2 (Modbus Application Protocol v1.1b3, §6.1–6.4), and
* the hole between two points is at most ``max_gap`` registers (or
  ``max_bit_gap`` bits): reading a few unused registers is cheaper than a second
  request, but some devices reject reads of unmapped registers, so the gap is
  configurable (0 = only strictly contiguous points share a read).

Points that share a register (``data_type: bit``) land in the same block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.site import ModbusSource, Table

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``."""

    table: Table
    start: int
    count: int
    tags: tuple[str, ...]
    sources: tuple[ModbusSource, ...]

    @property
    def end(self) -> int:
        """One past the last address read."""
        return self.start + self.count

    def __len__(self) -> int:
        return len(self.tags)


def plan_blocks(
    points: Sequence[tuple[str, ModbusSource]],
    *,
    max_gap: int = 8,
    max_bit_gap: int = 64,
    max_registers: int = MAX_REGISTERS,
    max_bits: int = MAX_BITS,
) -> list[Block]:
    """Group the points of ONE device into block reads, ordered by table then address.

    ``points`` are ``(tag, source)`` pairs; every source must name the same
    device. Raises ``ValueError`` if they do not, or if a limit is non-positive.
    """
    if max_registers < 1 or max_bits < 1 or max_gap < 0 or max_bit_gap < 0:
        raise ValueError("block limits must be positive and gaps non-negative")
    if max_registers > MAX_REGISTERS or max_bits > MAX_BITS:
        raise ValueError(
            f"Modbus allows at most {MAX_REGISTERS} registers / {MAX_BITS} bits a read"
        )
    devices = {s.device_key for _, s in points}
    if len(devices) > 1:
        raise ValueError(
            f"points of several devices given to one plan: {sorted(map(str, devices))}"
        )
    by_table: dict[Table, list[tuple[str, ModbusSource]]] = {}
    for tag, src in points:
        by_table.setdefault(src.table, []).append((tag, src))
    blocks: list[Block] = []
    for table in sorted(by_table, key=lambda t: t.value):
        bits = table.is_bit_table
        limit = max_bits if bits else max_registers
        gap_limit = max_bit_gap if bits else max_gap
        members = sorted(by_table[table], key=lambda ts: (ts[1].address, ts[0]))
        cur: list[tuple[str, ModbusSource]] = []
        start = end = 0
        for tag, src in members:
            a, b = src.address, src.address + src.register_count
            if cur and (a - end <= gap_limit) and (max(end, b) - start <= limit):
                cur.append((tag, src))
                end = max(end, b)
                continue
            if cur:
                blocks.append(_block(table, start, end, cur))
            cur, start, end = [(tag, src)], a, b
        if cur:
            blocks.append(_block(table, start, end, cur))
    return blocks


def _block(table: Table, start: int, end: int, members: list[tuple[str, ModbusSource]]) -> Block:
    return Block(
        table=table,
        start=start,
        count=end - start,
        tags=tuple(t for t, _ in members),
        sources=tuple(s for _, s in members),
    )


def split(block: Block) -> list[Block]:
    """One block per point: the fallback when a device rejects a coalesced read."""
    return [
        Block(block.table, s.address, s.register_count, (t,), (s,))
        for t, s in zip(block.tags, block.sources, strict=True)
    ]
