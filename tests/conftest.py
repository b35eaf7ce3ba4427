"""Shared fixtures: free loopback ports, the shared datasets folder, a waiting helper, the agent
on a twin hall (``agent_on(hall, policies=...)``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentOn
from agent_harness import agent_on as _agent_on

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def datasets() -> Path:
    """../shared/datasets, or skip cleanly when it is absent."""
    if not DATASETS.is_dir():
        pytest.skip("../shared/datasets is absent")
    return DATASETS


def dataset_file(*parts: str) -> Path:
    p = DATASETS.joinpath(*parts)
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    return p


def wait_until(
    pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> None:
    """Wait on observable state, never on a bare sleep: fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def agent_on() -> AgentOn:
    """Build an AgentContext on a :class:`agent_harness.Hall` (keywords as ``AgentContext.build``)."""
    return _agent_on


# ---- RP-1043: the files and the reference fitted on normal.xls (test_fdd_chiller*) ----------------
@pytest.fixture(scope="module")
def rp() -> dict[str, Any]:
    """Every RP-1043 file of ../shared/datasets, by stem (skips when absent)."""
    folder = DATASETS / "rp1043"
    if not (folder / "normal.xls").is_file():
        pytest.skip("../shared/datasets/rp1043 is absent")
    from connectors.importers.rp1043 import read_rp1043

    return {p.stem: read_rp1043(p) for p in sorted(folder.glob("*.xls"))}


@pytest.fixture(scope="module")
def rp_ref(rp: dict[str, Any]) -> Any:
    from tools.fdd.chiller import ChillerReference

    return ChillerReference.fit(rp["normal"], source="normal.xls")
