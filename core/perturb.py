"""The same crystal written another way: origin shifts, axis permutations and other equivalent cells.

A file may put its origin anywhere, list its axes in any order and choose any of the equivalent
cells of one lattice. A method that gives a different answer for these copies answers the file,
not the crystal; ``icsg3d evaluate reconstruction --perturb KIND`` measures that, and the tests
check that reading them (``core.structures.prepare``) plus the model set's canonical frame gives
the same answer.

Each function returns a new Structure; ``rng`` makes the copy reproducible.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pymatgen.core import Lattice, Structure

from core.structures import Entry, to_conventional

PERTURBATIONS = ("shift", "permute", "reset", "all")

# unimodular integer matrices (det +1): each turns a cell into another cell of the same lattice
_RESETS = (
    ((1, 1, 0), (0, 1, 0), (0, 0, 1)),
    ((1, 0, 0), (0, 1, 1), (0, 0, 1)),
    ((1, 0, 1), (0, 1, 0), (0, 0, 1)),
    ((1, 0, 0), (1, 1, 0), (0, 0, 1)),
    ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
)


def shifted(structure: Structure, rng: np.random.Generator) -> Structure:
    """The crystal with its origin moved by a random fractional vector."""
    shift = rng.random(3)
    return Structure(
        structure.lattice,
        structure.species,
        (structure.frac_coords + shift) % 1.0,
        site_properties=structure.site_properties or None,
    )


def permuted(structure: Structure, rng: np.random.Generator) -> Structure:
    """The crystal with its axes listed in a random order (an odd order flips one axis, so the cell
    stays right-handed)."""
    order = rng.permutation(3)
    sign = np.ones(3)
    if round(np.linalg.det(np.eye(3)[order])) < 0:
        sign[2] = -1.0
    matrix = structure.lattice.matrix[order] * sign[:, None]
    frac = structure.frac_coords[:, order] * sign
    return Structure(
        Lattice(matrix), structure.species, frac % 1.0, site_properties=structure.site_properties or None
    )


def reset(structure: Structure, rng: np.random.Generator) -> Structure:
    """The crystal on another of its cells of the same volume (a unimodular change of basis)."""
    matrix = _RESETS[int(rng.integers(len(_RESETS)))]
    other = structure.copy()
    other.make_supercell(matrix)
    return other


def perturbed(structure: Structure, kind: str, rng: np.random.Generator) -> Structure:
    """One of PERTURBATIONS applied to ``structure`` ('all': reset, then permute, then shift)."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {PERTURBATIONS}")
    steps = (reset, permuted, shifted) if kind == "all" else (_BY_NAME[kind],)
    for step in steps:
        structure = step(structure, rng)
    return structure


_BY_NAME = {"shift": shifted, "permute": permuted, "reset": reset}


def perturbed_entries(entries: list[Entry], kind: str, seed: int = 0) -> list[Entry]:
    """Entries whose crystals are perturbed copies, read back as a file would be (conventional
    standard cell, ``core.structures.to_conventional``); seeded, one draw per entry in order."""
    rng = np.random.default_rng(seed)
    return [
        replace(
            e, structure=to_conventional(perturbed(e.structure, kind, rng), e.source), note=f"{kind} copy"
        )
        for e in entries
    ]
