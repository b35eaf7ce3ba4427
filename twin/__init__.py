"""A simulated AI data hall served over Modbus TCP (the twin)."""

from __future__ import annotations

from pathlib import Path

SITE_FILE = Path(__file__).resolve().parent / "site.yaml"


def default_site_path() -> Path:
    """The twin's site file: it ships with the project and is the default site everywhere."""
    return SITE_FILE
