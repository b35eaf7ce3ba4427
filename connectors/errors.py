"""One exception tree for the whole project; library errors are translated at the edges.

    FacilityError
    ├── ConfigError                 a file the user wrote is wrong (names file and field)
    │   ├── SiteConfigError         site.yaml
    │   ├── PolicyConfigError       policies/*.yaml
    │   └── ScenarioConfigError     scenario.yaml
    ├── DeviceError                 talking to equipment failed (raised from the library error)
    │   ├── DeviceTimeout           no answer in time
    │   ├── DeviceUnreachable       connection refused / lost
    │   ├── ModbusExceptionResponse the device answered with a Modbus exception code
    │   └── DecodeError             registers do not decode to the point's type
    ├── WriteRejected               a guarded write refused before touching equipment (limits, gate)
    │   └── NonFiniteValue          NaN or ±inf where a finite number is required (a write, a what-if)
    ├── WriteFailed                 a write reached equipment and did not verify
    └── StoreError                  the DuckDB store (e.g. locked by another process)

Code never logs and returns None on failure: it raises one of these (``raise X from err``)
or, for readings, records a status so a dead device is a status, not silent zeros.
"""

from __future__ import annotations


class FacilityError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(FacilityError):
    """A configuration file is invalid; the message names the file and the field."""


class SiteConfigError(ConfigError):
    pass


class PolicyConfigError(ConfigError):
    pass


class ScenarioConfigError(ConfigError):
    pass


class DeviceError(FacilityError):
    """Talking to a device failed."""


class DeviceTimeout(DeviceError):
    pass


class DeviceUnreachable(DeviceError):
    pass


class ModbusExceptionResponse(DeviceError):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"Modbus exception code {code}")
        self.code = code


class DecodeError(DeviceError):
    pass


class WriteRejected(FacilityError):
    """A write was refused before it reached equipment."""


class NonFiniteValue(WriteRejected, ValueError):
    """NaN or an infinity offered where only a finite number makes sense (nothing is written)."""


class WriteFailed(FacilityError):
    """A write reached equipment but its read-back or verification failed."""


class StoreError(FacilityError):
    pass
