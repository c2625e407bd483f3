"""Metrics on tiny crystals built in code (CDVAE protocol semantics)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from core.metrics import (
    FingerprintCache,
    composition_accuracy,
    composition_validity,
    coverage,
    coverage_details,
    evaluate_generation,
    evaluate_properties,
    evaluate_reconstruction,
    fingerprints,
    lattice_mae,
    match_rate_rmse,
    novelty,
    reference_row,
    scale_composition,
    structural_validity,
    uniqueness,
    w1_density,
    w1_nelem,
)

FACES = [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]


def perovskite(a_site: str, b_site: str, x: str = "O", a: float = 3.905) -> Structure:
    """ABX3 with A at the corner, B at the body centre, X at the face centres."""
    return Structure(Lattice.cubic(a), [a_site, b_site, x, x, x], [[0, 0, 0], [0.5, 0.5, 0.5], *FACES])


def rocksalt(a_el: str = "Na", b_el: str = "Cl", a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [a_el, b_el], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl(a: float = 4.12) -> Structure:
    return Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def sto() -> Structure:
    return perovskite("Sr", "Ti")


# ---------------------------------------------------------------- matching
def test_identical_structures_match(sto):
    res = match_rate_rmse([sto.copy()], [sto])
    assert res["n"] == 1 and res["match_rate"] == 1.0 and res["n_matched"] == 1
    assert res["rmse"] == pytest.approx(0.0, abs=1e-8)


def test_perturbed_structure_matches_with_positive_rmse(sto):
    moved = sto.copy()
    moved.translate_sites([0], [0.02, 0.0, 0.0])
    res = match_rate_rmse([moved], [sto])
    assert res["match_rate"] == 1.0
    assert 1e-4 < res["rmse"] < 0.05


def test_ab_swapped_perovskite_does_not_match(sto):
    swapped = perovskite("Ti", "Sr")  # Sr on the B site, Ti on the A site
    res = match_rate_rmse([swapped], [sto])
    assert res["match_rate"] == 0.0 and res["rmse"] is None and res["match_rate_ungated"] == 0.0


def test_failures_and_invalid_predictions_are_misses(sto):
    nacl2 = perovskite("Na", "Cl", x="Cl")  # NaCl4: matches itself but is charge-imbalanced
    res = match_rate_rmse([None, sto.copy(), nacl2.copy()], [sto, sto, nacl2])
    assert res["n"] == 3 and res["n_failed"] == 1 and res["n_invalid"] == 1
    assert res["match_rate"] == pytest.approx(1 / 3)
    assert res["match_rate_ungated"] == pytest.approx(2 / 3)
    ungated = match_rate_rmse([None, sto.copy(), nacl2.copy()], [sto, sto, nacl2], require_valid=False)
    assert ungated["match_rate"] == pytest.approx(2 / 3)


def test_length_mismatch_raises(sto):
    with pytest.raises(ValueError):
        match_rate_rmse([sto], [sto, sto])


def test_composition_accuracy_and_lattice_mae(sto):
    bigger = perovskite("Sr", "Ti", a=4.005)  # matcher scales volume, lattice MAE sees it
    other = perovskite("Ba", "Ti")
    preds, targets = [bigger, other, None], [sto, sto, sto]
    assert composition_accuracy(preds, targets) == pytest.approx(1 / 3)
    assert lattice_mae(preds, targets) == pytest.approx(0.05)
    assert match_rate_rmse([bigger], [sto])["match_rate"] == 1.0
    assert lattice_mae([None], [sto]) is None
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    primitive = fcc.get_primitive_structure()  # one lattice, two cells: no error
    assert lattice_mae([primitive], [fcc]) == pytest.approx(0.0, abs=1e-6)
    assert lattice_mae([fcc], [primitive]) == pytest.approx(0.0, abs=1e-6)


def test_evaluate_reconstruction_keys(sto):
    out = evaluate_reconstruction([sto.copy(), None], [sto, sto])
    for key in ("n", "match_rate", "rmse", "composition_accuracy", "lattice_mae", "struct_validity"):
        assert key in out
    assert out["match_rate"] == 0.5 and out["struct_validity"] == 0.5 and out["composition_accuracy"] == 0.5


def test_uniqueness_and_novelty(sto):
    a, b = sto, perovskite("Ba", "Ti")
    assert uniqueness([a, a.copy(), b]) == pytest.approx(2 / 3)
    assert uniqueness([a, perovskite("Ti", "Sr")]) == 1.0  # same formula, different structure
    assert uniqueness([None]) is None
    assert novelty([a.copy(), b], [a]) == pytest.approx(0.5)
    assert novelty([a], []) == 1.0


# ---------------------------------------------------------------- validity
@pytest.mark.parametrize(
    "formula, expected",
    [("NaCl", True), ("NaCl2", False), ("SrTiO3", True), ("Fe", True), ("FeNi", True), ("NaO3", False)],
)
def test_composition_validity(formula, expected):
    assert composition_validity(formula) is expected
    assert composition_validity(Composition(formula)) is expected


def test_composition_validity_of_structures(sto):
    assert composition_validity(sto) and composition_validity(rocksalt())
    assert not composition_validity(None)
    assert not composition_validity("Xx2O")  # unknown element: invalid, not an exception


def test_structural_validity(sto):
    assert structural_validity(sto) and structural_validity(rocksalt())
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.06, 0, 0]])  # 0.3 Å apart
    assert not structural_validity(close)
    wrapped = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0.01, 0, 0], [0.97, 0, 0]])  # 0.2 Å via PBC
    assert not structural_validity(wrapped)
    assert not structural_validity(Structure(Lattice.cubic(0.4), ["Fe"], [[0, 0, 0]]))  # volume 0.064
    assert not structural_validity(Structure(Lattice.orthorhombic(0.3, 5, 5), ["Fe"], [[0, 0, 0]]))
    assert not structural_validity(None)


# ---------------------------------------------------------------- distributions, coverage
def test_w1_of_set_against_itself_is_zero(sto):
    ref = [sto, rocksalt(), cscl()]
    assert w1_density(ref, ref) == pytest.approx(0.0)
    assert w1_nelem(ref, ref) == pytest.approx(0.0)
    assert w1_nelem([sto], [rocksalt()]) == pytest.approx(1.0)  # 3 elements vs 2
    assert w1_density([None], ref) is None


def test_coverage_of_set_against_itself_is_full(sto):
    ref = [sto, rocksalt(), cscl()]
    assert coverage(ref, ref) == (1.0, 1.0)


def test_coverage_counts_failures_against_precision(sto):
    ref = [sto, rocksalt()]
    d = coverage_details([sto, rocksalt(), None], ref)
    assert d["cov_r"] == 1.0 and d["cov_p"] == pytest.approx(2 / 3) and d["n_gen_fp_failed"] == 1


def test_coverage_misses_a_different_composition(sto):
    cov_r, cov_p = coverage([sto], [sto, rocksalt("K", "I")])
    assert cov_r == pytest.approx(0.5) and cov_p == 1.0


def test_fingerprint_cache_and_scaling(sto):
    cache = FingerprintCache()
    fps = fingerprints([sto, sto.copy(), None], cache=cache)
    assert len(cache) == 1 and fps[2] is None
    assert fps[0][0].shape == (61,) and fps[0][1].shape == (132,)
    assert np.array_equal(fps[0][0], fps[1][0])
    scaled = scale_composition(np.full((1, 132), np.nan))
    assert np.all(scaled == 0.0)


def test_evaluate_generation_and_reference_row(sto):
    ref = [sto, rocksalt(), cscl()]
    gen = [sto.copy(), sto.copy(), perovskite("Na", "Cl", x="Cl"), None]
    out = evaluate_generation(gen, ref, train=[sto], n_w1=10)
    assert out["n"] == 4 and out["n_failed"] == 1
    assert out["struct_validity"] == pytest.approx(0.75) and out["comp_validity"] == pytest.approx(0.5)
    assert out["n_valid"] == 2 and out["uniqueness"] == 0.5 and out["novelty"] == 0.0
    assert out["cov_r"] == pytest.approx(1 / 3) and out["cov_p"] == pytest.approx(0.5)
    assert out["reference"] == {"n": 3, "struct_validity": 1.0, "comp_validity": 1.0, "validity": 1.0}
    row = reference_row(ref, against=ref)
    assert row["cov_r"] == 1.0 and row["w1_density"] == pytest.approx(0.0)
    # a quick sweep without the matcher: the same coverage, and no novelty figures at all
    quick = evaluate_generation(gen, ref, train=[sto], n_w1=10, novelty=False)
    assert quick["cov_p"] == out["cov_p"] and quick["uniqueness"] is None and quick["novelty"] is None


def test_evaluate_properties_counts_missing():
    out = evaluate_properties(
        {"gap": [1.0, None, 3.0], "e": [0.0, 0.0, 0.0]}, {"gap": [1.5, 2.0, 2.0], "e": [1, 1, None]}
    )
    assert out["n"] == 3
    assert out["mae"]["gap"] == pytest.approx(0.75) and out["n_missing"]["gap"] == 1
    assert out["mae"]["e"] == pytest.approx(1.0) and out["n_scored"]["e"] == 2
    with pytest.raises(ValueError):
        evaluate_properties({"gap": [1.0]}, {"gap": [1.0, 2.0]})


def test_fingerprint_cache_round_trips_through_npz(sto, tmp_path):
    cache = FingerprintCache()
    fps = fingerprints([sto, rocksalt()], cache=cache)
    cache.put("failed-one", None)
    path = cache.save(tmp_path / "fp.npz")
    loaded = FingerprintCache.load(path)
    assert len(loaded) == 3 and loaded.get("failed-one") is None
    again = fingerprints([sto, rocksalt()], cache=loaded)
    for a, b in zip(fps, again, strict=True):
        assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], equal_nan=True)
    assert len(FingerprintCache.load(tmp_path / "missing.npz")) == 0
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert len(FingerprintCache.load(tmp_path / "junk.npz")) == 0


def test_blocked_nearest_distances_equal_full_matrix():
    from scipy.spatial.distance import cdist

    from core.metrics.coverage import _nearest

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    a_min, b_min = _nearest(a, b, block=2)
    full = cdist(a, b)
    assert np.allclose(a_min, full.min(axis=1)) and np.allclose(b_min, full.min(axis=0))


def test_process_pool_gives_the_same_fingerprints():
    structures = [perovskite("Sr", "Ti", a=3.8 + 0.05 * i) for i in range(9)]  # > 8: takes the pool path
    pooled = fingerprints(structures, n_jobs=2, cache=FingerprintCache())
    serial = fingerprints(structures, n_jobs=1, cache=FingerprintCache())
    for a, b in zip(pooled, serial, strict=True):
        assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1], equal_nan=True)


def test_metric_failures_are_counted_by_reason_not_hidden(monkeypatch):
    """A library that breaks (here: smact raising) shows up in metric_errors, not only as low validity."""
    from pymatgen.core import Lattice, Structure

    from core.metrics import evaluate as ev
    from core.metrics import validity

    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AttributeError("module 'smact' has no attribute 'ordered_elements'")

    import smact.screening

    monkeypatch.setattr(smact.screening, "smact_validity", broken)
    validity._smact_valid.cache_clear()
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    a = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"], frac)
    b = Structure(Lattice.cubic(4.0), ["Ba", "Ti", "O", "O", "O"], frac)
    try:
        out = ev.evaluate_reconstruction([a, b], [a, b])
    finally:
        validity._smact_valid.cache_clear()  # no cached failures for the other tests
    assert out["metric_errors"] == {
        "smact_validity: AttributeError: module 'smact' has no attribute 'ordered_elements'": 2
    }
    assert out["match_rate"] == 0.0  # the gate failed them; the JSON says why


def test_reconstructs_finds_the_best_mapping_where_fit_may_stop_at_the_first():
    from pymatgen.core import Lattice, Structure

    from core.metrics.matching import cdvae_matcher, reconstructs

    target = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    near = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.02, 0, 0], [0.5, 0.5, 0.5]])
    far = Structure(Lattice.tetragonal(4.0, 9.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.0, 0.0]])  # another crystal
    assert reconstructs(near, target) and reconstructs(near, target, cdvae_matcher())
    assert not reconstructs(far, target)
    assert reconstructs(near, target) == (cdvae_matcher().get_rms_dist(near, target) is not None)
