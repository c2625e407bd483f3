"""core.elements: the class vocabulary and the per-element numbers the voxeliser uses."""

from __future__ import annotations

import pytest
from pymatgen.core import Element, Lattice, Structure

from core.elements import FALLBACK_RADIUS, MAX_Z, Vocabulary, atomic_number, ionic_radius


def test_atomic_number() -> None:
    assert atomic_number("H") == 1
    assert atomic_number("Sr") == 38
    assert atomic_number("Pu") == 94
    with pytest.raises(ValueError):
        atomic_number("Xx")


def test_vocabulary_is_sorted_by_atomic_number_with_background_zero() -> None:
    vocab = Vocabulary(["O", "Sr", "Ti", "H"])
    assert vocab.symbols == ("H", "O", "Ti", "Sr")
    assert len(vocab) == 5  # 4 elements + background
    assert [vocab.index(s) for s in ("H", "O", "Ti", "Sr")] == [1, 2, 3, 4]
    assert [vocab.symbol(i) for i in range(1, 5)] == ["H", "O", "Ti", "Sr"]
    # Equal sets in any order are the same vocabulary (class ids mean the same thing).
    assert vocab == Vocabulary(["Sr", "H", "Ti", "O"])
    assert hash(vocab) == hash(Vocabulary(["Ti", "O", "Sr", "H"]))
    assert vocab != Vocabulary(["O", "Sr", "Ti"])


def test_vocabulary_index_and_symbol_are_inverse() -> None:
    vocab = Vocabulary.default()
    for i in range(1, len(vocab)):
        assert vocab.index(vocab.symbol(i)) == i


def test_vocabulary_unknown_symbol_and_class_errors() -> None:
    vocab = Vocabulary(["Na", "Cl"])
    with pytest.raises(KeyError, match="'O' is not in the model's vocabulary"):
        vocab.index("O")
    for bad in (0, 3, -1):
        with pytest.raises(IndexError):
            vocab.symbol(bad)
    assert "Na" in vocab and "O" not in vocab and 11 not in vocab


def test_vocabulary_rejects_duplicates_and_non_elements() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["O", "O"])
    with pytest.raises(ValueError):
        Vocabulary(["O", "Xx"])


def test_vocabulary_list_round_trip() -> None:
    vocab = Vocabulary(["Ba", "O", "Ti", "F"])
    listed = vocab.to_list()
    assert listed == ["O", "F", "Ti", "Ba"] and isinstance(listed, list)
    assert Vocabulary.from_list(listed) == vocab
    assert Vocabulary.from_list(listed).to_list() == listed


def test_default_vocabulary_covers_h_to_pu() -> None:
    vocab = Vocabulary.default()
    assert len(vocab) == MAX_Z + 1 == 95
    assert vocab.symbol(1) == "H" and vocab.symbol(94) == "Pu"
    assert all(vocab.index(Element.from_Z(z).symbol) == z for z in range(1, MAX_Z + 1))
    assert repr(vocab) == "Vocabulary(94 elements)"


def test_vocabulary_from_structures() -> None:
    s1 = Structure(
        Lattice.cubic(4.0),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    s2 = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3])
    assert Vocabulary.from_structures([s1, s2]).symbols == ("O", "Cl", "Ti", "Sr", "Cs")
    assert Vocabulary.from_structures(iter([s2])).symbols == ("Cl", "Cs")


def test_ionic_radius_is_the_mean_over_oxidation_states() -> None:
    # pymatgen's ionic radii: Ti2+ 1.00, Ti3+ 0.81, Ti4+ 0.745 Å; Sr2+ 1.32; O2- 1.26 only
    assert ionic_radius("Ti") == pytest.approx((1.00 + 0.81 + 0.745) / 3)
    assert ionic_radius("Sr") == pytest.approx(1.32)
    assert ionic_radius("O") == pytest.approx(1.26)


def test_ionic_radius_falls_back_to_atomic_then_constant() -> None:
    # H and Ar have no ionic radius in pymatgen but an atomic one; He, Ne, Kr, Rn have neither.
    assert not Element("H").ionic_radii and ionic_radius("H") == pytest.approx(
        float(Element("H").atomic_radius)
    )
    assert not Element("Ar").ionic_radii and ionic_radius("Ar") == pytest.approx(
        float(Element("Ar").atomic_radius)
    )
    for symbol in ("He", "Ne", "Kr", "Rn"):
        assert ionic_radius(symbol) == FALLBACK_RADIUS


def test_every_default_element_has_a_positive_finite_radius() -> None:
    for z in range(1, MAX_Z + 1):
        r = ionic_radius(Element.from_Z(z).symbol)
        assert 0.1 < r < 3.0, (z, r)
