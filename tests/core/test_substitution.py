"""Ionic substitution of tiny crystals built in code (core/substitution.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.substitution import describe_substitution, oxidation_states, substitute, substitutions


def rock_salt(a: float = 5.64, cation: str = "Na", anion: str = "Cl") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite() -> Structure:
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip


def _neutral(structure: Structure) -> bool:
    states = oxidation_states(structure.composition.reduced_formula)
    return states is not None


def test_oxidation_states_of_simple_ionic_crystals():
    assert dict(oxidation_states("NaCl")) == {"Na": 1, "Cl": -1}
    assert dict(oxidation_states("SrTiO3")) == {"Sr": 2, "Ti": 4, "O": -2}


def test_substitution_is_new_neutral_and_keeps_the_structure():
    parent = perovskite()
    rng = np.random.default_rng(0)
    made = [substitute(parent, rng) for _ in range(20)]
    made = [m for m in made if m is not None]
    assert len(made) >= 10
    for m in made:
        assert m.composition.reduced_formula != "SrTiO3"
        assert len(m) == len(parent)
        assert np.allclose(m.frac_coords, parent.frac_coords)  # same sites, other ions
        assert np.allclose(m.lattice.angles, parent.lattice.angles)
        assert _neutral(m), m.composition
        assert 0.4 < m.volume / parent.volume < 2.5


def test_volume_follows_the_ionic_radii():
    """KCl from NaCl: K+ is larger than Na+, so the cell grows."""
    parent = rock_salt()
    rng = np.random.default_rng(1)
    for _ in range(200):
        m = substitute(parent, rng, allowed={"K", "Cl"}.__contains__)
        if m is not None:
            break
    assert m is not None and m.composition.reduced_formula == "KCl"
    assert m.volume > parent.volume


def test_allowed_and_exclude_are_respected():
    parent = rock_salt()
    rng = np.random.default_rng(2)
    allowed = {"Na", "K", "Li", "Cl", "Br"}
    seen = set()
    for _ in range(30):
        m = substitute(parent, rng, allowed=allowed.__contains__, exclude={"KCl"})
        if m is not None:
            seen.add(m.composition.reduced_formula)
            assert {str(e) for e in m.composition.elements} <= allowed
    assert seen and "KCl" not in seen and "NaCl" not in seen


def test_no_oxidation_states_gives_none():
    alloy = Structure(Lattice.cubic(3.0), ["Xe"], [[0, 0, 0]])
    assert substitute(alloy, np.random.default_rng(0)) is None


@pytest.mark.parametrize("seed", [0, 3])
def test_substitutions_are_seeded_and_unique(seed):
    parents = [rock_salt(), perovskite()]
    a = substitutions(parents, per_parent=4, seed=seed)
    b = substitutions(parents, per_parent=4, seed=seed)
    assert [(i, s.composition.reduced_formula) for i, s in a] == [
        (i, s.composition.reduced_formula) for i, s in b
    ]
    formulas = [s.composition.reduced_formula for _, s in a]
    assert len(formulas) == len(set(formulas))
    assert all(0 <= i < len(parents) for i, _ in a)


def test_describe_substitution_names_the_parent_and_each_swap():
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0], [0, 0.5, 0]])
    kbr = nacl.copy()
    kbr.replace_species({"Na": "K", "Cl": "Br"})
    assert describe_substitution(nacl, kbr, "mp-22862") == "substitution of mp-22862 (NaCl): Cl->Br, Na->K"
    kcl = nacl.copy()
    kcl.replace_species({"Na": "K"})
    assert describe_substitution(nacl, kcl, "x") == "substitution of x (NaCl): Na->K"
