"""Reading density grids users already have: VASP CHGCAR (and LOCPOT, AECCAR), Gaussian cube.

Returns the crystal and its grid in e/Å^3 with point (i, j, k) at fractional (i/Na, j/Nb, k/Nc),
the convention of ``core.voxel``. pymatgen parses the files (``Chgcar``, ``VolumetricData``);
this module fixes the units: CHGCAR stores rho x V_cell, cube stores e/Bohr^3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from core.errors import StructureError

BOHR = 0.529177210903  # Å
VASP_NAMES = ("CHGCAR", "CHG", "LOCPOT", "AECCAR", "ELFCAR", "PARCHG")


def density_file_kind(path: str | Path) -> str | None:
    """"vasp" or "cube" when ``path`` names a density file, else None (a crystal file)."""
    p = Path(path)
    if p.suffix.lower() == ".cube":
        return "cube"
    if p.name.upper().startswith(VASP_NAMES):
        return "vasp"
    return None


def read_density_file(path: str | Path) -> tuple[Structure, np.ndarray, str]:
    """(crystal, grid (Na, Nb, Nc) in e/Å^3 (LOCPOT: the potential in eV), what the grid holds);
    raises StructureError naming the file and the reason."""
    p = Path(path)
    kind = density_file_kind(p)
    if not p.is_file():
        raise StructureError(str(p), "no such file")
    try:
        if kind == "cube":
            from pymatgen.io.common import VolumetricData

            data = VolumetricData.from_cube(str(p))
            grid = np.asarray(data.data["total"], dtype=np.float64) / BOHR**3  # e/Bohr^3 -> e/Å^3
            return data.structure, grid.astype(np.float32), "density from a Gaussian cube file"
        if kind == "vasp":
            from pymatgen.io.vasp import Chgcar

            data = Chgcar.from_file(str(p))
            grid = np.asarray(data.data["total"], dtype=np.float64)
            if p.name.upper().startswith("LOCPOT"):
                return data.structure, grid.astype(np.float32), "local potential (eV) from a LOCPOT"
            grid = grid / data.structure.volume  # VASP stores rho x V_cell
            return data.structure, grid.astype(np.float32), "density from a VASP file"
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds for broken files
        lines = str(exc).strip().splitlines()
        raise StructureError(str(p), f"unreadable {kind} file ({lines[0][:160] if lines else type(exc).__name__})") from None
    raise StructureError(str(p), "not a density file (CHGCAR, LOCPOT or .cube)")
