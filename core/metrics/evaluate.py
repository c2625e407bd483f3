"""Distribution distances and the aggregators behind `icsg3d evaluate` (DESIGN.md key sets).

All rates are fractions in [0, 1] (the report multiplies by 100). Every failure is counted: a None
prediction/sample is a miss, invalid and a fingerprint failure; nothing is dropped silently, and
the `n_*` keys say how many of each there were. Undefined values (e.g. an RMSE with no match) are None.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.core import Structure
from scipy.stats import wasserstein_distance

from core.metrics.coverage import COMP_CUTOFF, STRUCT_CUTOFF, FingerprintCache, coverage_details
from core.metrics.errors import counting
from core.metrics.matching import (
    composition_accuracy,
    lattice_mae,
    match_rate_rmse,
)
from core.metrics.validity import composition_validity, structural_validity

logger = logging.getLogger(__name__)

N_W1_SAMPLES = 1000  # CDVAE scores W1 on 1,000 random valid samples


def densities(structures: Sequence[Structure | None]) -> list[float]:
    """Densities in g/cm^3 of the non-None structures."""
    return [float(s.density) for s in structures if s is not None]


def n_elements(structures: Sequence[Structure | None]) -> list[int]:
    """Number of distinct elements of each non-None structure."""
    return [len(s.composition.elements) for s in structures if s is not None]


def _w1(a: list[float], b: list[float]) -> float | None:
    return float(wasserstein_distance(a, b)) if a and b else None


def w1_density(gen: Sequence[Structure | None], ref: Sequence[Structure]) -> float | None:
    """Wasserstein-1 distance between density (g/cm^3) distributions; None if a side is empty."""
    return _w1(densities(gen), densities(ref))


def w1_nelem(gen: Sequence[Structure | None], ref: Sequence[Structure]) -> float | None:
    """Wasserstein-1 distance between numbers of distinct elements; None if a side is empty."""
    return _w1([float(x) for x in n_elements(gen)], [float(x) for x in n_elements(ref)])


def _rate(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if len(flags) else None


def evaluate_reconstruction(
    preds: Sequence[Structure | None], targets: Sequence[Structure], require_valid: bool = True
) -> dict:
    """n, match_rate, rmse, composition_accuracy, lattice_mae, struct_validity (+ n_* counts and
    match_rate_ungated). See `match_rate_rmse` for the CDVAE validity gate."""
    with counting() as errors:
        out = match_rate_rmse(preds, targets, require_valid=require_valid)
        out["composition_accuracy"] = composition_accuracy(preds, targets)
        out["lattice_mae"] = lattice_mae(preds, targets)
        out["struct_validity"] = _rate([structural_validity(p) for p in preds])
    out["metric_errors"] = dict(errors)
    return out


def _validity_flags(structures: Sequence[Structure | None]) -> tuple[list[bool], list[bool]]:
    struct = [structural_validity(s) for s in structures]
    comp = [s is not None and composition_validity(s) for s in structures]
    return struct, comp


def evaluate_generation(
    gen: Sequence[Structure | None],
    ref: Sequence[Structure],
    train: Sequence[Structure] | Mapping[str, list[Structure]] | None = None,
    struct_cutoff: float = STRUCT_CUTOFF,
    comp_cutoff: float = COMP_CUTOFF,
    n_w1: int = N_W1_SAMPLES,
    seed: int = 0,
    n_jobs: int = 1,
    cache: FingerprintCache | None = None,
    include_reference: bool = True,
    known=None,  # noqa: ANN001 (core.known.KnownCrystals: the training crystals)
    rediscover=None,  # noqa: ANN001 (core.known.KnownCrystals: held-out crystals to rediscover)
    novelty: bool = True,
) -> dict:
    """CDVAE GenEval on `gen` (None = failed sample) against the reference set `ref`, and
    novelty beside it (core/metrics/rediscovery.py).

    Keys: n, struct_validity, comp_validity, cov_r, cov_p, w1_density, w1_nelem, uniqueness,
    novelty, vun_rate, rediscovered, rediscovery_precision (+ n_valid, n_failed, n_w1,
    n_gen_fp_failed, n_ref_fp_failed, and `reference`: the validity of `ref` itself, the
    calibration row). Novelty is against ``known`` (or ``train``, a list of structures);
    rediscovery against ``rediscover``.
    - validity: over all n samples.
    - COV: all samples (failures count against COV-P), cutoffs 0.2 / 4 (perovskite).
    - W1: min(n_w1, n_valid) random valid samples (seeded) against all of `ref`.
    - uniqueness / novelty: over valid samples; novelty needs `known` or `train` (else None);
      ``novelty`` False skips both (a quick sweep of a setting: the keys are None).
    - metric_errors: failures of the fingerprint/validity code, by reason (core/metrics/errors.py).
    """
    with counting() as errors:
        out = _evaluate_generation(gen, ref, train, struct_cutoff, comp_cutoff, n_w1, seed, n_jobs, cache,
                                   include_reference, known, rediscover, novelty)  # fmt: skip
    out["metric_errors"] = dict(errors)
    return out


def _evaluate_generation(gen, ref, train, struct_cutoff, comp_cutoff, n_w1, seed, n_jobs, cache,  # noqa: ANN001, ANN202
                         include_reference, known, rediscover, novelty=True):  # fmt: skip
    from core.known import KnownCrystals
    from core.metrics.rediscovery import novelty_metrics

    n = len(gen)
    s_ok, c_ok = _validity_flags(gen)
    valid = [g for g, a, b in zip(gen, s_ok, c_ok, strict=True) if a and b]
    rng = np.random.default_rng(seed)
    w1_set = [valid[i] for i in rng.choice(len(valid), min(n_w1, len(valid)), replace=False)] if valid else []
    cov = coverage_details(gen, ref, struct_cutoff, comp_cutoff, n_jobs=n_jobs, cache=cache)
    out = {
        "n": n,
        "struct_validity": _rate(s_ok),
        "comp_validity": _rate(c_ok),
        "cov_r": cov["cov_r"],
        "cov_p": cov["cov_p"],
        "w1_density": w1_density(w1_set, ref),
        "w1_nelem": w1_nelem(w1_set, ref),
        "validity": _rate([a and b for a, b in zip(s_ok, c_ok, strict=True)]),
        "n_valid": len(valid),
        "n_failed": sum(g is None for g in gen),
        "n_w1": len(w1_set),
        "n_gen_fp_failed": cov["n_gen_fp_failed"],
        "n_ref_fp_failed": cov["n_ref_fp_failed"],
    }
    if known is None and train is not None:
        train_list = [t for group in train.values() for t in group] if isinstance(train, Mapping) else list(train)
        known = KnownCrystals([f"train-{i}" for i in range(len(train_list))], train_list)
    flags = [a and b for a, b in zip(s_ok, c_ok, strict=True)]
    out.update(novelty_metrics(gen, flags, known, rediscover) if novelty
               else {"uniqueness": None, "novelty": None, "vun_rate": None})  # fmt: skip
    if n_w1 and len(valid) < n_w1:
        logger.warning("only %d valid samples for W1 (CDVAE uses %d)", len(valid), n_w1)
    if include_reference:
        out["reference"] = reference_row(ref)
    return out


def reference_row(
    ref_structures: Sequence[Structure],
    against: Sequence[Structure] | None = None,
    struct_cutoff: float = STRUCT_CUTOFF,
    comp_cutoff: float = COMP_CUTOFF,
    n_jobs: int = 1,
    cache: FingerprintCache | None = None,
) -> dict:
    """Calibration row: real crystals scored as if they were generated.

    Always: n, struct_validity, comp_validity, validity (perov_5: 100 % / ~98.6 %).
    With `against` (another real set, e.g. the test split or a disjoint half): also cov_r, cov_p,
    w1_density, w1_nelem of `ref_structures` against it: the real-data floor of those metrics.
    """
    s_ok, c_ok = _validity_flags(ref_structures)
    row = {
        "n": len(ref_structures),
        "struct_validity": _rate(s_ok),
        "comp_validity": _rate(c_ok),
        "validity": _rate([a and b for a, b in zip(s_ok, c_ok, strict=True)]),
    }
    if against is not None:
        cov = coverage_details(
            ref_structures, against, struct_cutoff, comp_cutoff, n_jobs=n_jobs, cache=cache
        )
        row.update(
            n_against=len(against),
            cov_r=cov["cov_r"],
            cov_p=cov["cov_p"],
            w1_density=w1_density(ref_structures, against),
            w1_nelem=w1_nelem(ref_structures, against),
        )
    return row


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def evaluate_properties(pred: Mapping[str, Sequence], true: Mapping[str, Sequence]) -> dict:
    """n, mae{prop} (+ n_scored{prop}, n_missing{prop}).

    Scored per property over rows where the true value is known; a missing / non-finite prediction
    for a known true value is counted in n_missing and excluded from that MAE (None if none scored).
    """
    n = max((len(v) for v in true.values()), default=0)
    mae: dict[str, float | None] = {}
    n_scored: dict[str, int] = {}
    n_missing: dict[str, int] = {}
    for prop, t_vals in true.items():
        p_vals = pred.get(prop)
        if p_vals is None:
            p_vals = [None] * len(t_vals)
        if len(p_vals) != len(t_vals):
            raise ValueError(f"{prop}: {len(p_vals)} predictions for {len(t_vals)} true values")
        pairs = [(p, t) for p, t in zip(p_vals, t_vals, strict=True) if _finite(t)]
        errs = [abs(float(p) - float(t)) for p, t in pairs if _finite(p)]
        mae[prop] = float(np.mean(errs)) if errs else None
        n_scored[prop] = len(errs)
        n_missing[prop] = len(pairs) - len(errs)
    return {"n": n, "mae": mae, "n_scored": n_scored, "n_missing": n_missing}
