"""The site's writer: each point to the writer of its protocol (Modbus TCP or BACnet/IP).

What the agent writes through (``agent/commands/_agent.py site_writer``); the guarded
actuator above it (``tools/actuation.py``) sees one :class:`~connectors.writer.PointWriter`
with BACnet's extras — ``relinquish``, ``can_relinquish``, ``overridden_by`` — answered per
point.
"""

from __future__ import annotations

from connectors.bacnet.writer import BacnetPointWriter
from connectors.clock import Clock
from connectors.errors import WriteRejected
from connectors.site import Site
from connectors.writer import ModbusPointWriter, WriteResult


class SiteWriter:
    """The site's writer: each point goes to its protocol's writer (Modbus or BACnet).

    ``relinquish`` and ``overridden_by`` exist for BACnet points only (a Modbus point has no
    priority array): :meth:`relinquish` on a Modbus point raises ``WriteRejected``, and
    :meth:`overridden_by` answers None.
    """

    def __init__(self, site: Site, *, timeout_s: float = 2.0, clock: Clock | None = None) -> None:
        self.site = site
        self.modbus = ModbusPointWriter(site, timeout_s=timeout_s, clock=clock)
        self.bacnet = BacnetPointWriter(site, timeout_s=timeout_s, clock=clock)

    def _is_bacnet(self, tag: str) -> bool:
        try:
            return self.site.point(tag).is_bacnet
        except KeyError as err:
            raise WriteRejected(str(err)) from None

    async def write(self, tag: str, value: float) -> WriteResult:
        if self._is_bacnet(tag):
            return await self.bacnet.write(tag, value)
        return await self.modbus.write(tag, value)

    async def read(self, tag: str) -> float:
        if self._is_bacnet(tag):
            return await self.bacnet.read(tag)
        return await self.modbus.read(tag)

    def can_relinquish(self, tag: str) -> bool:
        """Whether ``tag`` has a priority array (a BACnet point): a restore relinquishes it;
        a Modbus point's restore writes the value from before the agent."""
        return self._is_bacnet(tag)

    async def relinquish(self, tag: str) -> WriteResult:
        """Give the agent's priority slot up (BACnet): native control or an operator takes over."""
        if not self._is_bacnet(tag):
            raise WriteRejected(f"{tag}: a Modbus point has no priority array to relinquish")
        return await self.bacnet.relinquish(tag)

    async def overridden_by(self, tag: str) -> tuple[int, float] | None:
        """(priority, value) of a command above the agent's on a BACnet point, else None."""
        if not self._is_bacnet(tag):
            return None
        return await self.bacnet.overridden_by(tag)

    async def close(self) -> None:
        await self.modbus.close()
        await self.bacnet.close()
