"""A local BACnet/IP application (bacpypes3) and the conversions the connector needs.

bacpypes3 answers an error, reject or abort either by returning the PDU or by raising it
(``ErrorRejectAbortNack`` derives from ``BaseException``); :func:`request` turns both, a
timeout and a socket error into our :class:`~connectors.errors.DeviceError` family.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.basetypes import ErrorType
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, PropertyIdentifier

from connectors.errors import DeviceError, DeviceTimeout, DeviceUnreachable

log = logging.getLogger(__name__)
for _name in ("bacpypes3",):  # bacpypes3 logs every lost packet; our pollers report state
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.CRITICAL)

#: Instance numbers of the local (client) applications: distinct per process.
_LOCAL_INSTANCE = itertools.count(4_194_000)


class BacnetError(DeviceError):
    """The device answered with a BACnet error, reject or abort."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def local_address_for(hosts: Iterable[str], port: int = 0) -> str:
    """The local bind address (CIDR:port) for reaching ``hosts``: loopback for loopback
    devices, else the default interface (``host``)."""
    hs = list(hosts)
    if hs and all(_is_loopback(h) for h in hs):
        return f"127.0.0.1/8:{port}"
    return f"host:{port}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_application(
    local: str, *, instance: int | None = None, name: str | None = None, objects: Iterable[Any] = ()
) -> Application:
    """A bacpypes3 application bound to ``local`` (``HOST/PREFIX:PORT``; port 0 = any) with a
    device object and ``objects``. Call inside a running event loop; :meth:`close` it."""
    inst = next(_LOCAL_INSTANCE) if instance is None else instance
    dev = DeviceObject(
        objectIdentifier=("device", inst),
        objectName=name or f"facility-agent-{inst}",
        vendorIdentifier=999,
        maxApduLengthAccepted=1476,
        segmentationSupported="segmented-both",
    )
    port = NetworkPortObject(
        local, objectIdentifier=("network-port", 1), objectName="NetworkPort-1"
    )
    return Application.from_object_list([dev, port, *objects])


async def ready(app: Application) -> None:
    """Wait until the application's UDP sockets are bound (bacpypes3 binds in tasks)."""
    for ll in app.link_layers.values():
        tasks = list(getattr(getattr(ll, "server", None), "_transport_tasks", None) or [])
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def close(app: Application) -> None:
    """Close the application and let the loop release its sockets (a port reusable at once)."""
    await ready(app)  # a socket still being bound would outlive the close
    # A request our timeout gave up on is still a transaction with a retry timer: firing
    # after the close it would send on the closed socket (a traceback per request at the
    # end of every run with a dead device). Stop the timers first.
    asap = getattr(app, "asap", None)
    for tr in [
        *getattr(asap, "clientTransactions", ()),
        *getattr(asap, "serverTransactions", ()),
    ]:
        tr.stop_timer()
    app.close()
    for _ in range(3):
        await asyncio.sleep(0)


def address(host: str, port: int) -> Address:
    return Address(f"{host}:{port}")


def object_id(obj: str) -> ObjectIdentifier:
    return ObjectIdentifier(obj)


def property_id(prop: str) -> PropertyIdentifier:
    return PropertyIdentifier(prop)


async def request(call: Awaitable[Any], timeout_s: float, what: str) -> Any:
    """Await a bacpypes3 request with a timeout; errors become DeviceError subclasses."""
    try:
        result = await asyncio.wait_for(call, timeout_s)
    except TimeoutError:
        raise DeviceTimeout(f"{what}: no answer within {timeout_s:g} s") from None
    except ErrorRejectAbortNack as err:
        raise BacnetError(f"{what}: {describe(err)}") from None
    except OSError as err:
        raise DeviceUnreachable(f"{what}: {err}") from err
    if isinstance(result, ErrorRejectAbortNack):
        raise BacnetError(f"{what}: {describe(result)}")
    return result


def describe(err: Any) -> str:
    """One line for an error/reject/abort PDU or an ErrorType value."""
    cls = type(err).__name__
    if isinstance(err, ErrorType):
        return f"{err.errorClass}: {err.errorCode}"
    for attr in ("errorCode", "apduAbortRejectReason"):
        v = getattr(err, attr, None)
        if v is not None:
            return f"{cls} {v}"
    return cls


def is_error(value: Any) -> bool:
    return isinstance(value, ErrorType | ErrorRejectAbortNack)


def to_float(value: Any) -> float:
    """A present-value as a float: REAL/INTEGER as is, a binary ``active`` 1, ``inactive`` 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if text in ("active", "1"):
        return 1.0
    if text in ("inactive", "0"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def priority_slots(array: Any) -> dict[int, float]:
    """A priority-array as ``{priority (1–16): value}`` for its non-null slots."""
    out: dict[int, float] = {}
    for i, pv in enumerate(array or []):
        choice = getattr(pv, "_choice", None)
        if choice is None or choice == "null" or getattr(pv, "null", None) is not None:
            continue
        try:
            out[i + 1] = to_float(getattr(pv, choice))
        except ValueError:
            continue
    return out
