"""Reading status codes, stored as a UTINYINT beside every value.

0 is the only good status. A device that does not answer still produces rows —
with a failure status and a NULL value — so a dead device is visible in the
store, never silent zeros.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    OK = 0
    TIMEOUT = 1
    CONNECTION_LOST = 2
    DECODE_ERROR = 3
    NOT_CONNECTED = 4  # device down, inside its reconnect back-off
    BACNET_ERROR = 5  # the BACnet device answered this property with an error
    UNIT_MISMATCH = 6  # the device reports other engineering units than the site file
    MODBUS_EXCEPTION = 16  # 16 + the Modbus exception code (1 … 11)

    @staticmethod
    def modbus_exception(code: int) -> int:
        return 16 + int(code)


_EXC_NAMES = {
    1: "illegal_function",
    2: "illegal_data_address",
    3: "illegal_data_value",
    4: "device_failure",
    5: "acknowledge",
    6: "device_busy",
    8: "memory_parity_error",
    10: "gateway_path_unavailable",
    11: "gateway_target_no_response",
}


def status_name(code: int) -> str:
    """Human name of a status code, e.g. 18 → ``modbus_exception_2_illegal_data_address``."""
    if code >= Status.MODBUS_EXCEPTION:
        exc = code - Status.MODBUS_EXCEPTION
        return f"modbus_exception_{exc}_{_EXC_NAMES.get(exc, 'unknown')}"
    try:
        return Status(code).name.lower()
    except ValueError:
        return f"unknown_{code}"


def all_status_names() -> dict[int, str]:
    codes = [s.value for s in Status if s is not Status.MODBUS_EXCEPTION]
    codes += [Status.MODBUS_EXCEPTION + c for c in range(1, 12)]
    return {c: status_name(c) for c in codes}
