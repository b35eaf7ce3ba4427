"""Bad site files give one clear error naming the file and the field path, never a traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.errors import SiteConfigError
from connectors.site import DataType, Order, load_site, parse_site
from twin import default_site_path


def _good() -> dict[str, Any]:
    def src(address: int, **kw: Any) -> dict[str, Any]:
        return {"port": 5020, "device_id": 1, "table": "holding", "address": address,
                "data_type": "float32", **kw}  # fmt: skip

    return {
        "name": "hall",
        "equipment": [
            {
                "id": "chiller_1",
                "kind": "chiller",
                "points": [
                    {"name": "chw_supply_temp", "unit": "degC", "source": src(0)},
                    {"name": "chw_return_temp", "unit": "degC", "source": src(2, layout="CDAB")},
                    {"name": "running", "unit": "bool",
                     "source": {"port": 5020, "device_id": 1, "table": "coil", "address": 0,
                                "data_type": "bool"}},
                ],
            }
        ],
    }  # fmt: skip


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _pt(d: dict[str, Any], i: int = 1) -> dict[str, Any]:
    pts: list[dict[str, Any]] = d["equipment"][0]["points"]
    return pts[i]


BAD: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "unknown data type": (
        lambda d: _pt(d)["source"].update(data_type="float16"),
        "equipment[0].points[1].source.data_type",
        "float16",
    ),
    "overlapping registers": (
        lambda d: _pt(d)["source"].update(address=1),
        "equipment[0].points[1].source.address",
        "overlaps point chiller_1.chw_supply_temp",
    ),
    "address past 65535": (
        lambda d: _pt(d)["source"].update(address=70000),
        "equipment[0].points[1].source.address",
        "65535",
    ),
    "value ends past 65535": (
        lambda d: _pt(d)["source"].update(address=65535),
        "equipment[0].points[1].source.address",
        "past 65535",
    ),
    "missing unit": (
        lambda d: _pt(d).pop("unit"),
        "equipment[0].points[1].unit",
        "required",
    ),
    "unknown equipment kind": (
        lambda d: d["equipment"][0].update(kind="toaster"),
        "equipment[0].kind",
        "toaster",
    ),
    "unknown layout": (
        lambda d: _pt(d)["source"].update(layout="ABDC"),
        "equipment[0].points[1].source.layout",
        "ABDC",
    ),
}


def test_good_site_loads(tmp_path: Path) -> None:
    site = load_site(_write(tmp_path, _good()))
    p = site.point("chiller_1.chw_return_temp")
    assert (p.source.byte_order, p.source.word_order) == (Order.BIG, Order.LITTLE)
    assert p.source.data_type is DataType.FLOAT32
    assert site.point_ids == {
        "chiller_1.chw_supply_temp": 0,
        "chiller_1.chw_return_temp": 1,
        "chiller_1.running": 2,
    }


def test_shipped_twin_site_loads() -> None:
    site = load_site(default_site_path())
    assert len(site.point_ids) > 50 and len(site.devices()) >= 10


@pytest.mark.parametrize("case", list(BAD))
def test_bad_site_names_file_and_field(tmp_path: Path, case: str) -> None:
    mutate, path, detail = BAD[case]
    data = copy.deepcopy(_good())
    mutate(data)
    with pytest.raises(SiteConfigError) as err:
        load_site(_write(tmp_path, data))
    msg = str(err.value)
    assert msg.startswith(f"site.yaml: {path}: "), msg
    assert detail in msg
    assert "\n" not in msg


def test_bit_points_may_share_a_register_but_not_a_bit() -> None:
    data = _good()
    bits = [
        {"name": f"b{i}", "unit": "bool",
         "source": {"port": 5020, "device_id": 1, "table": "holding", "address": 10,
                    "data_type": "bit", "bit": b}}
        for i, b in enumerate([0, 1, 1])
    ]  # fmt: skip
    data["equipment"][0]["points"] += bits[:2]
    assert len(parse_site(data).point_ids) == 5
    data["equipment"][0]["points"].append(bits[2])
    with pytest.raises(SiteConfigError, match=r"equipment\[0\]\.points\[5\]\.source\.address"):
        parse_site(data, "site.yaml")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "site.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SiteConfigError, match=r"^site\.yaml: line \d+: invalid YAML"):
        load_site(p)
    with pytest.raises(SiteConfigError, match="cannot read"):
        load_site(tmp_path / "absent.yaml")


def test_ingest_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    data = copy.deepcopy(_good())
    _pt(data)["source"].update(data_type="float16")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ingest", "--site", str(bad),
         "--db", str(tmp_path / "x.duckdb")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        "facility-agent: error: bad.yaml: equipment[0].points[1].source.data_type:"
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "x.duckdb").exists()  # failed before touching the store
