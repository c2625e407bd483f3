"""Evaluation runners behind `icsg3d evaluate`: read data, run the method, score with core.metrics.

Each runner returns the DESIGN.md key set for its kind plus a per-input list of failures, so
that the CLI can write JSON and a report and nothing is skipped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pymatgen.core import Structure

from core.elements import Vocabulary
from core.errors import SegmentationError
from core.metrics import lattice_mae, match_rate_rmse
from core.segment import grid_to_structure
from core.structures import Entry, Failure
from core.voxel import VoxelConfig, Voxeliser, check_representable

log = logging.getLogger(__name__)


@dataclass
class RoundtripResult:
    """Figures of a roundtrip run and what failed where."""

    metrics: dict
    failures: list[Failure] = field(default_factory=list)
    predictions: list[Structure | None] = field(default_factory=list)


def roundtrip(
    entries: list[Entry],
    read_failures: list[Failure] | None = None,
    cfg: VoxelConfig | None = None,
    batch_size: int = 128,
) -> RoundtripResult:
    """True density + labels -> segmentation -> Structure, scored against the input crystal.

    Inputs that could not be read or gridded count as misses (match_rate = matched / all inputs).
    """
    cfg = cfg or VoxelConfig()
    failures = list(read_failures or [])
    usable: list[Entry] = []
    for entry in entries:
        reason = check_representable(entry.structure, cfg)
        if reason:
            failures.append(Failure(entry.id, entry.source, reason))
        else:
            usable.append(entry)
    vocab = Vocabulary.from_structures(e.structure for e in usable) if usable else Vocabulary.default()
    voxeliser = Voxeliser(cfg, vocab)
    preds: list[Structure | None] = []
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        density, labels, abc = voxeliser.batch([e.structure for e in chunk])
        for k, entry in enumerate(chunk):
            try:
                preds.append(grid_to_structure(density[k], abc[k], vocab, labels=labels[k]))
            except SegmentationError as exc:
                failures.append(Failure(entry.id, entry.source, f"segmentation failed: {exc}"))
                preds.append(None)
    targets = [e.structure for e in usable]
    # No validity gate: the roundtrip measures the representation, not the chemistry of the data.
    scored = match_rate_rmse(preds, targets, require_valid=False)
    n_total = len(entries) + len(read_failures or [])  # unreadable/ungriddable inputs are misses
    metrics = {
        "n": n_total,
        "match_rate": scored["n_matched"] / n_total if n_total else None,
        "rmse": scored["rmse"],
        "lattice_mae": lattice_mae(preds, targets),
        "n_matched": scored["n_matched"],
        "n_failed": len(failures),
    }
    return RoundtripResult(metrics=metrics, failures=failures, predictions=preds)
