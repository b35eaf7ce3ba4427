"""A chiller's fault-free reference learned from the site's own history (``fdd learn``).

:func:`learn_reference` reads one chiller's points between ``since`` and ``until`` from
the site's store, keeps only the stretches whose data can be trusted, checks that what
is left covers enough operating range, and fits a :class:`ChillerReference` on it
(spreads from out-of-fold residuals, :meth:`ChillerReference.fit`). :func:`save_reference`
then stores it in ``fdd_references``, where the agent picks it up at its next start.

What is refused, and why:

* a **window with poor data quality** — every ``quality_window`` the site's data-quality
  scorer (:mod:`tools.quality`) rates the chiller's points; a window whose weakest
  point scores below ``min_quality`` (a stuck, dropped-out, spiking or implausible
  sensor) is blanked before the fit, and listed with the reason;
* **too little operating range** — a reference is a regression on the operating point
  (TEO, TCI, load): learned where nothing moved, it knows nothing of anywhere else.
  The fit needs ``min_hours`` of steady running and the operating point to move in at
  least one of load (10 % of its median), TCI (2 K) or TEO (1 K), 5th–95th percentile.
  A variable that does not move (a plant holding its chilled-water setpoint) is pinned
  (:attr:`ChillerReference.pinned`); the detector judges only windows inside the
  reference's ``bounds``.

Who says the history is fault-free? The operator who names the period: the command
takes ``--since``/``--until`` as a statement that the chiller was healthy then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from connectors.errors import ConfigError
from connectors.site import Site
from connectors.store import Store
from tools.fdd.chiller import ALIASES, INPUTS, ChillerFddConfig, ChillerReference, load_kw
from tools.fdd.chiller import steady_mask as chiller_steady_mask
from tools.fdd.derived import CHILLER_REQUIRED, wide


@dataclass(frozen=True)
class LearnSettings:
    sample_s: float = ChillerFddConfig().sample_s  # the detector's row period
    quality_window: timedelta = timedelta(minutes=10)
    min_quality: float = 0.6  # weakest point's score a window needs (the scorer's 0..1)
    #: the operating point must move in at least one of these (5th–95th percentile of the
    #: steady rows): load as a share of its median, TCI and TEO in K
    min_span: dict[str, float] = field(default_factory=lambda: {"Q": 0.1, "TCI": 2.0, "TEO": 1.0})
    min_hours: float = 2.0  # steady running hours after refusals


@dataclass
class Learned:
    reference: ChillerReference
    equipment: str
    since: datetime
    until: datetime
    rows: int
    steady_rows: int
    windows: int
    refused: list[tuple[datetime, str]] = field(default_factory=list)
    span: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        b = self.reference.bounds
        return {
            "equipment": self.equipment,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": self.rows,
            "steady_rows": self.steady_rows,
            "quality_windows": self.windows,
            "refused_windows": len(self.refused),
            "refused_examples": [f"{t:%Y-%m-%d %H:%M}: {why}" for t, why in self.refused[:5]],
            "load_kw": [round(b["Q"][0], 1), round(b["Q"][1], 1)],
            "teo_c": [round(b["TEO"][0], 2), round(b["TEO"][1], 2)],
            "tci_c": [round(b["TCI"][0], 2), round(b["TCI"][1], 2)],
            "span": {k: round(v, 3) for k, v in self.span.items()},
            "pinned": {k: round(v, 2) for k, v in self.reference.pinned.items()},
            "features": sorted(self.reference.coef),
            "sigma_method": self.reference.sigma_method,
        }


def chiller_points(site: Site, equipment: str) -> dict[str, str]:
    """{detector input name (RP-1043's): tag} for one chiller of the site."""
    eq = next((e for e in site.equipment if e.id == equipment), None)
    if eq is None:
        known = [e.id for e in site.equipment if e.kind == "chiller"]
        raise ConfigError(f"site {site.name}: no equipment {equipment!r}; chillers: {known}")
    if eq.kind != "chiller":
        raise ConfigError(f"site {site.name}: {equipment} is a {eq.kind}, not a chiller")
    names = {p.name for p in eq.points}
    out: dict[str, str] = {}
    for inp in INPUTS:
        for n in (inp, *ALIASES.get(inp, ())):
            if n in names:
                out[inp] = f"{equipment}.{n}"
                break
    missing = [r for r in CHILLER_REQUIRED if r not in out]
    if missing:
        raise ConfigError(
            f"site {site.name}: {equipment} lacks the points chiller FDD needs: "
            + ", ".join(f"{m} ({'/'.join((m, *ALIASES.get(m, ())))})" for m in missing)
        )
    return out


def operating_span(w: pd.DataFrame) -> dict[str, float]:
    """5th–95th percentile spread of the operating point: load (share of its median), TCI, TEO (K)."""
    q = load_kw(w).dropna()
    out = {"Q": 0.0, "TCI": 0.0, "TEO": 0.0}
    if len(q) and float(q.median()) > 0:
        out["Q"] = float((q.quantile(0.95) - q.quantile(0.05)) / q.median())
    for k in ("TCI", "TEO"):
        v = pd.to_numeric(w[k], errors="coerce").dropna() if k in w else pd.Series(dtype=float)
        if len(v):
            out[k] = float(v.quantile(0.95) - v.quantile(0.05))
    return out


def _quality_refusals(
    store: Store,
    site: Site,
    tags: list[str],
    since: datetime,
    until: datetime,
    s: LearnSettings,
) -> tuple[list[tuple[datetime, datetime, str]], int]:
    """(start, end, reason) of every quality window whose weakest point scores too low."""
    from tools.quality import IncrementalScorer

    sc = IncrementalScorer(store, site, s.quality_window)
    out: list[tuple[datetime, datetime, str]] = []
    n = 0
    t = since + s.quality_window
    after_bad = False
    while t <= until:
        sc.refresh(t)
        score, why = sc.report(t, tags).decision_score(tags)
        n += 1
        w0 = t - s.quality_window
        if not np.isfinite(score) or score < s.min_quality:
            reason = "; ".join(why[:2]) or f"quality {score:.2f}"
            out.append((w0, t, f"quality {score:.2f} < {s.min_quality}: {reason}"))
            after_bad = True
        elif after_bad:
            # the scorer judges the state at the window's end: a fault that ended inside
            # this window (a stuck sensor moving again) no longer shows, its data does
            out.append((w0, t, "follows a refused window (its fault may have ended inside it)"))
            after_bad = False
        t += s.quality_window
    return out, n


def learn_reference(
    store: Store,
    site: Site,
    equipment: str,
    since: datetime,
    until: datetime,
    settings: LearnSettings | None = None,
) -> Learned:
    """Fit ``equipment``'s reference on its good, steady history in [since, until).

    Raises :class:`ConfigError` (one line, naming the equipment and the shortfall) when
    too little is left to learn from."""
    s = settings or LearnSettings()
    if until <= since:
        raise ConfigError(f"{equipment}: --until {until} is not after --since {since}")
    points = chiller_points(site, equipment)
    tags = list(points.values())
    raw = store.window(tags, since, until)
    good = raw[raw["status"] == 0] if len(raw) else raw
    if good.empty:
        raise ConfigError(f"{equipment}: no good readings between {since} and {until}")
    w = wide(good[["ts", "tag", "value"]], f"{equipment}.")
    w = w.resample(pd.Timedelta(seconds=s.sample_s)).mean()
    w = w.rename(columns={tag.removeprefix(f"{equipment}."): n for n, tag in points.items()})
    refused, n_windows = _quality_refusals(store, site, tags, since, until, s)
    for a, b, _why in refused:
        w.loc[(w.index >= pd.Timestamp(a)) & (w.index < pd.Timestamp(b)), :] = np.nan
    steady = chiller_steady_mask(w)
    hours = float(steady.sum()) * s.sample_s / 3600.0
    if hours < s.min_hours:
        raise ConfigError(
            f"{equipment}: {hours:.1f} h of steady running with good data between {since:%Y-%m-%d %H:%M} "
            f"and {until:%Y-%m-%d %H:%M} ({len(refused)} of {n_windows} windows refused for data "
            f"quality); need ≥ {s.min_hours:g} h"
        )
    span = operating_span(w[steady])
    if not any(span[k] >= s.min_span[k] for k in s.min_span):
        raise ConfigError(
            f"{equipment}: too little operating range to learn from between "
            f"{since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M}: load spans "
            f"{span['Q']:.0%} of its median, TCI {span['TCI']:.2f} K, TEO {span['TEO']:.2f} K "
            f"(5th–95th percentile); need load ≥ {s.min_span['Q']:.0%}, TCI ≥ "
            f"{s.min_span['TCI']:g} K or TEO ≥ {s.min_span['TEO']:g} K — choose a longer period"
        )
    source = f"{site.name}/{equipment} {since:%Y-%m-%d %H:%M} → {until:%Y-%m-%d %H:%M}"
    ref = ChillerReference.fit(w, source=source)
    return Learned(
        ref, equipment, since, until, rows=len(w), steady_rows=int(steady.sum()),
        windows=n_windows, refused=[(a, why) for a, _b, why in refused], span=span,
    )  # fmt: skip
