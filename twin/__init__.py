"""A simulated AI data hall served over Modbus TCP and BACnet/IP (the twin)."""

from __future__ import annotations

from pathlib import Path

SITE_FILE = Path(__file__).resolve().parent / "site.yaml"


def default_site_path() -> Path:
    """The twin's site file, every device on Modbus: the twin's default site. The agent's
    commands default to it as the twin serves it (``twin.bacnet_map.bacnet_twin_site``:
    CRAHs and CDU over BACnet/IP)."""
    return SITE_FILE
