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

import hashlib
import io
import logging
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import cdist

from core.atomic import atomic_write
from core.metrics._cdvae_constants import COMP_SCALER_MEANS, COMP_SCALER_STDS
from core.metrics.errors import record

logger = logging.getLogger(__name__)

STRUCT_CUTOFF, COMP_CUTOFF = 0.2, 4.0  # CDVAE perovskite (and carbon) thresholds
# CDVAE's COV_Cutoffs per data set (structure, composition); the sets not named take the defaults
COV_CUTOFFS = {"mp_20": (0.4, 10.0), "carbon_24": (0.2, 4.0), "perov_5": (0.2, 4.0)}


def cov_cutoffs(dataset: str | None) -> tuple[float, float]:
    """CDVAE's COV cutoffs (structure, composition) for a data set name; 0.2 / 4 when unknown."""
    return COV_CUTOFFS.get(dataset or "", (STRUCT_CUTOFF, COMP_CUTOFF))
N_STRUCT_FP, N_COMP_FP = 61, 132
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
    """(mean CrystalNN "ops" site fingerprint, raw Magpie composition fingerprint), None on failure
    (counted by reason: core/metrics/errors.py)."""
    fp, exc = _fingerprint_or_error(structure)
    if exc is not None:
        record("fingerprint", exc)
    return fp


def _fingerprint_or_error(structure: Structure | None) -> tuple[Fingerprint | None, BaseException | None]:
    """(fingerprint, None) or (None, the exception): pool workers send failures back to be counted."""
    if structure is None or len(structure) == 0:
        return None, None
    site_fp, comp_fp = _featurizers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CrystalNN warns about missing radii/oxidation states
            sites = [site_fp.featurize(structure, i) for i in range(len(structure))]
            comp = np.asarray(comp_fp.featurize(structure.composition.element_composition), dtype=float)
        struct = np.asarray(sites, dtype=float).mean(axis=0)
    except Exception as exc:  # noqa: BLE001 - counted by the caller, the sample scored as a failure
        return None, RuntimeError(f"{type(exc).__name__}: {exc}") if not _picklable(exc) else exc
    if not np.all(np.isfinite(struct)):
        return None, ValueError("non-finite site fingerprint")
    return (struct, comp), None


def _picklable(exc: BaseException) -> bool:
    import pickle

    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001
        return False
    return True


def structure_key(structure: Structure) -> str:
    """Identity of a structure for caching: sha1 of lattice, species and wrapped fractional
    coordinates rounded to 1e-5 (site order matters; a reordered copy is merely a cache miss)."""
    frac = np.round(np.mod(structure.frac_coords, 1.0), 5) % 1.0
    text = repr(
        (
            np.round(structure.lattice.matrix, 5).ravel().tolist(),
            [str(sp) for sp in structure.species_and_occu],
            frac.ravel().tolist(),
        )
    )
    return hashlib.sha1(text.encode()).hexdigest()


def _featurizer_version() -> str:
    from importlib.metadata import version

    return f"matminer={version('matminer')};pymatgen={version('pymatgen')}"


class FingerprintCache:
    """Bounded LRU cache structure_key -> Fingerprint | None (failures are cached too).

    `save(path)` / `FingerprintCache.load(path)` keep it on disk as a plain .npz (no pickle), so a
    reference set is fingerprinted once per machine; a file written by other matminer/pymatgen
    versions is ignored.
    """

    def __init__(self, maxsize: int = 200_000):
        self.maxsize = maxsize
        self._data: OrderedDict[str, Fingerprint | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def get(self, key: str) -> Fingerprint | None:
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: str, value: Fingerprint | None) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file, then rename)."""
        path = Path(path)
        keys = list(self._data)
        vals = [self._data[k] for k in keys]
        struct = np.array([v[0] if v is not None else np.full(N_STRUCT_FP, np.nan) for v in vals]).reshape(
            -1, N_STRUCT_FP
        )
        comp = np.array([v[1] if v is not None else np.full(N_COMP_FP, np.nan) for v in vals]).reshape(
            -1, N_COMP_FP
        )
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            keys=np.array(keys, dtype="U40"),
            ok=np.array([v is not None for v in vals], dtype=bool),
            struct=struct,
            comp=comp,
            version=np.array(_featurizer_version()),
        )
        return atomic_write(path, buffer.getvalue(), force=True)

    @classmethod
    def load(cls, path: str | Path, maxsize: int = 200_000) -> FingerprintCache:
        """Read a saved cache; a missing, unreadable or foreign file gives an empty cache (logged)."""
        cache = cls(maxsize)
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["version"]) != _featurizer_version():
                    logger.warning("%s: fingerprint cache from %s; ignored", path, z["version"])
                    return cache
                for key, ok, s, c in zip(z["keys"], z["ok"], z["struct"], z["comp"], strict=True):
                    cache.put(str(key), (s, c) if ok else None)
        except FileNotFoundError:
            pass
        except Exception as exc:
            logger.warning("%s: cannot read fingerprint cache (%s); starting empty", path, exc)
        return cache


DEFAULT_CACHE = FingerprintCache()


def fingerprints(
    structures: Sequence[Structure | None], n_jobs: int = 1, cache: FingerprintCache | None = None
) -> list[Fingerprint | None]:
    """Fingerprints of many structures (None entries give None), cached, optionally in a pool."""
    cache = DEFAULT_CACHE if cache is None else cache
    keys = [None if s is None else structure_key(s) for s in structures]
    todo: dict[str, Structure] = {}
    for s, k in zip(structures, keys, strict=True):
        if k is not None and k not in cache and k not in todo:
            todo[k] = s
    if todo:
        items = list(todo.items())
        if n_jobs > 1 and len(items) > 8:
            chunk = max(1, len(items) // (4 * n_jobs))
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                pairs = list(pool.map(_fingerprint_or_error, [s for _, s in items], chunksize=chunk))
            for _, exc in pairs:
                if exc is not None:
                    record("fingerprint", exc)
            results = [fp for fp, _ in pairs]
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
        return np.zeros((0, N_STRUCT_FP)), np.zeros((0, N_COMP_FP))
    return np.stack([fp[0] for fp in ok]), scale_composition(np.stack([fp[1] for fp in ok]))


def _nearest(a: np.ndarray, b: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Nearest Euclidean distances a->b (len(a),) and b->a (len(b),), in row blocks so that
    10,000 x 3,785 samples never hold the full distance matrix."""
    a_min = np.empty(len(a))
    b_min = np.full(len(b), np.inf)
    for i in range(0, len(a), block):
        d = cdist(a[i : i + block], b)
        a_min[i : i + block] = d.min(axis=1)
        b_min = np.minimum(b_min, d.min(axis=0))
    return a_min, b_min


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
    s_pre, s_rec = _nearest(gs, rs)
    c_pre, c_rec = _nearest(gc, rc)
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
