"""The site a scenario runs on: the twin, an importer's site or a file, with the scenario's overrides."""

from __future__ import annotations

from pathlib import Path

from connectors.errors import ScenarioConfigError
from connectors.importers.esb import esb_site
from connectors.importers.lbnl import lbnl_site
from connectors.importers.rp1043 import rp1043_site
from connectors.site import Site, load_site, parse_site
from evals.scenario import Scenario
from tools.fdd import policy_file
from tools.policies.loader import library_dir
from twin import default_site_path


def with_overrides(site: Site, autonomy: int | None, text: dict[str, str]) -> Site:
    """The site with the scenario's autonomy ceiling and extra words in point descriptions."""
    if autonomy is None and not text:
        return site
    data = site.model_dump(mode="json")
    if autonomy is not None:
        data["autonomy_ceiling"] = autonomy
    for tag, words in text.items():
        eq_id, _, name = tag.partition(".")
        found = False
        for eq in data["equipment"]:
            if eq["id"] != eq_id:
                continue
            for p in eq["points"]:
                if p["name"] == name:
                    p["description"] = f"{p.get('description', '')} {words}".strip()
                    found = True
        if not found:
            raise ScenarioConfigError(f"source.text: {tag!r} is not a point of site {site.name}")
    return parse_site(data, origin=f"{site.name} (scenario overrides)")


def with_poll_floor(site: Site, seconds: float) -> Site:
    """The site with every point's poll interval at least ``seconds``.

    A recording sampled every 30 s was, in effect, polled every 30 s: the data-quality
    scorer must judge freshness and completeness against that, not against the live
    site's 1-s polls (which would call every replayed point stale).
    """
    if not any(p.poll_interval_s < seconds for _eq, p in site.iter_points()):
        return site
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["poll_interval_s"] = max(float(p.get("poll_interval_s", 1.0)), seconds)
    return parse_site(data, origin=f"{site.name} (replayed at {seconds:g} s)")


def scenario_site(scn: Scenario, folder: Path, columns: list[str] | None = None) -> Site:
    """The site a scenario runs on (``twin``, an importer's site, or a file in the folder)."""
    kind = scn.site
    if kind == "twin":
        site = load_site(default_site_path())
    elif kind == "rp1043":
        site = rp1043_site(columns)
    elif kind == "lbnl":
        site = lbnl_site(columns or [])
    elif kind == "esb":
        site = esb_site(columns) if columns is not None else esb_site()
    else:
        site = load_site(folder / kind)
    return with_overrides(site, scn.agent.autonomy, dict(scn.source.text))


def policy_path(ref: str, folder: Path) -> Path:
    """``fdd:NAME`` → tools/fdd/policies/NAME.yaml, ``library:NAME`` → the shipped library file,
    anything else a file relative to the scenario folder."""
    if ref.startswith("fdd:"):
        return policy_file(ref[4:])
    if ref.startswith("library:"):
        return library_dir() / f"{ref[8:]}.yaml"
    return folder / ref
