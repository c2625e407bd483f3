"""CDVAE-protocol metrics on pymatgen Structures (no torch).

Submodules: validity (structural / SMACT composition validity), matching (StructureMatcher match
rate, RMSE, uniqueness, novelty), coverage (CrystalNN + Magpie fingerprints, COV-R/COV-P),
evaluate (W1 distances and the `evaluate_*` aggregators). Rates are fractions in [0, 1].
"""

from core.metrics.coverage import (
    COMP_CUTOFF,
    STRUCT_CUTOFF,
    FingerprintCache,
    coverage,
    coverage_details,
    fingerprint,
    fingerprints,
    scale_composition,
)
from core.metrics.evaluate import (
    densities,
    evaluate_generation,
    evaluate_properties,
    evaluate_reconstruction,
    n_elements,
    reference_row,
    w1_density,
    w1_nelem,
)
from core.metrics.matching import (
    cdvae_matcher,
    composition_accuracy,
    formula_index,
    lattice_mae,
    match_rate_rmse,
    novelty,
    uniqueness,
)
from core.metrics.validity import composition_validity, structural_validity

__all__ = [
    "COMP_CUTOFF",
    "STRUCT_CUTOFF",
    "FingerprintCache",
    "cdvae_matcher",
    "composition_accuracy",
    "composition_validity",
    "coverage",
    "coverage_details",
    "densities",
    "evaluate_generation",
    "evaluate_properties",
    "evaluate_reconstruction",
    "fingerprint",
    "fingerprints",
    "formula_index",
    "lattice_mae",
    "match_rate_rmse",
    "n_elements",
    "novelty",
    "reference_row",
    "scale_composition",
    "structural_validity",
    "uniqueness",
    "w1_density",
    "w1_nelem",
]
