"""Chiller FDD scored out of sample: k-fold over hour blocks, window confusion matrices.

A reference fitted on a file and then used to score that same file measures
nothing: its residuals are the fit's own, its spreads the fit's own noise. When
the file scored is the reference's own (``import rp1043 normal.xls --reference
normal.xls``), the rows are cut into hour blocks, the blocks dealt round-robin
into ``k`` folds (interleaved: every fold sees the morning and the evening of
the test), and each fold is diagnosed with a reference fitted on the other
folds only (:func:`fold_references`, :func:`diagnose_out_of_sample`). Each
held-out block is diagnosed on its own, so persistence never carries a verdict
across data the reference was fitted on.

:func:`window_confusion` counts windows by (true class, named class) — the
per-window view that an alarm count hides (a file can alarm the right class
while most of its windows name another).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors.errors import ConfigError
from tools.fdd.chiller import (
    BLOCK_S,
    SIGMA_FOLDS,
    ChillerFddConfig,
    ChillerReference,
    diagnose,
    hour_blocks,
)

FOLDS = 3
NONE = "none"  # the class of a window that names no fault (and of fault-free truth)


def fold_of(blocks: np.ndarray, k: int = FOLDS) -> np.ndarray:
    """Fold of each row: blocks dealt round-robin (block ``b`` → fold ``b mod k``)."""
    return blocks % k


@dataclass(frozen=True)
class Fold:
    """One fold: the rows it holds out and the reference fitted without them."""

    number: int
    held_out: np.ndarray  # bool per row of the frame
    reference: ChillerReference


def fit_without(
    df: pd.DataFrame,
    held_out: np.ndarray,
    *,
    window_rows: int = 60,
    source: str = "",
    sigma_folds: int = SIGMA_FOLDS,
) -> ChillerReference:
    """A reference fitted on the rows not held out (held-out rows are blanked, so no
    steady window, rolling statistic or operating range of the fit can use them)."""
    train = df.copy()
    train.loc[held_out, :] = np.nan
    return ChillerReference.fit(
        train, window_rows=window_rows, source=source, sigma_folds=sigma_folds
    )


def fold_references(
    df: pd.DataFrame,
    k: int = FOLDS,
    *,
    block_s: float = BLOCK_S,
    window_rows: int = 60,
    source: str = "",
) -> list[Fold]:
    """``k`` references, each fitted on all hour blocks but one fold's."""
    if k < 2:
        raise ConfigError(f"{source or 'reference'}: k-fold needs k ≥ 2, got {k}")
    folds = fold_of(hour_blocks(pd.DatetimeIndex(df.index), block_s), k)
    if len(np.unique(folds)) < k:
        raise ConfigError(
            f"{source or 'reference'}: {len(df)} rows span fewer than {k} blocks of "
            f"{block_s:.0f} s; too short to score out of sample"
        )
    out = []
    for j in range(k):
        held = folds == j
        name = f"{source} (fold {j + 1}/{k}: fitted without hour blocks ≡ {j} mod {k})"
        out.append(Fold(j, held, fit_without(df, held, window_rows=window_rows, source=name)))
    return out


def held_out_segments(held_out: np.ndarray) -> list[slice]:
    """Contiguous runs of held-out rows, as slices."""
    idx = np.flatnonzero(held_out)
    if len(idx) == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[cuts + 1]]
    ends = np.r_[idx[cuts], idx[-1]] + 1
    return [slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def diagnose_out_of_sample(
    df: pd.DataFrame, folds: Sequence[Fold], cfg: ChillerFddConfig | None = None
) -> pd.DataFrame:
    """:func:`~tools.fdd.chiller.diagnose` of every held-out block with its fold's reference.

    One row per window as ``diagnose`` gives, plus ``fold``; sorted by ``start``. Each
    contiguous held-out run is diagnosed alone (alarms start afresh in each)."""
    parts = []
    for fold in folds:
        for seg in held_out_segments(fold.held_out):
            d = diagnose(df.iloc[seg], fold.reference, cfg)
            if len(d):
                parts.append(d.assign(fold=fold.number))
    if not parts:
        return pd.DataFrame(columns=["start", "end", "steady", "fault", "alarm", "fold"])
    return pd.concat(parts, ignore_index=True).sort_values("start", ignore_index=True)


def judged(diag: pd.DataFrame) -> pd.DataFrame:
    """The windows the detector judged (enough steady data); the others name nothing."""
    cols = [c for c in diag.columns if c.startswith("score_")]
    if not cols:
        return diag.iloc[0:0]
    return diag[diag[cols].notna().any(axis=1)]


def window_confusion(
    rows: Iterable[tuple[str | None, pd.DataFrame]], classes: Sequence[str]
) -> pd.DataFrame:
    """Judged windows counted by true class (rows) × named class (columns, ``none`` first).

    ``rows``: (true class or None for fault-free, diagnosis frame) per file."""
    cols = [NONE, *classes]
    table = pd.DataFrame(0, index=pd.Index([], name="truth"), columns=cols, dtype=int)
    for truth, diag in rows:
        t = truth or NONE
        if t not in table.index:
            table.loc[t] = 0
        for named in judged(diag)["fault"]:
            c = named if isinstance(named, str) else NONE
            if c not in table.columns:
                table[c] = 0
            table.loc[t, c] += 1
    return table.astype(int)


def alarm_classes(diag: pd.DataFrame) -> dict[str, int]:
    """Windows in alarm, per alarmed class."""
    if "alarm" not in diag or diag.empty:
        return {}
    a = diag["alarm"].dropna()
    return {str(k): int(v) for k, v in a.value_counts().items()}


def file_verdict(diag: pd.DataFrame) -> str | None:
    """The class alarmed in most windows (the file-level diagnosis), None when none."""
    counts = alarm_classes(diag)
    return max(counts, key=lambda c: counts[c]) if counts else None


def rates(confusion: pd.DataFrame) -> Mapping[str, float | None]:
    """Per-window rates from a confusion table: share of fault-free windows named a fault
    (false-positive rate), share of faulted windows named *some* fault (detection rate) and
    the right one (correct-class rate)."""
    cm = confusion
    free = cm.loc[NONE].sum() if NONE in cm.index else 0
    fp = free - cm.loc[NONE, NONE] if NONE in cm.index else 0
    faulted = [t for t in cm.index if t != NONE]
    tot = int(sum(cm.loc[t].sum() for t in faulted))
    det = int(sum(cm.loc[t].sum() - cm.loc[t, NONE] for t in faulted))
    right = int(sum(cm.loc[t, t] for t in faulted if t in cm.columns))
    return {
        "window_fpr": float(fp / free) if free else None,
        "window_detection_rate": float(det / tot) if tot else None,
        "window_correct_class_rate": float(right / tot) if tot else None,
    }


def folds_to_dict(folds: Sequence[Fold], k: int, block_s: float = BLOCK_S) -> dict[str, Any]:
    """The folds' references as JSON data; the held-out rows follow from ``block_s`` and ``k``."""
    return {
        "block_s": block_s,
        "k": k,
        "folds": [{"fold": f.number, "reference": f.reference.to_dict()} for f in folds],
    }


def save_folds(path: str | Path, folds: Sequence[Fold], k: int, block_s: float = BLOCK_S) -> None:
    Path(path).write_text(json.dumps(folds_to_dict(folds, k, block_s), indent=1))


def load_folds(path: str | Path, index: pd.DatetimeIndex) -> list[Fold]:
    """The folds saved by :func:`save_folds`, their held-out rows laid on ``index``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        k, block_s = int(data["k"]), float(data["block_s"])
        entries = [(int(e["fold"]), e["reference"]) for e in data["folds"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{p}: not a set of k-fold chiller references: {err!r}") from None
    folds = fold_of(hour_blocks(index, block_s), k)
    return [
        Fold(j, folds == j, ChillerReference.from_dict(ref, f"{p.name}[fold {j}]"))
        for j, ref in entries
    ]


def fold_at(folds: Sequence[Fold], index: pd.DatetimeIndex, ts: pd.Timestamp) -> Fold | None:
    """The fold holding out the row at or just before ``ts`` (None before the first row)."""
    i = int(index.searchsorted(ts, side="right")) - 1
    if i < 0:
        return None
    return next((f for f in folds if f.held_out[i]), None)
