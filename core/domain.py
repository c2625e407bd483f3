"""Is a crystal inside what a model set was trained on? A clear reason when it is not.

A VAE decodes anything it is given, and outside its training domain it decodes confidently
wrong crystals (hexagonal ZnO came back as Li). So every reconstruction first asks
``domain_problem``; a crystal outside gets the status ``out_of_domain`` and the reason, never a
decode presented as if it were the crystal.

The domain of a model set: its element vocabulary, its grid (cell length and number of sites the
grid resolves: ``core.voxel.check_representable``) and its lattice family, recorded in the VAE's
meta.json as ``domain.lattice`` ("cubic" for sets trained on cubic cells only; "any" otherwise).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from core.elements import Vocabulary
from core.voxel import VoxelConfig, check_representable, gridded_cell

ANGLE_TOL = 0.5  # degrees
LENGTH_TOL = 0.01  # relative: a = b = c within 1 %


def crystal_family(structure: Structure) -> str:
    """"cubic" or a short description of the cell (lengths and angles) for messages."""
    a, b, c = structure.lattice.abc
    angles = np.asarray(structure.lattice.angles)
    square = np.all(np.abs(angles - 90.0) < ANGLE_TOL)
    equal = max(a, b, c) / min(a, b, c) - 1.0 < LENGTH_TOL
    if square and equal:
        return "cubic"
    return (f"a {'orthogonal' if square else 'non-orthogonal'} cell "
            f"(a, b, c = {a:.3f}, {b:.3f}, {c:.3f} Å; angles {', '.join(f'{x:.1f}' for x in angles)}°)")  # fmt: skip


def domain_problem(structure: Structure, vocab: Vocabulary, voxel_cfg: VoxelConfig, lattice: str = "any") -> str | None:
    """Why ``structure`` (a conventional cell) is outside the domain, or None if it is inside.
    A set of any lattice grids the Niggli-reduced primitive cell where the conventional one is too
    long for its grid (or always, for a centred crystal, with ``voxel_cfg.cell`` "primitive":
    ``core.voxel.gridded_cell``), so only a crystal neither fits is outside."""
    unknown = sorted({el.symbol for el in structure.composition.elements} - set(vocab.symbols))
    if unknown:
        return f"element(s) {', '.join(unknown)} not among the {len(vocab)} elements this model set was trained on"
    if lattice == "cubic":
        family = crystal_family(structure)
        if family != "cubic":
            return f"{family}: this model set was trained on cubic cells only"
    return domain_cell(structure, voxel_cfg, lattice)[1]


def domain_cell(structure: Structure, voxel_cfg: VoxelConfig, lattice: str = "any") -> tuple[Structure, str | None]:
    """The cell a set of this ``lattice`` family grids and why it cannot (None when it can): a cubic
    set the crystal as it is; a set of any lattice ``core.voxel.gridded_cell`` (the Niggli-reduced
    primitive cell where the conventional one is too long, or per ``voxel_cfg.cell``), as its
    training did."""
    if lattice == "cubic":
        return structure, check_representable(structure, voxel_cfg)
    return gridded_cell(structure, voxel_cfg)
