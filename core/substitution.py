"""Ionic substitution: new crystals made from known ones by swapping their elements.

A crystal's elements are given oxidation states (pymatgen's ``oxi_state_guesses``), and each ion
is swapped for another drawn from the data-mined substitution probabilities of Hautier et al.,
Inorg. Chem. 50, 656 (2011) (pymatgen's ``SubstitutionProbability``: how often two ions replace
each other in isostructural ICSD crystals). A proposal is kept only when it is charge neutral,
its elements are distinct and allowed, and at least one changed; the cell is scaled by the ionic
radii as pymatgen's ``RLSVolumePredictor`` does (the cube of the ratio of sum(r n^(1/3))).

Used to augment the training data of a set with few crystals per element (``scripts/
augment_substitutions.py``): the model then sees the same structure with other ions, so it has to
read the elements from the density instead of recalling them from the structure.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Composition, Element, Species, Structure

log = logging.getLogger(__name__)

MAX_TRIES = 50  # draws per parent before it is given up (rare ions, no neutral swap)


@lru_cache(maxsize=1)
def _table():  # noqa: ANN202 (SubstitutionProbability, its candidate ions, their probabilities)
    from pymatgen.core.structure_prediction.substitution_probability import SubstitutionProbability

    table = SubstitutionProbability()
    ions = sorted(table.species, key=str)
    return table, ions


@lru_cache(maxsize=4096)
def _swap_probabilities(ion: Species) -> np.ndarray:
    """P(new ion | ion) over ``_table()``'s ions (the ion itself included: "no swap")."""
    table, ions = _table()
    weights = np.array([table.cond_prob(other, ion) for other in ions])
    return weights / weights.sum()


@lru_cache(maxsize=65536)
def oxidation_states(formula: str) -> tuple[tuple[str, int], ...] | None:
    """The likeliest integer oxidation state of each element of a formula, or None when pymatgen
    finds no neutral assignment."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about elements without data; None says it
        guesses = Composition(formula).oxi_state_guesses(max_sites=-1)
    if not guesses:
        return None
    states = guesses[0]
    if any(abs(v - round(v)) > 1e-6 for v in states.values()):
        return None
    return tuple(sorted((el, int(round(v))) for el, v in states.items()))


def _radius(ion: Species) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing ionic radius: the atomic radius stands in
        r = ion.ionic_radius
    return float(r) if r is not None else float(ion.element.atomic_radius or 1.5)


def substitute(
    structure: Structure,
    rng: np.random.Generator,
    allowed: Callable[[str], bool] | None = None,
    exclude: set[str] | None = None,
) -> Structure | None:
    """One ionic substitution of ``structure`` (see the module docstring), or None after MAX_TRIES
    draws without a neutral, allowed, new one. ``allowed(symbol)``: elements the result may hold;
    ``exclude``: reduced formulas it must not have (the parent's is always excluded)."""
    states = oxidation_states(structure.composition.reduced_formula)
    if states is None:
        return None
    table, ions = _table()
    old = {el: Species(el, ox) for el, ox in states}
    if any(ion not in table.species for ion in old.values()):
        return None
    counts = structure.composition.element_composition
    parent = structure.composition.reduced_formula
    for _ in range(MAX_TRIES):
        new = {el: ions[rng.choice(len(ions), p=_swap_probabilities(ion))] for el, ion in old.items()}
        symbols = [str(ion.element) for ion in new.values()]
        if (
            all(new[el] == old[el] for el in old)
            or len(set(symbols)) < len(symbols)
            or (allowed is not None and not all(allowed(s) for s in symbols))
            or abs(sum(counts[el] * new[el].oxi_state for el in new)) > 1e-6
        ):
            continue
        result = structure.copy()
        result.replace_species({Element(el): Element(str(new[el].element)) for el in new})
        formula = result.composition.reduced_formula
        if formula == parent or (exclude is not None and formula in exclude):
            continue
        scale = sum(_radius(new[el]) * counts[el] ** (1 / 3) for el in new) / sum(
            _radius(old[el]) * counts[el] ** (1 / 3) for el in old
        )
        result.scale_lattice(structure.volume * scale**3)
        return result
    return None


def describe_substitution(parent: Structure, child: Structure, parent_id: str) -> str:
    """Where a substitution came from, for a user: "substitution of mp-1 (NaCl): Na->K, Cl->Br".
    ``child`` is ``parent`` with its elements replaced site by site (``substitute``)."""
    swaps = {}
    for old, new in zip(parent.species, child.species, strict=True):
        if old != new:
            swaps[str(old)] = str(new)
    changed = ", ".join(f"{old}->{new}" for old, new in sorted(swaps.items()))
    return f"substitution of {parent_id} ({parent.composition.reduced_formula}): {changed}"


def substitutions(
    structures: Sequence[Structure],
    per_parent: int,
    seed: int = 0,
    allowed: Callable[[str], bool] | None = None,
    exclude: set[str] | None = None,
) -> list[tuple[int, Structure]]:
    """Up to ``per_parent`` substitutions of each structure, seeded: (parent index, crystal) pairs,
    no reduced formula twice and none in ``exclude``."""
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    out: list[tuple[int, Structure]] = []
    for i, s in enumerate(structures):
        for _ in range(per_parent):
            new = substitute(s, rng, allowed, seen)
            if new is not None:
                seen.add(new.composition.reduced_formula)
                out.append((i, new))
    return out
