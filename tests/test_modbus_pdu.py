"""The connector's byte-keeping register answers agree with pymodbus's own, frame by frame
and against a real server on loopback."""

from __future__ import annotations

import asyncio
import struct

import pytest
from conftest import free_port
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from connectors.modbus_pdu import (
    HoldingRegistersAnswer,
    InputRegistersAnswer,
    answer_bytes,
    lean_client,
)
from connectors.site import parse_site
from twin.server import SiteServer

# a recorded answer body: byte count, then the words (123.456 as ABCD float32, -2, 65535)
WORDS = [17142, 59769, 0xFFFE, 0xFFFF]
FRAME = bytes([2 * len(WORDS)]) + struct.pack(">4H", *WORDS)


@pytest.mark.parametrize(
    ("lean", "stock"),
    [
        (HoldingRegistersAnswer, ReadHoldingRegistersResponse),
        (InputRegistersAnswer, ReadInputRegistersResponse),
    ],
)
def test_answer_decodes_like_pymodbus(lean: type, stock: type) -> None:
    a, b = lean(), stock()
    a.decode(FRAME)
    b.decode(FRAME)
    assert a.function_code == b.function_code
    assert list(a.registers) == list(b.registers) == WORDS
    assert a.payload == FRAME[1:]
    assert answer_bytes(a) == answer_bytes(b) == FRAME[1:]
    assert not a.isError()


def test_answer_rejects_a_short_frame_as_pymodbus_does() -> None:
    short = bytes([10]) + struct.pack(">2H", 1, 2)  # claims 10 bytes, carries 4
    with pytest.raises(ModbusIOException):
        HoldingRegistersAnswer().decode(short)
    with pytest.raises(ModbusIOException):
        ReadHoldingRegistersResponse().decode(short)


def test_registers_set_through_the_constructor_are_kept_as_bytes() -> None:
    a = HoldingRegistersAnswer(registers=[1, 2, 0xABCD])
    assert a.payload == b"\x00\x01\x00\x02\xab\xcd"
    assert list(a.registers) == [1, 2, 0xABCD]
    assert "registers=3" in str(a)  # cheap: no word list formatted


def test_lean_and_stock_clients_read_the_same_registers_from_a_real_server() -> None:
    port = free_port()
    pts = [
        {"name": f"{table}_{i}", "unit": "1",
         "source": {"port": port, "device_id": 3, "table": table, "address": i,
                    "data_type": "uint16"}}
        for table in ("holding", "input") for i in range(125)
    ]  # fmt: skip
    site = parse_site({"name": "t", "equipment": [{"id": "eq", "kind": "other", "points": pts}]})

    async def go() -> None:
        async with SiteServer(site) as server:
            for j, tag in enumerate(site.point_ids):
                server.set(tag, float((j * 523) % 65536))
            lean = lean_client("127.0.0.1", port, timeout=2.0, retries=0)
            stock = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0)
            assert await lean.connect() and await stock.connect()
            try:
                for read in ("read_holding_registers", "read_input_registers"):
                    a = await getattr(lean, read)(0, count=125, device_id=3)
                    b = await getattr(stock, read)(0, count=125, device_id=3)
                    assert isinstance(a, HoldingRegistersAnswer | InputRegistersAnswer)
                    assert list(a.registers) == list(b.registers)
                    assert len(a.payload) == 250
                # an exception answer is still pymodbus's ExceptionResponse
                err = await lean.read_holding_registers(500, count=2, device_id=3)
                assert err.isError() and err.exception_code == 2
            finally:
                lean.close()
                stock.close()

    asyncio.run(go())
