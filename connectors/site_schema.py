"""The site file's JSON Schema and its reference page, both generated from the pydantic models
of :mod:`connectors.site` (``facility-agent schema`` / ``schema --markdown > docs/site.md``).

A field's text is its ``Field(description=...)``; for fields the models leave undescribed,
:data:`FIELD_TEXT` gives it here. Every field must have one: :func:`undocumented` lists those
that do not (a test keeps it empty, so a new field cannot reach the page silently).
"""

from __future__ import annotations

import json
from typing import Any

from connectors.site import Site

#: Texts for fields whose model gives no description, by ``Model.field``.
FIELD_TEXT: dict[str, str] = {
    "Site.name": "the site's name (shown in the banner, reports and metrics)",
    "Site.description": "free text",
    "Site.quality": "data-quality score needed for each autonomy level",
    "Site.equipment": "the site's equipment and their points",
    "Equipment.id": "unique id; a point's tag is `<equipment id>.<point name>`",
    "Equipment.kind": "what the equipment is (policies and the what-if find equipment by kind)",
    "Equipment.name": "human name",
    "Equipment.description": "free text",
    "Equipment.points": "its points (names unique within the equipment)",
    "Point.name": "point name, unique within its equipment",
    "Point.description": "free text",
    "Point.poll_interval_s": "seconds between reads of this point",
    "Point.source": "where the point lives on the wire",
    "Point.write": "limits every write is held to; only writable (holding/coil) points have them, "
    "and only points with them can be written by the agent",
    "ModbusSource.protocol": "wire protocol",
    "ModbusSource.host": "IP address or host name of the Modbus TCP device or gateway",
    "ModbusSource.port": "TCP port",
    "ModbusSource.device_id": "Modbus unit id (slave id); behind a gateway, the device's address",
    "ModbusSource.table": "register table: holding (4x, read/write), input (3x, read-only), "
    "coil (0x, read/write bits), discrete (1x, read-only bits)",
    "ModbusSource.address": "0-based register (or bit) address in the table — the PDU address; "
    "a manual's 40001 / 30001 numbering is address + 1",
    "ModbusSource.data_type": "value type; 32-bit types take two registers, float64 four",
    "ModbusSource.bit": "bit of the register (0 = least significant), for data_type bit",
    "ModbusSource.byte_order": "order of the two bytes in each register",
    "ModbusSource.word_order": "order of the registers of a multi-register value",
    "ModbusSource.scale": "engineering value = raw × scale + offset (e.g. 0.1 for tenths)",
    "ModbusSource.offset": "engineering value = raw × scale + offset",
    "ModbusSource.layout": "shorthand for byte_order + word_order: ABCD (big/big), CDAB (big "
    "bytes, little words), BADC, DCBA",
    "WriteLimits.min": "lowest value ever written",
    "WriteLimits.max": "highest value ever written",
    "QualityThresholds.level3": "lowest score that allows level 3 (full autonomy)",
    "QualityThresholds.level2": "lowest score that allows level 2 (human validation)",
    "QualityThresholds.level1": "lowest score that allows level 1 (decision support)",
}

_LAYOUT = {
    "description": FIELD_TEXT["ModbusSource.layout"],
    "enum": ["ABCD", "CDAB", "BADC", "DCBA"],
    "title": "Layout",
    "type": "string",
}


def site_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a site file, with every field described."""
    schema = Site.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "facility-agent site file"
    models = {"Site": schema, **schema.get("$defs", {})}
    src = models.get("ModbusSource")
    if src is not None and "layout" not in src["properties"]:  # accepted by a before-validator
        src["properties"]["layout"] = dict(_LAYOUT)
    for name, m in models.items():
        for field, prop in m.get("properties", {}).items():
            text = FIELD_TEXT.get(f"{name}.{field}")
            if "description" not in prop and text:
                prop["description"] = text
    return schema


def undocumented(schema: dict[str, Any] | None = None) -> list[str]:
    """``Model.field`` of every field without a description."""
    s = schema or site_schema()
    models = {"Site": s, **s.get("$defs", {})}
    return [
        f"{name}.{field}"
        for name, m in models.items()
        for field, prop in m.get("properties", {}).items()
        if not prop.get("description")
    ]


def schema_json() -> str:
    return json.dumps(site_schema(), indent=2, ensure_ascii=False) + "\n"


# ---- the reference page ------------------------------------------------------------------------
def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        return (
            " or ".join(_type(p) for p in prop["anyOf"] if p.get("type") != "null") + " (optional)"
        )
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    t = prop.get("type", "any")
    if t == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if t == "object" and "additionalProperties" in prop:
        return f"map of name → {_type(prop['additionalProperties'])}"
    return {"number": "number", "integer": "integer", "string": "text", "boolean": "yes/no"}.get(
        t, str(t)
    )


def _bounds(prop: dict[str, Any]) -> str:
    parts = []
    for key, sym in (
        ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
        ("minLength", "length ≥"), ("pattern", "matches"),
    ):  # fmt: skip
        for p in (prop, *prop.get("anyOf", [])):
            if key in p:
                v = f"`{p[key]}`" if key == "pattern" else p[key]
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop:
        return ""
    d = prop["default"]
    return "none" if d is None else f"`{json.dumps(d, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def site_markdown() -> str:
    """The reference page of the site file (``docs/site.md``)."""
    s = site_schema()
    defs = s.get("$defs", {})
    out = [
        "# The site file",
        "",
        "<!-- generated by `facility-agent schema --markdown > docs/site.md`; "
        "tests/test_cli_validate.py checks it is current — do not edit by hand -->",
        "",
        "A site file (YAML) describes a facility: its equipment, their points, where each point",
        "lives on the wire and the limits every write is held to. `facility-agent validate",
        "SITE.yaml` checks one without polling anything; `facility-agent schema` prints the JSON",
        "Schema below for editors. An error names the file and the field, e.g.",
        "`site.yaml: equipment[0].points[3].source.address: Input should be less than or equal to 65535`.",
        "A point's tag is `<equipment id>.<point name>`.",
        "",
    ]
    first = ["Equipment", "Point", "ModbusSource", "WriteLimits", "SensorSpec", "QualityThresholds"]
    models = [k for k, v in defs.items() if "properties" in v]
    order = ["Site", *[k for k in first if k in models], *[k for k in models if k not in first]]
    enums = [k for k, v in defs.items() if "enum" in v]
    for name in order:
        m = s if name == "Site" else defs[name]
        out += [f"## {name}", ""]
        doc = m.get("description")
        if doc and name != "Site":
            out += [_cell(doc), ""]
        out += ["| field | type | default | limits | meaning |", "|---|---|---|---|---|"]
        req = set(m.get("required", []))
        for field, prop in m["properties"].items():
            out.append(
                f"| `{field}` | {_type(prop)} | {_default(prop, field in req)} | "
                f"{_cell(_bounds(prop))} | {_cell(prop.get('description', ''))} |"
            )
        out.append("")
    out += ["## Values", ""]
    for name in enums:
        vals = ", ".join(f"`{v}`" for v in defs[name]["enum"])
        out += [f"### {name}", "", vals, ""]
    return "\n".join(out)
