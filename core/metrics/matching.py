"""StructureMatcher-based metrics: match rate / RMSE, composition accuracy, lattice MAE,
uniqueness and novelty (CDVAE matcher settings).

pymatgen's `StructureMatcher.get_rms_dist` already returns the RMS displacement normalised by
(V / N)^(1/3) (`normalization = (len(s1) / avg_lattice.volume) ** (1/3)` in
pymatgen.core.structure_matcher._match), so `rmse` here is that value averaged over matched pairs,
exactly what CDVAE's RecEval reports. With scale=True (the pymatgen default CDVAE kept) volumes are
normalised before matching, so the lattice constant is invisible to the matcher: report
`lattice_mae` beside it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.structure_matcher import StructureMatcher

from core.metrics.validity import composition_validity, structural_validity

logger = logging.getLogger(__name__)

STOL, ANGLE_TOL, LTOL = 0.5, 10.0, 0.3


def cdvae_matcher() -> StructureMatcher:
    """StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3), pymatgen defaults otherwise
    (primitive_cell=True, scale=True, attempt_supercell=False)."""
    return StructureMatcher(stol=STOL, angle_tol=ANGLE_TOL, ltol=LTOL)


def _check_lengths(preds: Sequence, targets: Sequence) -> None:
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")


def _rms(matcher: StructureMatcher, pred: Structure, target: Structure) -> float | None:
    """Normalised RMS distance, None if no match; matcher errors count as no match (logged)."""
    try:
        res = matcher.get_rms_dist(pred, target)
    except Exception as exc:
        logger.warning("StructureMatcher failed on %s vs %s: %s", pred.formula, target.formula, exc)
        return None
    return None if res is None else float(res[0])


def reconstructs(pred: Structure, target: Structure, matcher: StructureMatcher | None = None) -> bool:
    """Whether ``pred`` is ``target`` by the CDVAE reconstruction test (``get_rms_dist`` finds a
    mapping within stol: the best one). ``StructureMatcher.fit`` stops at its first mapping and can
    call a match within stol "different" (on carbon_24 it did for 6 of 20 held-out crystals), so
    the CLI's statuses and the app's badge use this test, as ``match_rate_rmse`` does."""
    return _rms(matcher or cdvae_matcher(), pred, target) is not None


def match_rate_rmse(
    preds: Sequence[Structure | None],
    targets: Sequence[Structure],
    require_valid: bool = True,
    matcher: StructureMatcher | None = None,
) -> dict:
    """CDVAE reconstruction match rate and RMSE.

    Returns dict(n, match_rate, rmse, n_matched, n_failed, n_invalid, match_rate_ungated):
    - n = number of targets; match_rate = matched / n (fractions, not %), every failure is a miss.
    - A None prediction is a failure (n_failed). With `require_valid` (CDVAE's RecEval gate) a
      prediction that is not structurally AND compositionally valid is a miss too (n_invalid), even
      if it would match; note that about 1.4 % of real perov_5 crystals fail the SMACT test, so the
      gated rate of a perfect model is ~98.6 %. `match_rate_ungated` scores the same predictions
      without the validity gate.
    - rmse = mean normalised RMS distance over gated matches (None when nothing matched).
    """
    _check_lengths(preds, targets)
    matcher = matcher or cdvae_matcher()
    n = len(targets)
    n_failed = n_invalid = n_ungated = 0
    rms_gated: list[float] = []
    for pred, target in zip(preds, targets, strict=True):
        if pred is None:
            n_failed += 1
            continue
        valid = structural_validity(pred) and composition_validity(pred)
        if not valid:
            n_invalid += 1
        rms = _rms(matcher, pred, target)
        if rms is None:
            continue
        n_ungated += 1
        if valid or not require_valid:
            rms_gated.append(rms)
    return {
        "n": n,
        "match_rate": len(rms_gated) / n if n else None,
        "rmse": float(np.mean(rms_gated)) if rms_gated else None,
        "n_matched": len(rms_gated),
        "n_failed": n_failed,
        "n_invalid": n_invalid,
        "match_rate_ungated": n_ungated / n if n else None,
    }


def composition_accuracy(preds: Sequence[Structure | None], targets: Sequence[Structure]) -> float | None:
    """Share of all targets whose prediction has the same reduced composition (None = wrong)."""
    _check_lengths(preds, targets)
    if not targets:
        return None
    hits = sum(
        1
        for p, t in zip(preds, targets, strict=True)
        if p is not None and p.composition.reduced_composition == t.composition.reduced_composition
    )
    return hits / len(targets)


def lattice_mae(preds: Sequence[Structure | None], targets: Sequence[Structure]) -> float | None:
    """Mean |a,b,c| error in Å over the predictions that exist (None when there are none).

    Lengths of each side's Niggli-reduced primitive cell are compared in order (shortest with
    shortest, ...): a set may decode a centred crystal's primitive cell (``VoxelConfig.cell``)
    while its file holds the conventional one, and the same lattice must not count as an error.
    """
    _check_lengths(preds, targets)
    errs = [
        np.abs(_reduced_lengths(p) - _reduced_lengths(t))
        for p, t in zip(preds, targets, strict=True)
        if p is not None
    ]
    return float(np.mean(errs)) if errs else None


def _reduced_lengths(structure: Structure) -> np.ndarray:
    """a <= b <= c (Å) of the Niggli-reduced primitive cell (the cell's own lengths, sorted, when
    pymatgen cannot reduce it)."""
    try:
        lattice = structure.get_primitive_structure().lattice.get_niggli_reduced_lattice()
    except Exception:  # noqa: BLE001 (a decoded cell can defeat the reduction; compare it as it is)
        lattice = structure.lattice
    return np.sort(np.asarray(lattice.abc, dtype=float))


def formula_index(structures: Sequence[Structure]) -> dict[str, list[Structure]]:
    """Group structures by reduced formula.

    The default matcher (SpeciesComparator) never matches different reduced compositions, so
    comparing only within a group is exact and avoids O(N^2) matcher calls.
    """
    index: dict[str, list[Structure]] = defaultdict(list)
    for s in structures:
        if s is not None:
            index[s.composition.reduced_formula].append(s)
    return dict(index)


def _fits(matcher: StructureMatcher, a: Structure, b: Structure) -> bool:
    try:
        return bool(matcher.fit(a, b))
    except Exception as exc:  # a matcher crash is logged and treated as "different"
        logger.warning("StructureMatcher.fit failed on %s: %s", a.formula, exc)
        return False


def uniqueness(
    structures: Sequence[Structure | None], matcher: StructureMatcher | None = None
) -> float | None:
    """Share of the given (non-None) structures that are distinct: n_distinct / n.

    Greedy clustering within each reduced formula: a structure is new if it matches no earlier
    representative. None entries are ignored (pass valid samples only, as the protocol asks).
    """
    matcher = matcher or cdvae_matcher()
    items = [s for s in structures if s is not None]
    if not items:
        return None
    n_distinct = 0
    for group in formula_index(items).values():
        reps: list[Structure] = []
        for s in group:
            if not any(_fits(matcher, r, s) for r in reps):
                reps.append(s)
        n_distinct += len(reps)
    return n_distinct / len(items)


def novelty(
    structures: Sequence[Structure | None],
    train: Sequence[Structure] | Mapping[str, list[Structure]],
    matcher: StructureMatcher | None = None,
) -> float | None:
    """Share of the given (non-None) structures that match no training structure.

    `train` may be a list of structures or a prebuilt `formula_index(train)` (build it once when
    scoring many sets against the same training data).
    """
    matcher = matcher or cdvae_matcher()
    index = train if isinstance(train, Mapping) else formula_index(train)
    items = [s for s in structures if s is not None]
    if not items:
        return None
    n_novel = 0
    for s in items:
        group = index.get(s.composition.reduced_formula, [])
        if not any(_fits(matcher, t, s) for t in group):
            n_novel += 1
    return n_novel / len(items)
