"""Shortest distances in a periodic crystal: between two sites, and between a site and its own
periodic images. One place for what validity (core/metrics/validity.py), refinement
(core/refine.py) and the app's properties dock measure."""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Structure


def min_pair_distance(structure: Structure) -> float:
    """Shortest minimum-image distance between two distinct sites, Å (inf for one site)."""
    if len(structure) < 2:
        return math.inf
    dist = np.array(structure.distance_matrix, dtype=float)
    np.fill_diagonal(dist, np.inf)
    return float(dist.min())


def shortest_lattice_vector(structure: Structure) -> float:
    """Length of the shortest non-zero lattice vector (distance of a site to its own images), Å."""
    lattice = structure.lattice
    # Any vector shorter than the shortest LLL vector is found within a sphere of that radius.
    radius = float(min(lattice.get_lll_reduced_lattice().abc)) + 1e-6
    pts = lattice.get_points_in_sphere(np.zeros((1, 3)), np.zeros(3), radius)
    lengths = [float(p[1]) for p in pts if p[1] > 1e-8]
    return min(lengths) if lengths else radius


def min_distance(structure: Structure) -> float:
    """Shortest periodic distance between two atoms, a site's own images included, Å."""
    return min(shortest_lattice_vector(structure), min_pair_distance(structure))
