"""Charge-aware typing of decoded atoms (core/charge.py) and its path through find_sites/ModelSet."""

from __future__ import annotations

import numpy as np
import pytest

from core.charge import balance_species
from core.elements import Vocabulary
from core.metrics.validity import composition_validity
from core.segment import find_sites


def _li2o(counts: dict[int, int]) -> bool:
    """A toy rule on classes 1 (Li) and 2 (O): twice as many Li as O."""
    return set(counts) == {1, 2} and counts[1] == 2 * counts[2]


# classes: 0 background, 1 Li, 2 O; the second atom is a lithium read as oxygen by a hair
LI2O_MASS = np.array([
    [0.0, 0.90, 0.10],
    [0.0, 0.45, 0.55],
    [0.0, 0.10, 0.90],
])  # fmt: skip


def test_a_close_second_that_balances_the_formula_wins():
    species = LI2O_MASS[:, 1:].argmax(axis=1) + 1
    assert species.tolist() == [1, 2, 2]  # LiO2 by argmax
    cost = np.log(0.55 / 0.45)  # nats the retyping costs
    assert balance_species(LI2O_MASS, species, _li2o, margin=cost + 1e-6).tolist() == [1, 1, 2]
    # beyond the margin the decoder's own typing stands
    assert balance_species(LI2O_MASS, species, _li2o, margin=cost - 1e-3).tolist() == [1, 2, 2]


def test_a_balanced_typing_is_kept_even_when_another_is_more_probable():
    species = np.array([1, 1, 2])
    assert balance_species(LI2O_MASS, species, _li2o, margin=10.0).tolist() == [1, 1, 2]


def test_the_cheapest_of_several_balanced_retypings_is_taken():
    # four atoms, classes 1 A, 2 B, 3 C; rule: exactly two A. Atom 1 (0.40 A) is cheaper to retype
    # than atom 2 (0.30 A), so it is the one that moves.
    mass = np.array([
        [0.0, 0.90, 0.05, 0.05],
        [0.0, 0.40, 0.60, 0.00],
        [0.0, 0.30, 0.00, 0.70],
        [0.0, 0.05, 0.90, 0.05],
    ])  # fmt: skip
    rule = lambda counts: counts.get(1, 0) == 2  # noqa: E731
    assert balance_species(mass, np.array([1, 2, 3, 2]), rule, margin=5.0).tolist() == [1, 1, 3, 2]


def test_a_whole_element_can_be_retyped_and_the_element_cap_holds():
    # every atom reads C (class 3) a little over B (class 2); the rule wants A and B only
    mass = np.array([
        [0.0, 0.90, 0.02, 0.08],
        [0.0, 0.02, 0.45, 0.53],
        [0.0, 0.02, 0.46, 0.52],
    ])  # fmt: skip
    rule = lambda counts: set(counts) == {1, 2}  # noqa: E731
    species = np.array([1, 3, 3])
    assert balance_species(mass, species, rule, margin=1.0).tolist() == [1, 2, 2]
    # a cap of one element rules every balanced retyping out: the typing stands
    assert balance_species(mass, species, rule, margin=1.0, max_elements=1).tolist() == [1, 3, 3]


def test_find_sites_retypes_to_a_charge_balanced_formula_with_smact():
    """Na, Cl, Cl and an atom read Cl 0.55 / Na 0.45: NaCl3 fails SMACT's test, Na2Cl2 passes."""
    assert not composition_validity("NaCl3") and composition_validity("NaCl")
    d = 8
    density = np.zeros((d, d, d))
    probs = np.zeros((3, d, d, d))
    probs[0] = 1.0
    rows = [(0.9, 0.1), (0.1, 0.9), (0.05, 0.95), (0.45, 0.55)]
    for (i, j, k), row in zip([(1, 1, 1), (5, 1, 1), (1, 5, 1), (5, 5, 5)], rows, strict=True):
        density[i, j, k] = 1.0
        probs[:, i, j, k] = (0.0, *row)
    vocab = Vocabulary.from_list(["Na", "Cl"])

    def smact(counts: dict[int, int]) -> bool:
        return composition_validity("".join(f"{vocab.symbol(c)}{n}" for c, n in counts.items()))

    plain = find_sites(density, vocab, class_probs=probs)
    balanced = find_sites(density, vocab, class_probs=probs, charge=(smact, 1.0))
    assert sorted(s.species for s in plain) == ["Cl", "Cl", "Cl", "Na"]
    assert sorted(s.species for s in balanced) == ["Cl", "Cl", "Na", "Na"]
    # the count head's composition, when given, is not second-guessed
    counts = np.array([0, 1, 3])
    fixed = find_sites(density, vocab, class_probs=probs, counts=counts, charge=(smact, 1.0))
    assert sorted(s.species for s in fixed) == ["Cl", "Cl", "Cl", "Na"]


@pytest.mark.parametrize("margin", [None, 3.0])
def test_a_model_sets_decode_passes_its_charge_test_to_the_typing(tmp_path, monkeypatch, margin):
    """meta.json decoding.charge_margin reaches find_sites as (SMACT test on the set's classes, margin)."""
    import json

    import core.decoding
    from core.pipeline import ModelSet
    from tests.tiny_models import write_tiny_model_set

    root = write_tiny_model_set(tmp_path, lattice_params=6)
    meta_path = root / "vae" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["decoding"] = {"counts": False, "charge_margin": margin}
    meta_path.write_text(json.dumps(meta))
    seen = []
    real = core.decoding.find_sites
    monkeypatch.setattr(core.decoding, "find_sites", lambda *a, **kw: seen.append(kw["charge"]) or real(*a, **kw))
    models = ModelSet.load(root, device="cpu")
    models.decode(np.zeros((1, models.latent_dim), np.float32), predict=False)
    if margin is None:
        assert seen == [None]
        return
    (test, got_margin), = seen
    na, cl, sr, ti, o = (models.vocab.index(e) for e in ("Na", "Cl", "Sr", "Ti", "O"))
    assert got_margin == 3.0
    assert test({na: 1, cl: 1}) and test({sr: 1, ti: 1, o: 3})
    assert not test({na: 1, cl: 3}) and not test({0: 1, na: 1})  # background is not an element
