"""CDVAE fingerprints and coverage (COV-R / COV-P).

- Structure fingerprint: matminer CrystalNNFingerprint.from_preset("ops") per site, averaged over
  sites (61-d).
- Composition fingerprint: matminer ElementProperty.from_preset("magpie") (132-d), standardised with
  CDVAE's hard-coded CompScalerMeans/Stds, NaN -> 0 after scaling.
- A fingerprint failure (CrystalNN raising, no structure) drops the sample from the distance
  computation, but COV-P still divides by all generated samples, as CDVAE's compute_cov does.

CrystalNN costs ~60 ms per 5-atom cell, so fingerprints are cached per structure (key = rounded
lattice, species and wrapped fractional coordinates) and can be computed in a process pool.
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import cdist

from core.metrics._cdvae_constants import COMP_SCALER_MEANS, COMP_SCALER_STDS

logger = logging.getLogger(__name__)

STRUCT_CUTOFF, COMP_CUTOFF = 0.2, 4.0  # CDVAE perovskite (and carbon) thresholds
Fingerprint = tuple[np.ndarray, np.ndarray]  # (structure fp (61,), raw composition fp (132,))

_FEATURIZERS = None


def _featurizers():
    global _FEATURIZERS
    if _FEATURIZERS is None:
        from matminer.featurizers.composition.composite import ElementProperty
        from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

        _FEATURIZERS = (CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie"))
    return _FEATURIZERS


def fingerprint(structure: Structure | None) -> Fingerprint | None:
    """(mean CrystalNN "ops" site fingerprint, raw Magpie composition fingerprint), None on failure."""
    if structure is None or len(structure) == 0:
        return None
    site_fp, comp_fp = _featurizers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CrystalNN warns about missing radii/oxidation states
            sites = [site_fp.featurize(structure, i) for i in range(len(structure))]
            comp = np.asarray(comp_fp.featurize(structure.composition.element_composition), dtype=float)
        struct = np.asarray(sites, dtype=float).mean(axis=0)
    except Exception as exc:
        logger.debug("fingerprint failed for %s: %s", structure.formula, exc)
        return None
    if not np.all(np.isfinite(struct)):
        return None
    return struct, comp


def structure_key(structure: Structure) -> tuple:
    """Hashable identity of a structure for caching (1e-5 tolerance on coordinates)."""
    frac = np.round(np.mod(structure.frac_coords, 1.0), 5) % 1.0
    return (
        tuple(np.round(structure.lattice.matrix, 5).ravel().tolist()),
        tuple(str(sp) for sp in structure.species_and_occu),
        tuple(frac.ravel().tolist()),
    )


class FingerprintCache:
    """Bounded LRU cache structure_key -> Fingerprint | None (failures are cached too)."""

    def __init__(self, maxsize: int = 200_000):
        self.maxsize = maxsize
        self._data: OrderedDict[tuple, Fingerprint | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: tuple) -> bool:
        return key in self._data

    def get(self, key: tuple) -> Fingerprint | None:
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: tuple, value: Fingerprint | None) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)


DEFAULT_CACHE = FingerprintCache()


def fingerprints(
    structures: Sequence[Structure | None], n_jobs: int = 1, cache: FingerprintCache | None = None
) -> list[Fingerprint | None]:
    """Fingerprints of many structures (None entries give None), cached, optionally in a pool."""
    cache = DEFAULT_CACHE if cache is None else cache
    keys = [None if s is None else structure_key(s) for s in structures]
    todo: dict[tuple, Structure] = {}
    for s, k in zip(structures, keys, strict=True):
        if k is not None and k not in cache and k not in todo:
            todo[k] = s
    if todo:
        items = list(todo.items())
        if n_jobs > 1 and len(items) > 8:
            chunk = max(1, len(items) // (4 * n_jobs))
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                results = list(pool.map(fingerprint, [s for _, s in items], chunksize=chunk))
        else:
            results = [fingerprint(s) for _, s in items]
        for (k, _), fp in zip(items, results, strict=True):
            cache.put(k, fp)
    return [None if k is None else cache.get(k) for k in keys]


def scale_composition(comp_fps: np.ndarray) -> np.ndarray:
    """CDVAE CompScaler: (x - mean) / std with NaN -> 0. comp_fps: (N, 132)."""
    x = (np.asarray(comp_fps, dtype=float) - np.asarray(COMP_SCALER_MEANS)) / np.asarray(COMP_SCALER_STDS)
    return np.where(np.isnan(x), 0.0, x)


def _stack(fps: Sequence[Fingerprint | None]) -> tuple[np.ndarray, np.ndarray]:
    ok = [fp for fp in fps if fp is not None]
    if not ok:
        return np.zeros((0, 61)), np.zeros((0, 132))
    return np.stack([fp[0] for fp in ok]), scale_composition(np.stack([fp[1] for fp in ok]))


def coverage_details(
    gen: Sequence[Structure | None],
    ref: Sequence[Structure],
    struct_cutoff: float = STRUCT_CUTOFF,
    comp_cutoff: float = COMP_CUTOFF,
    n_jobs: int = 1,
    cache: FingerprintCache | None = None,
) -> dict:
    """COV-R, COV-P plus mean nearest distances (AMSD/AMCD) and fingerprint-failure counts.

    COV-R = share of reference crystals (with a fingerprint) whose nearest generated structure
    fingerprint is within `struct_cutoff` AND nearest generated composition fingerprint within
    `comp_cutoff` (two separate nearest neighbours). COV-P = generated crystals within both cutoffs
    of the reference set, divided by ALL generated crystals (failures count against it).
    """
    gen_fps = fingerprints(gen, n_jobs=n_jobs, cache=cache)
    ref_fps = fingerprints(ref, n_jobs=n_jobs, cache=cache)
    gs, gc = _stack(gen_fps)
    rs, rc = _stack(ref_fps)
    out = {
        "n_gen": len(gen),
        "n_ref": len(ref),
        "n_gen_fp_failed": sum(fp is None for fp in gen_fps),
        "n_ref_fp_failed": sum(fp is None for fp in ref_fps),
    }
    if len(gs) == 0 or len(rs) == 0:
        return {
            **out,
            "cov_r": 0.0,
            "cov_p": 0.0,
            "amsd_r": None,
            "amsd_p": None,
            "amcd_r": None,
            "amcd_p": None,
        }
    sd, cd = cdist(gs, rs), cdist(gc, rc)  # (n_gen_ok, n_ref_ok)
    s_rec, s_pre = sd.min(axis=0), sd.min(axis=1)
    c_rec, c_pre = cd.min(axis=0), cd.min(axis=1)
    cov_r = float(np.mean((s_rec <= struct_cutoff) & (c_rec <= comp_cutoff)))
    cov_p = float(np.sum((s_pre <= struct_cutoff) & (c_pre <= comp_cutoff)) / len(gen))
    return {
        **out,
        "cov_r": cov_r,
        "cov_p": cov_p,
        "amsd_r": float(s_rec.mean()),
        "amsd_p": float(s_pre.mean()),
        "amcd_r": float(c_rec.mean()),
        "amcd_p": float(c_pre.mean()),
    }


def coverage(
    gen: Sequence[Structure | None],
    ref: Sequence[Structure],
    struct_cutoff: float = STRUCT_CUTOFF,
    comp_cutoff: float = COMP_CUTOFF,
    n_jobs: int = 1,
    cache: FingerprintCache | None = None,
) -> tuple[float, float]:
    """(cov_r, cov_p) as fractions, exactly as CDVAE's compute_cov (see `coverage_details`)."""
    d = coverage_details(gen, ref, struct_cutoff, comp_cutoff, n_jobs=n_jobs, cache=cache)
    return d["cov_r"], d["cov_p"]
