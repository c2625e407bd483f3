"""Training data: loading and splitting crystals, normalisers, and the voxel data set.

- Crystals come from core.structures.load_entries; CSV inputs through
  core.structure_cache.load_entries_cached (parsed in several processes, cached on disk;
  ``ICSG3D_NO_CACHE=1`` turns the cache off). Every failure is logged and written to
  ``failures.csv`` in the run directory (never silently dropped).
- Without ``--val`` the data are split by material_id with a fixed seed; the split is saved as
  ``split.json`` so evaluation can use exactly the held-out ids.
- Normalisers (lattice mean/std, property deciles and mean/std, class weights) are computed on the
  training split only and stored in the checkpoint.
- Voxel grids are made on the fly (the voxeliser does thousands per second, so a cache would only
  cost memory); training samples get a random cubic rotation + periodic translation, seeded per
  sample by the sampler so that resumed epochs are identical.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from core.atomic import atomic_write
from core.conditions import N_BINS, UNKNOWN_BIN, decile_edges, to_bin
from core.structure_cache import load_entries_cached
from core.structures import Entry, Failure
from core.train.rng import derive_seed
from core.voxel import is_orthogonal

log = logging.getLogger(__name__)



@dataclass
class SplitData:
    train: list[Entry]
    val: list[Entry]
    failures: list[tuple[Failure, str]]  # (failure, stage)


def load_sources(paths: Sequence[str | Path], limit: int | None) -> tuple[list[Entry], list[Failure]]:
    """Entries and failures of several inputs; ``limit`` applies to each input."""
    entries: list[Entry] = []
    failures: list[Failure] = []
    for p in paths:
        e, f = load_entries_cached(p, limit=limit)
        entries += e
        failures += f
        log.info("%s: %d crystals read, %d failed", p, len(e), len(f))
    return entries, failures


def split_by_id(entries: list[Entry], val_frac: float, seed: int) -> tuple[list[Entry], list[Entry]]:
    """Split by material id (all rows of an id land on the same side), deterministic in seed."""
    ids = sorted({e.id for e in entries})
    if len(ids) < 2:
        raise ValueError("need at least two distinct crystals to split off a validation set")
    rng = np.random.default_rng(derive_seed(seed, "split") % 2**63)
    order = rng.permutation(len(ids))
    n_val = min(max(1, round(val_frac * len(ids))), len(ids) - 1)
    val_ids = {ids[i] for i in order[:n_val]}
    return [e for e in entries if e.id not in val_ids], [e for e in entries if e.id in val_ids]


def apply_split_file(entries: list[Entry], path: Path) -> tuple[list[Entry], list[Entry]]:
    """Re-use a saved split (resume, or the shared split of ``train all``)."""
    data = json.loads(Path(path).read_text())
    train_ids, val_ids = set(data["train"]), set(data["val"])
    return [e for e in entries if e.id in train_ids], [e for e in entries if e.id in val_ids]


def write_split(path: Path, train: list[Entry], val: list[Entry], **info: Any) -> None:
    payload = {**info, "train": sorted({e.id for e in train}), "val": sorted({e.id for e in val})}
    atomic_write(path, json.dumps(payload, indent=1), force=True)


def write_failures(path: Path, failures: list[tuple[Failure, str]]) -> None:
    """failures.csv: id, source, stage, reason (header even when empty, so "none" is visible)."""
    buffer = io.StringIO()
    w = csv.writer(buffer)
    w.writerow(["id", "source", "stage", "reason"])
    for f, stage in failures:
        w.writerow([f.id, f.source, stage, f.reason])
    atomic_write(path, buffer.getvalue(), force=True)


# -- normalisers ----------------------------------------------------------------------------
def prop_values(entries: Sequence[Entry], name: str | None) -> np.ndarray:
    """(N,) float64 property values, NaN where unknown or when no property is chosen."""
    if not name:
        return np.full(len(entries), np.nan)
    return np.array([float(e.props.get(name, math.nan)) for e in entries], dtype=np.float64)


def mean_std(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-column mean and std over finite rows (std floored so that dividing is safe)."""
    v = np.asarray(values, dtype=np.float64)
    v = v.reshape(len(v), -1)
    mean = np.nanmean(v, axis=0) if np.isfinite(v).any() else np.zeros(v.shape[1])
    std = np.nanstd(v, axis=0) if np.isfinite(v).any() else np.ones(v.shape[1])
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
    return [float(x) for x in mean], [float(x) for x in std]


def voxel_normalisers(
    train: Sequence[Entry], prop: str | None, class_weights: Sequence[float], lattice_params: int = 3
) -> dict:
    """Normalisers of the voxel models, from the training split only (JSON-serialisable).
    ``abc_mean``/``abc_std`` cover the ``lattice_params`` lattice parameters (a, b, c[, angles])."""
    from core.voxel import lattice_parameters

    values = prop_values(train, prop)
    abc_mean, abc_std = mean_std(lattice_parameters([e.structure for e in train], lattice_params).astype(np.float64))
    p_mean, p_std = mean_std(values[:, None]) if np.isfinite(values).any() else ([0.0], [1.0])
    edges = decile_edges(values)
    if prop and edges is None:
        log.warning("fewer than %d training crystals have %r: every condition is 'unknown'", N_BINS, prop)
    return {
        "abc_mean": abc_mean,
        "abc_std": abc_std,
        "property": prop,
        "prop_edges": edges,
        "prop_mean": p_mean[0],
        "prop_std": p_std[0],
        "class_weights": [float(w) for w in class_weights],
        "unknown_bin": UNKNOWN_BIN,
    }


# -- voxel data set -------------------------------------------------------------------------
def check_voxelisable(
    entries: list[Entry], voxeliser: Any, n_classes: int, chunk: int = 256
) -> tuple[list[Entry], list[Failure], np.ndarray]:
    """Keep the entries the voxeliser can grid, each on its ``core.voxel.gridded_cell`` (the
    conventional cell, or the Niggli-reduced primitive one where only that fits); count label
    voxels per class (C,) over them.

    A crystal fails when it has an element outside the vocabulary or is not representable on the
    grid (core.voxel.check_representable): too large a cell, too many sites, atoms too close.
    """
    from core.voxel import representable

    known = set(voxeliser.vocab.symbols)
    in_vocab: list[Entry] = []
    failed: list[Failure] = []
    for e in entries:
        unknown = sorted({el.symbol for el in e.structure.composition.elements} - known)
        if unknown:
            failed.append(Failure(e.id, e.source, f"cannot voxelise: element(s) {', '.join(unknown)} "
                                                  "not in the training vocabulary"))  # fmt: skip
        else:
            in_vocab.append(e)
    ok, off_grid = representable(in_vocab, voxeliser.cfg)
    failed += [Failure(f.id, f.source, f"cannot voxelise: {f.reason}") for f in off_grid]
    counts = np.zeros(n_classes, dtype=np.int64)
    for i in range(0, len(ok), chunk):
        _, labels, _ = voxeliser.batch([e.structure for e in ok[i : i + chunk]])
        counts += np.bincount(labels.ravel(), minlength=n_classes)[:n_classes]
    return ok, failed, counts


def composition_counts(entries: list[Entry], vocab: Any) -> np.ndarray:
    """(N, C) int64: atoms of each vocabulary class in each cell (class 0, background, stays 0)."""
    counts = np.zeros((len(entries), len(vocab)), dtype=np.int64)
    for row, e in zip(counts, entries, strict=True):
        for el, n in e.structure.composition.element_composition.items():
            row[vocab.index(el.symbol)] += int(round(n))
    return counts


class VoxelDataset(Dataset):
    """Voxelised crystals, gridded per batch in :meth:`collate` (Voxeliser.batch is vectorised).

    Items are keys: an index or (index, sample_seed) from EpochBatchSampler. A collated batch:
    density (B, 1, D, D, D) f32 normalised, labels (B, D, D, D) int64, abc (B, 3) f32 Å,
    abc_std (B, P) f32 standardised lattice parameters (P = len(norms["abc_mean"]): a, b, c, and the
    angles when P = 6), cond (B,) int64 decile (10 = unknown), prop (B,) f32
    standardised (NaN = unknown), counts (B, C) int64 atoms of each class in the cell. With ``augment`` each sample gets a random cubic rotation /
    reflection (orthogonal cells only; the permuted lattice lengths follow) and a periodic
    translation, seeded by its sample_seed. With ``decoded`` set (U-Net training), a seeded share of
    samples takes the VAE's reconstruction of the crystal as its density and lattice, with the
    true labels (core/train/decoded.py).
    """

    def __init__(self, entries: list[Entry], voxeliser: Any, norms: dict, augment: bool = False,
                 site_frames: float = 0.0) -> None:  # fmt: skip
        self.entries = entries
        self.voxeliser = voxeliser
        self.augment = augment
        self.decoded = None  # DecodedGrids (core/train/decoded.py): VAE reconstructions mixed in
        # share of seeded samples gridded with a random atom at the origin (entries already carry
        # core.canonical.site_origin's atom there): the frames that encoding searches
        self.site_frames = site_frames
        props = prop_values(entries, norms.get("property"))
        self.cond = np.array([to_bin(v, norms.get("prop_edges")) for v in props], dtype=np.int64)
        self.prop = ((props - norms["prop_mean"]) / norms["prop_std"]).astype(np.float32)
        self.abc_mean = np.asarray(norms["abc_mean"], dtype=np.float32)
        self.abc_std = np.asarray(norms["abc_std"], dtype=np.float32)
        self.ortho = [is_orthogonal(e.structure) for e in entries]
        self.counts = composition_counts(entries, voxeliser.vocab)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[int, int | None]:
        return key if isinstance(key, tuple) else (int(key), None)

    def _augment(self, i: int, seed: int | None, density, labels, abc):
        if not self.augment or seed is None:
            return density, labels, abc
        rng = np.random.default_rng(seed)
        if self.ortho[i]:
            from core.voxel import augment

            return augment(density, labels, abc, rng)
        shift = tuple(int(s) for s in rng.integers(0, density.shape[-1], size=3))
        return np.roll(density, shift, axis=(0, 1, 2)), np.roll(labels, shift, axis=(0, 1, 2)), abc

    def _framed(self, i: int, seed: int | None) -> Any:
        """Entry i's structure, or (for a seeded share ``site_frames``) it with a random atom at the origin."""
        structure = self.entries[i].structure
        if not self.site_frames or seed is None:
            return structure
        rng = np.random.default_rng((seed, 2))
        if rng.random() >= self.site_frames:
            return structure
        from core.canonical import atom_at_origin

        return atom_at_origin(structure, int(rng.integers(len(structure))))

    def _source(self, i: int, seed: int | None, density, abc):
        """The true grid, or (for a seeded share of samples) the VAE's reconstruction of it."""
        if self.decoded is None or seed is None:
            return density, abc
        if np.random.default_rng((seed, 1)).random() >= self.decoded.frac:
            return density, abc
        return self.decoded.density[i].astype(np.float32), self.decoded.abc[i]

    def collate(self, keys: list[tuple[int, int | None]]) -> dict[str, torch.Tensor]:
        from core.voxel import normalise_density, with_angles

        idx = [k[0] for k in keys]
        density, labels, abc = self.voxeliser.batch([self._framed(i, seed) for i, seed in keys])
        out_d, out_l, out_a = [], [], []
        for b, (i, seed) in enumerate(keys):
            rho_b, abc_b = self._source(i, seed, density[b], abc[b])
            d_, l_, a_ = self._augment(i, seed, rho_b, labels[b], abc_b)
            out_d.append(d_)
            out_l.append(l_)
            out_a.append(np.asarray(a_, dtype=np.float32))
        rho = normalise_density(np.stack(out_d).astype(np.float32))
        abc_arr = np.stack(out_a)
        params = with_angles(abc_arr, [self.entries[i].structure for i in idx], len(self.abc_mean))
        return {
            "density": torch.from_numpy(np.ascontiguousarray(rho))[:, None],
            "labels": torch.from_numpy(np.ascontiguousarray(np.stack(out_l), dtype=np.int64)),
            "abc": torch.from_numpy(abc_arr),
            "abc_std": torch.from_numpy(((params - self.abc_mean) / self.abc_std).astype(np.float32)),
            "cond": torch.from_numpy(self.cond[idx]),
            "prop": torch.from_numpy(self.prop[idx]),
            "counts": torch.from_numpy(self.counts[idx]),
        }
