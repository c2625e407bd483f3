"""The VAE's condition: the decile bin of a property of the training crystals, with one extra
"unknown" bin so that unlabelled crystals train too (and sampling can leave the property open).
Training (core/train/data.py), the model set (core/pipeline.py) and the app all bin through here."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

N_BINS = 10
UNKNOWN_BIN = N_BINS  # condition id of a crystal whose property is unknown: the last of N_BINS + 1


def decile_edges(values: np.ndarray) -> list[float] | None:
    """The 9 inner decile edges of the finite values (None when fewer than 10 are known)."""
    known = values[np.isfinite(values)]
    if known.size < N_BINS:
        return None
    return [float(q) for q in np.quantile(known, np.arange(1, N_BINS) / N_BINS)]


def to_bin(value: float | None, edges: Sequence[float] | None) -> int:
    """Decile 0..9 of a value; UNKNOWN_BIN for None, NaN or when there are no edges."""
    if value is None or edges is None or not math.isfinite(value):
        return UNKNOWN_BIN
    return int(np.searchsorted(np.asarray(edges), value, side="right"))
