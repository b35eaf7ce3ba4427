"""Register-read answers that keep their bytes: pymodbus's response path, without the per-word loop.

pymodbus decodes a read-registers answer one word at a time (a ``struct.unpack``
per register appended to a list) and then formats the whole answer with
``str(pdu)`` for a debug line whether or not debug logging is on. On a
125-register answer that is about 40 % of the client's CPU per request
(profiled on the ingest benchmark), before our own decoder has even started.

:class:`HoldingRegistersAnswer` and :class:`InputRegistersAnswer` replace the
function-code 3 and 4 answers on a client (through pymodbus's documented
``client.register(custom_response_class)``). They keep the answer's data bytes
as :attr:`payload` — what :class:`connectors.codec.BlockDecoder` works on,
stacked straight from the bytes with ``numpy.frombuffer`` — and build the
``registers`` list only when someone asks for it (writers reading back a value,
tests, the debugger). Everything else about the request/response exchange —
framing, transaction ids, timeouts, exceptions — stays pymodbus's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)


class RegisterAnswer:
    """Mixin for a register-read answer: ``payload`` bytes, ``registers`` on demand."""

    function_code: int
    payload: bytes
    _registers: Sequence[int] | None

    def decode(self, data: bytes) -> None:
        n = int(data[0])
        if n >= len(data):  # same check and error as pymodbus
            raise ModbusIOException(
                f"byte_count {n} > length of packet {len(data)}",
                function_code=self.function_code,
            )
        self.payload = bytes(data[1 : 1 + n])
        self._registers = None

    @property
    def registers(self) -> Sequence[int]:
        if self._registers is None:
            b = self.payload
            self._registers = list(struct.unpack(f">{len(b) // 2}H", b[: len(b) // 2 * 2]))
        return self._registers

    @registers.setter
    def registers(self, value: Sequence[int]) -> None:  # pymodbus's __init__ sets it
        self._registers = value
        self.payload = struct.pack(f">{len(value)}H", *value)

    def __str__(self) -> str:  # pymodbus formats every answer for a debug line; keep it cheap
        return (
            f"{type(self).__name__}(function_code={self.function_code}, "
            f"registers={len(self.payload) // 2})"
        )


class HoldingRegistersAnswer(RegisterAnswer, ReadHoldingRegistersResponse):
    """Function code 3 answer (read holding registers) that keeps its bytes."""


class InputRegistersAnswer(RegisterAnswer, ReadInputRegistersResponse):
    """Function code 4 answer (read input registers) that keeps its bytes."""


def lean_client(host: str, port: int, **kwargs: object) -> AsyncModbusTcpClient:
    """An :class:`AsyncModbusTcpClient` whose register-read answers keep their bytes."""
    client = AsyncModbusTcpClient(host, port=port, **kwargs)  # type: ignore[arg-type]
    client.register(HoldingRegistersAnswer)
    client.register(InputRegistersAnswer)
    return client


def answer_bytes(rr: ModbusPDU) -> bytes:
    """The data bytes of a register-read answer (big-endian words, as on the wire)."""
    if isinstance(rr, RegisterAnswer):
        return rr.payload
    regs = rr.registers
    return struct.pack(f">{len(regs)}H", *regs)
