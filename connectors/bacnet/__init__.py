"""BACnet/IP: the connector (poller, writer) and its helpers, on bacpypes3.

* :mod:`connectors.bacnet.client` — a local BACnet application and the value conversions;
* :mod:`connectors.bacnet.units` — site units ↔ BACnet engineering units;
* :mod:`connectors.bacnet.poller` — :class:`BacnetPoller`, one per device (like the Modbus
  :class:`~connectors.modbus.DevicePoller`: statuses on every row, capped back-off);
* :mod:`connectors.bacnet.writer` — :class:`BacnetPointWriter`: writes at the agent's
  priority, reads back present-value and priority-array, relinquishes.
"""
